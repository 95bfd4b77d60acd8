"""Image splits for the model-update notebooks: Fashion-MNIST by default, scikit-learn digits for smoke runs."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..validation import Interval, Options, check

__all__ = ["ImageSplit", "load_image_split", "DATASETS"]

DATASETS = ("fashion_mnist", "digits")


@dataclass(frozen=True)
class ImageSplit:
    """Train/test features (float32 rows in [0, 1]), labels, the test images (for display) and class names."""

    X_train: np.ndarray
    y_train: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray
    images_test: np.ndarray
    classes: tuple[str, ...]

    @property
    def train(self) -> tuple[np.ndarray, np.ndarray]:
        return self.X_train, self.y_train

    @property
    def test(self) -> tuple[np.ndarray, np.ndarray]:
        return self.X_test, self.y_test

    @property
    def n_classes(self) -> int:
        return len(self.classes)


def load_image_split(dataset: str = "fashion_mnist", *, n_train: int = 10000, n_test: int = 5000, seed: int = 0) -> ImageSplit:
    """Load a train/test split.

    ``"fashion_mnist"``: the first ``n_train`` training and ``n_test`` test images of the official splits.
    ``"digits"``: a seeded shuffle of the 1,797 digits, ``n_test`` rows held out (capped so that at least
    half the data trains) and up to ``n_train`` rows for training.

    Examples
    --------
    >>> s = load_image_split("digits", n_train=100, n_test=50)
    >>> s.X_train.shape, s.X_test.shape, s.images_test.shape, s.n_classes
    ((100, 64), (50, 64), (50, 8, 8), 10)
    """
    from ..datasets import load_digits, load_fashion_mnist

    check(dataset, Options(DATASETS), name="dataset", owner="load_image_split")
    n_train = check(n_train, Interval(int, 1, None), name="n_train", owner="load_image_split")
    n_test = check(n_test, Interval(int, 1, None), name="n_test", owner="load_image_split")
    seed = check(seed, Interval(int, 0, None), name="seed", owner="load_image_split")
    if dataset == "fashion_mnist":
        tr = load_fashion_mnist(split="train", n=n_train)
        te = load_fashion_mnist(split="test", n=n_test)
        return ImageSplit(tr.features(), tr.labels, te.features(), te.labels, te.images, tr.classes)
    data = load_digits(size="full")
    order = np.random.default_rng(seed).permutation(len(data))
    n_test = min(n_test, len(order) // 2)
    test, train = order[:n_test], order[n_test:][:n_train]
    feats = data.features()
    return ImageSplit(feats[train], data.labels[train], feats[test], data.labels[test], data.images[test], data.classes)
