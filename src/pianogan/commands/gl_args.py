"""The Griffin-Lim flags that `generate` and `reconstruct` share, with their defaults taken from
:data:`pianogan.gl_settings.DEFAULT_GL` (the one place they are written)."""

from __future__ import annotations

from ..errors import PianoGANError
from ..gl_settings import DEFAULT_GL, INITS, GLSettings

MAX_ITER = 100_000


def add_gl_arguments(p, seed: bool = True) -> None:
    """--n-iter, --momentum, --init (and --seed of the random start when ``seed``)."""
    p.add_argument("--n-iter", type=int, default=DEFAULT_GL.n_iter, metavar="N",
                   help=f"Griffin-Lim iterations (default {DEFAULT_GL.n_iter})")
    p.add_argument("--momentum", type=float, default=DEFAULT_GL.momentum, metavar="M",
                   help=f"fast Griffin-Lim momentum (default {DEFAULT_GL.momentum:g}; 0 = plain Griffin-Lim)")
    p.add_argument("--init", choices=INITS, default=DEFAULT_GL.init,
                   help=f"Griffin-Lim start phase (default {DEFAULT_GL.init}: peak-locked phase, "
                        "deterministic; random: seeded per clip)")
    if seed:
        p.add_argument("--seed", type=int, default=DEFAULT_GL.seed,
                       help=f"seed of --init random (default {DEFAULT_GL.seed})")


def gl_settings(args) -> GLSettings:
    """The GLSettings of parsed flags; a one-line error for values out of range."""
    if not 0 <= args.n_iter <= MAX_ITER:
        raise PianoGANError(f"--n-iter must be between 0 and {MAX_ITER}")
    if args.momentum < 0:
        raise PianoGANError("--momentum must be >= 0")
    seed = getattr(args, "seed", DEFAULT_GL.seed)
    return GLSettings(n_iter=args.n_iter, momentum=args.momentum, init=args.init, seed=seed)
