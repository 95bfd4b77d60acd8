"""Summary statistics for describing data sets (pure functions)."""
from __future__ import annotations

import numpy as np

from ..validation import Interval, InvalidParameterError, check

__all__ = ["gini", "top_share"]


def gini(values) -> float:
    """Gini coefficient of non-negative values: 0 = all equal, -> 1 = one holds everything.

    Examples
    --------
    >>> gini([1, 1, 1, 1])
    0.0
    >>> round(gini([0, 0, 0, 1]), 2)
    0.75
    """
    x = np.sort(np.asarray(values, dtype=float))
    if x.size == 0 or not np.all(np.isfinite(x)) or np.any(x < 0):
        raise InvalidParameterError("The 'values' parameter of gini must be a non-empty array of finite, non-negative "
                                    f"numbers. Got {x.size} value(s), smallest {x.min() if x.size else None} instead.")
    if x.sum() == 0:
        return 0.0
    n = x.size
    return float((2 * np.arange(1, n + 1) - n - 1) @ x / (n * x.sum()))


def top_share(values, *, fraction: float = 0.1) -> float:
    """Share of the total held by the largest ``fraction`` of items (at least one item).

    Examples
    --------
    >>> top_share([1, 1, 1, 7], fraction=0.25)
    0.7
    """
    fraction = check(fraction, Interval(float, 0, 1, closed="right"), name="fraction", owner="top_share")
    x = np.sort(np.asarray(values, dtype=float))[::-1]
    k = max(1, int(round(fraction * x.size)))
    return float(x[:k].sum() / x.sum())
