"""``pianogan prepare``: a SOURCE -> a dataset directory, read top-down in :func:`prepare`.

1. **list** the source's items (:mod:`.sources`) and select them (split, ``--max-hours``); the
   items whose record from an earlier run matches their input are reused (resume);
2. **prepare each item** (:mod:`.per_item`: decode or render -> clips -> images -> its shard and
   record ``items/NAME.json``, each written atomically), in this process or, with ``workers``
   > 1, in a ``concurrent.futures.ProcessPoolExecutor``, longest items first. The records are the
   done-list: an interrupted run loses at most the items in flight, and nothing is duplicated;
3. **assemble** the dataset in this process: the training split's statistics merged exactly (in
   float64), ``stats.json``, ``manifest.csv`` (one row per clip, in source order),
   ``preset.json``, ``dataset.json`` (with the SoundFont's sha256 for rendered sources),
   ``skipped.tsv``, ``decoder_messages.tsv`` and ``summary.json``.

Memory is bounded by the longest single file, not by the size of the data set.
"""

from __future__ import annotations

import json
import signal
import sys
import time
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

from ..atomic import atomic_path, remove_stale_temps, write_json
from ..config import Preset
from ..errors import PianoGANError
from ..threads import torch_threads
from .dataset import write_manifest
from .items import SPLITS, Item, Skip
from .per_item import ItemPreparer, item_name
from .render import SoundFont
from .sources import list_items, parse_source, select

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


# ---------------------------------------------------------------- per-item work, in parallel

_PREPARER: ItemPreparer | None = None  # one per worker process, set by _init_worker


def _init_worker(args: tuple) -> None:
    global _PREPARER
    import torch

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the main process handles Ctrl-C
    torch.set_num_threads(1)  # this process's own setting: it only ever runs prepare's work
    _PREPARER = ItemPreparer(*args)


def _prepare_item(item: Item) -> dict:
    return _PREPARER.process(item)


def _prepared(todo: list[Item], workers: int, args: tuple) -> Iterator[tuple[Item, dict]]:
    """(item, record) of each item of ``todo`` as it finishes. One worker: in this process;
    more: a ``ProcessPoolExecutor`` of spawned processes, fed in ``todo``'s order."""
    if workers == 1 or len(todo) <= 1:
        preparer = ItemPreparer(*args)
        with torch_threads(1):
            for item in todo:
                yield item, preparer.process(item)
        return
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor, as_completed

    pool = ProcessPoolExecutor(min(workers, len(todo)), mp_context=mp.get_context("spawn"),
                               initializer=_init_worker, initargs=(args,))
    try:
        futures = {pool.submit(_prepare_item, item): item for item in todo}
        for future in as_completed(futures):
            yield futures[future], future.result()
    except BaseException:  # Ctrl-C, an error, or the caller stopped: end the files in flight now
        _terminate(pool)
        raise
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _terminate(pool) -> None:
    """Stop a ProcessPoolExecutor's workers at once (their files are redone by the next run)."""
    if hasattr(pool, "terminate_workers"):  # Python >= 3.14
        pool.terminate_workers()
        return
    for process in list((getattr(pool, "_processes", None) or {}).values()):
        process.terminate()


# ---------------------------------------------------------------- the run (main process)

def prepare(cfg: PrepareConfig, progress: bool = True,
            on_result: Callable[[dict], None] | None = None) -> dict:
    """Run (or resume) a preparation; returns the summary (also written to ``out/summary.json``).

    ``on_result`` is called in the main process after each finished item (tests use it to
    simulate an interruption). Raises :class:`PianoGANError` if nothing could be prepared.
    """
    t0 = time.perf_counter()
    _check(cfg)
    spec = parse_source(cfg.source)
    soundfont = None
    if spec.kind in ("midi", "builtin"):
        from .render import PianoRenderer, find_soundfont

        soundfont = find_soundfont(cfg.soundfont)
        PianoRenderer(soundfont.path)  # a SoundFont that does not load is one error, not a skip per file
    out = Path(cfg.out)
    if out.exists() and not out.is_dir():
        raise PianoGANError(f"--out {out} is a file, not a directory")
    with _lock(out):
        _open_out(out, _settings(cfg, str(spec), soundfont))
        items, skips = list_items(spec)
        items = select(items, list(cfg.split) if cfg.split else None, cfg.max_hours)
        records, todo = _earlier_records(out, items)
        reused = len(records)
        args = (cfg.preset, out, cfg.hop_samples, cfg.silence_db, str(soundfont.path) if soundfont else None)
        bar = _progress(sum(i.seconds for i in todo), progress)
        try:
            with closing(_prepared(todo, cfg.workers, args)) as finished:
                for item, record in finished:
                    records[item.key] = record
                    n_skipped = sum(r["status"] != "done" for r in records.values())
                    bar.set_postfix_str(f"{len(records) - reused}/{len(todo)} files, {n_skipped} skipped",
                                        refresh=False)
                    bar.update(int(item.seconds))
                    if on_result is not None:
                        on_result(record)
        except KeyboardInterrupt:
            bar.close()
            print(f"interrupted: {len(records)} of {len(items)} files are done and kept; run the same "
                  f"command again to resume", file=sys.stderr)
            raise
        finally:
            bar.close()
        return _assemble(cfg, spec, out, items, records, skips, soundfont, reused, time.perf_counter() - t0)


def _check(cfg: PrepareConfig) -> None:
    if not 0 <= cfg.overlap < cfg.preset.clip_seconds:
        raise PianoGANError(f"--overlap must be >= 0 and < the clip length ({cfg.preset.clip_seconds:g} s)")
    if cfg.workers < 1:
        raise PianoGANError("--workers must be >= 1")
    if cfg.max_hours is not None and cfg.max_hours <= 0:
        raise PianoGANError("--max-hours must be > 0")


def _settings(cfg: PrepareConfig, source: str, soundfont: SoundFont | None) -> dict:
    """What a resumed run must share with the first one (prepare.json)."""
    return {"format_version": FORMAT_VERSION, "source": source, "preset": cfg.preset.to_dict(),
            "overlap_seconds": cfg.overlap, "silence_db": cfg.silence_db,
            "soundfont_sha256": soundfont.sha256 if soundfont else None}


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
    for sub in ("", "shards", "items", "midi"):
        (out / sub).mkdir(parents=True, exist_ok=True)
        remove_stale_temps(out / sub)
        for tmp in (out / sub).glob("*.tmp*"):  # left by versions before atomic.py
            tmp.unlink(missing_ok=True)
    write_json(path, settings)


def _earlier_records(out: Path, items: list[Item]) -> tuple[dict[str, dict], list[Item]]:
    """The records of an earlier run that match their input (by key), and the items to do, longest
    first (better load balance)."""
    records, todo = {}, []
    for item in items:
        r = _load_record(out, item)
        if r is None:
            todo.append(item)
        else:
            records[item.key] = r
    return records, sorted(todo, key=lambda i: (-i.seconds, i.key))


def _load_record(out: Path, item: Item) -> dict | None:
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


def _assemble(cfg: PrepareConfig, spec, out: Path, items: list[Item], results: dict[str, dict],
              skips: list[Skip], soundfont: SoundFont | None, reused: int, elapsed: float) -> dict:
    """Merge per-item records into the dataset's manifest, statistics and summary."""
    from .. import __version__
    from .features import RunningStats

    preset = cfg.preset
    rows, skipped, messages = [], list(skips), []
    per_split = {s: RunningStats() for s in SPLITS}
    clips = {s: 0 for s in SPLITS}
    silent, audio_seconds, n_done = 0, 0.0, 0
    for item in items:
        r = results[item.key]
        if r.get("decoder_messages"):
            messages.append(Skip(item.source, r["decoder_messages"]))
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
    _write_tsv(out / "skipped.tsv", ("source", "reason"), skipped)
    _write_tsv(out / "decoder_messages.tsv", ("source", "message"), messages)
    if not rows:
        where = f" (see {out / 'skipped.tsv'})" if skipped else ""
        raise PianoGANError(f"nothing could be prepared from {spec}: {len(items)} file(s) selected, "
                            f"{len(skipped)} skipped{where}")
    stats_split = "train" if per_split["train"].count else "all"
    total = RunningStats()
    for s in (["train"] if stats_split == "train" else SPLITS):
        total.merge(per_split[s])
    stats = total.to_stats()
    sf_info = soundfont.describe() if soundfont else None
    write_json(out / "preset.json", preset.to_dict())
    stats.save(out / "stats.json")
    write_manifest(out / "manifest.csv", rows)
    write_json(out / "dataset.json", {
        "format_version": FORMAT_VERSION, "normalized": False, "stats_split": stats_split,
        "source": str(spec), "clips": len(rows), "soundfont": sf_info,
        "created_by": f"pianogan {__version__} prepare"})
    summary = {
        "out": str(out), "source": str(spec), "preset": preset.name,
        "clips": {**clips, "total": len(rows)},
        "files": {"selected": len(items), "prepared": n_done, "reused": reused,
                  "skipped": len(skipped), "decoder_messages": len(messages)},
        "silent_clips": silent,
        "hours": {"audio": audio_seconds / 3600, "clips": len(rows) * preset.clip_seconds / 3600},
        "stats": {**stats.to_dict(), "split": stats_split},
        "seconds": elapsed, "workers": cfg.workers,
        "soundfont": {**sf_info, "path": str(soundfont.path)} if soundfont else None,
        "skipped_file": str(out / "skipped.tsv"),
        "decoder_messages_file": str(out / "decoder_messages.tsv"),
    }
    write_json(out / "summary.json", summary, indent=1)
    return summary


def _write_tsv(path: Path, header: tuple[str, str], rows: list[Skip]) -> None:
    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8") as f:
        f.write("\t".join(header) + "\n")
        for s in rows:
            f.write(f"{s.source}\t{' '.join(s.reason.split())}\n")


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
    if f.get("decoder_messages"):
        lines.append(f"decoder messages from {f['decoder_messages']} file(s): see {s['decoder_messages_file']}")
    if s.get("soundfont"):
        sf = s["soundfont"]
        lines.append(f"SoundFont: {sf['path']} (sha256 {sf['sha256'][:12]}..., {sf['license']})")
    return "\n".join(lines)
