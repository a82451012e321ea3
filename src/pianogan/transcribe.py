"""Piano transcription with a pretrained model, offline: audio -> notes and posteriorgrams -> MIDI.

The model is basic-pitch's ICASSP 2022 network (Spotify, Apache-2.0; Bittner et al. 2022,
"A lightweight instrument-agnostic model for polyphonic note transcription"). Its trained weights
ship inside the ``basic-pitch`` wheel as ``saved_models/icassp_2022/nmp.onnx`` (225 KB); we run that
file with onnxruntime. No TensorFlow, nothing downloaded at run time: ``make setup`` installs
basic-pitch with ``--no-deps`` (its Linux metadata pulls TensorFlow, which this path never uses).

- Pre-processing (ours, the same windowing as ``basic_pitch.inference``): mono audio resampled to
  22050 Hz (soxr), prefixed with half an overlap of zeros, cut into windows of 43844 samples
  (2 s less one hop) that overlap by 30 frames (7680 samples). Windows of many clips are run
  through the network in batches.
- The network gives, per window, 172 frames at 86.13 frames/s (hop 256 at 22050 Hz) of three
  posteriorgrams in [0, 1]: ``note`` (frame activity, 88 keys A0..C8), ``onset`` (88 keys) and
  ``contour`` (264 bins, a third of a semitone). 15 frames are cut at each side of every window
  and the rest joined, as basic-pitch does.
- Note creation is basic-pitch's own (``basic_pitch.note_creation.output_to_notes_polyphonic``:
  onset peaks above ``onset_threshold``, held while the note posterior stays above
  ``frame_threshold``, plus the "melodia trick" for notes without a clear onset), with its
  default thresholds; ``basic_pitch`` is imported with its import-time warnings (about the
  missing TensorFlow / CoreML / TFLite back-ends) silenced, and no logging set up.

Input at a lower rate (the 5.5-10 kHz presets) is resampled up; the model then sees nothing above
the input's Nyquist frequency (docs/evaluate.md measures what that costs in note F1).
"""

from __future__ import annotations

import contextlib
import importlib.util
import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .errors import PianoGANError

SAMPLE_RATE = 22_050  # Hz, the model's input rate (basic_pitch.constants.AUDIO_SAMPLE_RATE)
HOP = 256  # samples per posteriorgram frame (FFT_HOP)
FPS = SAMPLE_RATE / HOP  # 86.13 frames per second
WINDOW = 2 * SAMPLE_RATE - HOP  # 43844 samples per model input window (AUDIO_N_SAMPLES)
OVERLAP_FRAMES = 30  # frames shared by consecutive windows; half is cut at each side
OVERLAP = OVERLAP_FRAMES * HOP  # samples
WINDOW_HOP = WINDOW - OVERLAP  # 36164 samples between window starts
N_KEYS = 88  # piano keys A0 (MIDI 21) .. C8 (MIDI 108)
LOWEST_KEY = 21
MODEL_FILE = "saved_models/icassp_2022/nmp.onnx"
ONNX_INPUT = "serving_default_input_2:0"
ONNX_OUTPUTS = {"note": "StatefulPartitionedCall:1", "onset": "StatefulPartitionedCall:2",
                "contour": "StatefulPartitionedCall:0"}
GM_ACOUSTIC_GRAND = 0  # General MIDI program of the written MIDI files


@dataclass(frozen=True)
class NoteSettings:
    """basic-pitch's note-creation defaults (``basic_pitch.inference.predict``)."""

    onset_threshold: float = 0.5  # posterior an onset peak must reach
    frame_threshold: float = 0.3  # posterior a held note must keep
    min_note_s: float = 0.1277  # shortest note kept (11 frames)
    melodia_trick: bool = True  # also take notes that have no clear onset
    # A note is kept only if this harmonic of it lies below the input's Nyquist frequency: at the
    # 5.5-10 kHz presets the model otherwise hears steady "notes" near the band edge in white
    # noise (Eb6, E6, Bb6, C7 at 5.5 kHz, i.e. up to half the Nyquist frequency). 3 = a note
    # needs its fundamental and two overtones in the band.
    harmonic_below_nyquist: int = 3

    @property
    def min_note_frames(self) -> int:
        return int(round(self.min_note_s * FPS))


@dataclass
class Transcription:
    """One clip's transcription.

    ``notes`` (k, 4) float64 rows of (onset s, offset s, MIDI pitch 21..108, amplitude 0..1),
    sorted by onset then pitch; ``note``/``onset`` posteriorgrams (frames, 88) float32 at
    :data:`FPS`; ``seconds`` the clip's duration.
    """

    notes: np.ndarray
    note: np.ndarray
    onset: np.ndarray
    seconds: float
    extra: dict = field(default_factory=dict)

    @property
    def n_notes(self) -> int:
        return len(self.notes)


def model_path() -> Path:
    """The ONNX file inside the installed basic-pitch package (found without importing it)."""
    spec = importlib.util.find_spec("basic_pitch")
    if spec is None or not spec.submodule_search_locations:
        raise PianoGANError("the transcriber needs the basic-pitch package: run `make setup` "
                            "(pip install --no-deps basic-pitch==0.4.0 onnxruntime mir_eval resampy)")
    path = Path(next(iter(spec.submodule_search_locations))) / MODEL_FILE
    if not path.is_file():
        raise PianoGANError(f"basic-pitch is installed but has no {MODEL_FILE}")
    return path


@contextlib.contextmanager
def _quiet_import():
    """basic_pitch's __init__ warns (root logger) about each missing back-end: drop those records
    without configuring logging (a temporary handler keeps logging.warning from calling basicConfig)."""
    root = logging.getLogger()
    handler = logging.NullHandler()
    previous = root.manager.disable
    root.addHandler(handler)
    logging.disable(logging.WARNING)
    try:
        yield
    finally:
        logging.disable(previous)
        root.removeHandler(handler)


def _note_creation():
    with _quiet_import():
        from basic_pitch import note_creation
    return note_creation


def windows(audio: np.ndarray) -> np.ndarray:
    """(samples,) audio at 22050 Hz -> (n_windows, WINDOW) model inputs (basic-pitch's padding)."""
    audio = np.concatenate([np.zeros(OVERLAP // 2, np.float32), np.asarray(audio, np.float32)])
    starts = range(0, max(1, len(audio) - OVERLAP // 2), WINDOW_HOP)
    out = np.zeros((len(starts), WINDOW), np.float32)
    for i, s in enumerate(starts):
        chunk = audio[s:s + WINDOW]
        out[i, :len(chunk)] = chunk
    return out


def unwrap(output: np.ndarray, n_samples: int) -> np.ndarray:
    """(n_windows, 172, bins) window outputs -> (frames, bins) of the whole clip."""
    half = OVERLAP_FRAMES // 2
    output = output[:, half:-half]
    n_frames = int(np.floor(n_samples * FPS / SAMPLE_RATE))
    return output.reshape(-1, output.shape[-1])[:n_frames]


def resample(audio: np.ndarray, sample_rate: int) -> np.ndarray:
    """(samples,) mono at ``sample_rate`` -> float32 at 22050 Hz (soxr, high quality)."""
    from .audio import resample as soxr_resample

    audio = np.nan_to_num(np.asarray(audio, np.float32))
    if audio.ndim != 1:
        raise PianoGANError(f"expected mono audio (samples,), got shape {audio.shape}")
    return soxr_resample(audio, sample_rate, SAMPLE_RATE)


class Transcriber:
    """basic-pitch on onnxruntime. ``threads``: intra-op threads of this session only (no
    process-wide setting); ``batch_size``: model windows per run (~1.6 s of audio each)."""

    def __init__(self, threads: int = 2, batch_size: int = 32, settings: NoteSettings | None = None):
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.intra_op_num_threads = max(1, int(threads))
        opts.inter_op_num_threads = 1
        opts.log_severity_level = 3
        self.session = ort.InferenceSession(str(model_path()), sess_options=opts,
                                            providers=["CPUExecutionProvider"])
        self.batch_size = max(1, int(batch_size))
        self.settings = settings or NoteSettings()
        self._nc = _note_creation()

    def posteriors(self, clips: list[np.ndarray]) -> list[dict[str, np.ndarray]]:
        """22050 Hz clips -> per clip {"note", "onset": (frames, 88), "contour": (frames, 264)}."""
        wins = [windows(c) for c in clips]
        stacked = np.concatenate(wins)[:, :, None]
        names = list(ONNX_OUTPUTS)
        outs: dict[str, list] = {k: [] for k in names}
        for lo in range(0, len(stacked), self.batch_size):
            res = self.session.run([ONNX_OUTPUTS[k] for k in names], {ONNX_INPUT: stacked[lo:lo + self.batch_size]})
            for k, v in zip(names, res):
                outs[k].append(v)
        full = {k: np.concatenate(v) for k, v in outs.items()}
        result, lo = [], 0
        for clip, w in zip(clips, wins):
            result.append({k: unwrap(full[k][lo:lo + len(w)], len(clip)) for k in names})
            lo += len(w)
        return result

    def notes(self, post: dict[str, np.ndarray], source_rate: int = SAMPLE_RATE) -> np.ndarray:
        """Posteriorgrams of one clip -> notes (k, 4): onset s, offset s, pitch, amplitude.

        ``source_rate``: the rate the audio had before resampling (sets the highest pitch kept).
        """
        s = self.settings
        max_hz = source_rate / 2 / max(1, s.harmonic_below_nyquist)
        frames = post["note"].astype(np.float64)
        if len(frames) < 3:
            return np.zeros((0, 4))
        events = self._nc.output_to_notes_polyphonic(
            frames, post["onset"].astype(np.float64), onset_thresh=s.onset_threshold,
            frame_thresh=s.frame_threshold, min_note_len=s.min_note_frames, infer_onsets=True,
            max_freq=max_hz if max_hz < 4186.0 else None, min_freq=None, melodia_trick=s.melodia_trick)
        if not events:
            return np.zeros((0, 4))
        times = self._nc.model_frames_to_time(len(frames))
        notes = np.array([(times[a], times[b], p, amp) for a, b, p, amp in events], np.float64)
        return notes[np.lexsort((notes[:, 2], notes[:, 0]))]

    def transcribe(self, clips: list[np.ndarray] | np.ndarray, sample_rate: int, progress: bool = False,
                   desc: str = "transcribing", clips_per_step: int = 16) -> list[Transcription]:
        """Mono clips (each (samples,), any length) at ``sample_rate`` -> one Transcription each."""
        from tqdm.auto import tqdm

        out: list[Transcription] = []
        with tqdm(total=len(clips), desc=desc, unit="clip", disable=not progress, leave=False) as bar:
            for lo in range(0, len(clips), clips_per_step):
                part = [resample(c, sample_rate) for c in clips[lo:lo + clips_per_step]]
                for audio, post in zip(part, self.posteriors(part)):
                    out.append(Transcription(self.notes(post, sample_rate), post["note"], post["onset"],
                                             len(audio) / SAMPLE_RATE))
                    bar.update(1)
        return out


def to_midi(notes: np.ndarray, tempo: float = 120.0):
    """Notes (k, 4) -> a pretty_midi.PrettyMIDI with one acoustic-piano track."""
    import pretty_midi

    pm = pretty_midi.PrettyMIDI(initial_tempo=tempo)
    piano = pretty_midi.Instrument(program=GM_ACOUSTIC_GRAND, name="piano (basic-pitch transcription)")
    for start, end, pitch, amp in np.asarray(notes, np.float64).reshape(-1, 4):
        piano.notes.append(pretty_midi.Note(velocity=int(np.clip(round(127 * amp), 1, 127)), pitch=int(pitch),
                                            start=float(start), end=float(max(end, start + 1e-3))))
    pm.instruments.append(piano)
    return pm


def write_midi(notes: np.ndarray, path: str | Path) -> Path:
    """Write notes (k, 4) as a standard MIDI file (atomically)."""
    import io

    from .atomic import write_bytes

    buf = io.BytesIO()
    to_midi(notes).write(buf)
    path = Path(path)
    write_bytes(path, buf.getvalue())
    return path
