"""Jobs: a bounded queue in front of a fixed pool of worker processes, with a timeout per job.

A request becomes a :class:`Job` of one or more takes. Takes already in the cache are done at
once; the rest wait in the queue (at most ``queue`` jobs: one more raises :class:`QueueFull`,
which the API answers with 429) for one of ``workers`` slots. Each slot is a thread of the
server that owns one worker process (:mod:`pianogan.serve.worker`) and blocks on its pipe, so
the event loop never waits for generation. A job running past ``job_timeout_s`` is failed and
its worker killed and replaced; so is a job whose worker dies.

Progress: takes done, plus an *estimate* within the take being rendered from the seconds of
wall time per second of audio of the model's earlier takes (Griffin-Lim over a whole piece
reports no progress of its own); the status says ``"estimated": true`` for such figures.
"""

from __future__ import annotations

import multiprocessing
import queue
import threading
import time
import uuid
from collections import OrderedDict
from dataclasses import dataclass, field

from .cache import TakeCache
from .config import ServeConfig
from .registry import ModelEntry

RATE_WEIGHT = 0.3  # weight of the newest take in the running wall-per-audio-second average


class QueueFull(Exception):
    """No room in the job queue."""


class WorkerError(Exception):
    """A worker process could not be started."""


@dataclass
class Job:
    id: str
    entry: ModelEntry
    request: dict  # what the client asked (public)
    settings: dict  # GenerateSettings.to_dict()
    takes: list[dict]  # [{"id": take id, "seed": int}] in take order
    results: dict = field(default_factory=dict)  # take id -> take.json dict
    state: str = "queued"  # queued, running, done, failed
    error: str | None = None
    created: float = field(default_factory=time.time)
    started: float | None = None
    finished: float | None = None
    take_started: float | None = None


class Slot(threading.Thread):
    """One worker process and the thread that feeds it jobs."""

    def __init__(self, manager: "JobManager", index: int):
        super().__init__(name=f"pianogan-serve-slot-{index}", daemon=True)
        self.m = manager
        self.proc = None
        self.conn = None
        self.ready = threading.Event()

    # -- the worker process
    def spawn(self) -> None:
        from .worker import worker_main

        cfg = self.m.cfg
        ctx = multiprocessing.get_context("spawn")  # never fork a process holding threads
        parent, child = ctx.Pipe()
        proc = ctx.Process(target=worker_main, name="pianogan-serve-worker", daemon=True,
                           args=(child, cfg.worker_threads, cfg.device,
                                 str(self.m.cache.root / ".matplotlib")))
        proc.start()
        child.close()
        if not parent.poll(cfg.worker_start_timeout_s):
            proc.kill()
            proc.join(5)
            raise WorkerError(f"worker not ready within {cfg.worker_start_timeout_s:g} s")
        try:
            parent.recv()
        except EOFError:
            proc.join(5)
            raise WorkerError(f"worker exited at start (exit code {proc.exitcode})") from None
        self.proc, self.conn = proc, parent
        self.ready.set()

    def kill(self) -> None:
        self.ready.clear()
        if self.proc is not None:
            pid = self.proc.pid
            self.proc.kill()
            self.proc.join(10)
            self.conn.close()
            self.m.cache.clear_stages(pid)
        self.proc = self.conn = None

    def stop(self) -> None:
        if self.proc is not None and self.proc.is_alive():
            try:
                self.conn.send(None)
                self.proc.join(5)
            except OSError:
                pass
        self.kill()

    # -- the loop
    def run(self) -> None:
        while True:
            job = self.m.queue.get()
            if job is None:
                self.stop()
                return
            self.m.gate.wait()
            if self.proc is None or not self.proc.is_alive():
                try:
                    self.kill()
                    self.spawn()
                except Exception as e:
                    self.m.fail(job, f"no worker: {e}")
                    continue
            self.work(job)

    def work(self, job: Job) -> None:
        m = self.m
        missing = [t for t in job.takes if t["id"] not in job.results]
        payload = {"id": job.id, "model": job.entry.name, "path": str(job.entry.path),
                   "identity": job.entry.identity, "settings": job.settings, "takes": missing,
                   "cache_root": str(m.cache.root), "midi": m.cfg.midi_transcriber}
        m.running(job)
        deadline = time.monotonic() + m.cfg.job_timeout_s
        try:
            self.conn.send(payload)
        except OSError as e:
            self.kill()
            m.fail(job, f"worker unreachable ({e})")
            return
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                self.kill()
                m.fail(job, f"timed out after {m.cfg.job_timeout_s:g} s (the limit per job)")
                return
            if not self.conn.poll(min(remaining, 0.5)):
                if not self.proc.is_alive():
                    code = self.proc.exitcode
                    self.kill()
                    m.fail(job, f"worker died (exit code {code})")
                    return
                continue
            try:
                msg = self.conn.recv()
            except (EOFError, OSError):
                code = self.proc.exitcode
                self.kill()
                m.fail(job, f"worker died (exit code {code})")
                return
            if msg[0] == "take":
                m.take_done(job, msg[2], msg[3])
            elif msg[0] == "done":
                m.finish(job)
                return
            elif msg[0] == "error":
                m.fail(job, msg[2])
                return


class JobManager:
    """Submit jobs, read their status; owns the slots and the take cache's eviction."""

    def __init__(self, cfg: ServeConfig, cache: TakeCache):
        self.cfg, self.cache = cfg, cache
        self.queue: queue.Queue = queue.Queue()
        self.gate = threading.Event()  # closed: slots hold their next job (tests use this)
        self.gate.set()
        self._lock = threading.Lock()
        self._jobs: OrderedDict[str, Job] = OrderedDict()
        self._rate: dict[str, float] = {}  # model name -> wall seconds per audio second
        self.slots = [Slot(self, i) for i in range(cfg.workers)]

    def start(self) -> None:
        """Prepare the cache and start every worker (blocks until they are ready)."""
        self.cache.setup()
        for slot in self.slots:
            slot.spawn()
            slot.start()

    def close(self) -> None:
        self.gate.set()
        for _ in self.slots:
            self.queue.put(None)
        for slot in self.slots:
            slot.join(15)
            proc = slot.proc
            if slot.is_alive() and proc is not None:  # still on a job: end its worker; the slot
                proc.kill()  # thread then fails the job and cleans up itself
                slot.join(15)

    def worker_pids(self) -> list[int]:
        return [s.proc.pid for s in self.slots if s.proc is not None and s.proc.is_alive()]

    # -- submitting
    def submit(self, entry: ModelEntry, request: dict, settings: dict, takes: list[dict]) -> Job:
        """A new job; takes in the cache are done at once. QueueFull when the queue is full."""
        job = Job(id=uuid.uuid4().hex, entry=entry, request=request, settings=settings, takes=takes)
        for t in takes:
            meta = self.cache.meta(t["id"])
            if meta is not None:
                self.cache.touch(t["id"])
                job.results[t["id"]] = {**meta, "cached": True}
        with self._lock:
            if len(job.results) == len(takes):
                job.state, job.started, job.finished = "done", job.created, time.time()
            else:
                waiting = sum(1 for j in self._jobs.values() if j.state == "queued")
                if waiting >= self.cfg.queue:
                    raise QueueFull(f"the queue is full ({self.cfg.queue} jobs waiting); "
                                    f"try again shortly")
                self.queue.put(job)
            self._jobs[job.id] = job
            self._trim()
        return job

    def _trim(self) -> None:
        finished = [k for k, j in self._jobs.items() if j.state in ("done", "failed")]
        for k in finished[:max(0, len(finished) - self.cfg.keep_jobs)]:
            del self._jobs[k]

    # -- called by slots
    def running(self, job: Job) -> None:
        with self._lock:
            job.state, job.started = "running", time.time()
            job.take_started = job.started

    def take_done(self, job: Job, tid: str, meta: dict) -> None:
        with self._lock:
            job.results[tid] = meta
            job.take_started = time.time()
            seconds = float(meta.get("duration_s") or 0)
            if seconds > 0 and meta.get("render_s"):
                r = float(meta["render_s"]) / seconds
                old = self._rate.get(job.entry.name)
                self._rate[job.entry.name] = r if old is None else (1 - RATE_WEIGHT) * old + RATE_WEIGHT * r
            keep = {t["id"] for j in self._jobs.values() if j.state in ("queued", "running")
                    for t in j.takes}
        self.cache.evict(keep)

    def finish(self, job: Job) -> None:
        with self._lock:
            job.state, job.finished = "done", time.time()

    def fail(self, job: Job, message: str) -> None:
        with self._lock:
            job.state, job.error, job.finished = "failed", message, time.time()

    # -- reading
    def status(self, job_id: str) -> dict | None:
        with self._lock:
            job = self._jobs.get(job_id)
            if job is None:
                return None
            return self._public(job)

    def _public(self, job: Job) -> dict:
        now = time.time()
        n, done = len(job.takes), len(job.results)
        progress, eta, estimated = done / n, None, False
        rate = self._rate.get(job.entry.name)
        if job.state == "running" and rate is not None:
            per_take = rate * float(job.settings.get("seconds") or job.entry.clip_seconds)
            into = min(0.95, (now - (job.take_started or now)) / max(per_take, 1e-3))
            progress = (done + into) / n
            eta = max(0.0, per_take * (n - done) - (now - (job.take_started or now)))
            estimated = True
        position = None
        if job.state == "queued":
            position = sum(1 for j in self._jobs.values() if j.state == "queued" and j.created < job.created)
        takes = [self._take_public(job.results[t["id"]]) for t in job.takes if t["id"] in job.results]
        return {"id": job.id, "state": job.state, "error": job.error, "model": job.entry.name,
                "request": job.request, "takes_total": n, "takes_done": done,
                "progress": round(progress, 4), "estimated": estimated,
                "eta_s": None if eta is None else round(eta, 1), "queue_position": position,
                "elapsed_s": round((job.finished or now) - job.created, 3), "takes": takes}

    @staticmethod
    def _take_public(meta: dict) -> dict:
        base = f"/api/takes/{meta['id']}"
        return {**{k: meta[k] for k in ("id", "model", "seed", "seconds", "duration_s",
                                         "sample_rate", "step", "created") if k in meta},
                "cached": bool(meta.get("cached")), "render_s": meta.get("render_s"),
                "truncation": meta.get("settings", {}).get("truncation"),
                "key": meta.get("settings", {}).get("key"),
                "drift": meta.get("settings", {}).get("drift"),
                "tempo": meta.get("settings", {}).get("tempo"),
                "rubato": meta.get("settings", {}).get("rubato"),
                "urls": {"audio": f"{base}/audio.wav", "spectrogram": f"{base}/spectrogram.png",
                         "record": f"{base}/generated.json",
                         "midi": f"{base}/take.mid" if meta.get("midi") else None}}

    def counts(self) -> dict:
        with self._lock:
            states = [j.state for j in self._jobs.values()]
        return {s: states.count(s) for s in ("queued", "running", "done", "failed")}
