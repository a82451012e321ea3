"""The demo's stages and its driver (``python -m pianogan.demo``)."""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import asdict, replace
from pathlib import Path

from ..errors import PianoGANError
from .config import QUICK, DemoConfig
from .stages import Stages, cli, fresh, run_metrics


def _gl_flags(cfg: DemoConfig) -> list[str]:
    g = cfg.gl
    return ["--n-iter", str(g.n_iter), "--momentum", str(g.momentum), "--init", g.init]


# --------------------------------------------------------------------------- stages

def stage_music(cfg: DemoConfig, out: Path, resume: bool = False) -> dict:
    """The pretrained model that ships with the package plays first: one long piece and one
    clip per style it knows (OUT/music/piece, OUT/music/STYLE). Skipped, and said, when this
    version ships none."""
    from ..generate import GenerateSettings, generate
    from ..generate_files import write_outputs
    from ..pretrained import HERE, load_pretrained, shipped_models

    folder = Path(cfg.pretrained_folder) if cfg.pretrained_folder else HERE
    dest = fresh(out / "music")
    if not shipped_models(folder):
        dest.mkdir(parents=True)
        (dest / "README.txt").write_text("This version of pianogan ships no pretrained model yet.\n")
        print("    this version ships no pretrained model yet (docs/results.md): skipped",
              file=sys.stderr, flush=True)
        return {"skipped": "no pretrained model ships"}
    G, info = load_pretrained(folder=folder)
    piece = generate(G, info, n=1, seed=cfg.seed, settings=GenerateSettings(gl=cfg.gl, seconds=cfg.music_seconds))
    write_outputs(piece, dest / "piece", info)
    styles = tuple(getattr(G.cfg, "styles", ()) or ())
    for i, style in enumerate(styles):
        clips = generate(G, info, n=1, seed=cfg.seed + 1 + i, style=style,
                         settings=GenerateSettings(gl=cfg.gl, seconds=cfg.style_seconds))
        write_outputs(clips, dest / style, info)
    return {"model": info["pretrained"], "sha256": info["sha256"], "styles": list(styles),
            "figures": info["figures"]}


def stage_prepare(cfg: DemoConfig, out: Path, resume: bool) -> None:
    data = out / "data" if resume else fresh(out / "data")  # prepare resumes a partial dataset
    cli(["prepare", "builtin", "--preset", cfg.preset, "--max-hours", str(cfg.max_hours),
         "--out", str(data)])


def _run_step(run: Path) -> int:
    from ..train.checkpoint import checkpoint_step, latest_checkpoint

    ckpt = latest_checkpoint(run) if run.is_dir() else None
    return checkpoint_step(ckpt) if ckpt is not None else 0


def _train_args(cfg: DemoConfig, out: Path, run: Path) -> list[str]:
    # --resume: a fresh run if there is none yet; --log-every 1: every step's time, for the budget
    return ["train", "--model", cfg.model, "--config", cfg.model_config, "--data", str(out / "data"),
            "--out", str(run), "--seed", str(cfg.seed), "--log-every", "1", "--resume"]


def stage_train(cfg: DemoConfig, out: Path, resume: bool) -> dict:
    """Train for about ``train_minutes`` (wall clock), sized from the steady step time
    (:mod:`pianogan.demo.budget`); returns what the budget did."""
    from .budget import Budget, train_to_budget

    run = out / "run" if resume else fresh(out / "run")
    base = _train_args(cfg, out, run)
    budget = Budget(seconds=cfg.train_minutes * 60, max_steps=cfg.train_steps,
                    calibration_steps=cfg.calibration_steps)
    log = train_to_budget(
        budget, train=lambda target: cli([*base, "--steps", str(target)]), step=lambda: _run_step(run),
        step_times=lambda: {r["step"]: r["speed/step_s"] for r in run_metrics(run) if "speed/step_s" in r},
        say=lambda msg: print("    " + msg, file=sys.stderr, flush=True))
    summary = {**log.to_dict(), "budget_s": budget.seconds}
    print(f"    trained {log.steps} steps in {log.seconds:.0f} s of a {budget.seconds:.0f} s budget "
          f"({100 * log.seconds / max(budget.seconds, 1e-9):.0f} %)", file=sys.stderr, flush=True)
    return summary


def stage_generate(cfg: DemoConfig, out: Path, resume: bool = False) -> None:
    run = str(out / "run")
    common = [*_gl_flags(cfg), "--device", "cpu"]
    cli(["generate", run, "--n", str(cfg.n_listen), "--seed", str(cfg.seed), "--out",
         str(fresh(out / "samples")), *common])
    cli(["generate", run, "--n", "1", "--seconds", str(cfg.long_seconds), "--seed",
         str(cfg.seed + 1000), "--out", str(fresh(out / "long")), *common])
    cli(["generate", run, "--interpolate", str(cfg.interpolate), "--seed", str(cfg.seed),
         "--to-seed", str(cfg.seed + 1), "--out", str(fresh(out / "interp")), *common])
    # the evaluation set: images are what evaluate reads; no plots needed
    cli(["generate", run, "--n", str(cfg.n_eval), "--seed", str(cfg.seed + 10_000), "--no-plots",
         "--batch", "64", "--out", str(fresh(out / "fake")), *common])


def stage_real(cfg: DemoConfig, out: Path, resume: bool = False) -> None:
    """A few held-out real clips, image -> audio through generate's own pipeline (same
    Griffin-Lim, same loudness limit), written like generated clips (real/generated.json)."""
    import numpy as np

    from ..data.dataset import PianoDataset
    from ..generate import GenerateSettings, images_to_clips
    from ..generate_files import write_outputs

    ds = PianoDataset(out / "data")
    held = [i for i, r in enumerate(ds.rows) if r.get("split") in ("validation", "test")]
    pool = held or list(range(len(ds)))
    picks = [pool[int(k)] for k in np.linspace(0, len(pool) - 1, min(cfg.n_real, len(pool)))]
    settings = GenerateSettings(gl=cfg.gl)
    clips = images_to_clips([ds.image(i)[None] for i in picks], ds.preset, ds.stats,
                            ds.preset.clip_seconds, settings, gl_seeds=list(range(len(picks))))
    for j, (clip, idx) in enumerate(zip(clips, picks)):
        row = ds.rows[idx]
        title = (row.get("title") or row.get("source") or f"clip {idx}")[:60]
        clip.record = {"index": j, "kind": "real", "dataset_index": idx, "title": f"real: {title}",
                       **{k: row.get(k, "") for k in ("split", "composer", "offset_seconds")},
                       **clip.record, "settings": settings.to_dict()}
    write_outputs(clips, fresh(out / "real"), {"preset": ds.preset, "stats": ds.stats})


def save_untrained(cfg: DemoConfig, out: Path) -> Path:
    """The training run at step 0 - the Trainer's own set-up with the demo's seed and configs,
    i.e. the weights the trained run started from - saved as a run directory."""
    from ..train.trainer import Trainer

    dest = fresh(out / "untrained")
    trainer = Trainer(cfg.model, out / "data", dest, config=cfg.model_config,
                      overrides={"seed": cfg.seed}, progress=False)
    trainer._setup()
    trainer.save(0)
    return dest


def stage_evaluate(cfg: DemoConfig, out: Path, resume: bool = False) -> None:
    """Metrics of the trained model (with floor and ceiling), then of the untrained generator.

    Both calls use the same seed, so their real halves, floor and noise ceiling are identical
    and the untrained column can sit beside the others in the report.
    """
    dest = fresh(out / "eval")
    dest.mkdir(parents=True)
    n = ["--n", str(cfg.n_eval), "--seed", str(cfg.seed)]
    cli(["evaluate", "--real", str(out / "data"), "--fake", str(out / "fake"), "--out", str(dest), *n])
    if cfg.untrained_baseline:
        untrained = save_untrained(cfg, out)
        cli(["generate", str(untrained), "--n", str(cfg.n_eval), "--seed", str(cfg.seed + 10_000),
             "--no-plots", "--batch", "64", *_gl_flags(cfg), "--device", "cpu",
             "--out", str(fresh(out / "untrained-fake"))])
        cli(["evaluate", "--real", str(out / "data"), "--fake", str(out / "untrained-fake"),
             "--out", str(dest / "untrained"), "--no-plot", *n])


# --------------------------------------------------------------------------- driver

def run_demo(out: str | Path, cfg: DemoConfig = DemoConfig(), quick: bool = False,
             force: bool = False) -> Path:
    """Run every stage into ``out``; returns the path of report.html."""
    from .report import write_demo_report

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    st = Stages(out, force=force)
    st.state["config"] = {**asdict(cfg), "quick": quick}
    settings = asdict(cfg)
    pick = lambda *keys: {k: settings[k] for k in keys}  # noqa: E731
    st.run("music", f"the shipped model: a {cfg.music_seconds:g} s piece and a "
           f"{cfg.style_seconds:g} s clip per style", pick("music_seconds", "style_seconds",
                                                         "pretrained_folder", "gl", "seed"),
           [out / "music"], lambda r: stage_music(cfg, out, r))
    st.run("prepare", f"built-in corpus, {cfg.max_hours:g} h, preset {cfg.preset}",
           pick("max_hours", "preset"), [out / "data" / "manifest.csv"],
           lambda r: stage_prepare(cfg, out, r))
    st.run("train", f"{cfg.model} ({cfg.model_config}) for about {cfg.train_minutes:g} min "
           f"(at most {cfg.train_steps} steps)",
           pick("model", "model_config", "train_minutes", "train_steps", "calibration_steps", "seed"),
           [out / "run" / "generator.safetensors"], lambda r: stage_train(cfg, out, r))
    st.run("generate", f"{cfg.n_listen} clips, a {cfg.long_seconds:g} s piece, "
           f"{cfg.interpolate}-step interpolation, {cfg.n_eval} for evaluation",
           pick("n_listen", "n_eval", "long_seconds", "interpolate", "gl", "seed"),
           [out / d / "generated.json" for d in ("samples", "long", "interp", "fake")],
           lambda r: stage_generate(cfg, out, r))
    st.run("real", f"{cfg.n_real} real clips through the same Griffin-Lim",
           pick("n_real", "gl"), [out / "real" / "generated.json"], lambda r: stage_real(cfg, out, r))
    st.run("evaluate", f"{cfg.n_eval} generated vs real, with real floor and noise ceiling",
           pick("n_eval", "untrained_baseline", "gl", "seed"), [out / "eval" / "metrics.json"],
           lambda r: stage_evaluate(cfg, out, r))
    st.header("report")
    t0 = time.perf_counter()
    path = write_demo_report(cfg, out, st.timings + [("report", 0.0, "done")], quick)
    st.timings.append(("report", time.perf_counter() - t0, "done"))
    total = time.perf_counter() - st.t_start
    st.state["last_run"] = {"seconds": round(total, 1), "timings": st.timings}
    st.save()
    print(f"\nreport: {path}  (total {total:.0f} s)\nopen it in a browser: file://{path.resolve()}",
          file=sys.stderr)
    return path


def main(argv: list[str] | None = None) -> int:
    from . import __doc__ as doc

    p = argparse.ArgumentParser(prog="python -m pianogan.demo", description=doc.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default="demo", help="output folder (default demo)")
    p.add_argument("--quick", action="store_true", help="seconds-long smoke run (for tests)")
    p.add_argument("--force", action="store_true", help="redo every stage")
    p.add_argument("--minutes", type=float,
                   help=f"training time budget in minutes (default {DemoConfig.train_minutes:g})")
    p.add_argument("--steps", type=int,
                   help=f"at most this many generator steps (default {DemoConfig.train_steps})")
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
