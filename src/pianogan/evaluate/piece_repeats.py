"""The figures of `pianogan evaluate-pieces` over several independent draws.

One draw of the key measures moves by as much as the band their bars allow: the shipped file's
halves read 0.547-0.648 over three disjoint draws, and the real references themselves 0.586-0.648
(docs/results.md, section 33). ``--repeats R`` measures R draws, each with fresh latents and fresh
real excerpts, and reports every figure's mean and spread, real and fake side by side, and the
gap fake - real per draw (each draw's bar is set by that draw's own real figure).

Draw r uses seed ``seed + DRAW_STRIDE * r``: the pieces take the latents ``seed_r + i`` and the
20 s note pieces ``seed_r + 5000 + i``, so no latent is used twice while ``--n`` and
``--note-n`` stay below 5000.
"""

from __future__ import annotations

import numpy as np

DRAW_STRIDE = 10_000

# figure -> (label, section of the report, key path inside each of its real and fake sets); policy
# as data. A figure missing from a draw (no transcription, no note pieces) is left out of the summary.
FIGURES = {
    "window_key_agreement": ("window key agreement (long pieces)", "pieces", ("window_key_agreement", "agreement")),
    "seams_above_p99": ("boundary flux > real p99 (share)", "pieces", ("join_flux", "share_above_p99")),
    "in_key_share": ("in-key share", "notes", ("in_key_share",)),
    "notes_per_s": ("notes per second", "notes", ("notes_per_s",)),
    "polyphony": ("polyphony", "notes", ("polyphony",)),
    "halves_key_agreement": ("key agreement of the halves", "notes", ("key_agreement_notes",)),
    "pulse": ("pulse", "notes", ("pulse",)),
}
# Fake only: the pitch-class divergence as a ratio to the real floor (the floor is its real side).
PC_JS = ("pc_js_ratio", "pitch-class divergence / real floor")


def draw_seeds(seed: int, repeats: int) -> list[int]:
    """The seeds of ``repeats`` disjoint draws starting at ``seed``."""
    return [int(seed) + DRAW_STRIDE * r for r in range(int(repeats))]


def _get(d: dict, path: tuple[str, ...]):
    for k in path:
        if not isinstance(d, dict) or k not in d:
            return None
        d = d[k]
    return None if d is None else float(d)


def draw_figures(report: dict) -> dict[str, dict[str, float]]:
    """One draw's report (``pieces`` / ``notes`` sections) -> {figure: {"real": x, "fake": y}};
    the pitch-class divergence as {"fake": ratio to the real floor}."""
    out = {}
    for name, (_, section, path) in FIGURES.items():
        sets = (report.get(section) or {}).get("sets") or {}
        pair = {side: _get(sets.get(side) or {}, path) for side in ("real", "fake")}
        if None not in pair.values():
            out[name] = pair
    ratio = _get(report.get("notes") or {}, ("pc_js_repeats", "ratio"))
    if ratio is not None:
        out[PC_JS[0]] = {"fake": ratio}
    return out


def summarise(draws: list[dict[str, dict[str, float]]], seeds: list[int]) -> dict:
    """{"seeds", "draws", "mean", "sd"}: per figure the mean and the standard deviation (ddof 1;
    0 for one draw) over the draws of real, fake and the per-draw gap fake - real."""
    names = [k for k in draws[0] if all(k in d for d in draws)] if draws else []
    mean, sd = {}, {}
    for name in names:
        cols = {side: np.array([d[name][side] for d in draws]) for side in draws[0][name]}
        if "real" in cols:
            cols["gap"] = cols["fake"] - cols["real"]
        mean[name] = {k: float(v.mean()) for k, v in cols.items()}
        sd[name] = {k: float(v.std(ddof=1)) if len(v) > 1 else 0.0 for k, v in cols.items()}
    return {"seeds": list(seeds), "draws": draws, "mean": mean, "sd": sd}


def to_markdown(summary: dict) -> list[str]:
    """Lines of a table: each figure's real and fake mean +- sd and the gap over the draws."""
    n = len(summary["seeds"])
    lines = [f"## Over {n} draws (seeds {', '.join(map(str, summary['seeds']))})", "",
             "| measure | real | fake | fake - real |", "|---|---|---|---|"]

    def cell(name, side):
        if side not in summary["mean"][name]:
            return "-"
        return f"{summary['mean'][name][side]:.3f} ± {summary['sd'][name][side]:.3f}"

    labels = {name: figure[0] for name, figure in FIGURES.items()} | {PC_JS[0]: PC_JS[1]}
    for name in summary["mean"]:
        lines.append(f"| {labels.get(name, name)} | {cell(name, 'real')} | {cell(name, 'fake')} | {cell(name, 'gap')} |")
    return lines + [""]
