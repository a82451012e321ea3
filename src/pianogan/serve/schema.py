"""The request body of POST /api/generate, validated strictly (no silent coercion)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

MAX_SEED = 2**31 - 1


class GenerateRequest(BaseModel):
    """One request: ``takes`` takes of ``model``, take i from seed ``seed + i``.

    Caps that depend on the server (seconds, takes, the model's styles and keys) are checked by the route
    against :class:`pianogan.serve.config.ServeConfig`.
    """

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, strict=True)

    model: str = Field(min_length=1, max_length=128)
    seed: int = Field(0, ge=0, le=MAX_SEED)
    seconds: float | None = Field(None, gt=0)  # None: the model's clip length
    takes: int = Field(1, ge=1)
    truncation: float | None = Field(None, ge=0.0, le=2.0)  # psi; None = the model's own
    style: str | None = Field(None, min_length=1, max_length=64)
    key: str | None = Field(None, min_length=1, max_length=32)  # e.g. "D minor"; None = the model's draw
    # longform: seconds between the anchors a piece's global latent (its key) moves through;
    # 0 = one key throughout; None = the model's own
    drift: float | None = Field(None, ge=0.0, le=3600.0)
    # beat-clock models: beats a minute (GenerateSettings checks 30-300); None = the style's own draw
    tempo: float | None = Field(None, gt=0.0)
    # beat-clock models: how far the beat wanders, rms radians (GenerateSettings checks 0-2); None = the model's own
    rubato: float | None = Field(None, ge=0.0)


def one_line(text: str, limit: int = 300) -> str:
    """``text`` on one line, at most ``limit`` characters."""
    line = " ".join(str(text).split())
    return line if len(line) <= limit else line[:limit - 1] + "…"
