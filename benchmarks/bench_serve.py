"""Load on `pianogan serve`: N requests for T-second takes at concurrency C against a tiny model.

Starts the real server (`python -m pianogan serve`, uvicorn, worker processes) on a free port
with an untrained "tiny" SpecGAN run (generation cost does not depend on training), sends
requests with distinct seeds (no cache hits) from C client threads, each request followed to its
end by polling, and reports: failed requests (must be 0), throughput (requests/s and seconds of
audio per second), p50 / p95 / max latency (submit -> done), the server's and its workers' CPU
time, and their resident memory before (after a warm-up) and after the load; the server's must not
have grown by more than 25% + 30 MB.

    python benchmarks/bench_serve.py [--quick] [--n 200] [--concurrency 8] [--seconds 10]
        -> benchmarks/results/serve.json
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "tests"))
from _serve_helpers import make_run  # noqa: E402  (the tests' tiny run: one copy)
from _train_data import free_port  # noqa: E402
from run_all import cpu_name, write_result  # noqa: E402

MEMORY_GROWTH = (1.25, 30 * 2**20)  # after <= before * 1.25 + 30 MB


def children(pid: int) -> list[int]:
    out = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            out += [int(c) for c in (task / "children").read_text().split()]
        except OSError:
            pass
    return out


def descendants(pid: int) -> list[int]:
    out = children(pid)
    return out + [g for c in out for g in descendants(c)]


def proc_figures(pids: list[int]) -> tuple[int, float]:
    """(resident bytes, CPU seconds) of processes ``pids`` together (Linux /proc)."""
    rss, cpu = 0, 0.0
    tick, page = os.sysconf("SC_CLK_TCK"), os.sysconf("SC_PAGE_SIZE")
    for p in pids:
        try:
            rss += int(Path(f"/proc/{p}/statm").read_text().split()[1]) * page
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
            cpu += (int(fields[11]) + int(fields[12])) / tick
        except (OSError, IndexError, ValueError):
            pass
    return rss, cpu


def figures(pid: int) -> dict:
    """The server's and its worker processes' (resident bytes, CPU seconds)."""
    return {"server": proc_figures([pid]), "workers": proc_figures(descendants(pid))}


def one_request(client, body: dict) -> tuple[bool, float, str]:
    """POST and follow the job to its end: (ok, latency seconds, error)."""
    t0 = time.perf_counter()
    r = client.post("/api/generate", json=body)
    if r.status_code != 202:
        return False, time.perf_counter() - t0, f"{r.status_code}: {r.text[:200]}"
    job = r.json()
    while job["state"] in ("queued", "running"):
        time.sleep(0.05)
        job = client.get(f"/api/jobs/{job['id']}").json()
    ok = job["state"] == "done" and len(job["takes"]) == body["takes"]
    return ok, time.perf_counter() - t0, "" if ok else str(job.get("error"))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="40 requests at concurrency 4")
    ap.add_argument("--n", type=int, default=200, help="requests (default 200)")
    ap.add_argument("--concurrency", type=int, default=8, help="client threads (default 8)")
    ap.add_argument("--seconds", type=float, default=10.0, help="take length (default 10)")
    ap.add_argument("--workers", type=int, default=2, help="server worker processes (default 2)")
    args = ap.parse_args()
    if args.quick:
        args.n, args.concurrency = 40, 4
    import httpx2 as httpx  # the dev extra's client (starlette's test client uses it too)

    tmp = Path(tempfile.mkdtemp(prefix="pianogan-bench-serve-"))
    make_run(tmp / "runs" / "tiny")
    port = free_port()
    cmd = [sys.executable, "-m", "pianogan", "serve", "--runs", str(tmp / "runs"), "--cache",
           str(tmp / "cache"), "--port", str(port), "--workers", str(args.workers), "--threads", "1",
           "--queue", str(args.concurrency)]
    server = subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True)
    try:
        client = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60)
        end = time.monotonic() + 300
        while True:
            try:
                if client.get("/api/health").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if server.poll() is not None or time.monotonic() > end:
                raise SystemExit(f"server did not start: {server.stderr.read()[-2000:]}")
            time.sleep(0.2)
        base = {"model": "tiny", "seconds": args.seconds, "takes": 1}
        for s in range(2 * args.workers):  # warm-up: every worker loads the model once
            one_request(client, {**base, "seed": 10**6 + s})
        before = figures(server.pid)
        t0 = time.perf_counter()
        with ThreadPoolExecutor(args.concurrency) as pool:
            results = list(pool.map(lambda i: one_request(client, {**base, "seed": i}), range(args.n)))
        wall = time.perf_counter() - t0
        after = figures(server.pid)
    finally:
        server.terminate()
        try:
            server.wait(30)
        except subprocess.TimeoutExpired:
            server.kill()
        shutil.rmtree(tmp, ignore_errors=True)
    lat = np.array([r[1] for r in results])
    failed = [r[2] for r in results if not r[0]]
    rss0, rss1 = before["server"][0], after["server"][0]
    memory_ok = rss1 <= rss0 * MEMORY_GROWTH[0] + MEMORY_GROWTH[1]
    mb = lambda b: round(b / 2**20, 1)  # noqa: E731
    out = {"cpu": cpu_name(), "machine": platform.machine(), "load_avg_1m": os.getloadavg()[0],
           "requests": args.n, "concurrency": args.concurrency, "take_seconds": args.seconds,
           "workers": args.workers, "threads_per_worker": 1, "failed": len(failed),
           "errors": failed[:5], "wall_s": round(wall, 2),
           "throughput_rps": round(args.n / wall, 3),
           "audio_seconds_per_s": round(args.n * args.seconds / wall, 2),
           "latency_s": {"p50": round(float(np.percentile(lat, 50)), 3),
                         "p95": round(float(np.percentile(lat, 95)), 3),
                         "max": round(float(lat.max()), 3)},
           "cpu_s": {k: round(after[k][1] - before[k][1], 2) for k in ("server", "workers")},
           "rss_mb": {"server_before": mb(rss0), "server_after": mb(rss1),
                      "workers_before": mb(before["workers"][0]),
                      "workers_after": mb(after["workers"][0])},
           "memory_ok": memory_ok}
    print(f"{args.n} requests of {args.seconds:g} s takes at concurrency {args.concurrency}, "
          f"{args.workers} workers: {len(failed)} failed, {out['throughput_rps']} req/s "
          f"({out['audio_seconds_per_s']} s of audio/s), latency p50 {out['latency_s']['p50']} s, "
          f"p95 {out['latency_s']['p95']} s; CPU server {out['cpu_s']['server']} s + workers "
          f"{out['cpu_s']['workers']} s in {wall:.1f} s wall; RSS server {mb(rss0)} -> {mb(rss1)} MB,"
          f" workers {out['rss_mb']['workers_before']} -> {out['rss_mb']['workers_after']} MB "
          f"(load average {out['load_avg_1m']:.1f})")
    write_result("serve", out)
    if failed:
        print(f"FAILED requests: {failed[:5]}")
    if not memory_ok:
        print("server memory grew beyond the bound")
    return 0 if not failed and memory_ok else 1


if __name__ == "__main__":
    sys.exit(main())
