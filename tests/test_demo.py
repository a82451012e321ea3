"""The demo driver and its HTML report."""

from __future__ import annotations

import json
import shutil
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from pianogan import demo
from pianogan.demo.report import AudioItem, MetricRow, Report, format_value, write_report


class _Refs(HTMLParser):
    def __init__(self):
        super().__init__()
        self.refs: list[tuple[str, str]] = []

    def handle_starttag(self, tag, attrs):
        for k, v in attrs:
            if k in ("src", "href"):
                self.refs.append((tag, v))


def refs_of(html_path: Path) -> list[tuple[str, str]]:
    p = _Refs()
    p.feed(html_path.read_text())
    return p.refs


def check_report(path: Path, min_audio: int) -> list[tuple[str, str]]:
    """Every src is relative and exists; at least min_audio players; images load from the folder."""
    from urllib.parse import unquote

    refs = refs_of(path)
    assert sum(tag == "audio" for tag, _ in refs) >= min_audio
    assert any(tag == "img" for tag, _ in refs)
    for tag, ref in refs:
        assert not ref.startswith(("/", "file:", "http:", "https:")), ref
        assert (path.parent / unquote(ref)).is_file(), ref
    return refs


def test_report_page_relative_paths_and_missing_list(tmp_path):
    (tmp_path / "a").mkdir()
    wav = tmp_path / "a" / "x y.wav"
    from pianogan.audio import write_audio

    write_audio(wav, np.zeros(800, np.float32), 8000)
    (tmp_path / "a" / "x.png").write_bytes(b"\x89PNG")
    rep = Report(generated=[AudioItem("clip <0>", "a/x y.wav", "a/x.png", "seed 0")],
                 real=[AudioItem("real", "a/gone.wav")],
                 metrics_columns=["floor", "model"],
                 metrics=[MetricRow("FD", {"floor": 1.5, "model": 2000.25}, "lower")],
                 timings=[("train", 12.0, "done")])
    missing = write_report(tmp_path / "report.html", rep)
    assert missing == ["a/gone.wav"]
    html = (tmp_path / "report.html").read_text()
    assert "clip &lt;0&gt;" in html and 'src="a/x%20y.wav"' in html
    assert "Missing files" in html and "a/gone.wav" in html
    assert "2000" in html and "<td class='num'>12.0</td>" in html


def test_format_value():
    assert format_value(None) == "–" and format_value(3) == "3" and format_value(0.0) == "0"
    assert format_value(1360.4) == "1360" and format_value(0.08171) == "0.08171"
    assert format_value(20.0) == "20" and format_value(0.5) == "0.5" and format_value(219.17) == "219.2"
    assert format_value(2.5e7) == "2.5e+07"


def test_stages_reuse_and_invalidate(tmp_path, capsys):
    calls = []

    def make(name):
        def fn(resume):
            calls.append(name)
            (tmp_path / name).write_text("x")
        return fn

    st = demo.Stages(tmp_path)
    st.run("prepare", "p", {"h": 1}, [tmp_path / "prepare"], make("prepare"))
    st.run("train", "t", {"m": 1}, [tmp_path / "train"], make("train"))
    assert calls == ["prepare", "train"]
    st = demo.Stages(tmp_path)  # re-run: both re-used
    st.run("prepare", "p", {"h": 1}, [tmp_path / "prepare"], make("prepare"))
    st.run("train", "t", {"m": 1}, [tmp_path / "train"], make("train"))
    assert calls == ["prepare", "train"]
    assert "re-using" in capsys.readouterr().err
    st = demo.Stages(tmp_path)  # changed upstream settings redo everything downstream
    st.run("prepare", "p", {"h": 2}, [tmp_path / "prepare"], make("prepare"))
    st.run("train", "t", {"m": 1}, [tmp_path / "train"], make("train"))
    assert calls == ["prepare", "train", "prepare", "train"]
    (tmp_path / "train").unlink()  # a deleted output is made again
    st = demo.Stages(tmp_path)
    st.run("prepare", "p", {"h": 2}, [tmp_path / "prepare"], make("prepare"))
    st.run("train", "t", {"m": 1}, [tmp_path / "train"], make("train"))
    assert calls[-1] == "train" and len(calls) == 5


def test_cli_failure_raises_one_line_error(tmp_path):
    with pytest.raises(demo.PianoGANError, match="exit code 2"):
        demo.cli(["generate", str(tmp_path / "missing"), "--out", str(tmp_path / "o")])


@pytest.mark.slow
def test_quick_demo_end_to_end_and_rerun(tmp_path, capsys):
    """The whole demo (prepare, train, generate, evaluate, report) in its smoke settings."""
    out = tmp_path / "demo"
    assert demo.main(["--out", str(out), "--quick"]) == 0
    err = capsys.readouterr().err
    for i, name in enumerate(demo.STAGES, 1):
        assert f"[{i}/{len(demo.STAGES)}] {name}" in err
    report = out / "report.html"
    refs = check_report(report, min_audio=demo.QUICK.n_listen + 1 + demo.QUICK.interpolate)
    html = report.read_text()
    assert "Missing files" not in html
    assert "real half B (floor)" in html and "white noise (ceiling)" in html
    assert "untrained generator" in html and "Fréchet distance" in html
    assert any(ref.startswith("real/") for _, ref in refs)
    [long_clip] = json.loads((out / "long" / "generated.json").read_text())["clips"]
    info = sf.info(out / "long" / long_clip["file"])
    assert info.frames == round(demo.QUICK.long_seconds * info.samplerate)
    # the folder can be moved: every link is relative
    moved = tmp_path / "moved"
    shutil.move(str(out), str(moved))
    check_report(moved / "report.html", min_audio=1)
    # a re-run re-uses every stage
    assert demo.main(["--out", str(moved), "--quick"]) == 0
    err = capsys.readouterr().err
    assert err.count("re-using") == len(demo.STAGES) - 1


class FakeTrainer:
    """A run on a fake clock: each call pays ``startup`` s, its first ``warmup`` steps are
    ``slow`` s each (allocator, thread pools), the rest ``steady`` s, and a checkpoint ``save`` s."""

    def __init__(self, startup=8.0, slow=1.35, steady=0.57, warmup=5, save=2.0):
        self.now, self.step, self.times = 0.0, 0, {}
        self.startup, self.slow, self.steady, self.warmup, self.save = startup, slow, steady, warmup, save
        self.calls = []

    def clock(self):
        return self.now

    def train(self, target):
        self.calls.append(target)
        self.now += self.startup
        for i, s in enumerate(range(self.step + 1, target + 1)):
            dt = self.slow if i < self.warmup else self.steady
            self.now += dt
            self.times[s] = dt
        self.step = target
        self.now += self.save


def _budget_run(fake, seconds=420.0, max_steps=3000, calibration=30):
    from pianogan.demo.budget import Budget, train_to_budget

    budget = Budget(seconds=seconds, max_steps=max_steps, calibration_steps=calibration)
    return train_to_budget(budget, fake.train, lambda: fake.step, lambda: dict(fake.times), fake.clock)


def test_budget_fills_within_ten_percent_from_the_steady_step_time():
    fake = FakeTrainer()
    log = _budget_run(fake)
    assert 0.9 * 420 <= log.seconds <= 1.1 * 420, log.to_dict()
    assert log.steps == fake.step and fake.calls[0] == 30
    assert log.calls[0]["steady_step_s"] == pytest.approx(0.57)  # start-up and warm-up left out
    # what a start-up-included estimate (first call's wall time / its steps) would have planned
    naive = log.calls[0]["seconds"] / 30
    assert naive > 1.5 * 0.57 and log.steps > 1.5 * 420 / naive


def test_budget_adapts_when_the_machine_speeds_up_and_respects_max_steps():
    fake = FakeTrainer(steady=0.9)
    from pianogan.demo.budget import Budget, train_to_budget

    def train(target):  # the load goes away after calibration: steps get twice as fast
        fake.train(target)
        fake.steady = 0.45

    log = train_to_budget(Budget(seconds=420.0, max_steps=3000), train, lambda: fake.step,
                          lambda: dict(fake.times), fake.clock)
    assert 0.9 * 420 <= log.seconds <= 1.1 * 420 and len(log.calls) >= 3, log.to_dict()
    capped = _budget_run(FakeTrainer(), max_steps=100)
    assert capped.steps == 100 and capped.seconds < 420
    quick = _budget_run(FakeTrainer(), seconds=0.0, max_steps=1, calibration=1)  # the smoke demo
    assert quick.steps == 1 and len(quick.calls) == 1


def test_budget_counts_sample_and_checkpoint_rounds_the_calibration_never_saw():
    """Measured on a quiet machine: a median step of 0.224 s, a mean of 0.26 s (slower steps now
    and then, and a sample grid and checkpoint every 100 steps), and the median-sized call took
    113 % of 420 s."""

    class Periodic(FakeTrainer):
        def train(self, target):
            first = self.step
            super().train(target)
            for s in range(first + 1, target + 1):
                if s % 10 == 0:  # every tenth step three times as slow: the median does not see it
                    self.now += 2 * self.steady
                    self.times[s] = 3 * self.steady
            self.now += 1.5 * (target // 100 - first // 100)  # not in the logged step times

    fake = Periodic(steady=0.224)
    log = _budget_run(fake)
    assert 0.9 * 420 <= log.seconds <= 1.1 * 420, log.to_dict()


def test_demo_uses_the_default_griffin_lim():
    from pianogan.cli import build_parser
    from pianogan.demo.pipeline import _gl_flags
    from pianogan.phase import DEFAULT_GL

    cfg = demo.DemoConfig()
    assert cfg.gl is DEFAULT_GL
    args = build_parser().parse_args(["generate", "RUN", "--out", "x", *_gl_flags(cfg)])
    assert (args.n_iter, args.momentum, args.init) == (DEFAULT_GL.n_iter, DEFAULT_GL.momentum,
                                                       DEFAULT_GL.init)
