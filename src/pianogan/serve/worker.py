"""The generation worker: a separate process that makes takes with pianogan's own generator code.

Each take is :func:`pianogan.generate.generate` with ``n=1`` and seed ``seed + i`` (clip i of
a run depends only on its seed, so take i equals clip i of ``pianogan generate --seed S --n N``),
written by :func:`pianogan.generate_files.write_outputs` into a stage directory of the take
cache and renamed into place when whole. Working in its own process means a job past its
timeout is stopped for real (the process is killed and replaced), a crash cannot take the server
down, and the generator's memory is not the server's.

Protocol on the pipe: the worker sends ``("ready", pid)`` once, then for every job dict received
``("take", job_id, take_id, meta)`` per take and finally ``("done", job_id)`` or
``("error", job_id, one_line_message)``. ``None`` or a closed pipe ends it.
"""

from __future__ import annotations

import importlib
import os
import shutil
import time
from collections import OrderedDict
from pathlib import Path

MODELS_KEPT = 2  # generators a worker keeps loaded (least recently used dropped)


def load_transcriber(spec: str | None):
    """The MIDI transcription hook: ``"module:function"`` taking (wav_path, midi_path), or None.

    Off by default: no transcriber ships yet. The transcription issue adds one; `pianogan serve
    --midi` then names it, and every take gets ``take.mid`` and a MIDI download link.
    """
    if not spec:
        return None
    module, _, name = spec.partition(":")
    return getattr(importlib.import_module(module), name)


def write_take(stage: Path, clip, info: dict, meta: dict, transcriber=None) -> dict:
    """Write one take's files into ``stage``; returns its take.json dict."""
    from ..atomic import write_json
    from ..generate_files import save_spectrogram_png, write_outputs

    # plots=False skips the grid (slow for long pieces, and one spectrogram says it all)
    doc = write_outputs([clip], stage, info, plots=False)
    save_spectrogram_png(stage / "clip-0000.png", clip.magnitude, info["preset"],
                         f"{meta['model']} · seed {meta['seed']} · {meta['seconds']:g} s")
    doc["clips"][0]["spectrogram"] = "clip-0000.png"
    write_json(stage / "generated.json", doc, indent=1)
    if transcriber is not None:
        transcriber(stage / "clip-0000.wav", stage / "take.mid")
    meta = {**meta, "midi": (stage / "take.mid").is_file(), "sample_rate": clip.sample_rate,
            "duration_s": round(len(clip.audio) / clip.sample_rate, 6)}
    write_json(stage / "take.json", meta)
    return meta


def run_job(job: dict, send, models: OrderedDict, device: str) -> None:
    """Make every take of ``job``, sending ("take", ...) after each."""
    from ..commands.generate import load
    from ..generate import GenerateSettings, generate
    from .cache import TakeCache

    key = job["identity"]
    if key in models:
        models.move_to_end(key)
    else:
        models[key] = load(job["path"], device)
        while len(models) > MODELS_KEPT:
            models.popitem(last=False)
    G, info = models[key]
    settings = GenerateSettings.from_dict(job["settings"])
    cache = TakeCache(job["cache_root"], 0)
    transcriber = load_transcriber(job.get("midi"))
    for take in job["takes"]:
        t0 = time.perf_counter()
        [clip] = generate(G, info, n=1, seed=take["seed"], settings=settings, device=device,
                          progress=False, style=take.get("style"))
        stage = cache.stage(take["id"])
        try:
            meta = {"id": take["id"], "model": job["model"], "seed": take["seed"],
                    "seconds": float(settings.seconds or info["preset"].clip_seconds),
                    "step": int(info.get("step", 0)), "settings": settings.to_dict(),
                    "created": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
            meta = write_take(stage, clip, info, meta, transcriber)
            meta["render_s"] = round(time.perf_counter() - t0, 3)
        except BaseException:
            shutil.rmtree(stage, ignore_errors=True)
            raise
        cache.commit(stage, take["id"])
        send(("take", job["id"], take["id"], meta))


def warm_up_plots() -> None:
    """Draw one small figure, so matplotlib's font list is built before the first take."""
    import io

    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(1, 1))
    FigureCanvasAgg(fig)
    fig.add_subplot(1, 1, 1).set_xlabel("time (s)")
    fig.savefig(io.BytesIO(), format="png")


def worker_main(conn, threads: int, device: str, mpl_dir: str) -> None:
    """Entry point of a worker process (started with the "spawn" method)."""
    os.environ.setdefault("MPLCONFIGDIR", mpl_dir)  # matplotlib's cache inside the take cache
    import torch

    from ..commands.generate import resolve_device
    from ..errors import PianoGANError, describe
    from ..generate import generate  # noqa: F401  (imported now, so "ready" means ready)
    from ..generate_files import save_spectrogram_png  # noqa: F401

    torch.set_num_threads(threads)  # this process exists for this work: its own setting
    device = resolve_device(device)
    warm_up_plots()
    conn.send(("ready", os.getpid()))
    models: OrderedDict = OrderedDict()
    while True:
        try:
            job = conn.recv()
        except (EOFError, OSError):
            return
        if job is None:
            return
        try:
            run_job(job, conn.send, models, device)
            conn.send(("done", job["id"]))
        except PianoGANError as e:
            conn.send(("error", job["id"], str(e).splitlines()[0] if str(e) else "error"))
        except Exception as e:  # one line, and the worker goes on with the next job
            conn.send(("error", job["id"], describe(e)))
