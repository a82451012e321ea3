"""The end-to-end demo: ``python -m pianogan.demo --out demo [--quick]`` (what ``make demo`` runs).

Offline, on a CPU, in minutes: prepare the built-in piano corpus (small), train the ``tiny`` SpecGAN,
generate clips (short ones, a long continuous piece, a latent interpolation), turn a few real clips
through the same Griffin-Lim for comparison, evaluate generated against real (with the real-vs-real
floor and a noise ceiling), and write ``OUT/report.html``.

Every stage goes through the ``pianogan`` CLI (:func:`pianogan.cli.main`) or the libraries, prints a
header, and re-uses its output when it was already made with the same settings (``OUT/demo.json``
keeps a key per stage), so a re-run after an interruption only does what is left. ``--force``
redoes everything.

Layout of OUT::

    data/      prepared dataset            run/      training run (checkpoints, generator)
    samples/   clips to listen to          long/     one long piece        interp/  interpolation
    fake/      the evaluation set          real/     real clips, inverted  eval/    metrics
    demo.json  settings, stage keys and timings        report.html
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import shutil
import sys
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from .errors import PianoGANError


@dataclass(frozen=True)
class DemoConfig:
    """Settings of the demo; ``QUICK`` is a seconds-long smoke version for the tests."""

    max_hours: float = 0.5  # hours of built-in corpus to prepare
    model: str = "specgan"
    model_config: str = "tiny"
    preset: str = "tiny"
    train_minutes: float = 7.0  # training time budget (wall clock, including start-up)
    train_steps: int = 3000  # at most this many generator steps
    calibration_steps: int = 10  # first steps, timed to size the rest to the budget
    n_listen: int = 8  # clips with spectrograms and players in the report
    n_eval: int = 256  # generated clips for the metrics
    n_real: int = 4  # real clips shown for comparison
    long_seconds: float = 20.0  # length of the long continuous piece
    interpolate: int = 6  # clips along a latent path
    n_iter: int = 64  # Griffin-Lim iterations
    untrained_baseline: bool = True  # also evaluate the generator at its initial weights
    seed: int = 0


QUICK = DemoConfig(max_hours=0.02, train_minutes=0.0, train_steps=1, n_listen=2, n_eval=32,
                   n_real=2, long_seconds=5.0, interpolate=3, n_iter=16)

STAGES = ["prepare", "train", "generate", "real", "evaluate", "report"]


# --------------------------------------------------------------------------- stage bookkeeping

class Stages:
    """Runs stages in order with headers, timings and re-use of finished work (OUT/demo.json)."""

    def __init__(self, out: Path, force: bool = False):
        self.out = out
        self.path = out / "demo.json"
        self.state = {}
        if self.path.is_file() and not force:
            try:
                self.state = json.loads(self.path.read_text())
            except json.JSONDecodeError:
                self.state = {}
        self.state.setdefault("stages", {})
        self.timings: list[tuple[str, float, str]] = []
        self.prev_key = ""
        self.t_start = time.perf_counter()

    def save(self) -> None:
        from .atomic import write_text

        write_text(self.path, json.dumps(self.state, indent=2))

    def run(self, name: str, what: str, settings: dict, outputs: list[Path], fn) -> None:
        """Run ``fn(resume)`` unless its outputs exist and were made with the same settings.

        ``resume`` is True when an earlier attempt with the same settings was interrupted: the
        stage may then continue its partial output (prepare and train resume) instead of
        deleting it.
        """
        i = STAGES.index(name) + 1
        key = hashlib.sha256(json.dumps([self.prev_key, settings], sort_keys=True,
                                        default=str).encode()).hexdigest()[:16]
        self.prev_key = key
        elapsed = time.perf_counter() - self.t_start
        print(f"\n=== [{i}/{len(STAGES)}] {name}: {what}  (t = {elapsed:.0f} s) ===", file=sys.stderr,
              flush=True)
        old = self.state["stages"].get(name, {})
        if old.get("key") == key and all(p.exists() for p in outputs):
            print(f"    re-using {', '.join(str(p) for p in outputs)} (made earlier with the same "
                  f"settings; --force to redo)", file=sys.stderr)
            self.timings.append((name, 0.0, f"re-used (took {old.get('seconds', 0):.0f} s)"))
            return
        # an interrupted attempt with the same settings is continued, anything else starts afresh
        resume = old.get("started") == key
        self.state["stages"][name] = {"started": key}
        self.save()
        t0 = time.perf_counter()
        fn(resume)
        dt = time.perf_counter() - t0
        self.state["stages"][name] = {"key": key, "started": key, "seconds": round(dt, 2),
                                      "settings": settings}
        self.save()
        self.timings.append((name, dt, "resumed" if resume else "done"))
        print(f"    {name} done in {dt:.1f} s", file=sys.stderr, flush=True)


def cli(argv: list[str]) -> None:
    """Run one ``pianogan`` command in this process; raise on a non-zero exit."""
    from .cli import main

    print("    $ pianogan " + " ".join(argv), file=sys.stderr, flush=True)
    rc = main(argv)
    if rc != 0:
        raise PianoGANError(f"`pianogan {' '.join(argv)}` failed with exit code {rc}")


def _fresh(path: Path) -> Path:
    """Remove a stage's stale output directory (only ever one inside the demo folder)."""
    if path.exists():
        shutil.rmtree(path)
    return path


# --------------------------------------------------------------------------- stages

def stage_prepare(cfg: DemoConfig, out: Path, resume: bool) -> None:
    data = out / "data" if resume else _fresh(out / "data")  # prepare resumes a partial dataset
    cli(["prepare", "builtin", "--preset", cfg.preset, "--max-hours", str(cfg.max_hours),
         "--out", str(data)])


def _run_step(run: Path) -> int:
    from .train.checkpoint import checkpoint_step, latest_checkpoint

    ckpt = latest_checkpoint(run) if run.is_dir() else None
    return checkpoint_step(ckpt) if ckpt is not None else 0


def _metrics(run: Path) -> list[dict]:
    """The records of RUN/metrics.jsonl ([] while there is none or it cannot be read)."""
    try:
        return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()
                if line.strip()]
    except (OSError, json.JSONDecodeError):
        return []


def _logged_step_seconds(run: Path, after: int) -> float | None:
    """Median time of one training step (s) that the trainer logged in metrics.jsonl for steps
    after ``after``: the step itself, without start-up, sampling or checkpoints."""
    times = sorted(rec["speed/step_s"] for rec in _metrics(run)
                   if rec.get("step", 0) > after and "speed/step_s" in rec)
    return times[len(times) // 2] if times else None


def stage_train(cfg: DemoConfig, out: Path, resume: bool) -> None:
    """Train for about ``train_minutes``: time the first steps, then size the rest to the budget.

    The trainer counts steps, not minutes, and resumes exactly (``--resume`` continues to
    ``--steps`` as if it had never stopped), so the demo trains in two calls: a few timed steps,
    then up to the step count that fits the remaining time (at most ``train_steps``). The step
    time comes from the trainer's own log; the first call's remaining time (start-up, the
    sample grid, the checkpoint) is counted once more for the second call. Faster machines
    train longer; every machine finishes in about the same time.
    """
    run = out / "run" if resume else _fresh(out / "run")
    base = ["train", "--model", cfg.model, "--config", cfg.model_config, "--data", str(out / "data"),
            "--out", str(run), "--seed", str(cfg.seed), "--resume"]  # --resume: fresh if no run yet
    t0 = time.perf_counter()
    start = _run_step(run)
    first = min(cfg.train_steps, start + cfg.calibration_steps)
    if first > start:
        cli([*base, "--steps", str(first)])
    spent = time.perf_counter() - t0
    per_step = _logged_step_seconds(run, start) or spent / max(first - start, 1)
    overhead = max(0.0, spent - per_step * (first - start))  # paid again by the second call
    left = cfg.train_minutes * 60 - spent - overhead
    target = min(cfg.train_steps, first + int(0.95 * left / per_step))
    if target > first:
        print(f"    {per_step:.2f} s/step: training on to step {target} to fill "
              f"{cfg.train_minutes:g} min", file=sys.stderr, flush=True)
        cli([*base, "--steps", str(target)])


def stage_generate(cfg: DemoConfig, out: Path, resume: bool = False) -> None:
    run = str(out / "run")
    common = ["--n-iter", str(cfg.n_iter), "--device", "cpu"]
    cli(["generate", run, "--n", str(cfg.n_listen), "--seed", str(cfg.seed), "--out",
         str(_fresh(out / "samples")), *common])
    cli(["generate", run, "--n", "1", "--seconds", str(cfg.long_seconds), "--seed",
         str(cfg.seed + 1000), "--out", str(_fresh(out / "long")), *common])
    cli(["generate", run, "--interpolate", str(cfg.interpolate), "--seed", str(cfg.seed),
         "--to-seed", str(cfg.seed + 1), "--out", str(_fresh(out / "interp")), *common])
    # the evaluation set: images are what evaluate reads; no plots needed
    cli(["generate", run, "--n", str(cfg.n_eval), "--seed", str(cfg.seed + 10_000), "--no-plots",
         "--batch", "64", "--out", str(_fresh(out / "fake")), *common])


def stage_real(cfg: DemoConfig, out: Path, resume: bool = False) -> None:
    """A few held-out real clips, image -> Griffin-Lim like the generated ones, with spectrograms."""
    import numpy as np
    import torch

    from .audio import write_audio
    from .data.dataset import PianoDataset
    from .generate_files import save_spectrogram_png
    from .phase import griffin_lim
    from .spectrogram import image_to_magnitude

    ds = PianoDataset(out / "data")
    held = [i for i, r in enumerate(ds.rows) if r.get("split") in ("validation", "test")]
    pool = held or list(range(len(ds)))
    picks = [pool[int(k)] for k in np.linspace(0, len(pool) - 1, min(cfg.n_real, len(pool)))]
    dest = _fresh(out / "real")
    dest.mkdir(parents=True)
    records = []
    for j, idx in enumerate(picks):
        mag = image_to_magnitude(torch.from_numpy(ds.image(idx)), ds.preset, ds.stats)
        audio = griffin_lim(mag, ds.preset.n_fft, ds.preset.hop_length, n_iter=cfg.n_iter,
                            length=ds.preset.n_samples, seed=j).numpy()
        peak = float(np.abs(audio).max())
        audio = audio * (0.99 / peak) if peak > 0.99 else audio
        row = ds.rows[idx]
        write_audio(dest / f"real-{j:02d}.wav", audio, ds.preset.sample_rate)
        title = (row.get("title") or row.get("source") or f"clip {idx}")[:60]
        save_spectrogram_png(dest / f"real-{j:02d}.png", mag.numpy(), ds.preset, f"real: {title}")
        records.append({"file": f"real-{j:02d}.wav", "spectrogram": f"real-{j:02d}.png",
                        "index": idx, **{k: row.get(k, "") for k in
                                         ("split", "composer", "title", "offset_seconds")}})
    from .atomic import write_text

    write_text(dest / "real.json", json.dumps(records, indent=1))


def save_untrained(cfg: DemoConfig, out: Path) -> Path:
    """The same generator at its initial weights (seeded like the run), as a run directory."""
    import dataclasses

    import torch

    from .data.dataset import PianoDataset
    from .models import get_model
    from .train.checkpoint import save_generator

    ds = PianoDataset(out / "data")
    family = get_model(cfg.model)
    model_cfg = family.CONFIGS[cfg.model_config]
    torch.manual_seed(cfg.seed)
    G, _ = family.build(model_cfg, ds.preset.image_shape)
    dest = _fresh(out / "untrained")
    dest.mkdir(parents=True)
    save_generator(dest, G.state_dict(), cfg.model, dataclasses.asdict(model_cfg), ds.preset,
                   ds.stats, step=0)
    return dest


def stage_evaluate(cfg: DemoConfig, out: Path, resume: bool = False) -> None:
    """Metrics of the trained model (with floor and ceiling), then of the untrained generator.

    Both calls use the same seed, so their real halves, floor and noise ceiling are identical
    and the untrained column can sit beside the others in the report.
    """
    dest = _fresh(out / "eval")
    dest.mkdir(parents=True)
    n = ["--n", str(cfg.n_eval), "--seed", str(cfg.seed)]
    cli(["evaluate", "--real", str(out / "data"), "--fake", str(out / "fake"), "--out", str(dest), *n])
    if cfg.untrained_baseline:
        untrained = save_untrained(cfg, out)
        cli(["generate", str(untrained), "--n", str(cfg.n_eval), "--seed", str(cfg.seed + 10_000),
             "--no-plots", "--batch", "64", "--n-iter", str(cfg.n_iter), "--device", "cpu",
             "--out", str(_fresh(out / "untrained-fake"))])
        cli(["evaluate", "--real", str(out / "data"), "--fake", str(out / "untrained-fake"),
             "--out", str(dest / "untrained"), "--no-plot", *n])


# --------------------------------------------------------------------------- report

def metric_rows(metrics: dict, untrained: dict | None = None):
    """evaluate's metrics.json (+ the untrained generator's) -> (columns, [MetricRow], note)."""
    from .evaluate.report import COLUMNS, table_rows
    from .report_html import MetricRow

    sets = dict(metrics.get("sets", {}))
    names = {"real": "real half B (floor)", "fake": "trained model", "noise": "white noise (ceiling)"}
    cols = [(k, names.get(k, label)) for k, label in COLUMNS if k in sets]
    if untrained and "fake" in untrained.get("sets", {}):
        sets["untrained"] = untrained["sets"]["fake"]
        at = next((i for i, (k, _) in enumerate(cols) if k == "noise"), len(cols))
        cols.insert(at, ("untrained", "untrained generator"))
    rows = [MetricRow(label, {name: sets[k].get(key) for k, name in cols}, hint)
            for key, label, hint, _ in table_rows(metrics)]
    s, summ = metrics.get("settings", {}), metrics.get("summary", {})
    space = metrics.get("feature_space", {})
    note = (f"Each set has n = {s.get('n')} clips and is compared with a disjoint real reference "
            f"half (real half A). Feature space: {space.get('name')} ({space.get('dim')} audio "
            f"descriptors, no downloaded weights); NDB with K = {s.get('bins')} bins.")
    if summ.get("fd_score") is not None:
        note += f" FD score of the trained model (0 = real floor, 1 = white noise): {summ['fd_score']:.3f}."
    if untrained and (us := untrained.get("summary", {})).get("fd_score") is not None:
        note += f" Untrained generator: {us['fd_score']:.3f}."
    if summ.get("mpd_ratio") is not None:
        note += f" Diversity ratio (trained / real): {summ['mpd_ratio']:.3f}."
    return [name for _, name in cols], rows, note


def plot_training(run: Path, path: Path) -> Path | None:
    """Loss curves from RUN/metrics.jsonl (loss/*, and the Wasserstein estimate) as a PNG."""
    rows = _metrics(run)
    keys = [k for k in ("loss/D", "loss/G", "loss/wdist", "loss/gp") if any(k in r for r in rows)]
    if len(rows) < 2 or not keys:
        return None
    from .generate_files import _figure, _save

    fig = _figure(9, 3.2)
    ax = fig.add_subplot(1, 1, 1)
    for k in keys:
        pts = [(r["step"], r[k]) for r in rows if k in r]
        ax.plot([p[0] for p in pts], [p[1] for p in pts], label=k, lw=1.2)
    ax.set_xlabel("generator step")
    ax.set_ylabel("loss")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    _save(fig, path)
    return path


def _load_json(path: Path, default=None):
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return default


def _clip_items(out: Path, sub: str, caption) -> list:
    from .report_html import AudioItem

    doc = _load_json(out / sub / "generated.json", {}) or {}
    items = []
    for r in doc.get("clips", []):
        items.append(AudioItem(
            title=f"{sub} {r['index']}" if sub != "samples" else f"clip {r['index']}",
            wav=f"{sub}/{r['file']}", png=f"{sub}/{r['spectrogram']}" if r.get("spectrogram") else None,
            caption=caption(r)))
    return items


def machine_info() -> dict:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    import torch

    from . import __version__

    return {"pianogan": __version__, "python": platform.python_version(), "torch": torch.__version__,
            "cpu": cpu, "cores": os.cpu_count(), "torch threads": torch.get_num_threads()}


def build_report(cfg: DemoConfig, out: Path, timings: list, quick: bool):
    """Collect what the stages wrote into a :class:`pianogan.report_html.Report`."""
    from .report_html import AudioItem, Report

    gen = _load_json(out / "samples" / "generated.json", {}) or {}
    state = _load_json(out / "demo.json", {}) or {}
    train_s = state.get("stages", {}).get("train", {}).get("seconds")
    rep = Report(title="PianoGAN demo" + (" (quick smoke run)" if quick else ""))
    step = gen.get("step")
    rep.intro = (f"A tiny {cfg.model} ({cfg.model_config} config) trained for "
                 f"{step if step is not None else '?'} generator steps"
                 + (f" ({train_s / 60:.1f} min)" if train_s else "") + " "
                 f"on {cfg.max_hours:g} h of the built-in piano corpus ({cfg.preset} preset: "
                 f"{gen.get('preset', {}).get('clip_seconds', '?')} s clips at "
                 f"{gen.get('preset', {}).get('sample_rate', '?')} Hz), then sampled and judged "
                 "against held-out real clips. Expect piano-like timbre and note onsets, not "
                 "melodies: this is a CPU demo of the pipeline, not a trained musician.")
    rep.generated = _clip_items(out, "samples", lambda r: f"seed {r['seed']}")
    rep.long = _clip_items(out, "long", lambda r: f"{r['seconds']:g} s, seed {r['seed']}, "
                           f"{len(r['latents'])} clip images joined at "
                           + ", ".join(f"{j:.1f}" for j in r.get("joins_seconds", [])) + " s")
    rep.interpolation = _clip_items(out, "interp", lambda r: f"t = {r['t']:.2f} from seed "
                                    f"{r['seed']} to {r['to_seed']}")
    for r in _load_json(out / "real" / "real.json", []) or []:
        rep.real.append(AudioItem(title=f"real: {r.get('title') or r['index']}"[:70],
                                  wav=f"real/{r['file']}", png=f"real/{r['spectrogram']}",
                                  caption=f"{r.get('composer', '')} · {r.get('split', '')} split"))
    if gen.get("grid"):
        rep.grid_png = f"samples/{gen['grid']}"
    metrics = _load_json(out / "eval" / "metrics.json")
    if metrics:
        untrained = _load_json(out / "eval" / "untrained" / "metrics.json")
        rep.metrics_columns, rep.metrics, rep.metrics_note = metric_rows(metrics, untrained)
        rep.plots = [("real floor, trained model and white-noise ceiling per metric; below, the "
                      "mean of each descriptor in units of the real reference's std", f"eval/{p.name}")
                     for p in sorted((out / "eval").glob("*.png"))]
    if plot_training(out / "run", out / "training.png"):
        rep.training_plots.append(("training losses (from run/metrics.jsonl)", "training.png"))
    grids = sorted((out / "run" / "samples").glob("step-*.png"))
    if grids:
        rep.training_plots.append((f"the trainer's sample grid at {grids[-1].stem} (fixed latents)",
                                   f"run/samples/{grids[-1].name}"))
    rep.settings = {**{k: v for k, v in asdict(cfg).items()}, "quick": quick,
                    "checkpoint step": step, **machine_info()}
    rep.timings = list(timings)
    rep.footer = f"Made by `python -m pianogan.demo` on {time.strftime('%Y-%m-%d %H:%M')}."
    return rep


def stage_report(cfg: DemoConfig, out: Path, timings: list, quick: bool) -> Path:
    from .report_html import write_report

    path = out / "report.html"
    missing = write_report(path, build_report(cfg, out, timings, quick))
    if missing:
        print(f"    warning: {len(missing)} file(s) the report points at are missing: "
              + ", ".join(missing[:5]), file=sys.stderr)
    return path


# --------------------------------------------------------------------------- driver

def run_demo(out: str | Path, cfg: DemoConfig = DemoConfig(), quick: bool = False,
             force: bool = False) -> Path:
    """Run every stage into ``out``; returns the path of report.html."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    st = Stages(out, force=force)
    st.state["config"] = {**asdict(cfg), "quick": quick}
    settings = asdict(cfg)
    pick = lambda *keys: {k: settings[k] for k in keys}  # noqa: E731
    st.run("prepare", f"built-in corpus, {cfg.max_hours:g} h, preset {cfg.preset}",
           pick("max_hours", "preset"), [out / "data" / "manifest.csv"],
           lambda r: stage_prepare(cfg, out, r))
    st.run("train", f"{cfg.model} ({cfg.model_config}) for about {cfg.train_minutes:g} min "
           f"(at most {cfg.train_steps} steps)",
           pick("model", "model_config", "train_minutes", "train_steps", "calibration_steps", "seed"),
           [out / "run" / "generator.safetensors"], lambda r: stage_train(cfg, out, r))
    st.run("generate", f"{cfg.n_listen} clips, a {cfg.long_seconds:g} s piece, "
           f"{cfg.interpolate}-step interpolation, {cfg.n_eval} for evaluation",
           pick("n_listen", "n_eval", "long_seconds", "interpolate", "n_iter", "seed"),
           [out / d / "generated.json" for d in ("samples", "long", "interp", "fake")],
           lambda r: stage_generate(cfg, out, r))
    st.run("real", f"{cfg.n_real} real clips through the same Griffin-Lim",
           pick("n_real", "n_iter"), [out / "real" / "real.json"], lambda r: stage_real(cfg, out, r))
    st.run("evaluate", f"{cfg.n_eval} generated vs real, with real floor and noise ceiling",
           pick("n_eval", "untrained_baseline", "seed"), [out / "eval" / "metrics.json"],
           lambda r: stage_evaluate(cfg, out, r))
    i = STAGES.index("report") + 1
    print(f"\n=== [{i}/{len(STAGES)}] report ===", file=sys.stderr, flush=True)
    t0 = time.perf_counter()
    timings = st.timings + [("report", 0.0, "done")]
    path = stage_report(cfg, out, timings, quick)
    st.timings.append(("report", time.perf_counter() - t0, "done"))
    total = time.perf_counter() - st.t_start
    st.state["last_run"] = {"seconds": round(total, 1), "timings": st.timings}
    st.save()
    print(f"\nreport: {path}  (total {total:.0f} s)\nopen it in a browser: file://{path.resolve()}",
          file=sys.stderr)
    return path


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m pianogan.demo", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default="demo", help="output folder (default demo)")
    p.add_argument("--quick", action="store_true", help="seconds-long smoke run (for tests)")
    p.add_argument("--force", action="store_true", help="redo every stage")
    p.add_argument("--minutes", type=float, help="training time budget in minutes (default 7)")
    p.add_argument("--steps", type=int, help="at most this many generator steps (default 3000)")
    p.add_argument("--max-hours", type=float, help="hours of built-in corpus to prepare")
    p.add_argument("--seed", type=int, help="seed of training and generation")
    p.add_argument("--model", choices=["dcgan", "specgan", "stylegan2"],
                   help="model family to train (default specgan)")
    args = p.parse_args(argv)
    cfg = QUICK if args.quick else DemoConfig()
    over = {k: v for k, v in (("train_minutes", args.minutes), ("train_steps", args.steps),
                              ("max_hours", args.max_hours),
                              ("seed", args.seed), ("model", args.model)) if v is not None}
    cfg = replace(cfg, **over)
    try:
        run_demo(args.out, cfg, quick=args.quick, force=args.force)
    except PianoGANError as e:
        print(f"pianogan demo: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("pianogan demo: interrupted (re-run to continue where it stopped)", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
