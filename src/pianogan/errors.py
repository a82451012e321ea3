"""User-facing errors.

Anything raised as :class:`PianoGANError` is printed by the CLI as one line
(``pianogan: error: ...``) with exit code 2, never as a traceback.
"""


class PianoGANError(Exception):
    """A problem with the user's input or environment, not a bug."""


def describe(e: BaseException) -> str:
    """``"TypeName: first line of the message"``: a foreign exception inside a one-line error
    (some libraries' messages run over several lines)."""
    lines = [line for line in str(e).splitlines() if line.strip()]
    return f"{type(e).__name__}: {lines[0]}" if lines else type(e).__name__


class PianoGANWarning(UserWarning):
    """Something was wrong but the command went on (a torn log line, an unreadable checkpoint
    that an older one replaced); the CLI prints it as one line, ``pianogan CMD: warning: ...``."""


def warn(message: str) -> None:
    """Issue a :class:`PianoGANWarning` (a Python warning: tests and callers can catch it)."""
    import warnings

    warnings.warn(message, PianoGANWarning, stacklevel=2)
