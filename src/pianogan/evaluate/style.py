"""Does a conditional generator play the style it is asked for? A style classifier trained on real clips.

Features: the 73 audio descriptors of :func:`~.features.image_descriptors` per clip, standardised
with the training clips' mean and std. Model: scikit-learn ``LogisticRegression`` (lbfgs,
L2, C = 1, balanced class weights: the built-in corpus has ~5x more chorales than keyboard
pieces), deterministic. Fitted on the dataset's ``train`` split; its accuracy on the held-out
``validation`` + ``test`` clips is what a generator is held against.

Accuracy here is *balanced*: the mean over the styles present of the share of that style's clips
classified as it. A fake set has the same number of clips per style, so its plain accuracy is
this; the real held-out set does not (the built-in corpus holds few quartets there), and
balanced accuracy puts both on the same footing. Chance is 1 / number of styles. The acceptance
bar of issue 10: fake accuracy / real held-out accuracy >= :data:`RATIO_BAR`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from ..config import Preset
from ..errors import PianoGANError
from ..spectrogram import Stats
from .features import FEATURE_NAMES, image_descriptors

if TYPE_CHECKING:
    from ..data.dataset import PianoDataset

RATIO_BAR = 0.70  # fake / real accuracy the issue asks for
HELD_OUT = ("validation", "test")
MAX_ITER = 5000
BATCH = 128  # clips read and described at a time (bounded memory)


@dataclass
class StyleClassifier:
    """A fitted classifier: label names, standardisation, the model and its held-out figures."""

    styles: tuple[str, ...]
    center: np.ndarray  # (73,) training feature means
    scale: np.ndarray  # (73,) training feature stds (1 where constant)
    model: object = field(repr=False)  # sklearn LogisticRegression
    preset: Preset = field(repr=False)
    stats: Stats = field(repr=False)
    n_train: int = 0
    n_heldout: int = 0
    real_accuracy: float = float("nan")  # balanced accuracy on the held-out clips
    real_accuracy_plain: float = float("nan")
    real_per_class: dict[str, float | None] = field(default_factory=dict)
    real_confusion: list[list[int]] = field(default_factory=list)

    @property
    def chance(self) -> float:
        return 1.0 / len(self.styles)

    def features(self, images: np.ndarray, progress: bool = False, desc: str = "style features") -> np.ndarray:
        """Images (n, H, W) in the dataset's normalisation -> standardised features (n, 73)."""
        images = np.asarray(images, np.float32)
        if images.ndim != 3 or tuple(images.shape[1:]) != tuple(self.preset.image_shape):
            raise PianoGANError(f"style classifier: expected images (n, {self.preset.image_height}, "
                                f"{self.preset.image_width}), got {images.shape}")
        f = image_descriptors(images, self.preset, self.stats, progress=progress, desc=desc).features
        return (f - self.center) / self.scale

    def predict_features(self, z: np.ndarray) -> np.ndarray:
        """Standardised features (n, 73) -> style indices (n,)."""
        return np.asarray(self.model.predict(z), np.int64)

    def predict(self, images: np.ndarray) -> np.ndarray:
        """Images (n, H, W) -> predicted style indices (n,)."""
        return self.predict_features(self.features(images))

    def accuracy(self, images: np.ndarray, labels: np.ndarray) -> float:
        """Balanced accuracy (mean per-style accuracy over the styles in ``labels``) on images (n, H, W)."""
        return scores(np.asarray(labels), self.predict(images), len(self.styles))["balanced"]


def scores(labels: np.ndarray, predicted: np.ndarray, k: int) -> dict:
    """True and predicted indices (n,) -> balanced and plain accuracy, per-class accuracy
    (None for a class absent from ``labels``) and the confusion matrix (k, k) (rows: true)."""
    labels, predicted = np.asarray(labels, np.int64), np.asarray(predicted, np.int64)
    if len(labels) == 0:
        raise PianoGANError("no clips to score the style classifier on")
    if labels.min() < 0 or labels.max() >= k:
        raise PianoGANError(f"style labels must be in 0..{k - 1}")
    conf = np.zeros((k, k), np.int64)
    np.add.at(conf, (labels, predicted), 1)
    rows = conf.sum(1)
    per = [float(conf[i, i] / rows[i]) if rows[i] else None for i in range(k)]
    present = [p for p in per if p is not None]
    return {"balanced": float(np.mean(present)), "plain": float(np.trace(conf) / len(labels)),
            "per_class": per, "confusion": conf.tolist()}


def _described(dataset: PianoDataset, index: list[int], progress: bool, desc: str) -> np.ndarray:
    """Raw descriptor features (len(index), 73) of a dataset's clips, read BATCH at a time."""
    from tqdm.auto import tqdm

    out = []
    with tqdm(total=len(index), desc=desc, unit="clip", disable=not progress, leave=False) as bar:
        for lo in range(0, len(index), BATCH):
            part = dataset.images(index[lo:lo + BATCH])
            out.append(image_descriptors(part, dataset.preset, dataset.stats).features)
            bar.update(len(part))
    return np.concatenate(out) if out else np.zeros((0, len(FEATURE_NAMES)))


def fit_features(train: np.ndarray, labels: np.ndarray, seed: int = 0, c: float = 1.0):
    """(center, scale, fitted LogisticRegression) for raw features (n, d) and labels (n,)."""
    from sklearn.linear_model import LogisticRegression

    center = train.mean(0)
    scale = train.std(0)
    scale = np.where(scale > 1e-8, scale, 1.0)
    model = LogisticRegression(C=c, class_weight="balanced", max_iter=MAX_ITER, random_state=seed)
    model.fit((train - center) / scale, labels)
    return center, scale, model


def fit_style_classifier(dataset: PianoDataset, seed: int = 0, progress: bool = False,
                         labels: tuple[tuple[str, ...], np.ndarray] | None = None) -> StyleClassifier:
    """Fit on the dataset's ``train`` clips, score on its validation + test clips.

    ``dataset``: a :class:`~pianogan.data.dataset.PianoDataset` opened on all splits, whose
    source has style labels (:func:`pianogan.data.labels.dataset_labels`), or ``labels``
    (style names, per-clip index (len(dataset),)) given instead.
    """
    from ..data.labels import dataset_labels

    found = dataset_labels(dataset) if labels is None else (tuple(labels[0]), np.asarray(labels[1], np.int64))
    if found is not None and len(found[1]) != len(dataset):
        raise PianoGANError(f"{len(found[1])} style labels for {len(dataset)} clips")
    if found is None:
        raise PianoGANError(f"{dataset.root}: no style labels (source {dataset.info.get('source', '?')!r} "
                            f"has no labelling rule, or one style only)")
    styles, labels = found
    train = [i for i, r in enumerate(dataset.rows) if r["split"] == "train"]
    held = [i for i, r in enumerate(dataset.rows) if r["split"] in HELD_OUT]
    if len(set(labels[train].tolist())) < 2:
        raise PianoGANError(f"{dataset.root}: the train split holds fewer than two styles")
    if not held:
        raise PianoGANError(f"{dataset.root}: no validation or test clips to score the style classifier on")
    center, scale, model = fit_features(_described(dataset, train, progress, "style features (train)"),
                                        labels[train], seed)
    z = (_described(dataset, held, progress, "style features (held out)") - center) / scale
    s = scores(labels[held], model.predict(z), len(styles))
    return StyleClassifier(tuple(styles), center, scale, model, dataset.preset, dataset.stats, len(train),
                           len(held), s["balanced"], s["plain"], dict(zip(styles, s["per_class"])),
                           s["confusion"])


def style_report(dataset: PianoDataset, fake_images: np.ndarray, fake_labels: np.ndarray,
                 classifier: StyleClassifier | None = None, seed: int = 0, progress: bool = False) -> dict:
    """Style accuracy of fake clips (n, H, W) asked for styles ``fake_labels`` (n,) (indices into
    the dataset's style names) beside the real held-out accuracy.

    Keys: ``styles``, ``chance``, ``real_accuracy`` / ``fake_accuracy`` (balanced), their
    ``ratio`` and ``passes`` (ratio >= RATIO_BAR), ``real_accuracy_plain``, ``per_style``
    {style: {real, fake}} accuracies, ``real_confusion`` / ``fake_confusion`` (rows: true style,
    columns: predicted), ``n_train``, ``n_heldout``, ``n_fake``.
    """
    clf = classifier or fit_style_classifier(dataset, seed, progress)
    fake_labels = np.asarray(fake_labels, np.int64)
    if len(fake_labels) != len(fake_images):
        raise PianoGANError(f"{len(fake_images)} fake clips but {len(fake_labels)} labels")
    pred = clf.predict_features(clf.features(fake_images, progress, "style features (fake)"))
    s = scores(fake_labels, pred, len(clf.styles))
    ratio = s["balanced"] / clf.real_accuracy if clf.real_accuracy > 0 else float("nan")
    return {"styles": list(clf.styles), "chance": clf.chance, "real_accuracy": clf.real_accuracy,
            "real_accuracy_plain": clf.real_accuracy_plain, "fake_accuracy": s["balanced"],
            "ratio": ratio, "ratio_bar": RATIO_BAR, "passes": bool(ratio >= RATIO_BAR),
            "per_style": {name: {"real": clf.real_per_class[name], "fake": f}
                          for name, f in zip(clf.styles, s["per_class"])},
            "real_confusion": clf.real_confusion, "fake_confusion": s["confusion"],
            "n_train": clf.n_train, "n_heldout": clf.n_heldout, "n_fake": int(len(fake_labels))}
