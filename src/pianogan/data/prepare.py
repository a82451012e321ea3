"""The preparation pipeline behind ``pianogan prepare``: source files -> a dataset directory.

Per file (in parallel with ``workers`` processes): decode or render, resample (soxr), mono, cut
fixed clips (optional overlap, last partial clip dropped), drop near-silent clips (counted),
batched STFT on torch -> un-normalised log-magnitude images (see :mod:`.features` for why) and the
file's running statistics. Each file's result is written atomically: first its shard
``shards/NAME.npy`` (float16, (clips, H, W)), then ``items/NAME.json`` (clip offsets, statistics,
input fingerprint). The json is the done-list: a re-run skips every file whose json matches its
input, so an interrupted run loses at most the files in flight, and nothing is duplicated.

At the end the main process merges the per-file statistics of the training split (exact, in
float64) and writes ``stats.json``, ``manifest.csv`` (one row per clip, in source order),
``preset.json``, ``dataset.json``, ``skipped.tsv`` and ``summary.json``. Memory is bounded by
the longest single file, not by the size of the data set.
"""

from __future__ import annotations

import json
import os
import re
import signal
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import numpy as np

from ..config import Preset
from ..errors import PianoGANError, describe
from .dataset import MANIFEST_COLUMNS, save_array, write_manifest
from .sources import SPLITS, Item, Skip, list_items, parse_source, select

SETTINGS_FILE = "prepare.json"
FORMAT_VERSION = 2  # dataset.json format: shards hold un-normalised log-magnitude images


@dataclass(frozen=True)
class PrepareConfig:
    source: str  # "maestro:PATH", "audio:PATH", "midi:PATH" or "builtin"
    preset: Preset
    out: Path
    workers: int = 1
    split: tuple[str, ...] | None = None
    max_hours: float | None = None
    soundfont: str | None = None
    overlap: float = 0.0  # seconds shared by consecutive clips
    silence_db: float = -60.0  # clips with a lower RMS level (dBFS) are dropped

    @property
    def hop_samples(self) -> int:
        return int(round((self.preset.clip_seconds - self.overlap) * self.preset.sample_rate))


def item_name(item: Item) -> str:
    """File-system-safe, stable name of an item's outputs: readable slug + hash of its key."""
    import hashlib

    slug = re.sub(r"[^A-Za-z0-9._-]+", "_", item.source.rsplit(".", 1)[0])[-48:].strip("._-") or "item"
    return f"{slug}-{hashlib.sha1(item.key.encode()).hexdigest()[:10]}"


def _write_json(path: Path, data: dict) -> None:
    from ..atomic import write_text

    write_text(path, json.dumps(data, indent=1, ensure_ascii=False))


# ---------------------------------------------------------------- per-file work (in workers)

class Worker:
    """Prepares one item at a time; holds what is costly to set up (the SoundFont renderer)."""

    def __init__(self, preset: Preset, out: Path, hop: int, silence_db: float, soundfont: str | None):
        self.preset, self.out, self.hop = preset, Path(out), hop
        self.silence_db, self.soundfont = silence_db, soundfont
        self._renderer = None

    def renderer(self):
        if self._renderer is None:
            from .render import PianoRenderer

            self._renderer = PianoRenderer(self.soundfont)
        return self._renderer

    def blocks(self, item: Item) -> Iterator[np.ndarray]:
        """Mono float32 audio blocks of an item at the preset's sample rate."""
        from .stream import audio_blocks, resample_blocks

        if item.kind == "audio":
            return audio_blocks(item.path, self.preset.sample_rate)
        from .render import load_midi, notes_from_midi

        if item.kind == "midi":
            pm = load_midi(item.path)
        else:
            import warnings

            from .builtin import CorpusPiece, perform_piece

            piece = CorpusPiece(item.path, item.composer, item.title, item.extra.get("kind", "keyboard"),
                                item.seconds)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                pm = perform_piece(piece)
            from ..atomic import atomic_path

            with atomic_path(self.out / "midi" / f"{item_name(item)}.mid") as tmp:
                pm.write(str(tmp))  # the performance, for listening with any synthesiser
        notes = notes_from_midi(pm)
        if not notes:
            raise PianoGANError("no notes to play")
        renderer = self.renderer()
        return resample_blocks(renderer.render_blocks(notes), renderer.sample_rate, self.preset.sample_rate)

    def process(self, item: Item) -> dict:
        """Prepare one item; writes its shard and json, returns the json's content."""
        from .features import RunningStats, clip_batch_size, clips_to_images, rms_db
        from .stream import Counted, cut_clips

        name = item_name(item)
        result = {"key": item.key, "name": name, "fingerprint": item.fingerprint, "status": "done",
                  "reason": "", "source_seconds": 0.0, "offsets": [], "silent": 0,
                  "stats": RunningStats().to_dict()}
        preset = self.preset
        try:
            stats = RunningStats()
            images, batch, offsets, batch_offsets, silent = [], [], [], [], 0
            size = clip_batch_size(preset)
            counted = Counted(self.blocks(item))

            def flush():
                if batch:
                    imgs, st = clips_to_images(np.stack(batch), preset)
                    images.append(imgs)
                    stats.merge(st)
                    offsets.extend(batch_offsets)
                    batch.clear()
                    batch_offsets.clear()

            for start, clip in cut_clips(counted, preset.n_samples, self.hop):
                if rms_db(clip) < self.silence_db:
                    silent += 1
                    continue
                batch.append(clip)
                batch_offsets.append(start / preset.sample_rate)
                if len(batch) >= size:
                    flush()
            flush()
            seconds = counted.samples / preset.sample_rate
            result.update(source_seconds=seconds, silent=silent)
            if not offsets:
                if counted.samples < preset.n_samples:
                    reason = f"shorter than one clip ({seconds:.2f} s < {preset.clip_seconds:g} s)"
                else:
                    reason = f"only near-silent audio (every clip below {self.silence_db:g} dBFS)"
                result.update(status="skipped", reason=reason)
            else:
                save_array(self.out / "shards" / f"{name}.npy", np.concatenate(images))
                result.update(offsets=offsets, stats=stats.to_dict())
        except PianoGANError as e:
            result.update(status="skipped", reason=str(e))
        except Exception as e:  # a strange file must not end a long run: skip it, say why
            result.update(status="skipped", reason=describe(e))
        _write_json(self.out / "items" / f"{name}.json", result)
        return result


_WORKER: Worker | None = None  # set in each pool process by _init_worker


def _init_worker(args: tuple) -> None:
    global _WORKER
    import torch

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the main process handles Ctrl-C
    torch.set_num_threads(1)
    _WORKER = Worker(*args)


def _work(item: Item) -> dict:
    return _WORKER.process(item)


def _run_parallel(todo: list[Item], n_workers: int, args: tuple, done: Callable[[Item, dict], None],
                  worker: Worker) -> None:
    """Prepare ``todo`` with ``n_workers`` processes: the main process and a spawn pool of
    n_workers - 1. The main process starts on the first files at once, while the pool processes
    start (importing torch takes seconds); each pool worker has one file in flight and is fed the
    next one from its completion callback, so no worker waits for the main process."""
    import collections
    import multiprocessing as mp
    import queue
    import threading

    pending = collections.deque(todo)
    lock = threading.Lock()
    finished: queue.SimpleQueue = queue.SimpleQueue()  # (item, result dict or exception)
    pool = mp.get_context("spawn").Pool(n_workers - 1, initializer=_init_worker, initargs=(args,))

    def take() -> Item | None:
        with lock:
            return pending.popleft() if pending else None

    def feed() -> None:  # runs in the main thread and in the pool's result thread
        item = take()
        if item is not None:
            pool.apply_async(_work, (item,),
                             callback=lambda r, it=item: (finished.put((it, r)), feed()),
                             error_callback=lambda e, it=item: (finished.put((it, e)), feed()))

    def report(item: Item, r) -> None:
        if isinstance(r, BaseException):
            raise r
        done(item, r)

    try:
        for _ in range(n_workers - 1):
            feed()
        completed = 0
        while completed < len(todo):
            while True:
                try:
                    item, r = finished.get_nowait()
                except queue.Empty:
                    break
                report(item, r)
                completed += 1
            item = take()
            if item is not None:
                done(item, worker.process(item))
                completed += 1
            elif completed < len(todo):
                try:
                    report(*finished.get(timeout=0.2))
                    completed += 1
                except queue.Empty:
                    pass
    finally:
        pool.terminate()
        pool.join()


# ---------------------------------------------------------------- the run (main process)

def _settings(cfg: PrepareConfig, source: str, soundfont: Path | None) -> dict:
    return {"format_version": FORMAT_VERSION, "source": source, "preset": cfg.preset.to_dict(),
            "overlap_seconds": cfg.overlap, "silence_db": cfg.silence_db,
            "soundfont": str(soundfont) if soundfont else None}


def _lock(out: Path):
    """An exclusive lock on ``out`` for this run (released when the process ends, even if killed)."""
    out.mkdir(parents=True, exist_ok=True)
    handle = open(out / ".lock", "a")
    try:
        import fcntl
    except ImportError:  # not POSIX: no lock
        return handle
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        handle.close()
        raise PianoGANError(f"another `pianogan prepare` is writing to {out}") from None
    return handle


def _open_out(out: Path, settings: dict) -> None:
    """Create ``out`` or check that it holds a run of the same settings; clean half-written files."""
    path = out / SETTINGS_FILE
    if path.is_file():
        try:
            old = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError):
            old = {}
        diff = [k for k in settings if old.get(k) != settings[k]]
        if diff:
            raise PianoGANError(f"{out} was prepared with other settings ({', '.join(diff)} differ); "
                                f"use another --out or delete it")
    elif out.exists() and (not out.is_dir() or any(p.name != ".lock" for p in out.iterdir())):
        raise PianoGANError(f"{out} exists and was not made by `pianogan prepare`: "
                            f"give a new or empty --out directory")
    from ..atomic import remove_stale_temps

    for sub in ("shards", "items", "midi"):
        (out / sub).mkdir(parents=True, exist_ok=True)
        remove_stale_temps(out / sub)  # what a killed run was writing
    remove_stale_temps(out)
    _write_json(path, settings)


def _load_result(out: Path, item: Item) -> dict | None:
    """The finished result of an item from an earlier run, if it matches the input."""
    name = item_name(item)
    try:
        r = json.loads((out / "items" / f"{name}.json").read_text())
    except (OSError, json.JSONDecodeError):
        return None
    if r.get("key") != item.key or r.get("fingerprint") != item.fingerprint:
        return None
    if r.get("status") == "done" and not (out / "shards" / f"{name}.npy").is_file():
        return None
    return r


def _progress(total_seconds: float, enabled: bool):
    from tqdm import tqdm

    return tqdm(total=max(1, int(total_seconds)), unit="s", unit_scale=True, desc="prepare",
                file=sys.stderr, disable=None if enabled else True, dynamic_ncols=True,
                bar_format="{l_bar}{bar}| {n_fmt}/{total_fmt} s of audio [{elapsed}<{remaining}{postfix}]")


def prepare(cfg: PrepareConfig, progress: bool = True,
            on_result: Callable[[dict], None] | None = None) -> dict:
    """Run (or resume) a preparation; returns the summary (also written to ``out/summary.json``).

    ``on_result`` is called in the main process after each finished file (tests use it to
    simulate an interruption). Raises :class:`PianoGANError` if nothing could be prepared.
    """
    t0 = time.perf_counter()
    if not 0 <= cfg.overlap < cfg.preset.clip_seconds:
        raise PianoGANError(f"--overlap must be >= 0 and < the clip length ({cfg.preset.clip_seconds:g} s)")
    if cfg.workers < 1:
        raise PianoGANError("--workers must be >= 1")
    if cfg.max_hours is not None and cfg.max_hours <= 0:
        raise PianoGANError("--max-hours must be > 0")
    spec = parse_source(cfg.source)
    soundfont = None
    if spec.kind in ("midi", "builtin"):
        from .render import find_soundfont

        soundfont = find_soundfont(cfg.soundfont)
    out = Path(cfg.out)
    if out.exists() and not out.is_dir():
        raise PianoGANError(f"--out {out} is a file, not a directory")
    with _lock(out):
        _open_out(out, _settings(cfg, str(spec), soundfont))
        return _run(cfg, spec, out, soundfont, progress, on_result, t0)


def _run(cfg: PrepareConfig, spec, out: Path, soundfont: Path | None, progress: bool,
         on_result: Callable[[dict], None] | None, t0: float) -> dict:
    import torch

    items, skips = list_items(spec)
    items = select(items, list(cfg.split) if cfg.split else None, cfg.max_hours)
    results: dict[str, dict] = {}
    todo = []
    for item in items:
        r = _load_result(out, item)
        if r is None:
            todo.append(item)
        else:
            results[item.key] = r
    reused = len(results)
    todo.sort(key=lambda i: (-i.seconds, i.key))  # longest first: better load balance

    bar = _progress(sum(i.seconds for i in todo), progress)
    n_skipped = 0

    def done(item: Item, r: dict) -> None:
        nonlocal n_skipped
        results[item.key] = r
        n_skipped += r["status"] != "done"
        bar.set_postfix_str(f"{len(results) - reused}/{len(todo)} files, {n_skipped} skipped", refresh=False)
        bar.update(int(item.seconds))
        if on_result is not None:
            on_result(r)

    args = (cfg.preset, out, cfg.hop_samples, cfg.silence_db, str(soundfont) if soundfont else None)
    worker = Worker(*args)  # the main process works too
    if soundfont and todo:
        worker.renderer()  # a SoundFont that does not load is one error, not a skip per file
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        if cfg.workers == 1 or len(todo) <= 1:
            for item in todo:
                done(item, worker.process(item))
        else:
            _run_parallel(todo, min(cfg.workers, len(todo)), args, done, worker)
    except KeyboardInterrupt:
        bar.close()
        print(f"interrupted: {len(results)} of {len(items)} files are done and kept; run the same "
              f"command again to resume", file=sys.stderr)
        raise
    finally:
        torch.set_num_threads(threads)
        bar.close()
    return _assemble(cfg, spec, out, items, results, skips, soundfont, reused,
                     time.perf_counter() - t0)


def _assemble(cfg: PrepareConfig, spec, out: Path, items: list[Item], results: dict[str, dict],
              skips: list[Skip], soundfont: Path | None, reused: int, elapsed: float) -> dict:
    """Merge per-file results into the dataset's manifest, statistics and summary."""
    from .. import __version__
    from .features import RunningStats

    preset = cfg.preset
    rows, skipped = [], list(skips)
    per_split = {s: RunningStats() for s in SPLITS}
    clips = {s: 0 for s in SPLITS}
    silent, audio_seconds, n_done = 0, 0.0, 0
    for item in items:
        r = results[item.key]
        if r["status"] != "done":
            skipped.append(Skip(item.source, r["reason"]))
            continue
        n_done += 1
        silent += int(r["silent"])
        audio_seconds += float(r["source_seconds"])
        per_split[item.split].merge(RunningStats.from_dict(r["stats"]))
        clips[item.split] += len(r["offsets"])
        for j, offset in enumerate(r["offsets"]):
            rows.append({"shard": r["name"], "row": j, "split": item.split, "composer": item.composer,
                         "title": item.title, "source": item.source, "offset_seconds": round(offset, 6),
                         "duration_seconds": preset.clip_seconds})
    _write_skipped(out / "skipped.tsv", skipped)
    if not rows:
        where = f" (see {out / 'skipped.tsv'})" if skipped else ""
        raise PianoGANError(f"nothing could be prepared from {spec}: {len(items)} file(s) selected, "
                            f"{len(skipped)} skipped{where}")
    stats_split = "train" if per_split["train"].count else "all"
    total = RunningStats()
    for s in (["train"] if stats_split == "train" else SPLITS):
        total.merge(per_split[s])
    stats = total.to_stats()
    from ..atomic import write_text

    write_text(out / "preset.json", json.dumps(preset.to_dict(), indent=2))
    stats.save(out / "stats.json")
    write_manifest(out / "manifest.csv", rows)
    _write_json(out / "dataset.json", {
        "format_version": FORMAT_VERSION, "normalized": False, "stats_split": stats_split,
        "source": str(spec), "clips": len(rows), "created_by": f"pianogan {__version__} prepare"})
    summary = {
        "out": str(out), "source": str(spec), "preset": preset.name,
        "clips": {**clips, "total": len(rows)},
        "files": {"selected": len(items), "prepared": n_done, "reused": reused,
                  "skipped": len(skipped)},
        "silent_clips": silent,
        "hours": {"audio": audio_seconds / 3600, "clips": len(rows) * preset.clip_seconds / 3600},
        "stats": {**stats.to_dict(), "split": stats_split},
        "seconds": elapsed, "workers": cfg.workers,
        "soundfont": str(soundfont) if soundfont else None,
        "skipped_file": str(out / "skipped.tsv"),
    }
    _write_json(out / "summary.json", summary)
    return summary


def _write_skipped(path: Path, skipped: list[Skip]) -> None:
    from ..atomic import write_text

    write_text(path, "source\treason\n" + "".join(f"{s.source}\t{' '.join(s.reason.split())}\n"
                                                  for s in skipped))


def _hours(h: float) -> str:
    return f"{h:.2f} h" if h >= 1 else f"{h * 60:.1f} min"


def format_summary(s: dict) -> str:
    """The summary as a few readable lines."""
    c, f, h, st = s["clips"], s["files"], s["hours"], s["stats"]
    minutes, seconds = divmod(s["seconds"], 60)
    lines = [
        f"prepared {c['total']} clips (train {c['train']}, validation {c['validation']}, test {c['test']}) "
        f"-> {s['out']}",
        f"files: {f['prepared']} prepared ({f['reused']} reused from an earlier run), {f['skipped']} skipped"
        + (f" (listed in {s['skipped_file']})" if f["skipped"] else "")
        + f"; {s['silent_clips']} near-silent clips dropped",
        f"audio: {_hours(h['audio'])} read, {_hours(h['clips'])} in clips; time {int(minutes)}m{seconds:04.1f}s "
        f"with {s['workers']} worker(s)",
        f"statistics of log(|STFT|+eps) over the {st['split']} split: mean {st['mean']:.4f}, "
        f"std {st['std']:.4f} ({st['count']:.3g} values)",
    ]
    if s.get("soundfont"):
        lines.append(f"SoundFont: {s['soundfont']}")
    return "\n".join(lines)
