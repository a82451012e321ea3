"""Settings of `pianogan serve`: every limit and default of the server, in one typed dataclass."""

from __future__ import annotations

import ipaddress
import os
from dataclasses import dataclass, field, replace
from pathlib import Path

from ..errors import PianoGANError

LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1")


def default_cache_dir() -> Path:
    """$XDG_CACHE_HOME/pianogan/serve, else ~/.cache/pianogan/serve."""
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "pianogan" / "serve"


def is_loopback(host: str) -> bool:
    """True for localhost and any loopback address (127.0.0.0/8, ::1)."""
    if host.strip("[]") in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True)
class ServeConfig:
    """Where the server looks and writes, and its caps. Defaults are the documented ones
    (docs/serve.md)."""

    host: str = "127.0.0.1"
    port: int = 7860
    runs: Path | None = Path("runs")  # run directories are found under this folder
    cache_dir: Path = field(default_factory=default_cache_dir)  # the only place it writes
    cache_mb: float = 1024.0  # bounded size of the take cache; least recently used takes go first
    max_seconds: float = 120.0  # longest take a request may ask for
    min_seconds: float = 0.5  # shortest take
    max_takes: int = 4  # takes per request
    workers: int = 1  # generation processes (each runs one job at a time)
    queue: int = 8  # jobs that may wait for a worker; one more answers 429
    job_timeout_s: float = 300.0  # a job running longer is stopped (its worker is replaced)
    max_body_bytes: int = 4096  # largest request body
    n_iter: int = 64  # Griffin-Lim iterations of every take
    device: str = "auto"  # where workers run the generator: auto (CUDA if present), cpu, cuda
    threads: int | None = None  # torch threads per worker (default: CPU cores / workers)
    keep_jobs: int = 256  # finished jobs whose status stays answerable
    worker_start_timeout_s: float = 120.0  # a worker that is not ready by then is an error
    midi_transcriber: str | None = None  # "module:function" (wav_path, midi_path) -> None; off today
    allowed_hosts: tuple[str, ...] | None = None  # Host headers served; None: loopback names when
    # bound to loopback (blocks DNS rebinding), any when bound elsewhere

    def __post_init__(self) -> None:
        checks = [
            (1 <= self.port <= 65535, "--port must be in 1..65535"),
            (self.cache_mb >= 16, "--cache-mb must be >= 16"),
            (0 < self.min_seconds <= self.max_seconds, "--max-seconds must be >= the minimum length"),
            (self.max_seconds <= 3600, "--max-seconds must be <= 3600"),
            (self.max_takes >= 1, "--max-takes must be >= 1"),
            (self.workers >= 1, "--workers must be >= 1"),
            (self.queue >= 0, "--queue must be >= 0"),
            (self.job_timeout_s > 0, "--job-timeout must be > 0"),
            (self.max_body_bytes >= 256, "max_body_bytes must be >= 256"),
            (self.n_iter >= 1, "--n-iter must be >= 1"),
            (self.device in ("auto", "cpu", "cuda"), "--device must be auto, cpu or cuda"),
            (self.threads is None or self.threads >= 1, "--threads must be >= 1"),
            (self.keep_jobs >= 1, "keep_jobs must be >= 1"),
        ]
        for ok, message in checks:
            if not ok:
                raise PianoGANError(message)

    @property
    def cache_bytes(self) -> int:
        return int(self.cache_mb * 1024 * 1024)

    @property
    def worker_threads(self) -> int:
        return self.threads or max(1, (os.cpu_count() or 1) // self.workers)

    def hosts(self) -> tuple[str, ...] | None:
        """Host header names accepted (without port); None = any."""
        if self.allowed_hosts is not None:
            return None if "*" in self.allowed_hosts else tuple(self.allowed_hosts)
        return (*LOOPBACK_NAMES, "[::1]") if is_loopback(self.host) else None

    def limits(self) -> dict:
        """The caps a client needs to know (shown by the page, served by GET /api/models)."""
        return {"max_seconds": self.max_seconds, "min_seconds": self.min_seconds,
                "max_takes": self.max_takes, "queue": self.queue, "workers": self.workers,
                "job_timeout_s": self.job_timeout_s, "max_body_bytes": self.max_body_bytes,
                "n_iter": self.n_iter}

    def with_(self, **changes) -> "ServeConfig":
        return replace(self, **changes)
