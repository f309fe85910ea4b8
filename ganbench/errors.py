"""Errors a user can fix: the message names the problem and the fix, and the CLI prints it without a traceback."""


class UserError(Exception):
    """Bad input (a config value, a missing dataset or weights file, a corrupt cache) — never a bug in ganbench."""
