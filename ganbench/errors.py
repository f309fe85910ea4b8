"""Errors a user can fix: the message names the problem and the fix, and the CLI prints it without a traceback."""

from __future__ import annotations

from pathlib import Path


class UserError(Exception):
    """Bad input (a config value, a missing dataset or weights file, a corrupt cache) — never a bug in ganbench."""


class CorruptFileError(UserError):
    """A file that exists but cannot be read as what it should be (truncated, garbage, another format)."""

    def __init__(self, path: str | Path, problem: str, fix: str) -> None:
        self.path = Path(path)
        super().__init__(f"{self.path} cannot be read: {problem}. {fix}")


def find_user_error(error: BaseException | None) -> UserError | None:
    """The UserError behind an exception, also when Hydra's instantiate or Lightning wrapped it."""
    while error is not None and not isinstance(error, UserError):
        error = error.__cause__
    return error
