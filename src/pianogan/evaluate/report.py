"""Write an evaluation report: metrics.json, metrics.md (a table) and metrics.png (a plot)."""

from __future__ import annotations

import json
import math
from pathlib import Path

from .features import FEATURE_GROUPS, feature_groups

# (key in a set's metrics, label, how to read it, format)
TABLE_ROWS = [
    ("fd", "Fréchet distance (audio descriptors)", "lower = closer to real", "{:.2f}"),
    ("ndb_k", "NDB/K (mode coverage)", "lower; ~alpha for real data", "{:.2f}"),
    ("ndb_js", "JS divergence of NDB bins", "lower", "{:.3f}"),
    ("mpd_features", "mean pairwise distance (features)", "near real; ~0 = collapse", "{:.2f}"),
    ("mpd_images", "mean pairwise distance (pixels, RMS)", "near real; ~0 = collapse", "{:.3f}"),
    ("key_clarity", "key clarity (max KK correlation of the chroma)", "higher; noise ~0.45-0.5", "{:.3f}"),
    ("onset_density", "onsets per second", "near real", "{:.2f}"),
    ("harmonic_share", "harmonic share of energy (HPSS)", "near real; noise ~0.5", "{:.3f}"),
]
# Rows of the note-level measures (sets evaluated with notes=True), from the transcriber.
NOTE_ROWS = [
    ("fd_notes", "Fréchet distance (transcription features)", "lower; read as a multiple of the floor", "{:.2f}"),
    ("notes_per_s", "notes per second (transcribed)", "near real", "{:.2f}"),
    ("polyphony", "polyphony (notes sounding together)", "near real", "{:.2f}"),
    ("pitch_range", "pitch range (semitones)", "near real", "{:.1f}"),
    ("pc_js", "pitch-class histogram JS divergence to real", "lower", "{:.3f}"),
    ("pc_js_aligned", "key-aligned pitch-class JS divergence", "lower", "{:.3f}"),
    ("in_key_share", "in-key share of notes, above chance", "higher; random pitches ~0", "{:.3f}"),
    ("key_agreement_notes", "same scale in both halves (notes)", "higher; noise ~0", "{:.2f}"),
    ("window_key_agreement", "same scale in consecutive 10 s windows", "higher (clips >= 20 s)", "{:.2f}"),
    ("ioi_median_s", "median inter-onset interval (s)", "near real", "{:.3f}"),
    ("ioi_cv", "inter-onset interval variation (CV)", "near real", "{:.3f}"),
    ("pulse", "pulse (onset autocorrelation at 0.3-1.5 s)", "near real; no beat ~0.1", "{:.3f}"),
]


def table_rows(report: dict) -> list[tuple]:
    """TABLE_ROWS, plus NOTE_ROWS when the report has note-level measures."""
    return TABLE_ROWS + (NOTE_ROWS if "fd_notes" in report.get("sets", {}).get("real", {}) else [])
COLUMNS = [("real", "real (floor)"), ("fake", "fake"), ("noise", "white noise (ceiling)")]


def _fmt(value, fmt: str) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "-"
    return fmt.format(value)


def to_markdown(report: dict) -> str:
    """The report as a markdown table: one row per metric, real floor / fake / noise columns."""
    sets = report["sets"]
    cols = [(k, name) for k, name in COLUMNS if k in sets]
    s = report["settings"]
    lines = [
        f"# PianoGAN evaluation ({s['preset']['name']} preset)",
        "",
        f"Each set has n = {s['n']} clips and is compared with a disjoint real reference half of "
        f"{s['n']} clips (real: {s['n_real_total']} clips in all). Feature space: "
        f"`{report['feature_space']['name']}` ({report['feature_space']['dim']} dims); NDB with "
        f"K = {s['bins']} bins, alpha = {s['alpha']}; seed {s['seed']}.",
        "",
    ]
    if s.get("real_source"):
        lines += [f"Real: `{s['real_source']}`" + (f"; fake: `{s['fake_source']}`" if s.get("fake_source") else ""), ""]
    lines += ["| metric | " + " | ".join(name for _, name in cols) + " | how to read |",
              "|---|" + "---:|" * len(cols) + "---|"]
    for key, label, hint, fmt in table_rows(report):
        lines.append(f"| {label} | " + " | ".join(_fmt(sets[k].get(key), fmt) for k, _ in cols) + f" | {hint} |")
    score = report["summary"].get("fd_score")
    if score is not None:
        lines += ["", f"FD score (0 = real floor, 1 = white-noise ceiling): **{score:.3f}**"]
    summ = report["summary"]
    if "fd_ratio" in summ:
        lines += [f"FD as a multiple of the real floor: descriptors **{summ['fd_ratio']:.1f}x**"
                  + (f", transcription features **{summ['fd_notes_ratio']:.1f}x**" if "fd_notes_ratio" in summ else "")
                  + " (docs/evaluate.md lists the multiples that broken real clips reach)"]
    if "mpd_ratio" in report["summary"]:
        lines += [f"Diversity ratio (fake / real mean pairwise feature distance): "
                  f"**{report['summary']['mpd_ratio']:.3f}**"]
    lines += repeats_lines(report.get("repeats"))
    lines += group_lines(report)
    return "\n".join(lines) + "\n"


def group_values(report: dict) -> tuple[dict[str, dict[str, float]], str]:
    """({set: {group: FD}}, where from): the means over repeated draws when the report has them,
    else this draw's; sets without groups (older reports) are left out."""
    rep = report.get("repeats") or {}
    if rep.get("fd_groups_mean"):
        return rep["fd_groups_mean"], f"mean over {len(rep['draws'])} draws"
    return ({k: v["fd_groups"] for k, v in report["sets"].items() if "fd_groups" in v},
            f"seed {report['settings']['seed']}")


def group_lines(report: dict) -> list[str]:
    """The FD within each descriptor group (:data:`~.features.FEATURE_GROUPS`) per set, and the
    fake's as a multiple of the floor's: where a distance comes from."""
    values, where = group_values(report)
    cols = [(k, name) for k, name in COLUMNS if k in values]
    if not cols:
        return []
    ratio = "fake" in values and "real" in values
    lines = ["", f"FD within each descriptor group ({where}; groups leave out the covariance across "
                 f"groups, so they do not add up to the total):", "",
             "| descriptor group | dims | " + " | ".join(name for _, name in cols)
             + (" | fake / floor |" if ratio else " |"),
             "|---|---:|" + "---:|" * len(cols) + ("---:|" if ratio else "")]
    counts = {g: len(idx) for g, idx in feature_groups(report["feature_space"]["features"]).items()}
    for g, (label, _) in FEATURE_GROUPS.items():
        if not all(g in values[k] for k, _ in cols):
            continue
        row = f"| {label} | {counts.get(g, '-')} | " + " | ".join(f"{values[k][g]:.2f}" for k, _ in cols) + " |"
        if ratio:
            floor = values["real"][g]
            row += f" {values['fake'][g] / floor:.1f}x |" if floor > 0 else " - |"
        lines.append(row)
    return lines


def repeats_lines(rep: dict | None) -> list[str]:
    """The FD over repeated draws (``pianogan evaluate --repeats K``): mean ± sd (min-max)."""
    if not rep:
        return []
    seeds = [d["seed"] for d in rep["draws"]]
    names = {"fd_floor": "real floor", "fd_fake": "fake", "fd_ratio": "fake / floor"}
    parts = [f"{names[k]} {rep['mean'][k]:.2f} ± {rep['sd'][k]:.2f} ({rep['min'][k]:.2f}-{rep['max'][k]:.2f})"
             for k in names if k in rep["mean"]]
    return ["", f"FD over {len(seeds)} draws (seeds {seeds[0]}-{seeds[-1]}: real split and fake clips), "
                f"mean ± sd (min-max): " + "; ".join(parts)]


def plot_report(report: dict, path: str | Path) -> Path:
    """Bar charts of every table metric per set, and the standardised feature means per set."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    sets = report["sets"]
    cols = [(k, name) for k, name in COLUMNS if k in sets]
    colours = {"real": "#2b7bba", "fake": "#e07b39", "noise": "#8c8c8c"}
    rows = table_rows(report)
    n_rows = (len(rows) + 4) // 5
    groups, where = group_values(report)
    extra = 2 if groups else 1
    fig = plt.figure(figsize=(15, 3 * (n_rows + extra)), constrained_layout=True)
    grid = fig.add_gridspec(n_rows + extra, 5)
    for i, (key, label, hint, _) in enumerate(rows):
        ax = fig.add_subplot(grid[i // 5, i % 5])
        vals = [sets[k].get(key) or 0.0 for k, _ in cols]
        ax.bar(range(len(cols)), vals, color=[colours[k] for k, _ in cols])
        ax.set_xticks(range(len(cols)), [name.split(" ")[0] for _, name in cols])
        ax.set_title(f"{label}\n({hint})", fontsize=8)
        ax.tick_params(labelsize=8)
    if groups:  # the FD within each descriptor group, real floor beside fake (noise would dwarf them)
        ax = fig.add_subplot(grid[n_rows, :])
        shown = [(k, name) for k, name in cols if k in groups and k != "noise"]
        keys = [g for g in FEATURE_GROUPS if all(g in groups[k] for k, _ in shown)]
        width = 0.8 / max(1, len(shown))
        for j, (k, name) in enumerate(shown):
            ax.bar(np.arange(len(keys)) + (j - (len(shown) - 1) / 2) * width, [groups[k][g] for g in keys],
                   width, color=colours[k], label=name)
        ax.set_xticks(np.arange(len(keys)), [FEATURE_GROUPS[g][0].split(" (")[0] for g in keys], fontsize=8)
        ax.set_ylabel("FD within the group")
        ax.set_title(f"where the distance comes from: FD within each descriptor group ({where})", fontsize=9)
        ax.legend(fontsize=8)
    ax = fig.add_subplot(grid[n_rows + extra - 1, :])
    names = report["feature_space"]["features"]
    x = np.arange(len(names))
    for k, name in cols:
        ax.plot(x, sets[k]["feature_mean"], marker="o", ms=3, lw=1, color=colours[k], label=name)
    ax.axhline(0, color="black", lw=0.5)
    ax.set_xticks(x, names, rotation=90, fontsize=5)
    ax.set_xlim(-1, len(names))
    ax.set_ylabel("mean, in real-reference std units")
    ax.set_title("feature means (0 = real reference)", fontsize=9)
    ax.legend(fontsize=8)
    fig.suptitle(f"PianoGAN evaluation, n = {report['settings']['n']} clips per set", fontsize=11)
    from ..atomic import atomic_path

    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=100)
    plt.close(fig)
    return path


def write_report(report: dict, out_dir: str | Path, plot: bool = True) -> dict[str, str]:
    """Write metrics.json, metrics.md and metrics.png to out_dir; returns {kind: path}."""
    from ..atomic import write_text

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    files = {"json": str(out / "metrics.json"), "markdown": str(out / "metrics.md")}
    if plot:
        files["plot"] = str(plot_report(report, out / "metrics.png"))
    for kind, text in (("markdown", to_markdown(report)),
                       ("json", json.dumps({**report, "files": files}, indent=2) + "\n")):
        write_text(files[kind], text)
    return files
