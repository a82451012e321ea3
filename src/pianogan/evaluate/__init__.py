"""Offline evaluation of generated spectrogram images against real data (no downloaded weights).

- :func:`evaluate_images` (real, fake, preset, stats) -> metrics of fake vs real;
- :func:`run_evaluation`: real floor (two disjoint real halves), fake, white-noise ceiling, all of
  equal size, plus metrics.json / metrics.md / metrics.png;
- :func:`load_fake`: turn ``--fake`` (noise, images.npy, a dataset, a run or checkpoint, audio)
  into images; :func:`white_noise_images`.

See docs/evaluate.md for the metrics, the feature space and how to read them.
"""

from .core import (SET_KEYS, Reference, build_reference, compare, evaluate_images, run_evaluation, summarise,
                   white_noise_images)
from .features import FEATURE_NAMES, FEATURE_SPACE, image_descriptors, magnitude_descriptors
from .frechet import frechet_distance
from .ndb import mean_pairwise_distance, ndb
from .report import plot_report, to_markdown, write_report
from .sources import load_fake, renormalize, sample_generator

__all__ = ["SET_KEYS", "FEATURE_NAMES", "FEATURE_SPACE", "Reference", "build_reference", "compare",
           "evaluate_images", "run_evaluation", "summarise", "white_noise_images", "image_descriptors",
           "magnitude_descriptors", "frechet_distance", "mean_pairwise_distance", "ndb", "plot_report",
           "to_markdown", "write_report", "load_fake", "renormalize", "sample_generator"]
