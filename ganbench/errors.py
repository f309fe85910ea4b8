"""Errors a user can fix: the message names the problem and the fix, and the CLI prints it without a traceback."""


class UserError(Exception):
    """Bad input (a config value, a missing dataset or weights file, a corrupt cache) — never a bug in ganbench."""


def find_user_error(error: BaseException | None) -> UserError | None:
    """The UserError behind an exception, also when Hydra's instantiate or Lightning wrapped it."""
    while error is not None and not isinstance(error, UserError):
        error = error.__cause__
    return error
