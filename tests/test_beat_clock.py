"""The beat clock (models/beat_clock.py): a real clip's beat read from its roll, the clock the
generator is given, what the roll critic learns from it, and export and generate with it (the
trainer's exact resume with it: test_longform.py, with the key labels)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from pianogan.errors import PianoGANError
from pianogan.models.beat_clock import (HARMONICS, N_CHANNELS, N_QUANTILES, beat_clock, clip_beats,
                                        draw_periods, period_table, phase_wander)
from test_longform import LF, PRESET, QUIET, SMALL, _dataset, small_cfg


def _beat_roll(n: int, frames: int, period: float, start: float, jitter: float = 0.0, seed: int = 0):
    """Strikes (n, 88, frames): a note every ``period`` frames from ``start``, each moved by up
    to ``jitter`` frames, on a random key."""
    rng = np.random.default_rng(seed)
    x = torch.zeros(n, 88, frames)
    for i in range(n):
        t = start
        while t < frames:
            f = int(round(t + rng.uniform(-jitter, jitter)))
            if 0 <= f < frames:
                x[i, rng.integers(30, 60), f] = 0.7
            t += period
    return x


def test_clip_beats_finds_a_played_beats_period_and_phase():
    strikes = _beat_roll(4, 320, 17.3, 5.0, jitter=1.0)
    beats = clip_beats(strikes, 31.25)
    assert beats.shape == (4, 2) and beats.dtype == torch.float32
    assert torch.allclose(beats[:, 0], torch.full((4,), 17.3), atol=0.3)
    # the clock's beat (cos of the first harmonic) peaks on the strikes
    c = beat_clock(beats, 320)
    on = (strikes > 0).float().sum(1)
    assert ((c[:, 0] * on).sum(1) / on.sum(1)).min() > 0.85
    # onsets at random times: no harmonic lines up that well, and a silent clip gets the default
    loose = torch.zeros(2, 88, 320)
    loose[:, 40, torch.randperm(320, generator=torch.Generator().manual_seed(1))[:18]] = 0.5
    lb = clip_beats(loose, 31.25)
    lon = (loose > 0).float().sum(1)
    assert ((beat_clock(lb, 320)[:, 1] * lon).sum(1) / lon.sum(1)).max() < 0.5  # the half beat
    silent = clip_beats(torch.zeros(1, 88, 320), 31.25)
    assert silent[0].tolist() == pytest.approx([0.6 * 31.25, 0.0])


def test_clock_channels_and_their_averaged_levels():
    beats = torch.tensor([[16.0, 0.0], [10.0, math.pi / 2]])
    c = beat_clock(beats, 64)
    assert c.shape == (2, N_CHANNELS, 64) and HARMONICS[0] == 1
    assert c[0, 0, 0] == pytest.approx(1.0) and c[0, 0, 8] == pytest.approx(-1.0, abs=1e-6)
    assert c[1, 0, 0] == pytest.approx(0.0, abs=1e-6) and c[1, len(HARMONICS), 0] == pytest.approx(-1.0)
    # averaged over 16 frames, a full beat of 16 frames (and its subdivisions) cancels
    coarse = beat_clock(beats, 64, factor=16)
    assert coarse.shape == (2, N_CHANNELS, 4) and coarse[0].abs().max() < 1e-5
    assert torch.allclose(coarse, c.unflatten(-1, (4, 16)).mean(-1))


def test_period_tables_and_draws():
    periods = np.array([0.5] * 10 + [1.0] * 10)
    labels = np.array([0] * 10 + [1] * 10)
    table = period_table(periods, labels, 3)
    assert table.shape == (3, N_QUANTILES)
    assert np.allclose(table[0], 0.5) and np.allclose(table[1], 1.0)
    assert np.allclose(table[2], np.quantile(periods, (np.arange(N_QUANTILES) + 0.5) / N_QUANTILES))  # no clips
    assert period_table(periods, None, 0).shape == (1, N_QUANTILES)
    row = torch.linspace(0.4, 1.0, N_QUANTILES)[None].repeat(3, 1)
    got = draw_periods(torch.tensor([0.0, 0.5, 1.0]), row)
    assert got[0] == pytest.approx(0.4) and got[2] == pytest.approx(1.0) and 0.6 < got[1] < 0.8


def test_generator_follows_its_clock_and_tempo():
    cfg = small_cfg(styles=("chorale", "keyboard"), beat_clock=True)
    torch.manual_seed(0)
    G, D = LF.build(cfg, PRESET.image_shape)
    assert LF.build(small_cfg(), PRESET.image_shape)[0].clock_in is None  # off: nothing built
    G.eval()
    z = G.sample_z(1).repeat(2, 1)
    labels = torch.tensor([0, 0])
    with torch.no_grad():
        a = torch.tensor([[8.0, 0.0], [8.0, math.pi]])
        # the clock starts at zero weight (it grows in), so at first the beat changes nothing ...
        notes = G.notes(z, labels, beats=a)
        assert torch.equal(notes[0], notes[1])
        for m in [*G.clock_in, G.tempo_embed]:
            m.weight.normal_(0, 0.3)
        # ... and once learnt, another phase or period plays other notes; the same beat the same
        notes = G.notes(z, labels, beats=a)
        assert (notes[0] - notes[1]).abs().max() > 1e-4
        assert torch.allclose(G.notes(z[:1], labels[:1], beats=a[:1]), notes[:1], atol=1e-6)
        # no beat asked: drawn from z by the style's period table, deterministically
        fps = cfg.sample_rate / cfg.hop_length
        G.cfg.beat_periods = tuple([0.5] * N_QUANTILES + [1.0] * N_QUANTILES)
        many = G.sample_z(32)
        drawn = G.default_beats(many, torch.tensor([0] * 16 + [1] * 16))
        assert torch.allclose(drawn[:16, 0], torch.full((16,), 0.5 * fps))
        assert torch.allclose(drawn[16:, 0], torch.full((16,), 1.0 * fps))
        assert 0 <= drawn[:, 1].min() and drawn[:, 1].max() < 2 * math.pi and drawn[:, 1].std() > 1.0
        assert torch.equal(G.notes(z, labels), G.notes(z, labels, beats=G.default_beats(z, labels)))
        # a tempo asked for sets the period
        assert torch.allclose(G.default_beats(z, labels, bpm=120)[:, 0], torch.full((2,), 0.5 * fps))
    with pytest.raises(PianoGANError, match="beat_periods"):
        small_cfg(styles=("a", "b"), beat_clock=True, beat_periods=(0.5,) * N_QUANTILES)


def test_phase_wander_is_slow_seeded_and_moves_the_generators_clock():
    fps = 31.25
    w = phase_wander(64, 320, fps, 0.5, seeds=list(range(64)))
    assert w.shape == (64, 320)
    assert w.square().mean().sqrt().item() == pytest.approx(0.5, rel=0.25)  # rms over draws
    # slow: periods of 3 s or more, so at most 3 x 0.41 x 2 pi / (3 s x fps) radians a frame
    assert w.diff(dim=1).abs().max() < 0.09
    assert torch.equal(w[:2], phase_wander(2, 320, fps, 0.5, seeds=[0, 1]))  # a function of the seed
    assert (w[0] - w[1]).abs().max() > 0.1
    beats = torch.tensor([[20.0, 0.3]])
    assert torch.equal(beat_clock(beats, 64, wander=torch.zeros(1, 64)), beat_clock(beats, 64))
    # the generator's clock wanders (deterministically from z outside training); the critic's not
    torch.manual_seed(0)
    G, _ = LF.build(small_cfg(beat_clock=True, clock_wander=0.5), PRESET.image_shape)
    steady = LF.build(small_cfg(beat_clock=True), PRESET.image_shape)[0]
    steady.load_state_dict(G.state_dict())
    with torch.no_grad():
        for m in [*G.clock_in, *steady.clock_in]:
            m.weight.normal_(0, 0.3, generator=torch.Generator().manual_seed(1))
    G.eval(), steady.eval()
    z = G.sample_z(2)
    b = torch.tensor([[8.0, 0.0], [8.0, 0.0]])
    with torch.no_grad():
        assert torch.equal(G.notes(z, beats=b), G.notes(z, beats=b))
        assert (G.notes(z, beats=b) - steady.notes(z, beats=b)).abs().max() > 1e-4
        # the wander asked at sampling overrides the config's: 0 is the steady clock, and a steady
        # model asked for the config's wander plays what the wandering model plays
        assert torch.equal(G.notes(z, beats=b, wander=0.0), steady.notes(z, beats=b))
        assert torch.equal(steady.notes(z, beats=b, wander=0.5), G.notes(z, beats=b))
        G.train()
        assert (G.notes(z, beats=b) - G.notes(z, beats=b)).abs().max() > 1e-4  # random while training


def _clocked_rolls(seed: int, offset: float, n: int = 8, frames: int = 128):
    """(rolls (n, 2, 88, frames), beats (n, 2)): chords of three random keys at random loudness,
    on a random beat of 18-30 frames (the corpus's 0.6-1.0 s) at a random phase, moved ``offset``
    of a beat from it."""
    g = torch.Generator().manual_seed(seed)
    beats = torch.stack([18.0 + 12.0 * torch.rand(n, generator=g), 2 * math.pi * torch.rand(n, generator=g)], 1)
    x = torch.zeros(n, 2, 88, frames)
    for i, (p, ph) in enumerate(beats.tolist()):
        t = (ph / (2 * math.pi) + offset) % 1.0 * p
        while t < frames:
            keys = torch.randint(20, 70, (3,), generator=g)
            x[i, 0, keys, int(t)] = 0.3 + 0.6 * torch.rand(3, generator=g)
            x[i, 1, keys, int(t):int(t) + 6] = 1.0
            t += p
    return x, beats


def test_roll_critic_learns_where_onsets_fall_against_the_clock():
    """Real onsets on their clock's beat, fake ones a quarter of a beat off: alike in distribution,
    told apart only through the clock. Trained on fresh clips each step with the recipe's instance
    noise and R1 penalty (gamma 2 every 4 steps, as ``longform.Config``), judged on unseen ones.
    With the strikes summed over keys instead of their loudest per frame, R1 held the gap to 0.3."""
    from pianogan.losses.stylegan2 import r1_penalty

    gaps = {}
    for clock in (True, False):
        torch.manual_seed(0)
        cfg = small_cfg(beat_clock=clock, roll_noise=0.05, roll_width=32)
        _, D = LF.build(cfg, PRESET.image_shape)
        R = D.roll
        assert R.clock == clock
        opt = torch.optim.Adam(R.parameters(), lr=2e-3)
        R.train()
        for step in range(60):
            (real, rb), (fake, fb) = _clocked_rolls(2 * step, 0.0), _clocked_rolls(2 * step + 1, 0.25)
            real = R.view(real[:, 0], real[:, 1]).requires_grad_(True)
            real_logits = R(real, beats=rb)
            loss = (torch.nn.functional.softplus(-real_logits).mean()
                    + torch.nn.functional.softplus(R(R.view(fake[:, 0], fake[:, 1]), beats=fb)).mean())
            if step % cfg.r1_interval == 0:
                loss = loss + r1_penalty(real, real_logits).mean() * cfg.r1_gamma / 2 * cfg.r1_interval
            opt.zero_grad()
            loss.backward()
            opt.step()
        R.eval()
        with torch.no_grad():
            (real, rb), (fake, fb) = _clocked_rolls(10_000, 0.0, n=16), _clocked_rolls(10_001, 0.25, n=16)
            gaps[clock] = (R(R.view(real[:, 0], real[:, 1]), beats=rb).mean()
                           - R(R.view(fake[:, 0], fake[:, 1]), beats=fb).mean()).item()
    assert gaps[True] > 2.0 and abs(gaps[False]) < 1.0, gaps


def test_export_keeps_each_styles_tempi_and_generate_takes_a_tempo_and_rubato(tmp_path, capsys):
    import json

    import soundfile as sf

    from pianogan.cli import main as cli_main
    from pianogan.pretrained import export, load_pretrained
    from pianogan.train.trainer import train

    data = _dataset(tmp_path, n=16, midi=True)
    cfg = {"base": "tiny", "model": {**SMALL, "render_fit_steps": 4, "beat_clock": True}}
    train("longform", data, tmp_path / "r", config=cfg, steps=1, progress=False, **QUIET)
    folder = tmp_path / "shipped"
    export(tmp_path / "r", "beat-test", folder=folder, level_from=data, level_n=16, drift_n=8)
    G, _ = load_pretrained("beat-test", folder=folder)
    # this data strikes a note every 16 frames (0.256 s, under the 0.3 s read): both styles' tempi
    # are read at twice that, 0.512 s
    table = np.reshape(G.cfg.beat_periods, (2, N_QUANTILES))
    assert np.allclose(table, 0.512, atol=0.02)
    run = tmp_path / "r"
    args = ["generate", str(run), "--n", "1", "--seconds", "3", "--style", "keyboard", "--no-plots"]
    assert cli_main(args + ["--out", str(tmp_path / "t90"), "--tempo", "90"]) == 0
    assert cli_main(args + ["--out", str(tmp_path / "t90b"), "--tempo", "90"]) == 0
    doc = json.loads((tmp_path / "t90" / "generated.json").read_text())
    assert doc["clips"][0]["settings"]["tempo"] == 90
    a = sf.read(tmp_path / "t90" / "clip-0000.wav")[0]
    assert np.array_equal(a, sf.read(tmp_path / "t90b" / "clip-0000.wav")[0])  # same seed and tempo, same piece
    assert cli_main(["generate", "--from", str(tmp_path / "t90" / "generated.json"), "--out", str(tmp_path / "again"),
                     "--no-plots"]) == 0
    assert np.array_equal(a, sf.read(tmp_path / "again" / "clip-0000.wav")[0])
    assert cli_main(args + ["--out", str(tmp_path / "loose"), "--tempo", "90", "--rubato", "1.5"]) == 0
    doc = json.loads((tmp_path / "loose" / "generated.json").read_text())
    assert doc["clips"][0]["settings"]["rubato"] == 1.5
    assert not np.array_equal(a, sf.read(tmp_path / "loose" / "clip-0000.wav")[0])  # the beat wanders
    capsys.readouterr()
    assert cli_main(args + ["--out", str(tmp_path / "bad"), "--tempo", "900"]) == 2
    assert "tempo must be 30-300" in capsys.readouterr().err
    assert cli_main(args + ["--out", str(tmp_path / "bad"), "--rubato", "-1"]) == 2
    assert "rubato must be 0-2 radians" in capsys.readouterr().err
    train("longform", data, tmp_path / "plain", config={"base": "tiny", "model": {**SMALL, "render_fit_steps": 4}},
          steps=1, progress=False, **QUIET)
    assert cli_main(["generate", str(tmp_path / "plain"), "--n", "1", "--seconds", "1", "--no-plots",
                     "--out", str(tmp_path / "p"), "--tempo", "90"]) == 2
    assert "no beat clock" in capsys.readouterr().err
    assert cli_main(["generate", str(tmp_path / "plain"), "--n", "1", "--seconds", "1", "--no-plots",
                     "--out", str(tmp_path / "p"), "--rubato", "0"]) == 2
    assert "--rubato: this model has no beat clock" in capsys.readouterr().err
