"""RUN/metrics.jsonl: one JSON object per logged step, appended as training goes.

The log is append-only, so a process killed in the middle of a write leaves a torn last line
(``{"step": 45, "loss/D": 0.``). Readers here skip such lines and say how many; a resumed run
rewrites the file (atomically) with the complete lines up to its checkpoint's step.
"""

from __future__ import annotations

import json
from pathlib import Path

from ..atomic import write_text


def _lines(path: Path) -> list[tuple[int, str, dict | None]]:
    """(1-based number, text, record or None when unreadable) of each non-blank line."""
    out = []
    for n, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), 1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except json.JSONDecodeError:
            rec = None
        out.append((n, line, rec if isinstance(rec, dict) else None))
    return out


def read_metrics(path: str | Path) -> tuple[list[dict], list[int]]:
    """(records, numbers of the unreadable lines) of a metrics.jsonl; ([], []) without one."""
    path = Path(path)
    if not path.is_file():
        return [], []
    lines = _lines(path)
    return [r for _, _, r in lines if r is not None], [n for n, _, r in lines if r is None]


def trim_metrics(path: str | Path, last_step: int) -> list[int]:
    """Keep the lines of steps <= ``last_step`` (those a resumed run does not redo), byte for
    byte, and drop unreadable ones; rewrites the file atomically. Returns the dropped
    unreadable lines' numbers."""
    path = Path(path)
    if not path.is_file():
        return []
    lines = _lines(path)
    keep = [line for _, line, r in lines if r is not None and r.get("step", 0) <= last_step]
    write_text(path, "".join(line + "\n" for line in keep))
    return [n for n, _, r in lines if r is None]
