"""`pianogan serve`: a local studio page to generate, listen to, compare and download takes.

Modules, one idea each: :mod:`.config` (every limit, one dataclass), :mod:`.registry` (models by
name), :mod:`.cache` (the bounded take cache, the only place written), :mod:`.worker` (the
generation process), :mod:`.jobs` (bounded queue, worker pool, timeouts), :mod:`.schema` (the
request body), :mod:`.app` (the FastAPI routes). See docs/serve.md.
"""

from .config import ServeConfig

__all__ = ["ServeConfig", "create_app"]


def create_app(*args, **kwargs):
    """:func:`pianogan.serve.app.create_app` (imported on use: FastAPI is not needed before)."""
    from .app import create_app as make

    return make(*args, **kwargs)
