"""A vectorised, seeded bootstrap: draw the resamples once as a weight matrix, evaluate every ratio measure at once.

A bootstrap resample of ``n`` rows drawn with replacement is the same thing as a vector of *counts* (how often
each row was drawn). Stacking ``B`` resamples gives a ``(B, n)`` count matrix ``W``. Every row-level measure of the
scorecard is a ratio of two sums over rows (accuracy = correct / rows, NFR of a group = negative flips in the
group / rows in the group, FPR of a group = predicted-positive negatives / negatives, ...), so with the
numerators as columns of ``A`` and the denominators as columns of ``D`` *all* measures on *all* resamples are

    W @ A / W @ D            # (B, n) x (n, k) -> (B, k)

two matrix products instead of ``B x k`` Python-level evaluations. The point estimate is the same formula with a
weight vector of ones, so estimate and resamples can never disagree about a definition.

The 95% interval is the percentile interval: the 2.5% and 97.5% quantiles of the ``B`` resampled values
(``numpy.nanquantile``; a resample in which a measure is undefined, e.g. a group drawn with no negatives, is left
out of that measure's quantiles).

Examples
--------
>>> W = resample_weights(4, n_boot=3, seed=0)
>>> W.shape, W.sum(axis=1).tolist()
((3, 4), [4.0, 4.0, 4.0])
>>> x = np.array([1.0, 0.0, 1.0, 1.0])
>>> ratio_estimates(x[:, None], np.ones((4, 1)), weights=np.ones((1, 4))).item()
0.75
"""
from __future__ import annotations

import numpy as np

from ..validation import Interval, check

__all__ = ["resample_weights", "stratified_resample_weights", "resample_indices", "ratio_estimates", "percentile_interval"]


def resample_indices(n: int, *, n_boot: int, seed: int = 0, rng: np.random.Generator | None = None) -> np.ndarray:
    """``(n_boot, n)`` row indices drawn uniformly with replacement (seeded).

    Examples
    --------
    >>> resample_indices(5, n_boot=2, seed=1).shape
    (2, 5)
    >>> (resample_indices(5, n_boot=2, seed=1) == resample_indices(5, n_boot=2, seed=1)).all()
    np.True_
    """
    n = check(n, Interval(int, 1, None), name="n", owner="resample_indices")
    n_boot = check(n_boot, Interval(int, 1, None), name="n_boot", owner="resample_indices")
    rng = rng if rng is not None else np.random.default_rng(check(seed, Interval(int, 0, None), name="seed", owner="resample_indices"))
    return rng.integers(0, n, size=(n_boot, n))


def resample_weights(n: int, *, n_boot: int, seed: int = 0, rng: np.random.Generator | None = None) -> np.ndarray:
    """``(n_boot, n)`` float matrix: how many times each of ``n`` rows is drawn in each of ``n_boot`` resamples.

    Equivalent to :func:`resample_indices` followed by counting (one ``bincount`` over all resamples).

    Examples
    --------
    >>> W = resample_weights(3, n_boot=2, seed=0)
    >>> idx = resample_indices(3, n_boot=2, seed=0)
    >>> all((W[b] == np.bincount(idx[b], minlength=3)).all() for b in range(2))
    True
    """
    idx = resample_indices(n, n_boot=n_boot, seed=seed, rng=rng)
    offsets = (np.arange(n_boot) * n)[:, None]
    counts = np.bincount((idx + offsets).ravel(), minlength=n_boot * n)
    return counts.reshape(n_boot, n).astype(np.float64)


def stratified_resample_weights(*sizes: int, n_boot: int, seed: int = 0, rng: np.random.Generator | None = None) -> np.ndarray:
    """``(n_boot, sum(sizes))`` resample counts where each stratum (consecutive blocks of ``sizes`` rows, e.g. members
    then non-members) is resampled on its own, so every resample keeps each stratum's size.

    The strata are drawn in order from one generator: the same draws as :func:`resample_weights` called once per
    stratum with that generator.

    Examples
    --------
    >>> W = stratified_resample_weights(2, 3, n_boot=4, seed=0)
    >>> W.shape, W[:, :2].sum(axis=1).tolist(), W[:, 2:].sum(axis=1).tolist()
    ((4, 5), [2.0, 2.0, 2.0, 2.0], [3.0, 3.0, 3.0, 3.0])
    """
    if not sizes:
        raise ValueError("stratified_resample_weights needs at least one stratum size.")
    rng = rng if rng is not None else np.random.default_rng(check(seed, Interval(int, 0, None), name="seed",
                                                                 owner="stratified_resample_weights"))
    return np.hstack([resample_weights(size, n_boot=n_boot, rng=rng) for size in sizes])


def ratio_estimates(numerators: np.ndarray, denominators: np.ndarray, *, weights: np.ndarray) -> np.ndarray:
    """``(weights @ numerators) / (weights @ denominators)`` with NaN where the denominator is 0.

    Parameters
    ----------
    numerators, denominators : array (n, k)
        Per-row contributions of ``k`` ratio measures.
    weights : array (B, n)
        Resample counts (or a single row of ones for the point estimate).

    Returns
    -------
    numpy.ndarray (B, k)

    Examples
    --------
    >>> ratio_estimates(np.array([[1.0], [0.0]]), np.array([[1.0], [0.0]]), weights=np.array([[0.0, 2.0]])).tolist()
    [[nan]]
    """
    num = weights @ numerators
    den = weights @ denominators
    with np.errstate(invalid="ignore", divide="ignore"):
        out = num / den
    out[den == 0] = np.nan
    return out


def percentile_interval(samples: np.ndarray, *, confidence: float = 0.95, axis: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Percentile bootstrap interval: the ``(1 - confidence) / 2`` and ``(1 + confidence) / 2`` quantiles along
    ``axis``, ignoring NaN resamples (all-NaN -> NaN).

    Examples
    --------
    >>> low, high = percentile_interval(np.arange(101.0)[:, None])
    >>> low.tolist(), high.tolist()
    ([2.5], [97.5])
    """
    confidence = check(confidence, Interval(float, 0, 1, closed="neither"), name="confidence", owner="percentile_interval")
    samples = np.asarray(samples, dtype=float)
    alpha = (1.0 - confidence) / 2.0
    all_nan = np.isnan(samples).all(axis=axis)
    if all_nan.any():  # nanquantile warns on all-NaN slices: give them a dummy value and blank them after
        samples = np.where(np.expand_dims(all_nan, axis), 0.0, samples)
    low, high = np.nanquantile(samples, [alpha, 1.0 - alpha], axis=axis)
    return np.where(all_nan, np.nan, low), np.where(all_nan, np.nan, high)
