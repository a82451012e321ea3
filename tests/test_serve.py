"""pianogan serve: the API end to end (real worker processes, a tiny untrained run), every kind of
bad request answered with a one-line JSON 4xx while the server keeps serving, the queue bound,
the job timeout, the MIDI hook, the bounded cache, the registry and the CLI."""

from __future__ import annotations

import io
import json
import os
import time

import numpy as np
import pytest
import soundfile as sf
from _serve_helpers import make_beat_run, make_run, wait_job

from pianogan.cli import main
from pianogan.errors import PianoGANError
from pianogan.serve import ServeConfig, create_app
from pianogan.serve.cache import TakeCache
from pianogan.serve.config import is_loopback
from pianogan.serve.registry import Registry, check_name, find_runs, model_styles, shipped_models

pytest.importorskip("fastapi")
from fastapi.testclient import TestClient  # noqa: E402

GOOD = {"model": "tiny", "seed": 1, "seconds": 3.0}


def config(tmp, **kw) -> ServeConfig:
    base = dict(runs=tmp / "runs", cache_dir=tmp / "cache", n_iter=4, threads=1, queue=2,
                max_takes=3, allowed_hosts=("testserver",), job_timeout_s=120.0)
    return ServeConfig(**{**base, **kw})


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("serve")
    make_run(tmp / "runs" / "tiny")
    cfg = config(tmp)
    with TestClient(create_app(cfg)) as client:
        yield client, cfg, tmp


def good_request_succeeds(client, seed: int = 1) -> dict:
    r = client.post("/api/generate", json={**GOOD, "seed": seed})
    assert r.status_code == 202, r.text
    job = wait_job(client, r.json())
    assert job["state"] == "done", job
    return job


def test_models_are_listed_by_name_only(served):
    client, cfg, tmp = served
    r = client.get("/api/models")
    assert r.status_code == 200
    shipped, m = r.json()["models"]  # the package's pretrained model is listed first
    assert shipped["name"] == "piano-longform" and shipped["kind"] == "shipped"
    assert shipped["model"] == "longform" and shipped["styles"] == ["chorale", "keyboard", "quartet"]
    # its own truncation (the slider starts there), any length, and a key control
    from pianogan.pretrained import load_pretrained

    own = load_pretrained()[0].cfg
    assert shipped["truncation"] is True and shipped["truncation_default"] == pytest.approx(own.truncation)
    assert shipped["any_length"] is True and len(shipped["keys"]) == 24 and "D minor" in shipped["keys"]
    assert shipped["drift"] is True  # its global latent can drift (its own period may be 0: one key)
    assert shipped["drift_default"] == pytest.approx(own.drift_seconds)
    assert m["name"] == "tiny" and m["kind"] == "run" and m["model"] == "specgan"
    assert m["clip_seconds"] == 2.0 and m["sample_rate"] == 8000 and m["step"] == 5
    assert m["styles"] == [] and m["truncation"] is False  # style control hidden, psi unused
    assert m["keys"] == [] and m["any_length"] is False  # no key control, lengths from one clip up
    assert m["drift"] is False and m["drift_default"] is None
    assert m["tempo"] is False and shipped["tempo"] is True  # the shipped model keeps a beat clock
    assert r.json()["limits"]["max_seconds"] == cfg.max_seconds
    assert str(tmp) not in r.text  # no server paths go out


def test_takes_have_audio_spectrogram_record_and_remake_exactly(served):
    client, cfg, tmp = served
    r = client.post("/api/generate", json={"model": "tiny", "seed": 40, "seconds": 5.0, "takes": 2})
    assert r.status_code == 202
    job = wait_job(client, r.json())
    assert job["state"] == "done" and job["takes_done"] == 2 and job["progress"] == 1.0
    a, b = job["takes"]
    assert (a["seed"], b["seed"]) == (40, 41) and a["id"] != b["id"]
    wav = client.get(b["urls"]["audio"])
    assert wav.status_code == 200 and wav.headers["content-type"] == "audio/wav"
    audio, sr = sf.read(io.BytesIO(wav.content), dtype="float32")
    assert sr == 8000 and len(audio) == 5 * 8000 and np.abs(audio).max() > 1e-3
    png = client.get(b["urls"]["spectrogram"])
    assert png.status_code == 200 and png.content[:8] == b"\x89PNG\r\n\x1a\n"
    assert b["urls"]["midi"] is None  # no transcriber configured
    doc = client.get(b["urls"]["record"]).json()
    [rec] = doc["clips"]
    assert rec["seed"] == 41 and rec["seconds"] == 5.0 and rec["spectrogram"] == "clip-0000.png"
    # the record makes the same take again, as `pianogan generate --from` would
    from pianogan.generate import regenerate

    again = regenerate(rec)
    np.testing.assert_allclose(again.audio, audio, atol=2 / 32768)
    dl = client.get(b["urls"]["audio"] + "?download=1")
    assert dl.headers["content-disposition"].startswith("attachment")
    assert "pianogan-tiny-seed41" in dl.headers["content-disposition"]
    # the same request again comes from the cache
    job2 = client.post("/api/generate", json={"model": "tiny", "seed": 40, "seconds": 5.0,
                                              "takes": 2}).json()
    assert job2["state"] == "done" and all(t["cached"] for t in job2["takes"])
    assert [t["id"] for t in job2["takes"]] == [a["id"], b["id"]]


def test_the_shipped_model_plays_a_style_in_the_studio(served):
    client, cfg, tmp = served
    r = client.post("/api/generate", json={"model": "piano-longform", "seed": 3, "seconds": 4.0,
                                           "style": "chorale", "truncation": None, "key": "D minor",
                                           "drift": 0})
    assert r.status_code == 202, r.text
    job = wait_job(client, r.json())
    assert job["state"] == "done", job
    [take] = job["takes"]
    audio, sr = sf.read(io.BytesIO(client.get(take["urls"]["audio"]).content), dtype="float32")
    assert sr == 8000 and len(audio) == 4 * 8000 and np.abs(audio).max() > 1e-3
    [rec] = client.get(take["urls"]["record"]).json()["clips"]
    assert rec["style"] == "chorale" and rec["model"] == "longform"
    assert take["key"] == "D minor" and rec["settings"]["key"] == "D minor"
    assert take["drift"] == 0 and rec["settings"]["drift"] == 0  # one key throughout, as asked


def test_a_beat_clock_model_takes_a_tempo(tmp_path):
    make_beat_run(tmp_path / "runs" / "beat")
    with TestClient(create_app(config(tmp_path))) as client:
        [m] = [m for m in client.get("/api/models").json()["models"] if m["name"] == "beat"]
        assert m["tempo"] is True and m["styles"] == ["chorale", "keyboard"]
        takes = {}
        for tempo in (90, 90.0, 140):
            r = client.post("/api/generate", json={"model": "beat", "seed": 2, "seconds": 3.0,
                                                   "style": "keyboard", "tempo": tempo})
            assert r.status_code == 202, r.text
            job = wait_job(client, r.json())
            assert job["state"] == "done", job
            [take] = job["takes"]
            assert take["tempo"] == tempo
            [rec] = client.get(take["urls"]["record"]).json()["clips"]
            assert rec["settings"]["tempo"] == tempo
            takes[tempo] = (take["id"], client.get(take["urls"]["audio"]).content)
        assert takes[90] == takes[90.0]  # the same tempo is the same take, from the cache
        assert takes[90][0] != takes[140][0] and takes[90][1] != takes[140][1]  # the tempo is heard
        r = client.post("/api/generate", json={"model": "beat", "seed": 2, "seconds": 3.0, "style": "keyboard",
                                               "tempo": 90, "rubato": 1.5})
        job = wait_job(client, r.json())
        [take] = job["takes"]
        assert take["rubato"] == 1.5 and take["id"] != takes[90][0]  # another take, not the cached one
        r = client.post("/api/generate", json={"model": "beat", "tempo": 900})
        assert r.status_code == 422 and "tempo must be 30-300" in r.json()["error"]
        r = client.post("/api/generate", json={"model": "beat", "rubato": 3})
        assert r.status_code == 422 and "rubato must be 0-2" in r.json()["error"]


def test_page_and_assets_are_local(served):
    client, _, _ = served
    page = client.get("/")
    assert page.status_code == 200 and "PianoGAN studio" in page.text
    assert "http://" not in page.text and "https://" not in page.text  # nothing from a CDN
    for asset in ("/static/app.js", "/static/style.css"):
        r = client.get(asset)
        assert r.status_code == 200 and "//cdn" not in r.text
    assert "default-src 'self'" in page.headers["content-security-policy"]


BIG = "x" * 5000
BAD = [  # (what, method, path, body or raw bytes, headers, status, words in the error)
    ("negative length", "POST", "/api/generate", {**GOOD, "seconds": -1}, None, 422, "seconds"),
    ("zero length", "POST", "/api/generate", {**GOOD, "seconds": 0}, None, 422, "seconds"),
    ("huge length", "POST", "/api/generate", {**GOOD, "seconds": 1e9}, None, 422, "seconds"),
    ("length just over the cap", "POST", "/api/generate", {**GOOD, "seconds": 120.5}, None, 422, "120"),
    ("non-numeric length", "POST", "/api/generate", {**GOOD, "seconds": "ten"}, None, 422, "seconds"),
    ("NaN length", "POST", "/api/generate", b'{"model": "tiny", "seconds": NaN}', None, 422, "finite"),
    ("unknown model", "POST", "/api/generate", {**GOOD, "model": "nope"}, None, 404, "unknown model"),
    ("relative path as model", "POST", "/api/generate", {**GOOD, "model": "../runs/tiny"}, None, 422, "not a path"),
    ("absolute path as model", "POST", "/api/generate", {**GOOD, "model": "/etc/passwd"}, None, 422, "not a path"),
    ("oversize body", "POST", "/api/generate", {**GOOD, "pad": BIG}, None, 413, "over"),
    ("malformed JSON", "POST", "/api/generate", b'{"model": "tiny", ', None, 400, "malformed JSON"),
    ("not an object", "POST", "/api/generate", [1, 2], None, 422, "object"),
    ("unknown field", "POST", "/api/generate", {**GOOD, "path": "/tmp"}, None, 422, "path"),
    ("too many takes", "POST", "/api/generate", {**GOOD, "takes": 50}, None, 422, "takes"),
    ("zero takes", "POST", "/api/generate", {**GOOD, "takes": 0}, None, 422, "takes"),
    ("fractional seed", "POST", "/api/generate", {**GOOD, "seed": 1.5}, None, 422, "seed"),
    ("negative seed", "POST", "/api/generate", {**GOOD, "seed": -3}, None, 422, "seed"),
    ("truncation out of range", "POST", "/api/generate", {**GOOD, "truncation": 9}, None, 422, "truncation"),
    ("style on an unconditioned model", "POST", "/api/generate", {**GOOD, "style": "jazz"}, None, 422, "not conditioned"),
    ("key on a model that plays no notes", "POST", "/api/generate", {**GOOD, "key": "D minor"}, None, 422, "plays no notes"),
    ("unknown key", "POST", "/api/generate", {**GOOD, "model": "piano-longform", "key": "H minor"}, None, 422, "H minor"),
    ("drift on a fixed-length model", "POST", "/api/generate", {**GOOD, "drift": 30.0}, None, 422, "no global latent"),
    ("tempo on a model without a beat clock", "POST", "/api/generate", {**GOOD, "tempo": 90}, None, 422, "no beat clock"),
    ("tempo as text", "POST", "/api/generate", {**GOOD, "tempo": "fast"}, None, 422, "tempo"),
    ("negative drift", "POST", "/api/generate", {**GOOD, "model": "piano-longform", "drift": -1.0}, None, 422, "drift"),
    ("form instead of JSON", "POST", "/api/generate", b"model=tiny", {"content-type": "application/x-www-form-urlencoded"}, 415, "application/json"),
    ("unknown route", "GET", "/api/nothing-here", None, None, 404, "no route"),
    ("wrong method", "DELETE", "/api/generate", None, None, 405, "not allowed"),
    ("unknown job", "GET", "/api/jobs/0123abcd", None, None, 404, "no job"),
    ("take id holding a path", "GET", "/api/takes/..%2F..%2Fetc/passwd", None, None, 404, ""),
    ("unknown take file", "GET", "/api/takes/" + "0" * 32 + "/audio.wav", None, None, 404, "no such take"),
    ("file name outside the take", "GET", "/api/takes/" + "0" * 32 + "/..%2Ftake.json", None, None, 404, ""),
    ("foreign Host header", "GET", "/api/models", None, {"host": "evil.example"}, 400, "Host"),
]


@pytest.mark.parametrize("what,method,path,body,headers,status,words", BAD, ids=[b[0] for b in BAD])
def test_bad_request_gets_one_line_json_4xx_and_server_keeps_serving(
        served, what, method, path, body, headers, status, words):
    client, _, _ = served
    kwargs = {"headers": headers or {}}
    if isinstance(body, bytes):
        kwargs["content"] = body
        kwargs["headers"] = {"content-type": "application/json", **kwargs["headers"]}
    elif body is not None:
        kwargs["json"] = body
    r = client.request(method, path, **kwargs)
    assert r.status_code == status, (what, r.status_code, r.text)
    err = r.json()["error"]
    assert isinstance(err, str) and "\n" not in err and words in err, err
    good_request_succeeds(client)


def test_full_queue_answers_429_then_drains(served):
    client, cfg, _ = served
    manager = client.app.state.manager
    good_request_succeeds(client)  # in the cache from here on
    manager.gate.clear()  # workers hold their next job: the queue fills deterministically
    try:
        queued = [client.post("/api/generate", json={**GOOD, "seed": 1000 + i})
                  for i in range(cfg.queue)]
        assert [r.status_code for r in queued] == [202] * cfg.queue
        assert all(r.json()["state"] == "queued" for r in queued)
        full = client.post("/api/generate", json={**GOOD, "seed": 2000})
        assert full.status_code == 429 and "queue is full" in full.json()["error"]
        assert full.headers["retry-after"] == "2"
        # a request the cache answers needs no worker: still served
        cached = client.post("/api/generate", json=GOOD)
        assert cached.status_code == 202 and cached.json()["state"] == "done"
    finally:
        manager.gate.set()
    assert all(wait_job(client, r.json())["state"] == "done" for r in queued)
    good_request_succeeds(client, seed=2000)


def test_job_timeout_replaces_the_worker_and_midi_hook(served):
    client, cfg, _ = served
    manager = client.app.state.manager
    [pid] = manager.worker_pids()
    manager.cfg = cfg.with_(job_timeout_s=0.01, midi_transcriber="_serve_helpers:fake_transcriber")
    try:
        r = client.post("/api/generate", json={**GOOD, "seed": 3000, "seconds": 60.0})
        job = wait_job(client, r.json())
        assert job["state"] == "failed" and "timed out" in job["error"]
        assert not list(client.app.state.cache.takes.glob(".stage-*"))  # its stage is gone
        manager.cfg = manager.cfg.with_(job_timeout_s=120.0)
        job = good_request_succeeds(client, seed=3001)  # a fresh worker took over
        assert manager.worker_pids() != [pid]
        midi = job["takes"][0]["urls"]["midi"]  # the transcription hook, when configured
        assert midi is not None
        r = client.get(midi)
        assert r.status_code == 200 and r.content[:4] == b"MThd"
    finally:
        manager.cfg = cfg


def test_cache_size_stays_bounded_under_real_takes(served):
    client, cfg, tmp = served
    cache = client.app.state.cache
    cache.max_bytes = 450_000  # about two 3 s takes (below the config's floor, for speed)
    try:
        jobs = [good_request_succeeds(client, seed=s) for s in range(10, 14)]
        left = {p.name for p in cache.takes.iterdir() if not p.name.startswith(".")}
        assert 1 <= len(left) < 4 and jobs[-1]["takes"][0]["id"] in left
        assert cache.size() <= cache.max_bytes
        assert client.get(jobs[0]["takes"][0]["urls"]["audio"]).status_code == 404  # evicted
        assert client.get(jobs[-1]["takes"][0]["urls"]["audio"]).status_code == 200
    finally:
        cache.max_bytes = cfg.cache_bytes
    # nothing written beside the cache (the run directory is only read)
    tops = {p.relative_to(tmp).parts[0] for p in tmp.rglob("*") if p.is_file()}
    assert tops == {"cache", "runs"}
    assert {p.name for p in (tmp / "runs" / "tiny").iterdir()} == {"generator.safetensors"}


def test_cache_evicts_least_recently_used_and_keeps_active(tmp_path):
    cache = TakeCache(tmp_path / "c", max_bytes=2_500_000)
    cache.setup()
    ids = [f"{i:032x}" for i in range(4)]
    for k, tid in enumerate(ids):
        stage = cache.stage(tid)
        (stage / "clip-0000.wav").write_bytes(b"\0" * 1_000_000)
        cache.commit(stage, tid)
        os.utime(cache.path(tid), ns=(k * 10**9, k * 10**9))
    cache.touch(ids[0])  # used just now: the newest
    # oldest first: 1 (kept: an active job's), 2, 3, then 0; 4 MB must come down to 2.5 MB
    assert cache.evict(keep={ids[1]}) == [ids[2], ids[3]]
    assert {p.name for p in cache.takes.iterdir()} == {ids[0], ids[1]}
    assert cache.size() <= 2_500_000
    # a stage left by a killed writer is removed at start
    cache.stage(ids[3])
    assert cache.setup() == 1 and not list(cache.takes.glob(".stage-*"))
    with pytest.raises(KeyError):
        cache.path("../../etc")
    assert cache.file(ids[0], "../take.json") is None


def test_registry_names_nested_runs_and_skips_what_it_cannot_use(tmp_path):
    make_run(tmp_path / "a")
    make_run(tmp_path / "exp" / "b")
    make_run(tmp_path / "bad name")
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "generator.safetensors").write_bytes(b"not a model")
    runs, skipped = find_runs(tmp_path)
    assert sorted(n for n, _ in runs) == ["a", "broken", "exp:b"]
    assert any("bad name" in s for s in skipped)
    reg = Registry(tmp_path, shipped=lambda: [])
    assert sorted(e.name for e in reg.refresh()) == ["a", "exp:b"]
    assert any("broken" in s for s in reg.skipped)  # named, not silently dropped
    assert reg.get("exp:b").step == 5
    with pytest.raises(LookupError):
        reg.get("missing")
    for bad in ("../a", "/abs/path", "a/b", "..", "~root", ""):
        with pytest.raises(PianoGANError):
            check_name(bad)
    assert [name for name, path in shipped_models()] == ["piano-longform"]  # the package's own
    shipped = Registry(tmp_path, shipped=lambda: [("pianogan-long", tmp_path / "a")])
    assert [(e.name, e.kind) for e in shipped.refresh()][0] == ("pianogan-long", "shipped")
    assert model_styles({"styles": ["baroque", "jazz"]}) == ["baroque", "jazz"]
    assert model_styles({"model_config": {}}) == []


def test_config_and_hosts():
    assert is_loopback("127.0.0.1") and is_loopback("localhost") and is_loopback("::1")
    assert not is_loopback("0.0.0.0") and not is_loopback("192.168.1.4")
    assert "localhost" in ServeConfig().hosts()
    assert ServeConfig(host="0.0.0.0").hosts() is None
    with pytest.raises(PianoGANError):
        ServeConfig(max_takes=0)


def test_cli_help_and_host_warning(tmp_path, monkeypatch, capsys):
    with pytest.raises(SystemExit) as e:
        main(["serve", "--help"])
    assert e.value.code == 0 and "--runs" in capsys.readouterr().out
    calls = []
    import uvicorn

    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: calls.append(kw))
    import pianogan.pretrained

    with monkeypatch.context() as m:  # a package without a shipped model, and no runs: nothing to serve
        m.setattr(pianogan.pretrained, "registry", lambda *a, **k: {})
        assert main(["serve", "--runs", str(tmp_path / "none"), "--cache", str(tmp_path / "c")]) == 2
        assert "no models" in capsys.readouterr().err
    assert main(["serve", "--runs", str(tmp_path / "none"), "--cache", str(tmp_path / "c")]) == 0  # the shipped one
    capsys.readouterr()
    make_run(tmp_path / "runs" / "tiny")
    args = ["serve", "--runs", str(tmp_path / "runs"), "--cache", str(tmp_path / "c")]
    assert main(args) == 0
    assert calls[-1]["host"] == "127.0.0.1" and calls[-1]["port"] == 7860
    assert "warning:" not in capsys.readouterr().err
    assert main(args + ["--host", "0.0.0.0"]) == 0
    assert "warning: --host 0.0.0.0 is not a loopback" in capsys.readouterr().err
