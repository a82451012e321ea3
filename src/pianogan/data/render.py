"""MIDI -> piano audio, offline, with TinySoundFont and a General MIDI SoundFont.

TinySoundFont (PyPI ``tinysoundfont``, C library inside the wheel) renders with no audio device:
:meth:`tinysoundfont.Synth.generate_simple` fills a buffer, and we drive note-on/off ourselves at
exact sample positions (its ``Sequencer`` and ``Synth.start`` are for real-time playback and need
``pyaudio``, which is not required here). TinySoundFont ignores the sustain pedal (CC64), so
:func:`apply_sustain` applies it to the notes before rendering: a note released while the pedal is
down keeps sounding until the pedal is lifted (or the same key is struck again), as on a piano.

Everything is rendered with the SoundFont's acoustic grand piano (bank 0, program 0); drum tracks
are dropped. :func:`find_soundfont` returns the pinned SoundFont (or the user's), with its hash.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np

from ..errors import PianoGANError, describe

# The one SoundFont that renders the built-in corpus and midi: sources unless --soundfont names
# another: the acoustic grand piano of Fluid R3 (MIT), cut unchanged out of FluidR3_GM.sf2 by
# tools/piano_soundfont.py and shipped in the package, so the corpus is the same on every machine.
PINNED_SOUNDFONT = Path(__file__).parent / "soundfont" / "FluidR3_piano.sf2"
PINNED_SHA256 = "e89aa406c7b81d0c3fd7ca9c7c19d49324d3df96b802a1a146773f4df50314aa"
PINNED_LICENSE = "MIT (Fluid R3, Frank Wen)"
RENDER_RATE = 44_100  # Hz; rendered at full rate, then resampled (TinySoundFont interpolates linearly)
PIANO_RANGE = (21, 108)  # MIDI keys A0..C8


def file_sha256(path: str | Path) -> str:
    import hashlib

    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


@dataclass(frozen=True)
class SoundFont:
    """A SoundFont file and what identifies its sound: the sha256 of its bytes."""

    path: Path
    sha256: str
    pinned: bool  # the package's own FluidR3_piano.sf2

    def describe(self) -> dict:
        return {"file": self.path.name, "sha256": self.sha256, "pinned": self.pinned,
                "license": PINNED_LICENSE if self.pinned else "see the SoundFont's own licence"}


def find_soundfont(explicit: str | Path | None = None) -> SoundFont:
    """``explicit`` (a .sf2/.sf3 the user chose), else the pinned :data:`PINNED_SOUNDFONT`,
    checked against :data:`PINNED_SHA256`. Raises PianoGANError (one line) if it is missing or
    its hash differs."""
    if explicit:
        path = Path(explicit).expanduser()
        if not path.is_file():
            raise PianoGANError(f"SoundFont not found: {path}")
        path = path.resolve()
        digest = file_sha256(path)
        return SoundFont(path, digest, digest == PINNED_SHA256)
    path = PINNED_SOUNDFONT
    hint = "reinstall pianogan (`make setup` or `pip install -e .`), or pass --soundfont FILE"
    if not path.is_file():
        raise PianoGANError(f"the pinned SoundFont {path} is missing: {hint}")
    digest = file_sha256(path)
    if digest != PINNED_SHA256:
        raise PianoGANError(f"the pinned SoundFont {path} has sha256 {digest[:12]}..., expected "
                            f"{PINNED_SHA256[:12]}... (damaged or replaced): {hint}")
    return SoundFont(path, digest, True)


@dataclass(frozen=True)
class Note:
    start: float  # seconds
    end: float  # seconds
    pitch: int  # MIDI key
    velocity: int  # 1..127


def pedal_intervals(changes: Iterable[tuple[float, int]], threshold: int = 64) -> list[tuple[float, float]]:
    """CC64 (time s, value 0..127) changes -> sorted (down, up) intervals in seconds; value >= threshold
    means down. A pedal still down at the end gets up = +inf."""
    out: list[tuple[float, float]] = []
    down: float | None = None
    for t, v in sorted(changes, key=lambda c: c[0]):
        if v >= threshold and down is None:
            down = float(t)
        elif v < threshold and down is not None:
            out.append((down, float(t)))
            down = None
    if down is not None:
        out.append((down, float("inf")))
    return out


def apply_sustain(notes: list[Note], pedal: list[tuple[float, float]]) -> list[Note]:
    """Notes as heard with the sustain pedal: a note whose key is released while the pedal is down
    lasts until the pedal goes up; a sounding key struck again is cut at the new strike."""
    ups = np.array([u for _, u in pedal]) if pedal else np.zeros(0)
    downs = np.array([d for d, _ in pedal]) if pedal else np.zeros(0)
    ext = []
    for n in notes:
        end = n.end
        if len(downs):
            i = int(np.searchsorted(downs, n.end, side="right")) - 1
            if i >= 0 and ups[i] > n.end:  # released while the pedal is down
                end = float(ups[i])
        ext.append([n.start, end, n.pitch, n.velocity])
    ext.sort(key=lambda x: (x[2], x[0]))
    for a, b in zip(ext, ext[1:]):  # same key: cut at the next strike
        if a[2] == b[2] and a[1] > b[0]:
            a[1] = max(b[0], a[0] + 1e-3)
    out = [Note(s, e, p, v) for s, e, p, v in ext if np.isfinite(e)]
    out += [Note(s, s + 10.0, p, v) for s, e, p, v in ext if not np.isfinite(e)]
    return sorted(out, key=lambda n: (n.start, n.pitch))


def fold_to_piano(pitch: int) -> int:
    """Move a key outside A0..C8 by octaves into the piano's range."""
    lo, hi = PIANO_RANGE
    while pitch < lo:
        pitch += 12
    while pitch > hi:
        pitch -= 12
    return pitch


def notes_from_midi(pm) -> list[Note]:
    """All non-drum notes of a ``pretty_midi.PrettyMIDI``, each track's own sustain pedal applied."""
    notes: list[Note] = []
    for inst in pm.instruments:
        if inst.is_drum:
            continue
        track = [Note(float(n.start), float(max(n.end, n.start + 1e-3)), fold_to_piano(int(n.pitch)),
                      int(np.clip(n.velocity, 1, 127))) for n in inst.notes]
        pedal = pedal_intervals((c.time, c.value) for c in inst.control_changes if c.number == 64)
        notes += apply_sustain(track, pedal)
    return sorted(notes, key=lambda n: (n.start, n.pitch))


def load_midi(path: str | Path):
    """Parse a MIDI file with pretty_midi; raises PianoGANError (one line) if it cannot be parsed."""
    import warnings

    import pretty_midi

    path = Path(path)
    if not path.is_file():
        raise PianoGANError(f"{path}: file not found")
    if path.stat().st_size == 0:
        raise PianoGANError("empty file")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return pretty_midi.PrettyMIDI(str(path))
    except Exception as e:  # mido/pretty_midi raise many types for corrupt files
        raise PianoGANError(f"not a readable MIDI file ({describe(e)})") from None


class PianoRenderer:
    """Renders :class:`Note` lists with one SoundFont's acoustic grand piano, in blocks.

    The output level is calibrated once per SoundFont: a C-major triad at velocity 100 peaks at
    ``reference_peak``, so SoundFonts of different loudness give comparable levels.
    """

    def __init__(self, soundfont: str | Path, sample_rate: int = RENDER_RATE, reference_peak: float = 0.3):
        try:
            import tinysoundfont
        except ImportError:
            raise PianoGANError("rendering MIDI needs tinysoundfont: pip install --no-deps tinysoundfont "
                                "(its pyaudio dependency is only for live playback)") from None

        self.soundfont = Path(soundfont)
        self.sample_rate = int(sample_rate)
        self._tsf = tinysoundfont
        try:
            self._synth = tinysoundfont.Synth(samplerate=self.sample_rate)
            self._sfid = self._synth.sfload(str(self.soundfont), max_voices=256)
            self._synth.program_select(0, self._sfid, 0, 0)
        except Exception as e:
            raise PianoGANError(f"cannot load SoundFont {self.soundfont}: {e}") from None
        self.preset_name = self._synth.sfpreset_name(self._sfid, 0, 0) or "program 0"
        self.gain = 1.0
        probe = np.concatenate(list(self.render_blocks(
            [Note(0.0, 1.0, p, 100) for p in (60, 64, 67)], tail=0.5)))
        peak = float(np.abs(probe).max())
        self.gain = reference_peak / peak if peak > 0 else 1.0

    def render_blocks(self, notes: list[Note], block_seconds: float = 10.0,
                      tail: float = 2.0) -> Iterator[np.ndarray]:
        """Yield mono float32 blocks at ``sample_rate`` Hz until ``tail`` s after the last note-off."""
        synth = self._synth
        synth.sounds_off()
        events = []  # (sample, order, key, velocity): note-offs (order 0) before note-ons at a sample
        for n in notes:
            events.append((int(round(n.start * self.sample_rate)), 1, n.pitch, n.velocity))
            events.append((int(round(n.end * self.sample_rate)), 0, n.pitch, 0))
        events.sort()
        total = (events[-1][0] if events else 0) + int(tail * self.sample_rate)
        block = max(1, int(block_seconds * self.sample_rate))
        buf = np.zeros((block, 2), np.float32)
        view = memoryview(buf).cast("B")
        frame_bytes = 2 * 4
        ev = 0
        for b0 in range(0, total, block):
            b1 = min(total, b0 + block)
            pos = b0
            while pos < b1:
                nxt = events[ev][0] if ev < len(events) else b1
                upto = min(max(nxt, pos), b1)
                if upto > pos:
                    synth.generate_simple(upto - pos, buffer=view[(pos - b0) * frame_bytes:(upto - b0) * frame_bytes])
                    pos = upto
                while ev < len(events) and events[ev][0] <= pos:
                    _, on, key, vel = events[ev]
                    if on:
                        synth.noteon(0, key, vel)
                    else:
                        synth.noteoff(0, key)
                    ev += 1
            yield buf[: b1 - b0].mean(axis=1) * np.float32(self.gain)
        synth.sounds_off()

    def render(self, notes: list[Note], tail: float = 2.0) -> np.ndarray:
        """Whole piece as one mono float32 array (samples,) at ``sample_rate`` Hz."""
        blocks = list(self.render_blocks(notes, tail=tail))
        return np.concatenate(blocks) if blocks else np.zeros(0, np.float32)
