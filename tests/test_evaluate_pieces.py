"""Long-piece and style measures of issue 10 (pianogan.evaluate.pieces / .style) and
`pianogan evaluate-pieces`."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from pianogan.cli import main
from pianogan.config import Preset, get_preset
from pianogan.data.dataset import PianoDataset, write_dataset
from pianogan.errors import PianoGANError
from pianogan.evaluate import pieces as P
from pianogan.evaluate import style as S
from pianogan.spectrogram import Stats, log_magnitude, normalize, stats_of, stft_magnitude
from pianogan.synth import piano_note

# 2 s clips at 8 kHz, 129 bins x 126 frames, nothing resized (16000 samples = 125 hops).
SMALL = Preset("test-pieces", 8_000, 256, 128, 2.0, 129, 126, description="tests: no-resize 2 s clips")
STATS = Stats(-4.0, 2.5)
STYLES = ("low", "high", "noise")


def style_images(style: int, n: int, rng: np.random.Generator) -> np.ndarray:
    """(n, 129, 126) clips of one synthetic style: low partials, high partials, or noise bursts."""
    h, w = SMALL.image_shape
    rows, cols = np.arange(h)[:, None], np.arange(w)[None, :]
    out = np.empty((n, h, w), np.float32)
    for i in range(n):
        img = np.full((h, w), -0.7) + rng.normal(0, 0.05, (h, w))
        if style == 2:
            for start in rng.integers(0, w - 10, 6):
                img[:, start:start + 8] += rng.uniform(0.8, 1.2)
        else:
            f0 = rng.uniform(3, 6) if style == 0 else rng.uniform(25, 35)
            decay = np.exp(-cols / (w * rng.uniform(0.5, 2.0)))
            for k in range(1, 5):
                img += 1.4 / k * np.exp(-0.5 * ((rows - k * f0) / 1.0) ** 2) * decay
        out[i] = np.clip(img, -1, 1)
    return out


@pytest.fixture(scope="module")
def style_dataset(tmp_path_factory):
    """120 clips, 3 styles; 30 per style train, 10 per style held out (validation / test)."""
    rng = np.random.default_rng(0)
    images, rows, labels = [], [], []
    for s in range(3):
        images.append(style_images(s, 40, rng))
        rows += [{"split": "train" if i < 30 else ("validation" if i < 35 else "test"), "source": f"s{s}/{i}"}
                 for i in range(40)]
        labels += [s] * 40
    path = write_dataset(tmp_path_factory.mktemp("styles") / "ds", np.concatenate(images), SMALL, STATS, rows)
    return PianoDataset(path), np.array(labels)


@pytest.fixture(scope="module")
def classifier(style_dataset):
    ds, labels = style_dataset
    return S.fit_style_classifier(ds, labels=(STYLES, labels))


def test_classifier_separates_clearly_different_styles(classifier, style_dataset):
    ds, labels = style_dataset
    assert classifier.n_train == 90 and classifier.n_heldout == 30
    assert classifier.real_accuracy >= 0.9 and classifier.chance == pytest.approx(1 / 3)
    assert all(v >= 0.8 for v in classifier.real_per_class.values())
    held = [i for i, r in enumerate(ds.rows) if r["split"] != "train"]
    assert classifier.accuracy(ds.images(held), labels[held]) == pytest.approx(classifier.real_accuracy)
    again = S.fit_style_classifier(ds, labels=(STYLES, labels))  # deterministic
    assert again.real_accuracy == classifier.real_accuracy and again.real_confusion == classifier.real_confusion


def test_classifier_is_near_chance_on_shuffled_labels(style_dataset):
    ds, labels = style_dataset
    shuffled = np.random.default_rng(1).permutation(labels)
    clf = S.fit_style_classifier(ds, labels=(STYLES, shuffled))
    assert clf.real_accuracy < 0.6  # chance 1/3; the clean labels give >= 0.9


def test_style_report_holds_fake_against_real(classifier, style_dataset):
    ds, labels = style_dataset
    rng = np.random.default_rng(5)
    fake = np.concatenate([style_images(s, 8, rng) for s in range(3)])
    asked = np.repeat(np.arange(3), 8)
    good = S.style_report(ds, fake, asked, classifier)
    assert good["fake_accuracy"] >= 0.9 and good["ratio"] >= 0.9 and good["passes"]
    assert good["chance"] == pytest.approx(1 / 3) and set(good["per_style"]) == set(STYLES)
    wrong = S.style_report(ds, fake, (asked + 1) % 3, classifier)  # plays the wrong style
    assert wrong["fake_accuracy"] < 0.2 and not wrong["passes"]
    assert np.array(wrong["fake_confusion"]).sum() == 24
    with pytest.raises(PianoGANError):
        S.style_report(ds, fake, asked[:5], classifier)


def _smooth_piece(width: int, seed: int) -> np.ndarray:
    """A (129, width) piece: slowly moving partials, a little frame noise, no seams."""
    rng = np.random.default_rng(seed)
    rows, t = np.arange(129)[:, None], np.arange(width)[None, :]
    f0 = 8 + 3 * np.sin(2 * np.pi * t / 400 + seed)
    img = -0.6 + sum(0.8 / k * np.exp(-0.5 * ((rows - k * f0) / 1.5) ** 2) for k in range(1, 6))
    return np.clip(img + rng.normal(0, 0.04, img.shape), -1, 1).astype(np.float32)


def test_join_flux_flags_clicks_at_the_boundaries_only():
    p99 = P.flux_p99(np.stack([_smooth_piece(1001, s) for s in (10, 11)]), SMALL, STATS)
    smooth = np.stack([_smooth_piece(1001, s) for s in (0, 1)])
    clicks = smooth.copy()
    clicks[:, :, 100::100] = 0.9  # a loud broadband click at every block boundary
    flagged = P.join_flux(clicks, SMALL, STATS, 100, p99)
    assert flagged["boundaries"] == list(range(100, 1001, 100))
    assert flagged["share_above_p99"] == 1.0 and flagged["max_ratio"] > 3 and flagged["boundary_rank"] > 0.95
    assert flagged["frame_share_above_p99"] < 0.05  # the seams, not the piece, pass p99
    clean = P.join_flux(smooth, SMALL, STATS, 100, p99)
    assert clean["share_above_p99"] <= 0.1 and clean["max_ratio"] < 1.5
    spiky = smooth.copy()
    spiky[:, :, 5::10] = 0.9  # clicks all through the pieces, never at a boundary: a high base rate
    busy = P.join_flux(spiky, SMALL, STATS, 100, p99)
    assert busy["frame_share_above_p99"] > 0.08 and busy["share_above_p99"] <= 0.05
    assert 0.2 < clean["boundary_rank"] < 0.8 and 0.5 < clean["boundary_to_median"] < 2
    explicit = P.join_flux(clicks[0], SMALL, STATS, [300, 700], p99)  # one (H, W) image, listed frames
    assert explicit["boundaries"] == [300, 700] and explicit["share_above_p99"] == 1.0


def test_frame_flux_is_the_rise_of_log_magnitude():
    img = np.full((1, 129, 10), -0.5, np.float32)
    img[0, :, 5:] = 0.0  # every bin rises by 0.5 * clip_sigma * std nats at frame 5
    flux = P.frame_flux(img, SMALL, STATS)
    mag = lambda x: np.exp(x * SMALL.clip_sigma * STATS.std + STATS.mean) - SMALL.eps  # noqa: E731
    rise = np.log(mag(0.0) + SMALL.eps) - np.log(mag(-0.5) + SMALL.eps)
    assert flux[0, 5] == pytest.approx(129 * rise, rel=1e-4)
    assert np.count_nonzero(flux) == 1


def test_real_excerpts_join_consecutive_clips_of_one_piece(tmp_path):
    # Piece a: 4 consecutive clips; b: offsets 0, 2, 6 (a gap); c: 0, 4 (no two consecutive);
    # d shares a's shard but is another source. Each clip image is constant: 0.2 * piece + 0.02 * offset.
    spec = {"a": [0, 2, 4, 6], "b": [0, 2, 6], "c": [0, 4], "d": [2, 4]}
    rows, images = [], []
    for k, (name, offsets) in enumerate(spec.items()):
        for off in offsets:
            rows.append({"source": name, "offset_seconds": float(off), "split": "train"})
            images.append(np.full(SMALL.image_shape, 0.2 * k + 0.02 * off, np.float32))
    order = np.random.default_rng(0).permutation(len(rows))  # manifest order does not matter
    ds = PianoDataset(write_dataset(tmp_path / "ds", np.stack(images)[order], SMALL, STATS,
                                    [rows[i] for i in order]))
    out = P.real_excerpts(ds, seconds=4.0)
    assert out.shape == (4, 129, SMALL.frames_for(4.0)) == (4, 129, 251)
    stride, pad = 125, P.edge_pad(SMALL)
    firsts = []
    for x in out:
        left, right = x[:, :stride - pad], x[:, stride + pad:]
        assert np.ptp(left) < 1e-3 and np.ptp(right) < 1e-3  # each side one clip
        a, b = float(left[0, 0]), float(right[0, 0])
        assert int(a / 0.2 + 0.01) == int(b / 0.2 + 0.01)  # the same piece ...
        assert b - a == pytest.approx(0.04, abs=2e-3)  # ... its next clip (offset + 2 s)
        assert x[0, stride] == pytest.approx((a + b) / 2, abs=2e-3)  # the join: interpolated
        firsts.append(round(a, 2))
    assert sorted(firsts) == [0.0, 0.08, 0.2, 0.64]  # a@0, a@4, b@0, d@2
    three = P.real_excerpts(ds, seconds=4.0, n=3)
    assert len({int(float(x[0, 0]) / 0.2 + 0.01) for x in three}) == 3  # three different pieces first
    with pytest.raises(PianoGANError, match="excerpts"):
        P.real_excerpts(ds, seconds=9.0)


def test_real_excerpts_do_not_favour_openings(tmp_path):
    # Two pieces of 8 consecutive 2 s clips: 4 runs of 4 s each. The first excerpt of a piece must
    # come from anywhere in it (a seeded draw), not always from its opening.
    rows, images = [], []
    for k, name in enumerate("ab"):
        for off in range(0, 16, 2):
            rows.append({"source": name, "offset_seconds": float(off), "split": "train"})
            images.append(np.full(SMALL.image_shape, 0.2 * k + 0.01 * off, np.float32))
    ds = PianoDataset(write_dataset(tmp_path / "ds", np.stack(images), SMALL, STATS, rows))
    starts = set()
    for seed in range(8):
        two = P.real_excerpts(ds, seconds=4.0, n=2, seed=seed)
        assert len({int(float(x[0, 0]) / 0.2 + 0.01) for x in two}) == 2  # still one per piece first
        starts |= {round(float(x[0, 0]) * 100) % 20 for x in two}  # offset (s) of each excerpt
    assert starts - {0}  # not only openings
    assert starts <= {0, 4, 8, 12}  # runs are still whole, non-overlapping runs


def test_real_excerpt_halves_come_from_disjoint_pieces(tmp_path):
    # Six pieces of 6 consecutive 2 s clips (3 runs of 4 s each) and one of 2 clips (1 run);
    # each clip image is the constant 0.1 * piece + 0.01 * offset, so an excerpt names its piece.
    rows, images = [], []
    for k in range(7):
        for off in range(0, 12 if k < 6 else 4, 2):
            rows.append({"source": f"p{k}", "offset_seconds": float(off), "split": "train"})
            images.append(np.full(SMALL.image_shape, 0.1 * k + 0.01 * off, np.float32))
    ds = PianoDataset(write_dataset(tmp_path / "ds", np.stack(images), SMALL, STATS, rows))
    piece = lambda x: int(float(x[0, 0]) / 0.1 + 0.05)  # noqa: E731
    for seed in range(4):
        h = P.real_excerpt_halves(ds, 4.0, n=8, seed=seed)
        a, b = h.a, h.b
        assert h.disjoint and a.shape[1:] == b.shape[1:] == (129, SMALL.frames_for(4.0))
        pa, pb = {piece(x) for x in a}, {piece(x) for x in b}
        assert not pa & pb and pa | pb == set(range(7))  # every piece used, none in both halves
        # the piece indices name the pieces (dataset order p0..p6 sorts as the pieces do)
        assert [piece(x) for x in a] == h.pieces_a.tolist() and [piece(x) for x in b] == h.pieces_b.tolist()
        assert abs(len(a) - len(b)) <= 2  # halves balanced by runs, not by pieces (19 runs)
        assert len({round(float(x[0, 0]), 3) for x in np.concatenate([a, b])}) == len(a) + len(b)  # no repeats
    a = P.real_excerpt_halves(ds, 4.0, n=3).a
    assert len(a) == 3 and len({piece(x) for x in a}) == 3  # round-robin inside a half
    one = [{"source": "solo", "offset_seconds": 2.0 * j, "split": "train"} for j in range(10)]  # 5 runs
    solo = np.stack([np.full(SMALL.image_shape, 0.01 * j, np.float32) for j in range(10)])
    a, b, _, _, disjoint = P.real_excerpt_halves(
        PianoDataset(write_dataset(tmp_path / "one", solo, SMALL, STATS, one)), 4.0, n=8)
    assert not disjoint and len(a) == len(b) == 2  # one piece: its runs split in two, none shared
    assert not {float(x[0, 0]) for x in a} & {float(x[0, 0]) for x in b}
    with pytest.raises(PianoGANError, match="halves"):
        P.real_excerpt_halves(PianoDataset(write_dataset(tmp_path / "short", solo[:6], SMALL, STATS, one[:6])),
                              4.0, n=8)


def test_fake_pieces_take_the_styles_of_the_real_excerpts_they_are_compared_with(tmp_path, monkeypatch):
    from pianogan.commands.evaluate_pieces import reference_styles

    # Seven pieces as above: p0-p2 long (3 runs of 4 s each) in style "long", p3-p5 the same
    # length in "mid", p6 one run in "short". Half B (the floor's stand-in for a generator) and
    # the long pieces' excerpts come round-robin over pieces, so their mix is not the clips'.
    rows, images, style_of = [], [], {}
    for k in range(7):
        style_of[f"p{k}"] = "long" if k < 3 else "mid" if k < 6 else "short"
        for off in range(0, 12 if k < 6 else 4, 2):
            rows.append({"source": f"p{k}", "offset_seconds": float(off), "split": "train"})
            images.append(np.full(SMALL.image_shape, 0.1 * k + 0.01 * off, np.float32))
    ds = PianoDataset(write_dataset(tmp_path / "ds", np.stack(images), SMALL, STATS, rows))
    names = ("long", "mid", "short")
    labels = np.array([names.index(style_of[r["source"]]) for r in ds.rows])
    monkeypatch.setattr("pianogan.data.labels.dataset_labels", lambda _ds: (names, labels))
    g_styles = ("short", "long", "mid")  # the generator's own order
    piece_style = lambda x: style_of[f"p{int(float(x[0, 0]) / 0.1 + 0.05)}"]  # noqa: E731
    for seed in range(3):
        h = P.real_excerpt_halves(ds, 4.0, n=8, seed=seed)
        want = [g_styles.index(piece_style(x)) for x in h.b]
        got = reference_styles(ds, g_styles, 4.0, 8, seed, half_b=True)
        assert got.tolist() == [want[i % len(want)] for i in range(8)]  # B's styles in turn
        long_ref = P.real_excerpts(ds, 4.0, n=5, seed=seed)
        assert reference_styles(ds, g_styles, 4.0, 5, seed, half_b=False).tolist() == \
            [g_styles.index(piece_style(x)) for x in long_ref]
    # more pieces asked than excerpts exist: all of them, in turn
    assert len(reference_styles(ds, g_styles, 4.0, 40, 0, half_b=False)) == 40
    assert reference_styles(ds, ("other",), 4.0, 8, 0, half_b=True) is None  # not the generator's styles


def _scale_piece(tonics: list[int], window_s: float, sr: int = 8000) -> np.ndarray:
    """Audio: per window, arpeggios over the major scale of that window's tonic (pitch class)."""
    audio = np.zeros(int(len(tonics) * window_s * sr) + sr, np.float32)
    step = 0.25
    for w, tonic in enumerate(tonics):
        scale = [60 + tonic + d for d in (0, 2, 4, 5, 7, 9, 11)]
        for j in range(int(window_s / step)):
            midi = scale[j % 7] + (12 if (j // 7) % 2 else 0)
            note = piano_note(440.0 * 2 ** ((midi - 69) / 12), 0.4, sr, 0.5)
            a = int((w * window_s + j * step) * sr)
            audio[a:a + len(note)] += note
    return audio[:int(len(tonics) * window_s * sr)]


def test_window_key_agreement_one_scale_vs_changing_scales():
    from pianogan.transcribe import Transcriber

    preset = get_preset("10s-8k")
    audio = np.stack([_scale_piece([0, 0, 0], 10.0), _scale_piece([0, 6, 0], 10.0)])
    logmag = log_magnitude(stft_magnitude(torch.from_numpy(audio), preset.n_fft, preset.hop_length), preset.eps)
    stats = stats_of(logmag)
    images = normalize(logmag, stats, preset.clip_sigma).numpy()
    out = P.window_key_agreement(images, preset, stats, Transcriber(threads=1))
    assert out["per_piece"] == [1.0, 0.0]
    assert out["scales"][0] == [0, 0, 0] and out["scales"][1][1] == 6
    assert out["windows_with_key"] == 1.0 and out["agreement"] == 0.5
    with pytest.raises(PianoGANError, match="windows"):
        P.window_key_agreement(images[:, :, :400], preset, stats, None)


def test_cli_help_and_one_line_errors(capsys, tmp_path):
    with pytest.raises(SystemExit) as e:
        main(["evaluate-pieces", "--help"])
    assert e.value.code == 0 and "window key agreement" in capsys.readouterr().out
    assert main(["evaluate-pieces", "--real", str(tmp_path / "none"), "--fake", "x"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "error: real dataset not found" in err


def test_cli_on_long_images(tmp_path, capsys):
    rows, images = [], []
    for piece in range(3):
        for j in range(4):
            rows.append({"source": f"p{piece}", "offset_seconds": 2.0 * j})
            images.append(_smooth_piece(126, 10 * piece + j))
    data = write_dataset(tmp_path / "ds", np.stack(images), SMALL, STATS, rows)
    fake = np.stack([_smooth_piece(376, s) for s in (40, 41)])
    fake[:, :, 100::100] = 0.9
    np.save(tmp_path / "long.npy", fake)
    rc = main(["evaluate-pieces", "--real", str(data), "--fake", str(tmp_path / "long.npy"), "--no-notes",
               "--block-frames", "100", "--json", "--quiet", "--out", str(tmp_path / "out")])
    assert rc == 0
    report = json.loads(capsys.readouterr().out)
    assert report == json.loads((tmp_path / "out" / "pieces.json").read_text())
    sets = report["pieces"]["sets"]
    assert sets["fake"]["join_flux"]["share_above_p99"] == 1.0 and sets["real"]["join_flux"]["share_above_p99"] < 0.5
    assert sets["real"]["n"] == 2 and report["pieces"]["frames"] == 376 and "style_skipped" in report
    assert "| boundary flux > real p99 (share) |" in (tmp_path / "out" / "pieces.md").read_text()


def test_cli_repeats_need_a_generator(tmp_path, capsys):
    rows = [{"source": f"p{i // 4}", "offset_seconds": 2.0 * (i % 4)} for i in range(8)]
    data = write_dataset(tmp_path / "ds", np.stack([_smooth_piece(126, i) for i in range(8)]), SMALL, STATS, rows)
    np.save(tmp_path / "long.npy", np.stack([_smooth_piece(376, s) for s in (40, 41)]))
    args = ["evaluate-pieces", "--real", str(data), "--fake", str(tmp_path / "long.npy"), "--no-notes", "--quiet"]
    assert main(args + ["--repeats", "0"]) == 2
    assert "--repeats must be at least 1" in capsys.readouterr().err
    assert main(args + ["--repeats", "2"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "--repeats needs a generator" in err


def test_repeats_summarise_real_fake_and_the_gap_per_draw():
    from pianogan.evaluate import piece_repeats as R

    def report(real_w, fake_w, real_k, fake_k, ratio):
        return {"pieces": {"sets": {"real": {"window_key_agreement": {"agreement": real_w}},
                                    "fake": {"window_key_agreement": {"agreement": fake_w}}}},
                "notes": {"sets": {"real": {"in_key_share": real_k}, "fake": {"in_key_share": fake_k}},
                          "pc_js_repeats": {"ratio": ratio}}}

    draws = [R.draw_figures(report(0.5, 0.7, 0.8, 0.8, 1.0)), R.draw_figures(report(0.7, 0.7, 0.8, 0.9, 2.0))]
    assert set(draws[0]) == {"window_key_agreement", "in_key_share", "pc_js_ratio"}  # absent figures left out
    s = R.summarise(draws, R.draw_seeds(3, 2))
    assert s["seeds"] == [3, 10003]
    w = s["mean"]["window_key_agreement"]
    assert w["real"] == pytest.approx(0.6) and w["fake"] == pytest.approx(0.7) and w["gap"] == pytest.approx(0.1)
    assert s["sd"]["window_key_agreement"]["gap"] == pytest.approx(np.std([0.2, 0.0], ddof=1))
    assert s["mean"]["pc_js_ratio"] == {"fake": pytest.approx(1.5)}
    table = "\n".join(R.to_markdown(s))
    assert "Over 2 draws (seeds 3, 10003)" in table and "| in-key share | 0.800 ± 0.000 | 0.850 ± 0.071 |" in table


class _ScriptedTranscriber:
    """Stands in for basic-pitch: hands out the given note lists in call order."""

    def __init__(self, note_lists):
        self.queue = list(note_lists)

    def transcribe(self, audio, sample_rate):
        from pianogan.transcribe import Transcription

        out = []
        for a in audio:
            notes = np.array(self.queue.pop(0), np.float64).reshape(-1, 4)
            out.append(Transcription(notes, np.zeros((1, 88), np.float32), np.zeros((1, 88), np.float32),
                                     len(a) / sample_rate))
        return out


def _played(pitches, seconds=4.0):
    """(k, 4) notes: the pitches in turn, one every 0.25 s, 0.2 s long."""
    return [(0.25 * i, 0.25 * i + 0.2, p, 0.8) for i, p in enumerate(
        pitches[j % len(pitches)] for j in range(int(seconds / 0.25)))]


def test_piece_notes_report_compares_whole_pieces_with_a_real_floor(tmp_path):
    rows, images = [], []
    for piece in range(3):
        for j in range(4):
            rows.append({"source": f"p{piece}", "offset_seconds": 2.0 * j})
            images.append(_smooth_piece(126, 10 * piece + j))
    ds = PianoDataset(write_dataset(tmp_path / "ds", np.stack(images), SMALL, STATS, rows))
    fake = np.stack([_smooth_piece(SMALL.frames_for(4.0), s) for s in (40, 41)])
    c_major = [60, 62, 64, 65, 67, 69, 71, 72]
    chromatic = list(range(60, 72))
    # real A (2 excerpts), real B (2), then the 2 fake pieces: real music in C major, fake chromatic
    tr = _ScriptedTranscriber([_played(c_major)] * 4 + [_played(chromatic)] * 2)
    out = P.piece_notes_report(ds, fake, tr)
    assert out["n_real"] == out["n_real_b"] == 2 and out["n_fake"] == 2 and out["halves_disjoint"]
    assert out["seconds"] == pytest.approx(4.0, abs=0.02)
    real, gen = out["sets"]["real"], out["sets"]["fake"]
    assert real["pc_js"] < 1e-9 and gen["pc_js"] > 0.05  # same notes as the reference: floor 0
    assert real["in_key_share"] > gen["in_key_share"]
    assert real["notes_per_s"] == gen["notes_per_s"] == pytest.approx(4.0)
    assert not tr.queue  # every piece was transcribed once
