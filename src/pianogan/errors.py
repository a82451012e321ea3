"""User-facing errors.

Anything raised as :class:`PianoGANError` is printed by the CLI as one line
(``pianogan: error: ...``) with exit code 2, never as a traceback.
"""


class PianoGANError(Exception):
    """A problem with the user's input or environment, not a bug."""
