"""Errors a user can fix: the message names the problem and the fix, and the CLI prints it without a traceback."""

from __future__ import annotations

import re
from pathlib import Path

from hydra.errors import InstantiationException


class UserError(Exception):
    """Bad input (a config value, a missing dataset or weights file, a corrupt cache) — never a bug in ganbench."""


class SweepExit(SystemExit):
    """A multirun ending with a code of its own (ganbench.sweep.sweep_exit): passed on as it is, where Hydra's own
    refusals of a command line (exit 1, before any job) become exit 2."""


class CorruptFileError(UserError):
    """A file that exists but cannot be read as what it should be (truncated, garbage, another format)."""

    def __init__(self, path: str | Path, problem: str | None = None, fix: str = "") -> None:
        """``CorruptFileError(message)`` alone is how torch's DataLoader rebuilds one raised in a worker process."""
        self.path = Path(path) if problem is not None else None
        super().__init__(f"{path} cannot be read: {problem}. {fix}" if problem is not None else str(path))


def _bad_argument(error: InstantiationException) -> UserError | None:
    """A ValueError or TypeError raised by a config's ``_target_`` on its arguments (a network refusing a size, an
    optimizer a beta): bad input, named by the config key Hydra reports."""
    cause = error.__cause__
    if not isinstance(cause, ValueError | TypeError):
        return None
    key = re.search(r"full_key: (\S+)", str(error))
    where = key.group(1) if key else "the config"
    return UserError(f"{where} is invalid: {cause}. Fix the value under {where} on the command line")


def find_user_error(error: BaseException | None) -> UserError | None:
    """The UserError behind an exception, also when Hydra's instantiate or Lightning wrapped it."""
    while error is not None and not isinstance(error, UserError):
        if isinstance(error, InstantiationException) and (bad := _bad_argument(error)) is not None:
            return bad
        error = error.__cause__
    return error
