"""What ``pianogan prepare`` does to one item, top-down: audio -> clips -> images -> shard.

1. **audio**: an audio file is decoded and resampled in a stream (:func:`.stream.audio_blocks`);
   a MIDI file or a built-in corpus piece becomes a performance (PrettyMIDI) that the
   SoundFont piano renders in blocks, and a built-in piece's performance is saved as
   ``midi/NAME.mid`` for listening;
2. **clips**: consecutive clips of the preset's length, one every ``hop`` samples (the last
   partial clip is dropped), near-silent ones counted and dropped;
3. **images**: batched STFT -> un-normalised log-magnitude images and running statistics
   (:mod:`.features`);
4. **outputs**: the shard ``shards/NAME.npy`` (float16 (clips, H, W)), then the record
   ``items/NAME.json`` (clip offsets, statistics, input fingerprint), each written atomically.

A file that cannot be used becomes a record with ``status: "skipped"`` and a one-line reason.
Messages a decoder prints on stderr (libmpg123's "Illegal Audio-MPEG-Header ...") are captured
and kept in the record's ``decoder_messages``, instead of breaking the progress bar.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import Iterator

import numpy as np

from ..atomic import atomic_path, write_json
from ..config import Preset
from ..errors import PianoGANError, describe
from .dataset import save_array
from .items import Item


def item_name(item: Item) -> str:
    """File-system-safe, stable name of an item's outputs: readable slug + hash of its key."""
    slug = re.sub(r"[^A-Za-z0-9._-]+", "_", item.source.rsplit(".", 1)[0])[-48:].strip("._-") or "item"
    return f"{slug}-{hashlib.sha1(item.key.encode()).hexdigest()[:10]}"


def new_record(item: Item) -> dict:
    from .features import RunningStats

    return {"key": item.key, "name": item_name(item), "fingerprint": item.fingerprint, "status": "done",
            "reason": "", "source_seconds": 0.0, "offsets": [], "silent": 0,
            "stats": RunningStats().to_dict(), "decoder_messages": ""}


class ItemPreparer:
    """Prepares one item at a time; holds what is costly to set up (the SoundFont renderer)."""

    def __init__(self, preset: Preset, out: Path, hop: int, silence_db: float, soundfont: str | None):
        self.preset, self.out, self.hop = preset, Path(out), hop
        self.silence_db, self.soundfont = silence_db, soundfont
        self._renderer = None

    def renderer(self):
        if self._renderer is None:
            from .render import PianoRenderer

            if self.soundfont is None:
                raise PianoGANError("no SoundFont given to render MIDI")
            self._renderer = PianoRenderer(self.soundfont)
        return self._renderer

    # ---- 1. audio

    def performance(self, item: Item):
        """The MIDI performance of a midi or builtin item (PrettyMIDI); None for audio."""
        if item.kind == "midi":
            from .render import load_midi

            return load_midi(item.path)
        if item.kind == "builtin":
            from .builtin import performance

            return performance(item.path, item.extra.get("kind", "keyboard"))
        return None

    def audio(self, item: Item, midi) -> Iterator[np.ndarray]:
        """Mono float32 blocks at the preset's rate: decoded (audio) or rendered (``midi``)."""
        from .stream import audio_blocks, resample_blocks

        if midi is None:
            return audio_blocks(item.path, self.preset.sample_rate)
        from .render import notes_from_midi

        notes = notes_from_midi(midi)
        if not notes:
            raise PianoGANError("no notes to play")
        renderer = self.renderer()
        return resample_blocks(renderer.render_blocks(notes), renderer.sample_rate, self.preset.sample_rate)

    # ---- 2 and 3. clips -> images

    def images(self, blocks: Iterator[np.ndarray], record: dict) -> np.ndarray | None:
        """Clips of the block stream -> images (n, H, W) float32, or None if no clip is kept;
        fills the record's offsets, silent count, statistics and source seconds."""
        from .features import RunningStats, clip_batch_size, clips_to_images, rms_db
        from .stream import Counted, cut_clips

        preset = self.preset
        stats, images, batch, offsets, silent = RunningStats(), [], [], [], 0
        size = clip_batch_size(preset)
        counted = Counted(blocks)

        def flush():
            if batch:
                imgs, st = clips_to_images(np.stack([c for _, c in batch]), preset)
                images.append(imgs)
                stats.merge(st)
                offsets.extend(start / preset.sample_rate for start, _ in batch)
                batch.clear()

        for start, clip in cut_clips(counted, preset.n_samples, self.hop):
            if rms_db(clip) < self.silence_db:
                silent += 1
                continue
            batch.append((start, clip))
            if len(batch) >= size:
                flush()
        flush()
        seconds = counted.samples / preset.sample_rate
        record.update(source_seconds=seconds, silent=silent, offsets=offsets, stats=stats.to_dict())
        if offsets:
            return np.concatenate(images)
        if counted.samples < preset.n_samples:
            raise PianoGANError(f"shorter than one clip ({seconds:.2f} s < {preset.clip_seconds:g} s)")
        raise PianoGANError(f"only near-silent audio (every clip below {self.silence_db:g} dBFS)")

    # ---- the item, top-down

    def process(self, item: Item) -> dict:
        """Prepare one item; writes its shard (and performance MIDI) and its record, returns the record."""
        from ..audio import CapturedText

        record = new_record(item)
        name, messages = record["name"], CapturedText()
        try:
            midi = self.performance(item)
            if item.kind == "builtin":
                with atomic_path(self.out / "midi" / f"{name}.mid") as tmp:
                    midi.write(str(tmp))  # the performance, for listening with any synthesiser
            images = self.images(_quiet(self.audio(item, midi), messages), record)
            save_array(self.out / "shards" / f"{name}.npy", images)
        except Exception as e:  # a strange file must not end a long run: skip it, say why
            reason = str(e) if isinstance(e, PianoGANError) else describe(e)
            record.update(status="skipped", reason=reason, offsets=[], stats=new_record(item)["stats"])
        record["decoder_messages"] = messages.summary()
        write_json(self.out / "items" / f"{name}.json", record, indent=1)
        return record


def _quiet(blocks: Iterator[np.ndarray], messages) -> Iterator[np.ndarray]:
    """``blocks``, with what the decoder prints on stderr while making each one added to
    ``messages.text`` (the clips' STFT and everything else runs outside the capture)."""
    from ..audio import captured_stderr

    it = iter(blocks)
    while True:
        try:
            with captured_stderr() as caught:
                block = next(it, None)
        finally:
            messages.text += caught.text
        if block is None:
            return
        yield block
