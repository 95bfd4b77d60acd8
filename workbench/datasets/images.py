"""Image data: Fashion-MNIST (IDX files) and scikit-learn's digits."""
from __future__ import annotations

import gzip
import os
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ._sources import CorruptDataError, DataSourceMissing, check_rows, resolve_size

__all__ = ["ImageData", "load_fashion_mnist", "load_digits", "read_idx", "FASHION_MNIST_CLASSES"]

FASHION_MNIST_DIR = Path("/usr/share/datasets/fashion-mnist")
FASHION_MNIST_CLASSES = (
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
)
_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
_IDX_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


@dataclass(frozen=True)
class ImageData:
    """Images with integer labels.

    Attributes
    ----------
    images : numpy.ndarray
        Shape (N, H, W); uint8 in 0-255 for Fashion-MNIST, float in 0-16 for digits.
    labels : numpy.ndarray
        Shape (N,), int64 class ids.
    classes : tuple of str
        Class names in id order.
    """

    images: np.ndarray
    labels: np.ndarray
    classes: tuple[str, ...]

    def __len__(self) -> int:
        return len(self.labels)

    def features(self) -> np.ndarray:
        """Images as float32 rows scaled to [0, 1], shape (N, H*W)."""
        scale = 255.0 if self.images.dtype == np.uint8 else float(self.images.max() or 1.0)
        return (self.images.reshape(len(self), -1) / scale).astype(np.float32)


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Read an IDX file (optionally gzipped) into a numpy array.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> f = pathlib.Path(tempfile.mkdtemp()) / "x-idx1-ubyte"
    >>> _ = f.write_bytes(bytes([0, 0, 8, 1, 0, 0, 0, 3, 7, 8, 9]))
    >>> read_idx(f).tolist()
    [7, 8, 9]
    """
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as fh:
            data = fh.read()
    except (EOFError, zlib.error, gzip.BadGzipFile) as exc:
        raise CorruptDataError(f"{path} is corrupt or truncated ({type(exc).__name__}: {exc}); reinstall it "
                               "(sudo apt-get install --reinstall dataset-fashion-mnist) or replace the file.") from None
    try:
        zero, dtype_code, ndim = struct.unpack(">HBB", data[:4])
        if zero != 0 or dtype_code not in _IDX_DTYPES:
            raise CorruptDataError(f"{path} is not an IDX file (bad magic number).")
        shape = struct.unpack(f">{ndim}I", data[4 : 4 + 4 * ndim])
        return np.frombuffer(data, dtype=_IDX_DTYPES[dtype_code], offset=4 + 4 * ndim).reshape(shape)
    except (struct.error, ValueError) as exc:
        if isinstance(exc, CorruptDataError):
            raise
        raise CorruptDataError(f"{path} is corrupt or truncated (its header and size disagree: {exc}); reinstall it "
                               "(sudo apt-get install --reinstall dataset-fashion-mnist) or replace the file.") from None


def _find(folder: Path, stem: str) -> Path:
    for candidate in (folder / f"{stem}.gz", folder / stem):
        if candidate.exists():
            return candidate
    raise DataSourceMissing(
        f"Fashion-MNIST file {stem}(.gz) not found in {folder}. Install the Debian package with "
        "`sudo apt-get install dataset-fashion-mnist`, or pass path= (or set $WORKBENCH_FASHION_MNIST) "
        "to a folder holding the four IDX files."
    )


def load_fashion_mnist(
    *, split: str = "train", size: str = "full", n: int | None = None, path: str | os.PathLike | None = None
) -> ImageData:
    """Load Fashion-MNIST from IDX files.

    Parameters
    ----------
    split : {"train", "test"}
        60,000 training or 10,000 test images.
    size : {"tiny", "small", "full"}
        The first 1,000, 10,000 or all images of the split (the files are already shuffled).
    n : int, optional
        Exact number of images; overrides ``size``. More images than the source holds is a ``ValueError``.
    path : path-like, optional
        A folder of IDX files (``*-ubyte`` or ``*-ubyte.gz``). Default: ``$WORKBENCH_FASHION_MNIST``,
        else ``/usr/share/datasets/fashion-mnist`` (Debian's ``dataset-fashion-mnist``).

    Returns
    -------
    ImageData
        ``images`` uint8 (N, 28, 28), ``labels`` int64 (N,), 10 classes.

    Examples
    --------
    >>> data = load_fashion_mnist(split="test", size="tiny")
    >>> data.images.shape, data.classes[0]
    ((1000, 28, 28), 'T-shirt/top')
    """
    from ..validation import Options, check

    split = check(split, Options(("train", "test")), name="split", owner="load_fashion_mnist")
    rows = resolve_size(size, n, sizes={"tiny": 1000, "small": 10000, "full": None}, loader="load_fashion_mnist")
    folder = Path(path or os.environ.get("WORKBENCH_FASHION_MNIST") or FASHION_MNIST_DIR)
    image_file, label_file = (_find(folder, stem) for stem in _FILES[split])
    images, labels = read_idx(image_file), read_idx(label_file).astype(np.int64)
    if len(images) != len(labels):
        raise CorruptDataError(f"{image_file} has {len(images)} images but {label_file} has {len(labels)} labels; one of "
                               "them is truncated or from another data set.")
    check_rows(rows, len(labels), loader="load_fashion_mnist", unit="images")
    return ImageData(images[:rows].copy(), labels[:rows].copy(), FASHION_MNIST_CLASSES)


def load_digits(*, size: str = "full", n: int | None = None, seed: int = 0) -> ImageData:
    """scikit-learn's 8x8 handwritten digits (1,797 images, 10 classes).

    Parameters
    ----------
    size : {"tiny", "small", "full"}
        300, 1,000 or all 1,797 images (a seeded random subset).
    n : int, optional
        Exact number of images; overrides ``size``. More images than the source holds is a ``ValueError``.

    Examples
    --------
    >>> d = load_digits(size="tiny")
    >>> d.images.shape, d.classes[:3]
    ((300, 8, 8), ('0', '1', '2'))
    """
    from sklearn.datasets import load_digits as _sk_digits

    rows = resolve_size(size, n, sizes={"tiny": 300, "small": 1000, "full": None}, loader="load_digits")
    bunch = _sk_digits()
    images, labels = bunch.images.astype(np.float32), bunch.target.astype(np.int64)
    check_rows(rows, len(labels), loader="load_digits", unit="images")
    if rows is not None and rows < len(labels):
        keep = np.random.default_rng(seed).permutation(len(labels))[:rows]
        images, labels = images[keep], labels[keep]
    return ImageData(images, labels, tuple(str(i) for i in range(10)))
