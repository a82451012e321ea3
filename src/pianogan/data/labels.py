"""Style labels of a prepared dataset's clips, for conditional models.

Which label a clip gets is policy, written as data: a rule per dataset source (``dataset.json``
"source"), mapping a manifest row to a label name.

- ``builtin``: the kind of piece — ``chorale`` (Bach's four-part chorales), ``quartet`` (string
  quartets played as piano reductions) or ``keyboard`` (keyboard pieces and song
  accompaniments, which are too few to stand alone);
- ``maestro``: the composer, for composers with at least ``MIN_SHARE`` of the clips (the rest
  are "other");
- any other source: no labels, and conditional models train unconditionally.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from functools import lru_cache

import numpy as np

MIN_SHARE = 0.02  # composers with fewer clips than this share of the data are pooled


@lru_cache(maxsize=1)
def _corpus_kinds() -> tuple[dict, dict]:
    """The corpus table's kind per score path, and the commonest kind per composer folder."""
    from .builtin_corpus import PIECES

    by_ref = {ref: kind for ref, _, _, kind, _ in PIECES}
    folders: dict[str, Counter] = {}
    for ref, kind in by_ref.items():
        folders.setdefault(ref.split("/")[0], Counter())[kind] += 1
    return by_ref, {f: c.most_common(1)[0][0] for f, c in folders.items()}


def _builtin_style(row: dict) -> str:
    by_ref, by_folder = _corpus_kinds()
    source = row["source"]
    kind = by_ref.get(source) or by_folder.get(source.split("/")[0], "keyboard")
    return "keyboard" if kind == "song" else kind


def _composer(row: dict) -> str:
    return row.get("composer", "").strip() or "other"


RULES: dict[str, tuple[Callable[[dict], str], bool]] = {
    # source: (row -> label, pool rare labels into "other")
    "builtin": (_builtin_style, False),
    "maestro": (_composer, True),
}


def style_labels(rows: list[dict], source: str) -> tuple[tuple[str, ...], np.ndarray] | None:
    """(label names in a fixed order, label index per row (n,) int64), or None when the source
    has no labelling rule or only one label occurs."""
    rule = RULES.get(str(source).split(":")[0])
    if rule is None or not rows:
        return None
    fn, pool = rule
    names = [fn(r) for r in rows]
    if pool:
        counts = Counter(names)
        names = [n if counts[n] >= MIN_SHARE * len(names) else "other" for n in names]
    order = tuple(sorted(set(names)))
    if len(order) < 2:
        return None
    index = {n: i for i, n in enumerate(order)}
    return order, np.array([index[n] for n in names], dtype=np.int64)


def dataset_labels(dataset) -> tuple[tuple[str, ...], np.ndarray] | None:
    """:func:`style_labels` of a :class:`~pianogan.data.dataset.PianoDataset`'s clips."""
    return style_labels(dataset.rows, dataset.info.get("source", ""))
