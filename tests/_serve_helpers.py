"""Helpers of the serve tests: a tiny run directory, a job poller, a stand-in MIDI transcriber."""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path


def make_run(run: Path, step: int = 5) -> Path:
    """A run directory holding an untrained "tiny" SpecGAN generator (generator.safetensors),
    written by the project's own checkpoint writer: enough for the server, in a second."""
    import torch

    from pianogan.config import get_preset
    from pianogan.models import get_model
    from pianogan.spectrogram import Stats
    from pianogan.train.checkpoint import save_generator

    preset, family = get_preset("tiny"), get_model("specgan")
    cfg = family.CONFIGS["tiny"]
    torch.manual_seed(0)
    G, _ = family.build(cfg, preset.image_shape)
    run.mkdir(parents=True, exist_ok=True)
    save_generator(run, G.state_dict(), "specgan", dataclasses.asdict(cfg), preset,
                   Stats(mean=-4.0, std=2.0), step)
    return run


def wait_job(client, job: dict, limit_s: float = 120.0) -> dict:
    """Poll GET /api/jobs/<id> until the job is done or failed (``limit_s`` is only a guard)."""
    end = time.monotonic() + limit_s
    while job["state"] in ("queued", "running"):
        assert time.monotonic() < end, f"job still {job['state']} after {limit_s} s"
        time.sleep(0.05)
        r = client.get(f"/api/jobs/{job['id']}")
        assert r.status_code == 200, r.text
        job = r.json()
    return job


def fake_transcriber(wav_path: Path, midi_path: Path) -> None:
    """Stands in for the transcription hook: writes a one-note MIDI file beside the take."""
    import pretty_midi

    pm = pretty_midi.PrettyMIDI()
    piano = pretty_midi.Instrument(program=0)
    piano.notes.append(pretty_midi.Note(velocity=80, pitch=60, start=0.0, end=0.5))
    pm.instruments.append(piano)
    pm.write(str(midi_path))
