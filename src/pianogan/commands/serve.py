"""`pianogan serve`: the local studio page (FastAPI + uvicorn)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..errors import PianoGANError

HELP = "a local web page to generate, listen to, compare and download takes"
DESCRIPTION = """\
Serve the PianoGAN studio: pick a model (the shipped one, or any run found under --runs), a seed,
a length and a number of takes; listen to each take beside its spectrogram, compare takes A/B,
download the WAV (and MIDI, once transcription is configured) and the generated.json that makes
the take again (`pianogan generate --from`). Binds 127.0.0.1 unless --host says otherwise.
Generation runs in --workers separate processes behind a queue of --queue jobs (a full queue
answers 429); a job past --job-timeout is stopped. Takes are kept in --cache (at most --cache-mb
MB, least recently used first out): the only place the server writes. See docs/serve.md."""

EPILOG = """examples:
  pianogan serve --runs runs                 # then open http://127.0.0.1:7860/
  pianogan serve --runs runs/tiny --port 8000 --max-takes 2
  pianogan serve --host 0.0.0.0 --runs runs  # reachable from other machines (warns)"""


def register(subparsers) -> None:
    from ..serve.config import ServeConfig, default_cache_dir

    d = ServeConfig(cache_dir=Path("."))
    p = subparsers.add_parser("serve", help=HELP, description=DESCRIPTION, epilog=EPILOG,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--host", default=d.host, help=f"address to bind (default {d.host})")
    p.add_argument("--port", type=int, default=d.port, help=f"port (default {d.port})")
    p.add_argument("--runs", default=str(d.runs), metavar="DIR",
                   help="folder of run directories, or one run directory (default ./runs)")
    p.add_argument("--cache", metavar="DIR",
                   help=f"take cache, the only place written (default {default_cache_dir()})")
    p.add_argument("--cache-mb", type=float, default=d.cache_mb, metavar="MB",
                   help=f"size bound of the take cache (default {d.cache_mb:g})")
    p.add_argument("--max-seconds", type=float, default=d.max_seconds, metavar="T",
                   help=f"longest take (default {d.max_seconds:g})")
    p.add_argument("--max-takes", type=int, default=d.max_takes, metavar="N",
                   help=f"takes per request (default {d.max_takes})")
    p.add_argument("--workers", type=int, default=d.workers, metavar="N",
                   help=f"generation processes (default {d.workers})")
    p.add_argument("--queue", type=int, default=d.queue, metavar="N",
                   help=f"jobs that may wait for a worker before 429 (default {d.queue})")
    p.add_argument("--job-timeout", type=float, default=d.job_timeout_s, metavar="S",
                   help=f"seconds a job may run (default {d.job_timeout_s:g})")
    p.add_argument("--n-iter", type=int, default=d.n_iter, metavar="I",
                   help=f"Griffin-Lim iterations (default {d.n_iter})")
    p.add_argument("--threads", type=int, metavar="N",
                   help="torch threads per worker (default: CPU cores / workers)")
    p.add_argument("--device", choices=["auto", "cpu", "cuda"], default=d.device,
                   help="where workers generate (default auto)")
    p.set_defaults(func=run)


def run(args) -> int:
    from ..serve.config import ServeConfig, default_cache_dir, is_loopback
    from ..serve.registry import Registry

    cfg = ServeConfig(host=args.host, port=args.port, runs=Path(args.runs),
                      cache_dir=Path(args.cache) if args.cache else default_cache_dir(),
                      cache_mb=args.cache_mb, max_seconds=args.max_seconds,
                      max_takes=args.max_takes, workers=args.workers, queue=args.queue,
                      job_timeout_s=args.job_timeout, n_iter=args.n_iter, threads=args.threads,
                      device=args.device)
    registry = Registry(cfg.runs)
    entries = registry.refresh()
    for line in registry.skipped:
        print(f"skipped: {line}", file=sys.stderr)
    if not entries:
        raise PianoGANError(f"no models: no run directory under {cfg.runs} "
                            f"(a run holds generator.safetensors or checkpoints/step-N.pt)")
    print(f"{len(entries)} model(s): {', '.join(e.name for e in entries)}"
          + (f"; {len(registry.skipped)} skipped" if registry.skipped else ""), file=sys.stderr)
    if not is_loopback(cfg.host):
        print(f"warning: --host {cfg.host} is not a loopback address: anyone who can reach this "
              f"machine can use the server and its CPU/GPU (there is no login)", file=sys.stderr)
    import uvicorn

    from ..serve.app import create_app

    app = create_app(cfg, registry)
    host = f"[{cfg.host}]" if ":" in cfg.host else cfg.host
    print(f"PianoGAN studio on http://{host}:{cfg.port}/  (cache {cfg.cache_dir}, "
          f"Ctrl-C stops)", file=sys.stderr)
    uvicorn.run(app, host=cfg.host, port=cfg.port, log_level="warning")
    return 0
