"""The ``longform`` family: any length from one model, conditioning, the piano renderer, the
trainer's conditional path (exact resume) and learning on a small synthetic piano set."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import torch

from pianogan.config import Preset
from pianogan.data.dataset import PianoDataset, write_dataset
from pianogan.data.labels import style_labels
from pianogan.models import get_model
from pianogan.models.piano_render import decay_filter, fill_damper_dips, harmonic_templates, key_frequencies
from pianogan.spectrogram import Stats
from pianogan.train.trainer import train

LF = get_model("longform")
# 1.008 s at 8 kHz: 129 bins x 64 frames (n_fft 256, hop 128), 8 frames per local latent.
PRESET = Preset("test-lf", 8_000, 256, 128, 1.008, 129, 64)
SMALL = dict(z_global=16, z_local=8, w_dim=32, g_channels=(32, 32, 24, 16), d_channels=(8, 16),
             d_width=32, log_rows=48, batch_size=8, sample_rate=8000, n_fft=256, hop_length=128,
             frames_per_latent=8, post_channels=16)
QUIET = dict(sample_every=0, log_every=1, sample_images=0)


def small_cfg(**kw) -> "LF.Config":
    return LF.Config(**{**SMALL, **kw})


def play(G, z: torch.Tensor, training: bool = False, **fields):
    """G's ``(image, (strikes, gates))`` for latents ``z`` under ``small_cfg(**fields)``, in
    training mode or sampling mode, without gradients."""
    G.cfg = small_cfg(**fields)
    G.train(training)
    with torch.no_grad():
        return G(z, notes=True)


def test_any_length_from_one_model():
    G, D = LF.build(small_cfg(), PRESET.image_shape)
    assert G.sample_z(2).shape == (2, G.z_dim)
    for n_local, frames in ((8, 64), (3, 24), (40, 320)):  # the training length, shorter, longer
        z = G.sample_z(2, n_local=n_local)
        with torch.no_grad():
            x = G(z)
            assert x.shape == (2, 1, 129, frames) and x.abs().max() <= 1
            assert D(x).shape == (2,)


@pytest.mark.parametrize("identity", [False, True])
def test_renderer_correction_net_starts_as_the_identity_only_when_asked(identity):
    G, _ = LF.build(small_cfg(post_identity_start=identity), PRESET.image_shape)
    # the model's He initialisation re-draws the renderer's zero start; the flag puts it back
    assert bool(G.render.post[-1].weight.abs().max() == 0) == identity


def test_the_recipe_variants_differ_from_the_recipe_by_their_one_field():
    assert LF.CONFIGS["rubato-identity"].post_identity_start and not LF.CONFIGS["rubato-strike"].post_identity_start
    # the degrees variant is the shipped recipe plus the critic's view, nothing else
    degrees = LF.CONFIGS["rubato-degrees"]
    assert degrees.roll_degrees and degrees.post_identity_start
    assert dataclasses.replace(degrees, roll_degrees=False) == LF.CONFIGS["rubato-identity"]
    clash = LF.CONFIGS["rubato-clash"]  # and the cluster price (section 38)
    assert dataclasses.replace(clash, clash_price_weight=0.0) == LF.CONFIGS["rubato-identity"]
    movement = LF.CONFIGS["rubato-movement"]  # and the loudness-movement term (section 41)
    assert movement.movement_match_weight == 1.0
    assert dataclasses.replace(movement, movement_match_weight=0.0) == LF.CONFIGS["rubato-identity"]
    tonal = LF.CONFIGS["rubato-tonal"]  # and the scale-degree term (section 42)
    assert dataclasses.replace(tonal, degree_match_weight=0.0) == movement and tonal.degree_match_weight == 1.0
    plan = LF.CONFIGS["rubato-plan"]  # the shipped recipe told each second's harmony (section 43)
    assert plan.harmony_plan and dataclasses.replace(plan, harmony_plan=False) == LF.CONFIGS["rubato-identity"]
    both = LF.CONFIGS["rubato-plan-movement"]  # the plan and the movement term (section 44)
    assert dataclasses.replace(both, movement_match_weight=0.0) == plan
    assert dataclasses.replace(both, harmony_plan=False) == movement
    hellinger = LF.CONFIGS["rubato-plan-hellinger"]  # and a gap that asks for the weak classes
    assert dataclasses.replace(hellinger, plan_distance="l1", plan_weight=both.plan_weight) == both
    plan_clash = LF.CONFIGS["rubato-plan-clash"]  # the plan, the movement term and the cluster price
    assert dataclasses.replace(plan_clash, clash_price_weight=0.0) == both
    assert plan_clash.clash_price_weight == clash.clash_price_weight
    rests = LF.CONFIGS["rubato-plan-rests"]  # the plan's rests (section 47), and its chords on the beat (48)
    assert dataclasses.replace(rests, plan_rests=False) == both
    assert dataclasses.replace(LF.CONFIGS["rubato-plan-beats"], plan_on_beats=False) == rests


def test_conditioning_changes_the_output_and_is_used_by_D():
    cfg = small_cfg(styles=("chorale", "keyboard", "quartet"))
    torch.manual_seed(0)
    G, D = LF.build(cfg, PRESET.image_shape)
    G.eval()  # texture noise from z: reproducible
    with torch.no_grad():
        # FiLM starts at zero (the style enters gradually); give it weights as training does.
        for m in G.modules():
            if isinstance(m, LF.FiLMConv):
                m.film.weight.normal_(0, 0.02)
        z = G.sample_z(1).repeat(3, 1)
        x = G(z, torch.tensor([0, 1, 2]))
        assert (x[0] - x[1]).abs().max() > 1e-5 and (x[1] - x[2]).abs().max() > 1e-5
        assert torch.allclose(G(z[:1], torch.tensor([1])), x[1:2], atol=1e-5)  # per-sample
        # No labels: a deterministic style from z.
        assert torch.equal(G(z[:1]), G(z[:1]))
        D.embed.weight.normal_()
        scores = D(x[:1].repeat(3, 1, 1, 1), torch.tensor([0, 1, 2]))
        assert scores.unique().numel() == 3


def _styled_generator(cfg, film_std: float):
    """A G whose style path is on: FiLM starts as the identity, so its weights are drawn here."""
    torch.manual_seed(0)
    G, _ = LF.build(cfg, PRESET.image_shape)
    for m in G.modules():
        if isinstance(m, LF.FiLMConv):
            with torch.no_grad():
                m.film.weight.normal_(0, film_std)
    return G


def test_truncation_pulls_the_global_latent_only_when_sampling():
    cfg = small_cfg(styles=("chorale", "keyboard", "quartet"), truncation=0.0)
    G = _styled_generator(cfg, 0.02)
    z = G.sample_z(2)
    z[1, cfg.z_global:] = z[0, cfg.z_global:]  # same local latents, different global ones
    z[0, 0], z[1, 0] = -1.5, 1.5  # whose default styles are the first and the last
    labels = torch.tensor([1, 1])
    G.eval()
    with torch.no_grad():
        x = G(z, labels)  # psi 0 (the config's): the global latent is gone, only the style is left
        assert torch.allclose(x[0], x[1], atol=1e-6)
        full = G(z, labels, truncation_psi=1.0)  # a call's psi overrides the config's
        assert (full[0] - full[1]).abs().max() > 1e-4
        # The default style is drawn from the untruncated latent: psi does not change which style.
        assert G.default_labels(z).tolist() == [0, 2]
        assert torch.equal(G(z), G(z, torch.tensor([0, 2])))
    G.train()  # training never truncates
    with torch.no_grad():
        assert (G(z, labels) - full).abs().max() < 1e-5


def test_key_calibration_moves_sampled_notes_to_the_corpus_keys_only_when_sampling():
    from pianogan.keys import keys_of_notes

    shares = [0.0] * 24
    shares[2], shares[12 + 11] = 1.0, 1.0  # D major and B minor only
    torch.manual_seed(0)
    G, _ = LF.build(small_cfg(key_shares=shares, truncation=1.0), PRESET.image_shape)
    with torch.no_grad():
        G.to_notes.bias[:88].fill_(-3.0)
        G.to_notes.bias[20:68].fill_(-0.1)  # an untrained head that plays many notes, none near the edges
    z = G.sample_z(16)
    G.eval()
    with torch.no_grad():
        keys = keys_of_notes(G.notes(z))
        played = G.played(z)
        assert torch.equal(played[0], G.notes(z))  # what is rendered is what is reported
    assert (keys >= 0).all() and set(keys.tolist()) <= {2, 12 + 11}
    G.train()
    with torch.no_grad():
        raw = keys_of_notes(G.notes(z))
    assert not set(raw.tolist()) <= {2, 12 + 11}  # training sees the notes as played


def test_unasked_styles_follow_the_style_shares_and_each_style_its_own_keys():
    from pianogan.errors import PianoGANError
    from pianogan.keys import keys_of_notes

    z = torch.randn(400, 16 + 8 * 8, generator=torch.Generator().manual_seed(0))
    torch.manual_seed(0)
    G, _ = LF.build(small_cfg(styles=("a", "b", "c"), truncation=1.0), PRESET.image_shape)
    uniform = np.bincount(G.default_labels(z).numpy(), minlength=3) / 400
    assert np.all(np.abs(uniform - 1 / 3) < 0.08)  # no shares: every style as often
    G.cfg.style_shares = (0.7, 0.0, 0.3)
    drawn = G.default_labels(z).numpy()
    assert not (drawn == 1).any() and abs((drawn == 0).mean() - 0.7) < 0.08  # the corpus's mix
    with pytest.raises(PianoGANError, match="style_shares"):
        small_cfg(styles=("a", "b"), style_shares=(1.0, 0.0, 0.0))
    with pytest.raises(PianoGANError, match="style_key_shares"):
        small_cfg(styles=("a", "b"), key_shares=[1 / 24] * 24, style_key_shares=[1 / 24] * 24)
    # Style a plays in D major / B minor only, styles b and c in F major / D minor only.
    table = np.zeros((3, 24))
    table[0, [2, 12 + 11]] = 1.0
    table[1:, [5, 12 + 2]] = 1.0
    G.cfg.key_shares, G.cfg.style_key_shares = tuple([1 / 24] * 24), tuple(table.ravel())
    with torch.no_grad():
        G.to_notes.bias[:88].fill_(-3.0)
        G.to_notes.bias[20:68].fill_(-0.1)  # an untrained head that plays many notes, none near the edges
    G.eval()
    zs = z[:24]
    labels = torch.arange(24) % 3
    with torch.no_grad():
        asked = keys_of_notes(G.notes(zs, labels))
        unasked = keys_of_notes(G.notes(zs))  # styles drawn from z, keys from the drawn style's
    assert (asked >= 0).all()
    assert set(asked[labels == 0].tolist()) <= {2, 23} and set(asked[labels > 0].tolist()) <= {5, 14}
    mine = torch.as_tensor(table[G.default_labels(zs).numpy()])
    assert all(mine[i, k] > 0 for i, k in enumerate(unasked.tolist()))


def test_key_labels_condition_the_generator_and_both_critics():
    cfg = small_cfg(styles=("chorale", "keyboard"), key_labels=True, truncation=0.0)
    torch.manual_seed(0)
    G, D = LF.build(cfg, PRESET.image_shape)
    with torch.no_grad():  # FiLM starts at zero; give it weights as training does
        for m in G.modules():
            if isinstance(m, LF.FiLMConv):
                m.film.weight.normal_(0, 0.02)
    G.eval()
    z = G.sample_z(1).repeat(3, 1)
    labels = torch.tensor([0, 0, 0])
    with torch.no_grad():
        # psi 0 removes the global latent; the key, added after truncation, still changes the notes
        notes = G.notes(z, labels, keys=torch.tensor([2, 14, 2]))
        assert (notes[0] - notes[1]).abs().max() > 1e-5 and torch.equal(notes[0], notes[2])
        # ``key`` asks every clip for that key; nothing is transposed afterwards
        assert torch.equal(G.notes(z, labels, key=14), G.notes(z, labels, keys=torch.tensor([14] * 3)))
        # no key asked: drawn from the key shares by z, deterministically
        G.cfg.key_shares = tuple(1.0 if k in (2, 23) else 0.0 for k in range(24))
        drawn = G.default_keys(G.sample_z(64))
        assert set(drawn.tolist()) == {2, 23}
        assert torch.equal(G.notes(z, labels), G.notes(z, labels, keys=G.default_keys(z)))
        # both critics project on the key
        D.key_embed.weight.normal_()
        D.roll.key_embed.weight.normal_()
        x, played = G(z, labels, notes=True, keys=torch.tensor([0, 5, 7]))
        view = D.roll_view(played)
        img, roll = D(x[:1].repeat(3, 1, 1, 1), labels, notes=view[:1].repeat(3, 1, 1, 1),
                      keys=torch.tensor([0, 5, 7]))
        assert img.unique().numel() == 3 and roll.unique().numel() == 3


def test_clip_keys_read_each_clips_key_from_its_roll():
    from pianogan.data.rolls import PIANO_LOW
    from pianogan.keys import KEY_NAMES
    from pianogan.train.conditioning import clip_keys

    rolls = np.zeros((3, 2, 88, 40), np.uint8)
    for t, pitch in enumerate([62, 66, 69, 62, 67, 71, 61, 64, 69, 62]):  # D major: D F# A, G B, A C# E
        rolls[0, 0, pitch - PIANO_LOW, 4 * t] = 90
    for t, pitch in enumerate([57, 60, 64, 57, 62, 65, 56, 59, 64, 57]):  # A minor: A C E, D F, E G# B
        rolls[1, 0, pitch - PIANO_LOW, 4 * t] = 90
    keys = clip_keys(small_cfg(key_labels=True), torch.from_numpy(rolls))
    assert [KEY_NAMES[k] for k in keys.tolist()] == ["D major", "A minor", "D major"]  # silent: most common
    assert clip_keys(small_cfg(), torch.from_numpy(rolls)) is None


def test_pulse_view_reads_a_steady_beat():
    from pianogan.models.roll_lags import autocorrelation, pulse_lags, pulse_profile

    # the autocorrelation against numpy's, lags past the end zero, constant and silent signals ~0
    x = torch.randn(3, 50)
    e = (x - x.mean(1, keepdim=True)).numpy()
    want = np.stack([np.correlate(r, r, "full")[49:] / (r @ r + 1e-4) for r in e])
    got = autocorrelation(x, 60)
    assert got.shape == (3, 60) and np.allclose(got[:, :49].numpy(), want[:, 1:], atol=1e-5)
    assert got[:, 49:].abs().max() == 0
    assert autocorrelation(torch.ones(1, 40), 8).abs().max() < 1e-3
    assert pulse_lags(31.25) == 47
    # a beat every 12 frames peaks at lag 12; the same onsets at random times do not
    beat, loose = torch.zeros(2, 88, 240), torch.zeros(2, 88, 240)
    beat[:, 40, ::12] = 1.0
    loose[:, 40, torch.randperm(240, generator=torch.Generator().manual_seed(0))[:20]] = 1.0
    p, q = pulse_profile(beat, 30), pulse_profile(loose, 30)
    assert p[0].argmax() == 11 and p[0, 11] > 0.8 and q[0, 11] < 0.4 and q.max() < 0.5
    # in the critic: off builds nothing; on, the view gets gradient and learns beat from no beat
    torch.manual_seed(0)
    _, D = LF.build(small_cfg(roll_pulse=True, roll_noise=0.02), PRESET.image_shape)
    assert D.roll.pulse is not None and LF.build(small_cfg(), PRESET.image_shape)[1].roll.pulse is None
    real = torch.stack([beat[:, :, :64], beat[:, :, :64]], dim=1)  # (2, 2, 88, 64): strikes, held
    fake = torch.stack([loose[:, :, :64], loose[:, :, :64]], dim=1)
    opt = torch.optim.Adam(D.roll.pulse.parameters(), lr=1e-2)  # only the pulse view learns
    D.train()
    before = (D.roll(real).mean() - D.roll(fake).mean()).item()
    for _ in range(60):
        loss = torch.nn.functional.softplus(-D.roll(real)).mean() + torch.nn.functional.softplus(D.roll(fake)).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert D.roll(real).mean() - D.roll(fake).mean() > before + 2.0


def test_roll_critic_reads_scale_degrees_of_each_clips_own_key():
    from pianogan.data.rolls import PIANO_LOW
    from pianogan.keys import KEY_NAMES, transpose
    from pianogan.models.roll_critic import fold_pitch_classes, key_of_classes, scale_degrees

    roll = torch.zeros(2, 2, 88, 40)
    for t, pitch in enumerate([62, 66, 69, 62, 67, 71, 61, 64, 69, 62]):  # D major: D F# A, G B, A C# E
        roll[0, 0, pitch - PIANO_LOW, 4 * t] = 0.5
    for t, pitch in enumerate([57, 60, 64, 57, 62, 65, 56, 59, 64, 57]):  # A minor: A C E, D F, E G# B
        roll[1, 0, pitch - PIANO_LOW, 4 * t] = 0.5
    roll[:, 1] = roll[:, 0]
    pc = fold_pitch_classes(roll)
    keys = key_of_classes(pc)
    assert [KEY_NAMES[k] for k in keys.tolist()] == ["D major", "A minor"]
    deg = scale_degrees(pc, keys).sum(-1)  # (2, 2 * 24): per channel, 12 major then 12 minor degrees
    major, minor = deg[0, :12], deg[1, 36:]  # D major's strikes; A minor's held keys
    assert deg[0, 12:24].abs().sum() == 0 and deg[1, :12].abs().sum() == 0
    assert major.nonzero().flatten().tolist() == [0, 2, 4, 5, 7, 9, 11]  # D E F# G A B C#: the scale
    assert major[0] == 1.5  # the tonic, three times
    assert minor.nonzero().flatten().tolist() == [0, 2, 3, 5, 7, 8, 11]  # A B C D E F G#: leading tone
    # the same music a semitone up: the same degrees
    up = torch.stack([transpose(roll[:, c], torch.tensor([1, 1])) for c in (0, 1)], dim=1)
    up_pc = fold_pitch_classes(up)
    assert torch.equal(scale_degrees(up_pc, key_of_classes(up_pc)), scale_degrees(pc, keys))
    # in the critic, the key comes from the clean roll, whatever the instance noise; the view learns
    cfg = small_cfg(roll_degrees=True, roll_noise=0.5)
    torch.manual_seed(0)
    _, D = LF.build(cfg, PRESET.image_shape)
    assert D.roll.degrees is not None and LF.build(small_cfg(), PRESET.image_shape)[1].roll.degrees is None
    D.train()
    D.roll(roll).sum().backward()
    assert D.roll.degrees[0].weight.grad.abs().sum() > 0
    # Through a square-root view every silent entry of a real roll has a slope of 50: R1 taken on
    # the raw strikes was ~2500x larger there and flattened the critic to chance (session 6).
    torch.manual_seed(0)
    rolls = (torch.zeros(8, 88, 64), torch.zeros(8, 88, 64))
    rolls[0][:, 40, ::16] = 0.25
    rolls[1][:, 40, :] = 1.0
    r1 = {}
    for power in (1.0, 0.5):
        cfg = small_cfg(roll_weight=1.0, roll_view_power=power, roll_noise=0.0, r1_gamma=1.0, r1_interval=1)
        torch.manual_seed(1)
        G, D = LF.build(cfg, PRESET.image_shape)
        loss = LF.make_loss(cfg, G, D)
        real = torch.rand(8, 1, 129, 64) * 2 - 1
        _, stats = loss.d_loss(real, G.sample_z(8), step=0, rolls=rolls)
        r1[power] = stats["loss/r1"]
    assert 0.2 < r1[0.5] / r1[1.0] < 5


def test_harmonic_templates_put_partials_at_the_keys_frequencies():
    t = harmonic_templates(513, 8000, 1024)
    f0 = key_frequencies()
    a4 = 69 - 21
    peak = int(np.argmax(t[:, a4]))
    assert abs(peak * 8000 / 1024 - f0[a4]) < 8000 / 1024  # the fundamental's bin
    assert t[round(2 * 440 / 7.8125), a4] > 0.3  # the octave partial
    assert t[:, 86].max() == pytest.approx(1.0) and t[:, 86].sum() < t[:, 0].sum()  # B7: one partial
    assert t[:, 87].max() == 0  # C8 (4186 Hz) lies above the 4 kHz Nyquist: silent


def test_decay_filter_is_causal_exponential():
    x = torch.zeros(1, 2, 10)
    x[0, :, 2] = 1.0
    y = decay_filter(x, torch.tensor([1.0, 4.0]), length=6)
    assert torch.all(y[0, :, :2].abs() < 1e-6)  # nothing before the onset
    assert torch.allclose(y[0, 0, 2:8], torch.exp(-torch.arange(6.0)), atol=1e-6)
    assert torch.all(y[0, :, 8:].abs() < 1e-6)  # cut after `length` frames, not wrapped round
    assert y[0, 1, 5] > y[0, 0, 5]  # the slower key rings longer


def _direct_decay(x: torch.Tensor, tau: torch.Tensor, length: int) -> torch.Tensor:
    """decay_filter's definition summed term by term in float64: (n, C, T), (B, C) -> (n, B, C, T)."""
    x, tau = x.double()[:, None], tau.double()[None, :, :, None]
    out = torch.zeros(x.shape[0], tau.shape[1], x.shape[2], x.shape[3], dtype=torch.float64)
    for k in range(length):
        out[..., k:] += x[..., :x.shape[-1] - k] * torch.exp(-k / tau)
    return out


def test_decay_filter_matches_the_direct_sum_for_several_decays_in_float32():
    x = torch.rand(2, 3, 40, generator=torch.Generator().manual_seed(0))
    tau = torch.tensor([[1.0, 5.0, 30.0], [2.0, 0.5, 9.0]])  # (B, C): two decays of each channel
    want = _direct_decay(x, tau, 12)
    with torch.autocast("cpu", dtype=torch.bfloat16):  # the trainer's: the decays stay float32
        y = decay_filter(x, tau, 12)
    assert y.shape == (2, 2, 3, 40) and y.dtype == torch.float32
    assert torch.allclose(y.double(), want, rtol=1e-5, atol=1e-5)
    assert torch.allclose(decay_filter(x, tau[1], 12).double(), want[:, 1], rtol=1e-5, atol=1e-5)


def test_fill_damper_dips_closes_short_dips_and_keeps_onsets_and_releases():
    g = torch.zeros(1, 2, 30)
    g[0, 0, 5:20] = 1.0
    g[0, 0, 9:11] = 0.0  # a 2-frame dip inside a held note
    g[0, 0, 14] = 0.3  # a partial one
    g[0, 1, 3:6] = 1.0
    g[0, 1, 12:15] = 1.0  # a 6-frame gap: a release and a new press
    out = fill_damper_dips(g, 5)
    assert torch.equal(out[0, 0, 5:20], torch.ones(15))  # the dips are gone
    assert torch.equal(out[0, 0, :5], g[0, 0, :5]) and torch.equal(out[0, 0, 20:], g[0, 0, 20:])  # press, release kept
    assert torch.equal(out[0, 1], g[0, 1])  # a gap as long as the window stays
    assert torch.equal(fill_damper_dips(g, 7)[0, 1, 6:12], torch.ones(6))
    assert torch.equal(fill_damper_dips(g, 6), fill_damper_dips(g, 7))  # even widths round up
    assert fill_damper_dips(g, 1) is g and fill_damper_dips(g, 0) is g  # off


def test_gate_fill_acts_when_sampling_or_when_asked_in_training():
    cfg = small_cfg(gate_fill_seconds=1.0)  # 62.5 frames a second: a 63-frame window
    G, _ = LF.build(cfg, (129, 64))
    z = G.sample_z(2, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        G.eval()
        _, (_, gate) = G(z, notes=True)
        G.cfg = small_cfg()
        _, (_, raw) = G(z, notes=True)
        G.train()
        G.cfg = small_cfg(gate_fill_seconds=1.0)
        _, (_, trained) = G(z, notes=True)
    G.cfg = small_cfg(gate_fill_training_seconds=1.0)
    _, (_, through) = G(z, notes=True)
    assert torch.equal(gate, fill_damper_dips(raw, 63))
    assert (gate - raw).abs().max() > 1e-3  # the untrained gates have dips to fill
    assert torch.equal(trained, raw)  # training sees the gates as they are ...
    assert torch.equal(through.detach(), gate)  # ... unless asked to train through the fill,
    through.sum().backward()  # which passes gradients on to the gate head
    assert G.to_notes.weight.grad.abs().sum() > 0
    # Configs stored before that field (the shipped file among them) still load, as they trained.
    from pianogan.models import config_from_dict

    old = {**SMALL, "gate_fill_seconds": 0.8, "gate_fill_training": False}
    assert config_from_dict("longform", old) == small_cfg(gate_fill_seconds=0.8)
    old["gate_fill_training"] = True
    assert config_from_dict("longform", old).gate_fill_training_seconds == 0.8


def test_strike_ceiling_caps_strikes_only_when_sampling():
    G, _ = LF.build(small_cfg(strike_gain=40.0), (129, 64))  # loud enough that some strikes pass 1
    z = G.sample_z(2, generator=torch.Generator().manual_seed(0))
    _, (raw, _) = play(G, z, strike_gain=40.0)
    _, (capped, _) = play(G, z, strike_gain=40.0, strike_ceiling=1.0)
    _, (trained, _) = play(G, z, training=True, strike_gain=40.0, strike_ceiling=1.0)
    assert raw.max() > 1.0
    assert torch.equal(capped, raw.clamp(max=1.0))  # the strikes below the cap are untouched
    assert torch.equal(trained, raw)  # training sees the strikes as they are


def test_dynamics_map_gives_each_rank_of_strike_the_real_value_and_acts_only_when_sampling():
    from pianogan.errors import PianoGANError
    from pianogan.models.longform_dynamics import apply_strike_map, exceedance_values, fit_strike_map

    rng = np.random.default_rng(0)
    real = np.zeros((64, 88, 40), np.float32)  # 10 strikes a clip, uniform on (0.1, 0.8)
    for clip in real:
        clip[rng.integers(0, 88, 10), rng.integers(0, 40, 10)] = rng.uniform(0.1, 0.8, 10)
    fake = np.zeros_like(real)  # the same notes played twice as hard, plus 30 ghost strikes a clip
    fake[real > 0] = 2.0 * real[real > 0]
    for clip in fake:
        spots = clip == 0
        ghost = np.flatnonzero(spots)[rng.choice(spots.sum(), 30, replace=False)]
        clip.flat[ghost] = rng.uniform(0.01, 0.05, 30)
    knots = fit_strike_map(fake, real)
    x, y = np.array(knots[:len(knots) // 2]), np.array(knots[len(knots) // 2:])
    assert np.all(np.diff(x) > 0) and np.all(np.diff(y) >= 0)
    assert np.allclose(y, x / 2, rtol=0.02)  # the loud notes come back to their real values
    mapped = apply_strike_map(torch.as_tensor(fake), knots, ghost_scale=1.0).numpy()
    rates = np.array([1.0, 3.0, 9.0])
    assert np.allclose(exceedance_values(mapped, rates), exceedance_values(real, rates), rtol=0.03)
    assert np.all(np.diff(np.sort(mapped.ravel())) >= 0) and mapped.min() == 0  # monotone, silence stays silent
    ghosts = (fake > 0) & (real == 0)
    assert np.allclose(mapped[ghosts], fake[ghosts] * y[0] / x[0], rtol=1e-5)  # below the knots: in proportion
    dropped = apply_strike_map(torch.as_tensor(fake), knots, ghost_scale=0.0).numpy()
    kept = fake >= x[0]  # the notes within the corpus's count of strikes (the faintest real few are not)
    assert not dropped[ghosts].any() and (dropped[kept] > 0).all() and not dropped[~kept].any()
    with pytest.raises(PianoGANError, match="strike_map needs knots"):
        small_cfg(strike_map=(0.1, 0.2, 0.3))
    # The model applies the map only when sampling, and only with match_dynamics on.
    G, _ = LF.build(small_cfg(strike_gain=4.0), (129, 64))
    z = G.sample_z(2, generator=torch.Generator().manual_seed(0))
    halve = (0.01, 10.0, 0.005, 5.0)
    _, (raw, _) = play(G, z, strike_gain=4.0)
    _, (off, _) = play(G, z, strike_gain=4.0, strike_map=halve)
    _, (halved, _) = play(G, z, strike_gain=4.0, strike_map=halve, match_dynamics=True)
    _, (trained, _) = play(G, z, training=True, strike_gain=4.0, strike_map=halve, match_dynamics=True)
    assert raw.max() > 0 and torch.equal(off, raw) and torch.equal(trained, raw)
    assert torch.allclose(halved, raw / 2, atol=1e-6)
    # One map per style: each clip goes through its own style's.
    from pianogan.models.longform_dynamics import N_KNOTS, fit_style_maps, map_count

    labels = np.repeat([0, 1], 32)
    maps = fit_style_maps(fake, labels, real * np.where(labels == 1, 0.5, 1.0)[:, None, None], labels, 2)
    assert len(maps) == 4 * N_KNOTS and map_count(maps) == 2 and map_count(knots) == 1
    two = apply_strike_map(torch.as_tensor(fake), maps, 1.0, torch.as_tensor(labels)).numpy()
    assert np.allclose(exceedance_values(two[32:], rates), exceedance_values(real[32:] * 0.5, rates), rtol=0.05)
    assert np.allclose(exceedance_values(two[:32], rates), exceedance_values(real[:32], rates), rtol=0.05)


def test_strikes_on_a_key_whose_damper_stays_down_are_dropped_only_when_sampling_and_asked():
    from pianogan.models.piano_render import drop_dampered

    strikes, gate = torch.zeros(1, 88, 8), torch.zeros(1, 88, 8)
    strikes[0, 10, 2] = strikes[0, 11, 2] = strikes[0, 12, 2] = strikes[0, 13, 7] = 0.5
    gate[0, 11, 2:] = 1.0  # key 11 is held from its strike on: it sounds
    gate[0, 12, 3:] = 1.0  # key 12's damper lifts a frame after the strike: it sounds too
    gate[0, 13, 7] = 0.05  # key 13's stays down (the clip's last frame): only a click
    kept = drop_dampered(strikes, gate)
    assert kept[0, :, 2].nonzero().ravel().tolist() == [11, 12] and kept[0, 13].sum() == 0
    G, _ = LF.build(small_cfg(strike_gain=4.0), (129, 64))
    with torch.no_grad():  # dampers half down (a fresh model opens them all), so some strikes meet one
        G.to_notes.bias[88:].fill_(0.0)
    z = G.sample_z(2, generator=torch.Generator().manual_seed(0))
    _, (raw, gates) = play(G, z, strike_gain=4.0)
    _, (dropped, _) = play(G, z, strike_gain=4.0, drop_dampered_strikes=True)
    _, (trained, _) = play(G, z, training=True, strike_gain=4.0, drop_dampered_strikes=True)
    assert torch.equal(dropped, drop_dampered(raw, gates)) and torch.equal(trained, raw)
    assert (dropped > 0).sum() < (raw > 0).sum()  # the head strikes some keys it holds down


def test_a_strike_lifts_its_keys_damper_in_training_and_sampling_when_asked():
    from pianogan.models.piano_render import drop_dampered, lift_dampers

    strikes, gate = torch.zeros(1, 88, 8), torch.zeros(1, 88, 8)
    strikes[0, 10, 2] = strikes[0, 11, 2] = strikes[0, 12, 7] = 0.01
    gate[0, 11, 2:] = 0.7  # key 11 is held (part way) from its strike on
    lifted = lift_dampers(strikes, gate)
    assert lifted[0, 10].tolist() == [0, 0, 1, 1, 0, 0, 0, 0]  # two frames open, then down again
    assert lifted[0, 11].tolist() == pytest.approx([0, 0, 1, 1, 0.7, 0.7, 0.7, 0.7])
    assert lifted[0, 12, 7] == 1 and lifted[0, 13:].sum() == 0 and lifted[0, :10].sum() == 0
    assert torch.equal(drop_dampered(strikes, lifted), strikes)  # no strike is left with only a click
    G, _ = LF.build(small_cfg(), (129, 64))
    z = G.sample_z(2, generator=torch.Generator().manual_seed(0))
    for training in (True, False):
        img, (raw, gates) = play(G, z, training)
        img_lift, (same, opened) = play(G, z, training, strike_lifts_damper=True)
        assert torch.equal(same, raw) and torch.equal(opened, lift_dampers(raw, gates))
        assert (opened > gates).any() and not torch.allclose(img_lift, img)


def test_the_level_can_be_set_through_the_faint_strikes_below_the_dynamics_map():
    import dataclasses

    from pianogan.errors import PianoGANError
    from pianogan.models.longform_level import calibrate_level, mean_level

    # An identity map whose first knot lies above every strike of the untrained head: all its
    # strikes count as faint ones, so ghost_scale alone moves the level.
    G, _ = LF.build(small_cfg(strike_gain=4.0, strike_map=(1.0, 10.0, 1.0, 10.0), match_dynamics=True), (129, 64))
    G.eval()
    with torch.no_grad():
        loud = mean_level(G, 8)
        G.cfg = dataclasses.replace(G.cfg, ghost_scale=0.25)
        target = mean_level(G, 8)
        G.cfg = dataclasses.replace(G.cfg, ghost_scale=1.0)
        assert target < loud - 0.01
        out = calibrate_level(G, np.full((2, 129, 64), target), n=8, field="ghost_scale")
    assert G.cfg.ghost_scale == pytest.approx(0.25, rel=0.02) and G.cfg.strike_gain == 4.0
    assert out["gain"] == G.cfg.ghost_scale and out["after"] == pytest.approx(target, abs=1e-4)
    G.cfg = dataclasses.replace(G.cfg, ghost_scale=0.0)
    with pytest.raises(PianoGANError, match="ghost_scale is 0"):
        calibrate_level(G, np.full((2, 129, 64), target), n=8, field="ghost_scale")


def test_style_labels_policy():
    rows = [{"source": "bach/bwv1.mxl"}, {"source": "beethoven/opus18no1/movement1.mxl"},
            {"source": "joplin/maple_leaf_rag.mxl"}, {"source": "handel/rinaldo/x.mxl"}]
    names, idx = style_labels(rows, "builtin")
    assert names == ("chorale", "keyboard", "quartet")
    assert [names[i] for i in idx] == ["chorale", "quartet", "keyboard", "keyboard"]
    assert style_labels(rows, "audio:/x") is None
    comp = [{"composer": "A"}] * 60 + [{"composer": "B"}] * 39 + [{"composer": "C"}]
    names, idx = style_labels(comp, "maestro")
    assert names == ("A", "B", "other") and int((idx == 2).sum()) == 1


def _dataset(tmp_path, n: int = 48, labelled: bool = True, midi: bool = False):
    """Synthetic piano-like clips of ``PRESET``: notes of one of two 'styles' (low or high
    register) struck on a grid, rendered with the model's own templates. With ``midi``, the
    notes are also written as the performance of the (single) shard, so the clips have rolls."""
    rng = np.random.default_rng(0)
    tmpl = harmonic_templates(129, 8000, 256)
    imgs = np.empty((n, 129, 64), np.float32)
    played = []  # (start s, key index)
    for i in range(n):
        low = i % 2 == 0
        mag = np.full((129, 64), 1e-3)
        for t0 in range(0, 64, 16):
            key = rng.integers(20, 40) if low else rng.integers(50, 70)
            env = np.exp(-np.arange(64 - t0) / 10.0)
            mag[:, t0:] += tmpl[:, key][:, None] * env[None, :]
            played.append((i * PRESET.clip_seconds + t0 * PRESET.hop_length / PRESET.sample_rate, int(key)))
        imgs[i] = np.clip((np.log(mag) + 3.0) / 3.0, -1, 1)
    rows = [{"source": "bach/x.mxl" if i % 2 == 0 else "joplin/y.mxl",
             "offset_seconds": round(i * PRESET.clip_seconds, 6)} for i in range(n)]
    out = write_dataset(tmp_path / "data", imgs, PRESET, Stats(-3.0, 1.0), rows=rows)
    if midi:
        import pretty_midi

        pm = pretty_midi.PrettyMIDI()
        inst = pretty_midi.Instrument(0)
        inst.notes = [pretty_midi.Note(90, 21 + k, s, s + 0.4) for s, k in played]
        pm.instruments.append(inst)
        (out / "midi").mkdir()
        pm.write(str(out / "midi" / "shard-00000.mid"))
    if labelled:
        info = json.loads((out / "dataset.json").read_text())
        (out / "dataset.json").write_text(json.dumps({**info, "source": "builtin"}))
    return out


def test_trainer_conditions_on_labels_and_rolls_and_resumes_exactly(tmp_path):
    data = _dataset(tmp_path, midi=True)
    # The rates ramp down from step 1 to step 4 (batch 8: 0.008 kimg a step), across the resume.
    decay = {"lr_decay_start_kimg": 0.008, "lr_decay_kimg": 0.024, "lr_final": 0.1}
    cfg = {"base": "tiny", "model": {**SMALL, "render_fit_steps": 5, "roll_width": 32, "pc_match_weight": 1.0,
                                     "scale_match_weight": 1.0, "scale_match_start_kimg": 0.024,
                                     "strike_match_weight": 1.0, "strike_match_start_kimg": 0.016,
                                     "strike_ghost_weight": 1.0, "clash_price_weight": 1.0,
                                     "movement_match_weight": 1.0, "degree_match_weight": 1.0, **decay}}
    a = train("longform", data, tmp_path / "a", config=cfg, steps=6, ckpt_every=3, progress=False, **QUIET)
    from pianogan.train.checkpoint import load_checkpoint, load_generator

    G, meta = load_generator(tmp_path / "a")
    assert tuple(G.cfg.styles) == ("chorale", "keyboard") and G.n_styles == 2
    assert G.cfg.roll_weight > 0  # the dataset has rolls: the roll critic took part
    logged = [json.loads(line) for line in (tmp_path / "a" / "metrics.jsonl").read_text().splitlines()]
    assert all("loss/D_roll" in r and "loss/G_roll" in r and "loss/G_pc" in r and "loss/G_clash" in r
               and "loss/G_movement" in r and "loss/G_degrees" in r for r in logged)
    # the in-scale term joins at 0.024 kimg (step 3 at batch 8), across the resume below
    assert ["loss/G_scale" in r for r in logged] == [False, False, False, True, True, True]
    assert ["loss/G_strike" in r for r in logged] == [False, False, True, True, True, True]  # from step 2
    assert ["loss/G_ghost" in r for r in logged] == [False, False, True, True, True, True]  # with it
    assert [round(r["lr/scale"], 6) for r in logged] == [1.0, 1.0, 0.7, 0.4, 0.1, 0.1]
    train("longform", data, tmp_path / "b", config=cfg, steps=3, ckpt_every=3, progress=False, **QUIET)
    b = train("longform", data, tmp_path / "b", config=None, resume=True, steps=6, ckpt_every=3,
              progress=False, **QUIET)
    assert a["final"] == b["final"]
    wa = load_checkpoint(tmp_path / "a" / "checkpoints" / "step-0000006.pt")["G"]
    wb = load_checkpoint(tmp_path / "b" / "checkpoints" / "step-0000006.pt")["G"]
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
    opt = load_checkpoint(tmp_path / "b" / "checkpoints" / "step-0000006.pt")["opt_G"]
    assert opt["param_groups"][0]["lr"] == pytest.approx(0.1 * opt["param_groups"][0]["initial_lr"])
    # The renderer, fitted to the real rolls before training, is held while G trains.
    w3 = load_checkpoint(tmp_path / "b" / "checkpoints" / "step-0000003.pt")["G"]
    fitted = [k for k in wa if k.startswith("render.")]
    assert fitted and all(torch.equal(wa[k], w3[k]) for k in fitted)
    assert not all(torch.equal(wa[k], w3[k]) for k in wa)  # while the rest learns


# What each condition read from the rolls adds to the nets, and must learn: key labels embed the
# key in G and both critics; a beat clock enters G at its coarsest and finest levels and the roll
# critic's pitch-class conv.
ROLL_CONDITIONS = {
    "key_labels": (("G", "key_embed.weight"), ("D", "key_embed.weight"), ("D", "roll.key_embed.weight")),
    "beat_clock": (("G", "clock_in.0.weight"), ("G", "clock_in.3.weight"), ("D", "roll.classes.0.weight")),
    # a harmony plan enters G at every level; the critics do not see it
    "harmony_plan": (("G", "plan_in.0.weight"), ("G", "plan_in.3.weight")),
}


@pytest.mark.parametrize("flag", sorted(ROLL_CONDITIONS))
def test_trainer_conditions_on_what_it_reads_from_the_rolls_and_resumes_exactly(tmp_path, flag):
    """Trained 4 steps in one go (run a) and in two halves with a resume (run b), a model
    conditioned on keys or beats read from the rolls ends with the same weights either way."""
    from pianogan.train.checkpoint import load_checkpoint, load_generator

    data = _dataset(tmp_path, midi=True)
    cfg = {"base": "tiny", "model": {**SMALL, "render_fit_steps": 5, "roll_width": 32, flag: True}}
    a = train("longform", data, tmp_path / "a", config=cfg, steps=4, ckpt_every=2, progress=False, **QUIET)
    train("longform", data, tmp_path / "b", config=cfg, steps=2, ckpt_every=2, progress=False, **QUIET)
    b = train("longform", data, tmp_path / "b", config=None, resume=True, steps=4, ckpt_every=2,
              progress=False, **QUIET)
    assert a["final"] == b["final"]
    ca = load_checkpoint(tmp_path / "a" / "checkpoints" / "step-0000004.pt")
    cb = load_checkpoint(tmp_path / "b" / "checkpoints" / "step-0000004.pt")
    for net in ("G", "D"):
        assert all(torch.equal(ca[net][k], cb[net][k]) for k in ca[net])
    G, _ = load_generator(tmp_path / "a")
    assert getattr(G.cfg, flag)
    first = load_checkpoint(tmp_path / "a" / "checkpoints" / "step-0000002.pt")
    for net, name in ROLL_CONDITIONS[flag]:
        assert name in ca[net] and not torch.equal(first[net][name], ca[net][name])


def test_unlabelled_dataset_trains_unconditionally(tmp_path):
    data = _dataset(tmp_path, n=16, labelled=False)
    train("longform", data, tmp_path / "r", config={"base": "tiny", "model": SMALL}, steps=1,
          progress=False, **QUIET)
    from pianogan.train.checkpoint import load_generator

    G, _ = load_generator(tmp_path / "r")
    assert G.n_styles == 0 and G.embed is None
    assert G.cfg.roll_weight == 0  # no performance MIDI: images alone, no roll critic


@pytest.mark.slow
def test_training_moves_generated_images_towards_real(tmp_path):
    """Row (frequency) and column (time) profiles of generated clips get far closer to the
    real ones' than the untrained generator's are."""
    from tests._train_data import image_features  # noqa: E402  (the trainer tests' features)
    from pianogan.evaluate.frechet import frechet_distance
    from pianogan.train.checkpoint import load_generator

    data = _dataset(tmp_path, n=128)
    from pianogan.data.dataset import PianoDataset

    real = image_features(PianoDataset(data).images())

    def distance(G) -> float:
        z = G.sample_z(128, generator=torch.Generator().manual_seed(3))
        with torch.no_grad():
            fake = image_features(G(z).squeeze(1).float())
        return frechet_distance(real, fake)

    cfg = {"base": "tiny", "model": {**SMALL, "lr_g": 1e-3, "lr_d": 1e-3}}
    train("longform", data, tmp_path / "r", config=cfg, steps=1, progress=False, **QUIET)
    before = distance(load_generator(tmp_path / "r")[0])
    train("longform", data, tmp_path / "r", config=None, resume=True, steps=250, ckpt_every=250,
          progress=False, **QUIET)
    after = distance(load_generator(tmp_path / "r")[0])
    assert after < before / 5, (before, after)


def test_level_calibration_finds_the_gain_that_made_a_level():
    from dataclasses import replace

    from pianogan.models.longform_level import calibrate_level, mean_level

    torch.manual_seed(0)
    G, _ = LF.build(small_cfg(), PRESET.image_shape)
    G.eval()
    with torch.no_grad():
        G.cfg = replace(G.cfg, strike_gain=3.0)
        target = G(G.sample_z(32, generator=torch.Generator().manual_seed(0)))  # mean_level's latents
        loud = mean_level(G, 32)
    G.cfg = replace(G.cfg, strike_gain=1.0)
    r = calibrate_level(G, target.squeeze(1).numpy(), n=32)
    assert r["before"] < loud and r["gain"] == pytest.approx(3.0, rel=0.05)
    assert G.cfg.strike_gain == r["gain"] and r["after"] == pytest.approx(r["real"], abs=2e-3)


def test_export_and_load_pretrained_checks_the_hash(tmp_path):
    from pianogan.errors import PianoGANError
    from pianogan.pretrained import export, load_pretrained, registry, shipped_models

    data = _dataset(tmp_path, n=16, midi=True)
    train("longform", data, tmp_path / "r", config={"base": "tiny", "model": {**SMALL, "render_fit_steps": 4}}, steps=1,
          progress=False, **QUIET)
    folder = tmp_path / "shipped"
    assert shipped_models(folder) == []
    with pytest.raises(PianoGANError, match="ships no pretrained model"):
        load_pretrained(folder=folder)
    entry = export(tmp_path / "r", "tiny-test", folder=folder, card="# card\n", level_from=data, level_n=16,
                   drift_n=8, figures={"FD": "2.9x floor"})
    level = entry["level"]  # the loudness of the real training clips, approached by one strike gain
    assert abs(level["after"] - level["real"]) < abs(level["before"] - level["real"])
    assert entry["dtype"] == "float16" and (folder / "tiny-test.md").is_file()
    G, info = load_pretrained("tiny-test", folder=folder)
    assert info["sha256"] == registry(folder)["tiny-test"]["sha256"] and G.n_styles == 2
    assert G.cfg.strike_gain == pytest.approx(level["gain"], rel=1e-4)  # the gain ships in the config
    # ... and so do the key shares of the training rolls (every clip of this data is in some key)
    assert sum(entry["key_shares"]) == pytest.approx(1.0, abs=1e-3)
    assert G.cfg.key_shares == pytest.approx(entry["key_shares"], abs=1e-4)
    # ... the styles' shares of the training clips, and each style's own key shares
    from pianogan.data.labels import dataset_labels

    labels = dataset_labels(PianoDataset(data, split="train"))[1]
    mix = np.bincount(labels, minlength=2) / len(labels)
    assert entry["style_shares"] == pytest.approx(dict(zip(("chorale", "keyboard"), mix)), abs=1e-4)
    assert G.cfg.style_shares == pytest.approx(mix, abs=1e-6) and len(G.cfg.style_key_shares) == 48
    assert np.allclose(np.reshape(G.cfg.style_key_shares, (2, 24)).sum(1), 1.0)
    # ... and how fast the global latent drifts in a long piece (matched to consecutive clips' keys)
    from pianogan.models.longform_drift import DRIFT_CANDIDATES

    drift = entry["drift"]["drift_seconds"]
    assert drift == 0 or min(DRIFT_CANDIDATES[1:]) <= drift <= max(DRIFT_CANDIDATES)
    assert entry["drift"]["pairs"] > 0 and entry["drift"]["weighting"] == "per piece"
    assert G.cfg.drift_seconds == entry["drift"]["drift_seconds"]
    with torch.no_grad():
        assert G(G.sample_z(1, n_local=16)).shape == (1, 1, 129, 128)
    with pytest.raises(PianoGANError, match="unknown pretrained model"):
        load_pretrained("nope", folder=folder)
    # The demo plays a shipped model first: a long piece and one clip per style.
    from dataclasses import replace

    from pianogan.demo.config import QUICK
    from pianogan.demo.pipeline import stage_music

    cfg = replace(QUICK, pretrained_folder=str(folder), music_seconds=3.0, style_seconds=1.5)
    done = stage_music(cfg, tmp_path / "demo")
    assert done["model"] == "tiny-test" and done["styles"] == ["chorale", "keyboard"]
    assert done["figures"] == {"FD": "2.9x floor"}  # measured figures travel with the model to the report
    for sub, seconds in (("piece", 3.0), ("chorale", 1.5), ("keyboard", 1.5)):
        [clip] = json.loads((tmp_path / "demo" / "music" / sub / "generated.json").read_text())["clips"]
        assert clip["seconds"] == pytest.approx(seconds, abs=1e-3)
    assert stage_music(replace(cfg, pretrained_folder=str(tmp_path / "none")), tmp_path / "d2") == {
        "skipped": "no pretrained model ships"}
    raw = bytearray((folder / "tiny-test.safetensors").read_bytes())
    raw[-1] ^= 0xFF
    (folder / "tiny-test.safetensors").write_bytes(bytes(raw))
    with pytest.raises(PianoGANError, match="does not match its recorded hash"):
        load_pretrained("tiny-test", folder=folder)
    # Sampling settings may be stored in place of the run's; settings that change training may not.
    other = tmp_path / "set"
    export(tmp_path / "r", "set-test", folder=other, settings={"truncation": "0.8", "gate_fill_seconds": "0.5"})
    G, _ = load_pretrained("set-test", folder=other)
    assert (G.cfg.truncation, G.cfg.gate_fill_seconds) == (0.8, 0.5)
    with pytest.raises(PianoGANError, match="lr_g: not a sampling setting of the longform family"):
        export(tmp_path / "r", "set-test", folder=other, settings={"lr_g": "0.1"})
    with pytest.raises(PianoGANError, match="'high' is not a float"):
        export(tmp_path / "r", "set-test", folder=other, settings={"truncation": "high"})
    with pytest.raises(PianoGANError, match="'maybe' is not a bool"):
        export(tmp_path / "r", "set-test", folder=other, settings={"match_dynamics": "maybe"})
    # Matching the dynamics fits a strike map to the training rolls; the level is set after it.
    entry = export(tmp_path / "r", "dyn-test", folder=other, level_from=data, level_n=16, drift_n=8,
                   settings={"match_dynamics": "yes", "ghost_scale": "0.5"})
    G, _ = load_pretrained("dyn-test", folder=other)
    assert G.cfg.match_dynamics and G.cfg.ghost_scale == 0.5
    assert list(G.cfg.strike_map) == pytest.approx(entry["dynamics"]["knots"], abs=1e-5)
    assert entry["dynamics"]["per_style"] and len(G.cfg.strike_map) == 2 * 2 * 24  # chorale, keyboard
    assert G.cfg.strike_gain == pytest.approx(entry["level"]["gain"], rel=1e-4)
    # ... or through the faint strikes below the map first, the gain taking only what they miss.
    entry = export(tmp_path / "r", "ghost-test", folder=other, level_from=data, level_n=16, drift_n=8,
                   settings={"match_dynamics": "yes", "level_through_ghosts": "yes"})
    G, _ = load_pretrained("ghost-test", folder=other)
    assert G.cfg.ghost_scale == pytest.approx(entry["level"]["ghost_scale"], rel=1e-4) != 1.0
    assert G.cfg.strike_gain == pytest.approx(entry["level"]["gain"], rel=1e-4)
    # A map that is stored but switched off scales nothing: the gain alone sets the level.
    entry = export(other / "ghost-test.safetensors", "off-test", folder=other, level_from=data, level_n=16, drift_n=8,
                   settings={"match_dynamics": "no"})
    G, _ = load_pretrained("off-test", folder=other)
    assert G.cfg.strike_map and G.cfg.level_through_ghosts and "ghost_scale" not in entry["level"]


def test_generate_makes_any_length_with_a_style(tmp_path, capsys):
    from pianogan.cli import main as cli_main

    data = _dataset(tmp_path, n=16)
    train("longform", data, tmp_path / "r", config={"base": "tiny", "model": SMALL}, steps=1,
          progress=False, **QUIET)
    for seconds in (0.5, 1.008, 7.3):  # shorter than, equal to and longer than a training clip
        out = tmp_path / f"g{seconds}"
        assert cli_main(["generate", str(tmp_path / "r"), "--out", str(out), "--n", "2", "--seconds",
                         str(seconds), "--style", "keyboard", "--no-plots", "--json"]) == 0
        summary = json.loads(capsys.readouterr().out)
        assert summary["seconds"] == [pytest.approx(seconds, abs=1e-3)] * 2
        doc = json.loads((out / "generated.json").read_text())
        assert [c["style"] for c in doc["clips"]] == ["keyboard", "keyboard"]
        # Every frame is played: the last quarter of the piece is as loud as the rest (a piece
        # squeezed onto one clip's frames was silent after them).
        import soundfile as sf

        audio, _ = sf.read(out / "clip-0000.wav")
        quarter = len(audio) // 4
        assert np.sqrt(np.mean(audio[-quarter:] ** 2)) > 0.2 * np.sqrt(np.mean(audio[:quarter] ** 2))
    assert cli_main(["generate", str(tmp_path / "r"), "--out", str(tmp_path / "x"), "--style", "jazz"]) == 2
    err = capsys.readouterr().err
    assert "unknown style 'jazz'" in err and "generate:" not in err.replace("pianogan generate:", "")  # no bar first
    # --drift: the global latent moves through fresh anchors (recorded, so the piece can be made again)
    import soundfile as sf

    args = ["generate", str(tmp_path / "r"), "--n", "1", "--seconds", "7.3", "--style", "keyboard", "--no-plots"]
    assert cli_main(args + ["--out", str(tmp_path / "d"), "--drift", "1.5"]) == 0
    doc = json.loads((tmp_path / "d" / "generated.json").read_text())
    assert doc["clips"][0]["settings"]["drift"] == 1.5
    assert not np.allclose(sf.read(tmp_path / "d" / "clip-0000.wav")[0], sf.read(tmp_path / "g7.3" / "clip-0000.wav")[0])
    # --from makes a piece again, sample for sample (one pass over its recorded latent)
    assert cli_main(["generate", "--from", str(tmp_path / "d" / "generated.json"), "--out", str(tmp_path / "again"),
                     "--no-plots"]) == 0
    assert np.array_equal(sf.read(tmp_path / "again" / "clip-0000.wav")[0], sf.read(tmp_path / "d" / "clip-0000.wav")[0])
    assert cli_main(args + ["--out", str(tmp_path / "d2"), "--drift", "-1"]) == 2
    assert "drift must be >= 0" in capsys.readouterr().err


def test_evaluate_pieces_on_a_run_with_note_measures(tmp_path, capsys):
    """`evaluate-pieces` on a longform run: long pieces, 20 s-style note measures and styles."""
    from pianogan.cli import main as cli_main
    from pianogan.data.dataset import PianoDataset

    imgs = PianoDataset(_dataset(tmp_path, n=48)).images()
    # two pieces of 24 consecutive clips each (real excerpts are consecutive clips of one piece)
    rows = [{"source": "bach/x.mxl" if i < 24 else "joplin/y.mxl",
             "offset_seconds": round((i % 24) * PRESET.clip_seconds, 6),
             "split": "validation" if i % 4 == 3 else "train"} for i in range(48)]
    data = write_dataset(tmp_path / "pieces", imgs, PRESET, Stats(-3.0, 1.0), rows=rows)
    info = json.loads((data / "dataset.json").read_text())
    (data / "dataset.json").write_text(json.dumps({**info, "source": "builtin"}))
    train("longform", data, tmp_path / "r", config={"base": "tiny", "model": SMALL}, steps=1,
          progress=False, **QUIET)
    assert cli_main(["evaluate-pieces", "--real", str(data), "--fake", str(tmp_path / "r"), "--seconds", "21",
                     "--n", "1", "--style-n", "4", "--note-seconds", "2", "--note-n", "2", "--json", "--quiet",
                     "--repeats", "2", "--out", str(tmp_path / "ev")]) == 0
    report = json.loads(capsys.readouterr().out)
    # --repeats 2: a second draw (fresh latents and excerpts) adds its figures; the styles are read once
    rep = report["repeats"]
    assert rep["seeds"] == [0, 10000] and len(rep["draws"]) == 2
    assert {"window_key_agreement", "in_key_share", "halves_key_agreement"} <= set(rep["mean"])
    assert set(rep["mean"]["in_key_share"]) == {"real", "fake", "gap"}
    assert report["notes"]["n_fake"] == 2 and report["notes"]["n_real"] == 2
    assert report["notes"]["seconds"] == pytest.approx(2.0, abs=0.02)
    assert set(report["notes"]["sets"]) == {"real", "fake"} and "style" in report
    assert "## Notes of 2 s pieces" in (tmp_path / "ev" / "pieces.md").read_text()
    assert "## Over 2 draws (seeds 0, 10000)" in (tmp_path / "ev" / "pieces.md").read_text()


def test_drift_moves_the_global_latent_through_fresh_anchors_only_when_sampling():
    from pianogan.models.longform import drift_path

    z = torch.randn(3, 16)
    path = drift_path(z, 10, 4.0, [5, 6, 7])
    assert path.shape == (3, 10, 16) and torch.equal(path[:, 0], z)  # anchor 0 is the piece's own
    assert not torch.allclose(path[:, 4], z)  # the next anchor: a fresh draw
    assert torch.equal(drift_path(z, 25, 4.0, [5, 6, 7])[:, :10], path)  # a longer piece starts the same
    assert torch.equal(drift_path(z, 10, 4.0, [5, 6, 7]), path)  # a function of its seeds
    # Every step of the path is again N(0, I): each moment is a latent the model was trained on.
    many = drift_path(torch.randn(2000, 16), 9, 4.0, list(range(2000)))
    assert many[:, 2].std().item() == pytest.approx(1.0, abs=0.05)  # halfway between two anchors
    assert many[:, 6].std().item() == pytest.approx(1.0, abs=0.05)

    cfg = small_cfg(styles=("chorale", "keyboard"), drift_seconds=2.0, truncation=1.0)
    G = _styled_generator(cfg, 0.05)
    z = G.sample_z(2, n_local=24)  # 24 local steps of 0.128 s: anchors every 2 s
    labels = torch.tensor([0, 1])
    G.eval()
    with torch.no_grad():
        moving = G(z, labels)
        assert torch.equal(moving, G(z, labels))  # the same latent makes the same piece
        G.cfg = small_cfg(styles=("chorale", "keyboard"), drift_seconds=0.0, truncation=1.0)
        still = G(z, labels)
        assert (moving - still).abs().max() > 1e-3
        assert torch.equal(G(z, labels, drift_seconds=2.0), moving)  # a call's drift overrides the config's
        G.cfg = cfg
        G.train()  # training never drifts: a training clip has one global latent
        assert torch.allclose(G(z, labels), still, atol=1e-5)


def test_drift_calibration_matches_the_key_changes_of_consecutive_real_clips():
    from pianogan.data.rolls import PIANO_LOW
    from pianogan.models.longform_drift import calibrate_drift, continues, real_agreement, window_scales

    def scale_roll(tonic: int, frames: int = 64) -> torch.Tensor:
        roll = torch.zeros(88, frames)
        for i, step in enumerate((0, 2, 4, 5, 7, 9, 11)):  # one of each note of the major scale
            roll[(60 + tonic + step - PIANO_LOW), 8 * i] = 0.5
        return roll

    c, fs = scale_roll(0), scale_roll(6)
    assert window_scales(torch.cat([c, fs, torch.zeros(88, 64)], -1)[None], 64).tolist() == [[0, 6, -1]]
    rows = [{"shard": s, "offset_seconds": o, "duration_seconds": 1.0}
            for s, o in (("a", 0.0), ("a", 1.0), ("a", 2.0), ("a", 5.0), ("b", 6.0), ("b", 7.0))]
    assert continues(rows).tolist() == [True, True, False, False, True]
    # pairs (C, C), (C, F#) in piece a and (F#, F#) in piece b continue. By pairs 2 of 3 agree;
    # each piece weighing alike, (1/2 + 1) / 2: a long piece does not outvote short ones
    clips = torch.stack([c, c, fs, c, fs, fs])
    assert real_agreement(clips, rows) == (pytest.approx(3 / 4), 3, 2)

    torch.manual_seed(0)
    G, _ = LF.build(small_cfg(), PRESET.image_shape)
    out = calibrate_drift(G, 0.5, window=16, candidates=(0.0, 1.0, 4.0), n=4)
    assert set(out["agreement"]) == {0.0, 1.0, 4.0}
    assert out["drift_seconds"] == G.cfg.drift_seconds
    assert out["drift_seconds"] == 0 or 1.0 <= out["drift_seconds"] <= 4.0


def test_the_drift_is_read_between_candidates_on_a_curve_made_monotone():
    from pianogan.models.longform_drift import pick_drift

    # halfway between 20 s (0.50) and 80 s (0.60) in log period: 40 s
    assert pick_drift({0.0: 0.7, 20.0: 0.5, 80.0: 0.6}, 0.55) == pytest.approx(40.0)
    # a noisy dip (60 s below 40 s) is pooled with its neighbour, not read as a second crossing
    noisy = {0.0: 0.66, 20.0: 0.47, 40.0: 0.58, 60.0: 0.56, 90.0: 0.62}
    assert 40.0 <= pick_drift(noisy, 0.575) <= 60.0
    pooled = 0.5 * np.log(40.0 * 60.0)  # 40 s and 60 s pooled at 0.57, at their mean log period
    assert pick_drift(noisy, 0.6) == pytest.approx(np.exp(np.interp(0.6, [0.57, 0.62], [pooled, np.log(90.0)])), abs=0.05)
    # outside the curve: the shortest period, or no drift when it agrees closer than the longest
    assert pick_drift(noisy, 0.3) == 20.0
    assert pick_drift(noisy, 0.65) == 0.0 and pick_drift(noisy, 0.63) == 90.0
    assert pick_drift({0.0: 0.6}, 0.5) == 0.0
    # `pianogan export` reports a period read between candidates (it once looked it up among them
    # and failed with a KeyError after writing the file, which stopped `make model`)
    from pianogan.commands.export import summary

    entry = {"file": "m.safetensors", "bytes": 2 ** 20, "dtype": "float16", "sha256": "0" * 64,
             "drift": {"drift_seconds": 48.3, "real": 0.6, "agreement": {"0": 0.65, "40": 0.58, "50": 0.6}}}
    assert "anchors every 48.3 s" in summary("m", entry)[1]
    assert "model 0.58 at 40 s, 0.60 at 50 s, real 0.60" in summary("m", entry)[1]
    entry["drift"].update(drift_seconds=40.0)
    assert "model 0.58, real 0.60" in summary("m", entry)[1]


def test_rubato_strike_is_the_rubato_recipe_with_the_strike_term_and_sampling_settings():
    """The shipped model's preset: session 23's run (rubato + the strike term from step 0) plus
    four settings that act only outside training, so ``make model`` trains exactly that run."""
    import dataclasses

    from pianogan.models.longform import CONFIGS, SAMPLING_FIELDS

    rs = CONFIGS["rubato-strike"]
    assert rs.strike_match_weight == 1.0 and rs.strike_match_start_kimg == 0
    assert (rs.truncation, rs.gate_fill_seconds, rs.strike_ceiling, rs.match_dynamics, rs.level_through_ghosts) == (
        0.8, 0.8, 1.0, True, True)
    assert CONFIGS["rubato-lift"] == dataclasses.replace(rs, strike_lifts_damper=True)
    training = {f: getattr(CONFIGS["rubato"], f) for f in SAMPLING_FIELDS}
    assert dataclasses.replace(rs, strike_match_weight=0.0, **training) == CONFIGS["rubato"]


def test_rubato_scale_is_the_rubato_recipe_with_the_in_scale_term_for_its_last_500_steps():
    """The preset claims to retrace the rubato run to step 5000 and add only the term after it
    (docs/results.md, section 24): every other setting must be rubato's."""
    import dataclasses

    from pianogan.models.longform import CONFIGS

    rs = CONFIGS["rubato-scale"]
    assert rs.scale_match_weight > 0 and rs.scale_match_start_kimg * 1000 / rs.batch_size == 5000
    assert dataclasses.replace(CONFIGS["rubato"], scale_match_weight=rs.scale_match_weight,
                               scale_match_start_kimg=rs.scale_match_start_kimg) == rs
