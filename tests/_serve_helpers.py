"""Helpers of the serve tests: a tiny run directory, a job poller, a stand-in MIDI transcriber."""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path


def _save_run(run: Path, model: str, G, cfg, preset, step: int) -> Path:
    """``G`` written as ``run``'s generator.safetensors by the project's own checkpoint writer."""
    from pianogan.spectrogram import Stats
    from pianogan.train.checkpoint import save_generator

    run.mkdir(parents=True, exist_ok=True)
    save_generator(run, G.state_dict(), model, dataclasses.asdict(cfg), preset, Stats(mean=-4.0, std=2.0), step)
    return run


def make_run(run: Path, step: int = 5) -> Path:
    """A run directory holding an untrained "tiny" SpecGAN generator (generator.safetensors),
    written by the project's own checkpoint writer: enough for the server, in a second."""
    import torch

    from pianogan.config import get_preset
    from pianogan.models import get_model

    preset, family = get_preset("tiny"), get_model("specgan")
    cfg = family.CONFIGS["tiny"]
    torch.manual_seed(0)
    G, _ = family.build(cfg, preset.image_shape)
    return _save_run(run, "specgan", G, cfg, preset, step)


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


def make_beat_run(run: Path, step: int = 3) -> Path:
    """A run directory holding an untrained small longform generator with a beat clock (the 'beat'
    config's switch) at the 10s-8k preset, its clock weighted, for the tempo control."""
    import torch

    from pianogan.config import get_preset
    from pianogan.models import get_model
    from pianogan.spectrogram import Stats
    from test_longform import SMALL  # the longform tests' small network (its audio fields are the preset's)

    preset, family = get_preset("10s-8k"), get_model("longform")
    small = {k: v for k, v in SMALL.items() if k not in ("sample_rate", "n_fft", "hop_length")}
    cfg = family.configure(family.Config(**small, render_fit_steps=4, beat_clock=True), preset,
                           Stats(mean=-4.0, std=2.0), ("chorale", "keyboard"), rolls=True)
    torch.manual_seed(0)
    G, _ = family.build(cfg, preset.image_shape)
    with torch.no_grad():  # the clock starts silent; weighted, as after training, the tempo is heard
        for m in [*G.clock_in, G.tempo_embed]:
            m.weight.normal_(0, 0.3)
    return _save_run(run, "longform", G, cfg, preset, step)
