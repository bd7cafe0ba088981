"""The trainer's exceptions (kept light: the command line imports them at start-up)."""


class DataError(ValueError):
    """Input data is missing, malformed or inconsistent."""


class GateFailed(RuntimeError):
    """A validation gate refused the bundle; nothing was written."""
