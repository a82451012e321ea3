"""The web application of `pianogan serve` (FastAPI): the page, the JSON API, the take files.

Routes::

    GET  /                                  the studio page (static/index.html)
    GET  /static/<file>                     its script and style sheet (shipped, no CDN)
    GET  /api/models                        {"models": [...], "limits": {...}}
    POST /api/generate                      {"model", "seed", "seconds", "takes", "truncation", "drift",
                                             "style", "key", "tempo", "rubato"} -> 202 + the job's status
    GET  /api/jobs/<id>                     a job's status: state, progress, takes
    GET  /api/takes/<id>/<file>             audio.wav, spectrogram.png, generated.json, take.mid
                                            (?download=1: as an attachment)
    GET  /api/health                        workers, job counts, cache size

Every error is ``{"error": "<one line>"}`` with a 4xx (5xx only for a bug); see docs/serve.md.
"""

from __future__ import annotations

import json
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException

from ..errors import PianoGANError, describe
from .cache import TakeCache, take_id
from .config import ServeConfig
from .jobs import JobManager, QueueFull
from .registry import Registry
from .schema import GenerateRequest, one_line

STATIC = Path(__file__).resolve().parent / "static"
SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; media-src 'self'; "
                               "style-src 'self'; script-src 'self'; connect-src 'self'; "
                               "object-src 'none'; base-uri 'none'; form-action 'none'",
}


def error(status: int, message: str, headers: dict | None = None) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status, headers=headers)


def host_name(header: str) -> str:
    """The host part of a Host header ("[::1]:7860" -> "[::1]", "a.b:80" -> "a.b")."""
    header = header.strip().lower()
    if header.startswith("["):
        return header[:header.find("]") + 1] if "]" in header else header
    return header.split(":", 1)[0]


def create_app(cfg: ServeConfig, registry: Registry | None = None) -> FastAPI:
    """The application; its lifespan starts the worker pool and stops it."""
    registry = registry or Registry(cfg.runs)
    cache = TakeCache(cfg.cache_dir, cfg.cache_bytes)
    manager = JobManager(cfg, cache)
    allowed = cfg.hosts()

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        await run_in_threadpool(registry.refresh)
        await run_in_threadpool(manager.start)
        try:
            yield
        finally:
            await run_in_threadpool(manager.close)

    app = FastAPI(title="PianoGAN studio", lifespan=lifespan, docs_url=None, redoc_url=None,
                  openapi_url=None)
    app.state.cfg, app.state.registry, app.state.cache, app.state.manager = cfg, registry, cache, manager

    @app.middleware("http")
    async def guard(request: Request, call_next):
        host = host_name(request.headers.get("host", ""))
        if allowed is not None and host not in allowed:
            response = error(400, f"Host {host!r} is not served here (DNS-rebinding guard); "
                                  f"open http://127.0.0.1:{cfg.port}/")
        else:
            response = await call_next(request)
        for k, v in SECURITY_HEADERS.items():
            response.headers.setdefault(k, v)
        return response

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException):
        message = {404: f"no route {request.method} {request.url.path}",
                   405: f"method {request.method} not allowed on {request.url.path}"}
        text = message.get(exc.status_code) if exc.detail in ("Not Found", "Method Not Allowed") else None
        return error(exc.status_code, text or one_line(str(exc.detail)), getattr(exc, "headers", None))

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError):
        return error(422, one_line("; ".join(f"{'.'.join(str(x) for x in e['loc'][1:]) or 'request'}:"
                                             f" {e['msg']}" for e in exc.errors()[:3])))

    @app.exception_handler(Exception)
    async def crash(request: Request, exc: Exception):
        return error(500, f"internal error ({describe(exc)})")

    @app.get("/", include_in_schema=False)
    async def page():
        return FileResponse(STATIC / "index.html", media_type="text/html",
                            headers={"Cache-Control": "no-cache"})

    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.get("/api/models")
    async def models():
        entries = await run_in_threadpool(registry.refresh)
        return {"models": [e.public() for e in entries], "limits": cfg.limits(),
                "skipped": len(registry.skipped)}

    @app.get("/api/health")
    async def health():
        return {"ok": True, "workers": len(manager.worker_pids()), "jobs": manager.counts(),
                "cache_bytes": await run_in_threadpool(cache.size), "cache_limit": cache.max_bytes}

    @app.post("/api/generate", status_code=202)
    async def generate(request: Request):
        ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if ctype != "application/json":
            return error(415, "send the request as Content-Type: application/json")
        length = request.headers.get("content-length")
        limit = cfg.max_body_bytes
        if length is not None and (not length.isdigit() or int(length) > limit):
            return error(413, f"request body over {limit} bytes")
        body = bytearray()
        async for chunk in request.stream():
            body += chunk
            if len(body) > limit:
                return error(413, f"request body over {limit} bytes")
        try:
            doc = json.loads(bytes(body))
        except ValueError as e:
            return error(400, one_line(f"malformed JSON: {e}"))
        if not isinstance(doc, dict):
            return error(422, "the body must be a JSON object")
        try:
            req = GenerateRequest.model_validate(doc)
        except ValidationError as e:
            return error(422, one_line("; ".join(f"{'.'.join(str(x) for x in d['loc']) or 'body'}:"
                                                 f" {d['msg']}" for d in e.errors()[:3])))
        try:
            entry = await run_in_threadpool(registry.get, req.model)
        except PianoGANError as e:
            return error(422, str(e))
        except LookupError as e:
            return error(404, f"{e.args[0]}; GET /api/models lists the models")
        seconds = float(req.seconds if req.seconds is not None else entry.clip_seconds)
        if not cfg.min_seconds <= seconds <= cfg.max_seconds:
            return error(422, f"seconds must be in [{cfg.min_seconds:g}, {cfg.max_seconds:g}] "
                              f"(got {seconds:g})")
        if req.takes > cfg.max_takes:
            return error(422, f"takes must be <= {cfg.max_takes} (got {req.takes})")
        if req.style is not None and req.style not in entry.styles:
            known = ", ".join(entry.styles)
            return error(422, f"model {entry.name!r} has no style {req.style!r}"
                              + (f"; styles: {known}" if known else " (it is not conditioned)"))
        if req.key is not None and not entry.plays_notes:
            return error(422, f"model {entry.name!r} plays no notes to move to a key")
        if req.drift is not None and entry.drift_default is None:
            return error(422, f"model {entry.name!r} has no global latent to drift ({entry.model})")
        if (req.tempo is not None or req.rubato is not None) and not entry.beat_clock:
            return error(422, f"model {entry.name!r} has no beat clock to set a tempo or rubato on")
        import dataclasses

        from ..generate import GenerateSettings
        from ..phase import DEFAULT_GL

        try:  # GenerateSettings checks the key name (pianogan.keys.parse_key), in one line
            settings = GenerateSettings(gl=dataclasses.replace(DEFAULT_GL, n_iter=cfg.n_iter), seconds=seconds,
                                        truncation=req.truncation, drift=req.drift, key=req.key,
                                        tempo=req.tempo, rubato=req.rubato).to_dict()
        except PianoGANError as e:
            return error(422, str(e))
        # A take made with MIDI, or in another style, differs.
        extra = {"midi": manager.cfg.midi_transcriber, "style": req.style}
        takes = [{"id": take_id(entry.identity, req.seed + i, settings, extra), "seed": req.seed + i,
                  "style": req.style} for i in range(req.takes)]
        public = {**req.model_dump(), "seconds": seconds}
        try:
            job = await run_in_threadpool(manager.submit, entry, public, settings, takes)
        except QueueFull as e:
            return error(429, str(e), {"Retry-After": "2"})
        return JSONResponse(manager.status(job.id), status_code=202)

    @app.get("/api/jobs/{job_id}")
    async def job_status(job_id: str):
        status = manager.status(job_id)
        if status is None:
            return error(404, f"no job {job_id[:64]!r} (unknown, or finished long ago)")
        return status

    @app.get("/api/takes/{tid}/{name}")
    async def take_file(tid: str, name: str, download: int = 0):
        found = await run_in_threadpool(cache.file, tid, name)
        if found is None:
            return error(404, "no such take file (never made, or evicted from the cache)")
        path, media = found
        headers = {"Cache-Control": "private, max-age=86400"}
        if download:
            meta = cache.meta(tid) or {}
            stem = f"pianogan-{meta.get('model', 'take')}-seed{meta.get('seed', 0)}-{tid[:8]}"
            suffix = name.rsplit(".", 1)[-1]
            return FileResponse(path, media_type=media, headers=headers,
                                filename=f"{stem.replace(':', '-')}.{suffix}")
        return FileResponse(path, media_type=media, headers=headers)

    return app
