"""Files of a generation run: WAVs, spectrogram PNGs, a grid PNG, images.npy, generated.json.

Layout of an output directory DIR (written by :func:`write_outputs`)::

    DIR/clip-0000.wav ...   16-bit WAV at the output rate
    DIR/clip-0000.png ...   spectrogram of the magnitude that was inverted: time (s) x frequency (Hz)
    DIR/grid.png            the generator images of all clips (up to 64)
    DIR/images.npy          (n, H, W) float32 generator images in [-1, 1], rows in clip order
                            (a long piece owns several rows: its record's "image_rows")
    DIR/generated.json      {"format_version", "created", "checkpoint", "step", "model", "preset",
                            "stats", "settings", "clips": [record, ...]}; one record per clip,
                            self-contained (see :func:`pianogan.generate.regenerate`)

Figures use matplotlib's object API (``Figure`` + Agg canvas), so no global pyplot state.
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

import numpy as np

from .atomic import atomic_path, write_json
from .config import Preset
from .errors import PianoGANError


def figure(width: float, height: float):
    """A matplotlib Figure of ``width`` x ``height`` inches on its own Agg canvas (no pyplot)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=100)
    FigureCanvasAgg(fig)
    return fig


MAX_PLOT_COLUMNS = 2048  # more frames than a figure has pixels are max-pooled first


def for_display(x: np.ndarray, max_cols: int = MAX_PLOT_COLUMNS) -> np.ndarray:
    """(H, W) -> (H, <= max_cols): frames max-pooled in groups (a peak stays visible). Matplotlib
    resamples the whole array in float64 RGBA: a 10-minute piece (513 x 18750) took the
    generate command from 0.7 to 1.4 GB peak, measured."""
    x = np.asarray(x)
    k = -(-x.shape[1] // max_cols)
    if k <= 1:
        return x
    w = x.shape[1] // k * k
    return x[:, :w].reshape(x.shape[0], -1, k).max(axis=2)


def save_spectrogram_png(path: str | Path, magnitude: np.ndarray, preset: Preset,
                         title: str = "", top_db: float = 80.0) -> None:
    """Plot a linear |STFT| (freq, frames) at the preset's rate in dB: time (s) x frequency (Hz)."""
    mag = np.asarray(magnitude, dtype=np.float32)
    db = 20 * np.log10(for_display(mag) + 1e-6)
    vmax = float(db.max()) if db.size else 0.0
    seconds = (mag.shape[1] - 1) * preset.hop_length / preset.sample_rate
    fig = figure(min(4 + 2.5 * seconds, 18), 3.2)
    ax = fig.add_subplot(1, 1, 1)
    im = ax.imshow(db, origin="lower", aspect="auto", cmap="magma", vmin=vmax - top_db, vmax=vmax,
                   extent=[0, seconds, 0, preset.sample_rate / 2], interpolation="nearest")
    ax.set_xlabel("time (s)")
    ax.set_ylabel("frequency (Hz)")
    if title:
        ax.set_title(title, fontsize=10)
    fig.colorbar(im, ax=ax, label="dB", pad=0.01)
    fig.tight_layout()
    save_figure(fig, path)


def save_grid_png(path: str | Path, images: np.ndarray, titles: list[str] | None = None,
                  max_images: int = 64, preset: Preset | None = None, title: str = "",
                  cols: int | None = None) -> Path:
    """Generator images (n, H, W) in [-1, 1] as a grid; row 0 (lowest frequency) at the bottom.

    Each image is titled ``titles[i]`` (default its index); with ``preset`` the images get time
    (s) and frequency (Hz) axes instead (the trainer's sample grids). ``title`` goes over the
    grid; ``cols`` defaults to a near-square layout.
    """
    images = np.asarray(images)[:max_images]
    n = max(len(images), 1)
    h, w = images.shape[1:] if images.ndim == 3 else (1, 1)
    if cols is None:
        cols = max(1, round(math.sqrt(n * h / w * 1.5)))
    cols = min(n, cols)
    rows = math.ceil(n / cols)
    cell_w = 2.4
    fig = figure(cols * cell_w, rows * cell_w * h / w + 0.4 * rows + (0.3 if title else 0.0))
    for i, img in enumerate(images):
        ax = fig.add_subplot(rows, cols, i + 1)
        img = for_display(img)
        if preset is None:
            ax.imshow(img, origin="lower", aspect="auto", cmap="magma", vmin=-1, vmax=1,
                      interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            ax.set_title(titles[i] if titles else f"{i}", fontsize=8)
            continue
        from .spectrogram import row_to_hz

        ax.imshow(img, origin="lower", aspect="auto", cmap="magma", vmin=-1, vmax=1,
                  extent=(0, preset.clip_seconds, -0.5, h - 0.5), interpolation="nearest")
        ticks = np.linspace(0, h - 1, 5)
        ax.set_yticks(ticks)
        ax.set_yticklabels([f"{f / 1000:.1f}k" if f >= 1000 else f"{f:.0f}"
                            for f in row_to_hz(ticks, preset)], fontsize=6)
        ax.tick_params(axis="x", labelsize=6)
        if i % cols == 0:
            ax.set_ylabel("frequency (Hz)", fontsize=7)
        if i // cols == rows - 1:
            ax.set_xlabel("time (s)", fontsize=7)
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    save_figure(fig, path)
    return Path(path)


def save_figure(fig, path: str | Path) -> None:
    """Save a :func:`figure` as PNG to ``path``, atomically."""
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")


def write_outputs(clips, out: str | Path, info: dict, plots: bool = True) -> dict:
    """Write every file of a generation run to ``out``; returns the generated.json dict."""
    from .audio import write_audio
    from .spectrogram import Stats

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    preset: Preset = info["preset"]
    stats: Stats = info["stats"]
    records = []
    for clip in clips:
        i = clip.record["index"]
        wav, png = f"clip-{i:04d}.wav", f"clip-{i:04d}.png"
        write_audio(out / wav, clip.audio, clip.sample_rate)
        if plots:
            kind = clip.record.get("kind", "sample")
            label = {"interpolation": f"t = {clip.record.get('t', 0):.2f}"}.get(kind, kind)
            title = clip.record.get("title") or f"clip {i} ({label}, seed {clip.record.get('seed')})"
            save_spectrogram_png(out / png, clip.magnitude, preset, title)
        records.append({**clip.record, "file": wav, "spectrogram": png if plots else None})
    images = np.concatenate([c.images for c in clips]) if clips else np.zeros((0, *preset.image_shape))
    with atomic_path(out / "images.npy") as tmp:
        np.save(tmp, images.astype(np.float32))
    if plots and len(images):
        titles = []
        for c in clips:
            k = len(c.images)
            titles += [f"clip {c.record['index']}" + (f".{j}" if k > 1 else "") for j in range(k)]
        save_grid_png(out / "grid.png", images, titles)
    first = records[0] if records else {}
    doc = {"format_version": 1, "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
           "checkpoint": first.get("checkpoint"), "step": first.get("step"),
           "model": first.get("model"), "preset": preset.to_dict(), "stats": stats.to_dict(),
           "settings": first.get("settings"), "images": "images.npy",
           "grid": "grid.png" if plots and len(images) else None, "clips": records}
    write_json(out / "generated.json", doc, indent=1)
    return doc


def read_records(path: str | Path) -> list[dict]:
    """The clip records of a generated.json (or of a directory holding one)."""
    path = Path(path)
    if path.is_dir():
        path = path / "generated.json"
    if not path.is_file():
        raise PianoGANError(f"{path}: file not found")
    try:
        doc = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise PianoGANError(f"{path}: not a readable generated.json ({e})") from None
    clips = doc.get("clips") if isinstance(doc, dict) else None
    if not isinstance(clips, list):
        raise PianoGANError(f"{path}: has no \"clips\" list")
    return clips
