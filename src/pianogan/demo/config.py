"""Settings of the demo."""

from __future__ import annotations

from dataclasses import dataclass, replace

from ..phase import DEFAULT_GL, GLSettings


@dataclass(frozen=True)
class DemoConfig:
    """Settings of the demo; ``QUICK`` is a seconds-long smoke version for the tests."""

    max_hours: float = 0.5  # hours of built-in corpus to prepare
    model: str = "specgan"
    model_config: str = "tiny"
    preset: str = "tiny"
    train_minutes: float = 4.0  # training time budget (wall clock, including start-ups); the demo in <= 8 min
    train_steps: int = 3000  # at most this many generator steps
    calibration_steps: int = 30  # steps of the first, timed training call
    n_listen: int = 8  # clips with spectrograms and players in the report
    n_eval: int = 256  # generated clips for the metrics
    n_real: int = 4  # real clips shown for comparison
    long_seconds: float = 20.0  # length of the long continuous piece
    interpolate: int = 6  # clips along a latent path
    gl: GLSettings = DEFAULT_GL  # Griffin-Lim of every clip, generated and real
    untrained_baseline: bool = True  # also evaluate the generator at its initial weights
    music_seconds: float = 60.0  # the shipped model's long piece
    style_seconds: float = 20.0  # and its clip per style
    pretrained_folder: str = ""  # where the shipped models are ("": the package's own)
    seed: int = 0


QUICK = DemoConfig(max_hours=0.02, train_minutes=0.0, train_steps=1, calibration_steps=1, n_listen=2,
                   n_eval=32, n_real=2, long_seconds=5.0, interpolate=3, music_seconds=20.0,
                   style_seconds=10.0,
                   gl=replace(DEFAULT_GL, n_iter=16))

STAGES = ["music", "prepare", "train", "generate", "real", "evaluate", "report"]
