"""The demo's HTML report: what the stages wrote -> a :class:`Report` -> one self-contained page
(inline CSS, no scripts, no network).

Every file the page shows (PNGs, WAVs) is referenced by a path *relative to the report*, so the
folder can be moved or zipped as a whole. :func:`write_report` checks that each referenced file
exists and lists missing ones at the top of the page instead of leaving a broken player.
"""

from __future__ import annotations

import html
import json
import math
import os
import platform
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from ..atomic import write_text


@dataclass
class AudioItem:
    """One playable clip: a WAV, its spectrogram PNG, a title and a one-line caption."""

    title: str
    wav: str  # path relative to the report
    png: str | None = None  # path relative to the report
    caption: str = ""


@dataclass
class MetricRow:
    """One metric across the compared sets (column name -> value; None = not computed)."""

    name: str
    values: dict[str, float | None]
    how_to_read: str = ""  # e.g. "lower = closer to real"


@dataclass
class Report:
    title: str = "PianoGAN demo"
    intro: str = ""
    generated: list[AudioItem] = field(default_factory=list)
    real: list[AudioItem] = field(default_factory=list)
    long: list[AudioItem] = field(default_factory=list)
    music: list[AudioItem] = field(default_factory=list)  # the shipped pretrained model's
    music_note: str = ""
    interpolation: list[AudioItem] = field(default_factory=list)
    grid_png: str | None = None  # generator images of the generated clips
    metrics_columns: list[str] = field(default_factory=list)  # e.g. real floor, model, noise
    metrics: list[MetricRow] = field(default_factory=list)
    metrics_note: str = ""
    plots: list[tuple[str, str]] = field(default_factory=list)  # (caption, png)
    training_plots: list[tuple[str, str]] = field(default_factory=list)  # (caption, png)
    settings: dict = field(default_factory=dict)  # shown as key/value rows
    timings: list[tuple[str, float, str]] = field(default_factory=list)  # (stage, s, status)
    footer: str = ""


CSS = """
body{font-family:system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;margin:0 auto;max-width:1180px;
padding:1.2em 1.5em;color:#1d1d1f;background:#fafafa;line-height:1.45}
h1{margin:.2em 0 .1em}h2{border-bottom:2px solid #ddd;padding-bottom:.2em;margin-top:1.8em}
.intro{color:#444;max-width:60em}
.cards{display:grid;grid-template-columns:repeat(auto-fill,minmax(340px,1fr));gap:14px}
.card{background:#fff;border:1px solid #ddd;border-radius:8px;padding:10px}
.card.wide{grid-column:1/-1}
.card img{width:100%;height:auto;display:block;border-radius:4px}
.card audio{width:100%;margin-top:6px}
.card h3{margin:0 0 6px;font-size:1em}.card p{margin:4px 0 0;color:#555;font-size:.88em}
table{border-collapse:collapse;background:#fff;font-size:.92em}
th,td{border:1px solid #ddd;padding:5px 9px;text-align:left;vertical-align:top}
th{background:#f0f0f3}td.num{text-align:right;font-variant-numeric:tabular-nums}
td.desc{color:#555;font-size:.9em;max-width:28em}
.missing{background:#fff3f3;border:1px solid #e99;padding:8px 12px;border-radius:6px}
.note{color:#555;font-size:.9em;max-width:60em}
figure{margin:0}figure img{max-width:100%;background:#fff;border:1px solid #ddd;border-radius:6px}
figcaption{color:#555;font-size:.9em}
footer{margin-top:2.5em;color:#777;font-size:.85em}
"""


def _e(text) -> str:
    return html.escape(str(text), quote=True)


def _url(path: str) -> str:
    """A relative path as an href (forward slashes, URL-escaped characters)."""
    from urllib.parse import quote

    return quote(path.replace(os.sep, "/"))


def format_value(v) -> str:
    if v is None:
        return "–"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        if not math.isfinite(v):
            return str(v)
        if v == 0:
            return "0"
        a = abs(v)
        if a >= 1e6 or a < 1e-3:
            return f"{v:.3g}"
        return f"{v:.0f}" if a >= 1000 else f"{v:.4g}"
    return str(v)


def _cards(items: list[AudioItem], wide: bool = False) -> str:
    out = []
    for it in items:
        img = (f'<img src="{_url(it.png)}" alt="spectrogram of {_e(it.title)}" loading="lazy">'
               if it.png else "")
        cap = f"<p>{_e(it.caption)}</p>" if it.caption else ""
        out.append(f'<div class="card{" wide" if wide else ""}"><h3>{_e(it.title)}</h3>{img}'
                   f'<audio controls preload="metadata" src="{_url(it.wav)}"></audio>{cap}</div>')
    return '<div class="cards">' + "".join(out) + "</div>"


def _figures(figs: list[tuple[str, str]]) -> str:
    return "".join(f'<figure><img src="{_url(p)}" alt="{_e(c)}"><figcaption>{_e(c)}</figcaption>'
                   f"</figure>" for c, p in figs)


def _metrics_table(rep: Report) -> str:
    cols = rep.metrics_columns
    head = "".join(f"<th>{_e(c)}</th>" for c in ["metric", *cols, "how to read"])
    rows = []
    for m in rep.metrics:
        cells = "".join(f'<td class="num">{_e(format_value(m.values.get(c)))}</td>' for c in cols)
        rows.append(f"<tr><td>{_e(m.name)}</td>{cells}<td class='desc'>{_e(m.how_to_read)}</td></tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


def _kv_table(d: dict) -> str:
    rows = []
    for k, v in d.items():
        if isinstance(v, (dict, list)):
            v = json.dumps(v)
        rows.append(f"<tr><th>{_e(k)}</th><td>{_e(format_value(v))}</td></tr>")
    return f"<table>{''.join(rows)}</table>"


def referenced_files(rep: Report) -> list[str]:
    """Every relative path the page points at."""
    paths = []
    for items in (rep.music, rep.generated, rep.real, rep.long, rep.interpolation):
        for it in items:
            paths += [it.wav] + ([it.png] if it.png else [])
    paths += [p for _, p in rep.plots + rep.training_plots]
    if rep.grid_png:
        paths.append(rep.grid_png)
    return paths


def render(rep: Report, missing: list[str] | None = None) -> str:
    """The page as an HTML string."""
    parts = [f"<h1>{_e(rep.title)}</h1>"]
    if rep.intro:
        parts.append(f'<p class="intro">{_e(rep.intro)}</p>')
    if missing:
        parts.append('<div class="missing"><b>Missing files</b> (a stage failed or was skipped): '
                     + ", ".join(_e(m) for m in missing) + "</div>")
    sections = [
        ("Music from the shipped model", rep.music and _cards(rep.music, wide=True), rep.music_note),
        ("Generated clips", rep.generated and _cards(rep.generated),
         "Each clip: the spectrogram of the magnitude that Griffin-Lim inverted, and the audio."),
        ("Real clips, same inversion", rep.real and _cards(rep.real),
         "Training clips turned into images and back with the same Griffin-Lim: the best the "
         "generator could sound with this phase retrieval."),
        ("A long piece", rep.long and _cards(rep.long, wide=True),
         "Several clip images along a smooth latent walk, joined in the magnitude domain and "
         "inverted with one Griffin-Lim, so there are no clicks at the joins."),
        ("Latent interpolation", rep.interpolation and _cards(rep.interpolation),
         "Clips along the latent path between two seeds."),
    ]
    for title, body, note in sections:
        if body:
            parts.append(f"<h2>{_e(title)}</h2><p class='note'>{_e(note)}</p>{body}")
    if rep.grid_png:
        parts.append("<h2>Generator images</h2>" + _figures([("generator output images "
                     "(rows = frequency, low at the bottom; columns = time)", rep.grid_png)]))
    if rep.metrics:
        parts.append("<h2>Metrics</h2>")
        if rep.metrics_note:
            parts.append(f"<p class='note'>{_e(rep.metrics_note)}</p>")
        parts.append(_metrics_table(rep))
    if rep.plots:
        parts.append("<h2>Evaluation plots</h2>" + _figures(rep.plots))
    if rep.training_plots:
        parts.append("<h2>Training</h2>" + _figures(rep.training_plots))
    if rep.settings:
        parts.append("<h2>Run settings</h2>" + _kv_table(rep.settings))
    if rep.timings:
        rows = "".join(f"<tr><td>{_e(s)}</td><td class='num'>{t:.1f}</td><td>{_e(st)}</td></tr>"
                       for s, t, st in rep.timings)
        total = sum(t for _, t, _ in rep.timings)
        parts.append("<h2>Timings</h2><table><thead><tr><th>stage</th><th>seconds</th><th>status"
                     f"</th></tr></thead><tbody>{rows}<tr><th>total</th><th class='num'>"
                     f"{total:.1f}</th><th></th></tr></tbody></table>")
    if rep.footer:
        parts.append(f"<footer>{_e(rep.footer)}</footer>")
    return ("<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
            "<meta name='viewport' content='width=device-width,initial-scale=1'>"
            f"<title>{_e(rep.title)}</title><style>{CSS}</style></head><body>\n"
            + "\n".join(parts) + "\n</body></html>\n")


def write_report(path: str | Path, rep: Report) -> list[str]:
    """Write the page to ``path`` (atomically); returns the referenced files that do not exist."""
    path = Path(path)
    missing = [p for p in referenced_files(rep) if not (path.parent / p).is_file()]
    write_text(path, render(rep, missing))
    return missing


# --------------------------------------------------------------------------- the demo's report

def metric_rows(metrics: dict, untrained: dict | None = None):
    """evaluate's metrics.json (+ the untrained generator's) -> (columns, [MetricRow], note)."""
    from ..evaluate.report import COLUMNS, table_rows

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
    from ..generate_files import figure, save_figure
    from .stages import run_metrics

    rows = run_metrics(run)
    keys = [k for k in ("loss/D", "loss/G", "loss/wdist", "loss/gp") if any(k in r for r in rows)]
    if len(rows) < 2 or not keys:
        return None
    fig = figure(9, 3.2)
    ax = fig.add_subplot(1, 1, 1)
    for k in keys:
        pts = [(r["step"], r[k]) for r in rows if k in r]
        ax.plot([p[0] for p in pts], [p[1] for p in pts], label=k, lw=1.2)
    ax.set_xlabel("generator step")
    ax.set_ylabel("loss")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    save_figure(fig, path)
    return path


def _load_json(path: Path, default=None):
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return default


def _clip_items(out: Path, sub: str, title, caption) -> list[AudioItem]:
    doc = _load_json(out / sub / "generated.json", {}) or {}
    return [AudioItem(title=title(r), wav=f"{sub}/{r['file']}",
                      png=f"{sub}/{r['spectrogram']}" if r.get("spectrogram") else None,
                      caption=caption(r)) for r in doc.get("clips", [])]


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

    from .. import __version__

    return {"pianogan": __version__, "python": platform.python_version(), "torch": torch.__version__,
            "cpu": cpu, "cores": os.cpu_count(), "torch threads": torch.get_num_threads()}


def build_report(cfg, out: Path, timings: list, quick: bool) -> Report:
    """Collect what the demo's stages wrote into OUT (a :class:`DemoConfig` run) into a Report."""
    gen = _load_json(out / "samples" / "generated.json", {}) or {}
    state = _load_json(out / "demo.json", {}) or {}
    train = state.get("stages", {}).get("train", {})
    rep = Report(title="PianoGAN demo" + (" (quick smoke run)" if quick else ""))
    step, train_s = gen.get("step"), train.get("seconds")
    rep.intro = (f"A tiny {cfg.model} ({cfg.model_config} config) trained for "
                 f"{step if step is not None else '?'} generator steps"
                 + (f" ({train_s / 60:.1f} min)" if train_s else "") + " "
                 f"on {cfg.max_hours:g} h of the built-in piano corpus ({cfg.preset} preset: "
                 f"{gen.get('preset', {}).get('clip_seconds', '?')} s clips at "
                 f"{gen.get('preset', {}).get('sample_rate', '?')} Hz), then sampled and judged "
                 "against held-out real clips. Expect piano-like timbre and note onsets, not "
                 "melodies: this is a CPU demo of the pipeline, not a trained musician.")
    rep.generated = _clip_items(out, "samples", lambda r: f"clip {r['index']}", lambda r: f"seed {r['seed']}")
    rep.long = _clip_items(out, "long", lambda r: f"long {r['index']}",
                           lambda r: f"{r['seconds']:g} s, seed {r['seed']}, {len(r['latents'])} clip "
                           "images joined at " + ", ".join(f"{j:.1f}" for j in r.get("joins_seconds", []))
                           + " s")
    rep.interpolation = _clip_items(out, "interp", lambda r: f"interp {r['index']}",
                                    lambda r: f"t = {r['t']:.2f} from seed {r['seed']} to {r['to_seed']}")
    rep.real = _clip_items(out, "real", lambda r: str(r.get("title", ""))[:70],
                           lambda r: f"{r.get('composer', '')} · {r.get('split', '')} split")
    music = state.get("stages", {}).get("music", {}).get("result", {})
    if music.get("model"):
        rep.music = _clip_items(out, "music/piece", lambda r: f"{r['seconds']:g} s piece",
                                lambda r: f"seed {r['seed']}")
        for style in music.get("styles", []):
            rep.music += _clip_items(out, f"music/{style}", lambda r, s=style: f"{s}, {r['seconds']:g} s",
                                     lambda r: f"seed {r['seed']}")
        rep.music_note = (f"The pretrained model {music['model']} (sha256 {music['sha256'][:12]}...) that "
                          "ships inside the package, generated on this machine; its training and "
                          "measured figures are in its model card and docs/results.md. Below it, the "
                          "demo trains a tiny model live.")
        if music.get("figures"):
            rep.music_note += " Measured: " + "; ".join(f"{k} {v}" for k, v in music["figures"].items()) + "."
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
    budget = train.get("result", {})
    rep.settings = {**asdict(cfg), "quick": quick, "checkpoint step": step,
                    **({"training budget (s)": budget.get("budget_s"),
                        "training time (s)": budget.get("seconds")} if budget else {}),
                    **machine_info()}
    rep.timings = list(timings)
    rep.footer = f"Made by `python -m pianogan.demo` on {time.strftime('%Y-%m-%d %H:%M')}."
    return rep


def write_demo_report(cfg, out: Path, timings: list, quick: bool) -> Path:
    """Build and write OUT/report.html; warns about files it points at that are missing."""
    path = out / "report.html"
    missing = write_report(path, build_report(cfg, out, timings, quick))
    if missing:
        print(f"    warning: {len(missing)} file(s) the report points at are missing: "
              + ", ".join(missing[:5]), file=sys.stderr)
    return path
