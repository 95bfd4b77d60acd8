"""Ranking metrics shared by every study: ROC curve, its area, TPR at a low FPR. Pure functions.

One definition each, used by the privacy attacks (members vs non-members), the fairness group metrics
(subgroup AUC, BPSN/BNSP) and the update scorecard. Scores are "higher = more likely positive"; ties count one
half (mid-ranks), as in scikit-learn.

Weighted rows: ``roc_curve(..., sample_weight=w)`` counts row ``i`` ``w[i]`` times (integer weights give exactly the
curve of the data with rows repeated; zero-weight rows are dropped). :func:`roc_curves` evaluates many weightings of
the same scores at once, one weight vector per row of a ``(B, n)`` matrix (a bootstrap's resample counts), with one
sort shared by all of them; :func:`curve_auc` and :func:`tpr_at_fpr` accept its ``(B, points)`` curves and return one
value per row.
"""
from __future__ import annotations

import warnings

import numpy as np

__all__ = ["UndefinedMetricWarning", "roc_curve", "roc_curves", "roc_auc", "curve_auc", "tpr_at_fpr"]


class UndefinedMetricWarning(UserWarning):
    """A metric is undefined on the data given (e.g. an AUC with one class only); NaN is returned."""


def _labels(labels, *, n: int, func: str) -> np.ndarray:
    y = np.asarray(labels.detach().cpu().numpy() if hasattr(labels, "detach") else labels).reshape(-1)
    if len(y) != n:
        raise ValueError(f"The 'labels' parameter of {func} must have one entry per score ({n}). Got {len(y)} instead.")
    if y.dtype != bool:
        if not np.isin(y, (0, 1)).all():
            raise ValueError(f"The 'labels' parameter of {func} must hold booleans or 0/1.")
        y = y.astype(bool)
    return y


def _scores(scores, *, func: str) -> np.ndarray:
    s = np.asarray(scores.detach().cpu().numpy() if hasattr(scores, "detach") else scores, dtype=float)
    if s.ndim == 2 and 1 in s.shape:  # a column or row vector
        s = s.reshape(-1)
    if s.ndim != 1:
        raise ValueError(f"The 'scores' parameter of {func} must be 1-D. Got shape {s.shape} instead.")
    if not np.isfinite(s).all():
        raise ValueError(f"The 'scores' parameter of {func} must be finite (no NaN or inf).")
    return s


def _weights(sample_weight, *, n: int, func: str) -> np.ndarray:
    w = np.asarray(sample_weight.detach().cpu().numpy() if hasattr(sample_weight, "detach") else sample_weight, dtype=float)
    if w.shape[-1:] != (n,) or w.ndim not in (1, 2):
        raise ValueError(f"The 'sample_weight' parameter of {func} must have one entry per score ({n}) in its last axis. "
                         f"Got shape {w.shape} instead.")
    if not np.isfinite(w).all() or (w < 0).any():
        raise ValueError(f"The 'sample_weight' parameter of {func} must be finite and >= 0.")
    return w


def roc_curve(scores, labels, *, sample_weight=None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """ROC of the rule "positive iff score >= threshold", one point per distinct score.

    Returns ``(fpr, tpr, thresholds)``, starting at (0, 0) with threshold ``+inf`` and ending at (1, 1); tied
    scores move FPR and TPR together.

    Parameters
    ----------
    scores : array (n,)
        Higher = more likely positive.
    labels : array (n,) of bool or 0/1
    sample_weight : array (n,), optional
        Row ``i`` counts ``sample_weight[i]`` times (non-negative; rows of weight 0 are left out). Integer weights
        give exactly the curve of the data with each row repeated that many times.

    Examples
    --------
    >>> fpr, tpr, thr = roc_curve([0.9, 0.8, 0.3, 0.1], [1, 0, 1, 0])
    >>> fpr.tolist(), tpr.tolist()
    ([0.0, 0.0, 0.5, 0.5, 1.0], [0.0, 0.5, 0.5, 1.0, 1.0])
    >>> fpr, tpr, thr = roc_curve([0.9, 0.8, 0.3, 0.1], [1, 0, 1, 0], sample_weight=[2, 1, 0, 1])
    >>> fpr.tolist(), tpr.tolist(), thr.tolist()
    ([0.0, 0.0, 0.5, 1.0], [0.0, 1.0, 1.0, 1.0], [inf, 0.9, 0.8, 0.1])
    """
    s = _scores(scores, func="roc_curve")
    y = _labels(labels, n=len(s), func="roc_curve")
    if sample_weight is None:
        w = None
    else:
        w = _weights(sample_weight, n=len(s), func="roc_curve")
        if w.ndim != 1:
            raise ValueError(f"The 'sample_weight' parameter of roc_curve must be 1-D (use roc_curves for a matrix). Got shape {w.shape} instead.")
        keep = w > 0
        s, y, w = s[keep], y[keep], w[keep]
    if y.all() or not y.any():
        raise ValueError("The 'labels' parameter of roc_curve must contain both positives and negatives"
                         + (" with positive weight." if w is not None else "."))
    order = np.argsort(-s, kind="mergesort")
    s, y = s[order], y[order]
    last_of_run = np.r_[np.diff(s) != 0, True]
    if w is None:
        tp, fp = np.cumsum(y), np.cumsum(~y)
    else:
        w = w[order]
        tp, fp = np.cumsum(w * y), np.cumsum(w * ~y)
    tp, fp = tp[last_of_run], fp[last_of_run]
    return np.r_[0.0, fp / fp[-1]], np.r_[0.0, tp / tp[-1]], np.r_[np.inf, s[last_of_run]]


def roc_curves(scores, labels, *, sample_weight) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """ROC curves of the same scores under many weightings: one curve per row of ``sample_weight`` (B, n).

    The scores are sorted once; each row's curve is that of :func:`roc_curve` with ``sample_weight=row``, given on
    the *shared* thresholds (one point per distinct score of all rows), so rows drawn with weight 0 repeat the
    previous point. Repeated points change neither :func:`curve_auc` nor :func:`tpr_at_fpr`, so both equal their
    values on the row's own curve. A row whose positives (or negatives) all have weight 0 gets NaN curves.

    A bootstrap of an AUC is ``curve_auc(*roc_curves(s, y, sample_weight=W)[:2])`` with ``W`` the resample counts
    (e.g. :func:`workbench.scorecard.bootstrap.resample_weights`): matrix operations instead of a sort per resample.

    Returns
    -------
    fpr, tpr : numpy.ndarray (B, points)
    thresholds : numpy.ndarray (points,)

    Examples
    --------
    >>> s, y = [0.9, 0.8, 0.3, 0.1], [1, 0, 1, 0]
    >>> fpr, tpr, thr = roc_curves(s, y, sample_weight=[[1, 1, 1, 1], [2, 1, 0, 1]])
    >>> curve_auc(fpr, tpr=tpr).tolist(), tpr_at_fpr(fpr, tpr=tpr, target=0.0).tolist()
    ([0.75, 1.0], [0.5, 1.0])
    """
    s = _scores(scores, func="roc_curves")
    y = _labels(labels, n=len(s), func="roc_curves")
    w = _weights(sample_weight, n=len(s), func="roc_curves")
    if w.ndim != 2:
        raise ValueError(f"The 'sample_weight' parameter of roc_curves must be a (B, n) matrix. Got shape {w.shape} instead.")
    order = np.argsort(-s, kind="mergesort")
    s, y, w = s[order], y[order], w[:, order]
    run_start = np.flatnonzero(np.r_[True, np.diff(s) != 0])
    pos = w * y
    if len(run_start) < len(s):  # ties: one point per run of equal scores
        pos, w = np.add.reduceat(pos, run_start, axis=1), np.add.reduceat(w, run_start, axis=1)
    tp = np.cumsum(pos, axis=1)  # (B, points): weight of the positives scored >= each threshold
    fp = np.cumsum(w, axis=1)
    fp -= tp
    zero = np.zeros((len(w), 1))
    with np.errstate(invalid="ignore", divide="ignore"):
        fpr, tpr = np.hstack([zero, fp / fp[:, -1:]]), np.hstack([zero, tp / tp[:, -1:]])
    undefined = (fp[:, -1] == 0) | (tp[:, -1] == 0)
    fpr[undefined], tpr[undefined] = np.nan, np.nan
    return fpr, tpr, np.r_[np.inf, s[run_start]]


def roc_auc(scores, labels, *, what: str = "AUC") -> float:
    """Area under the ROC curve from scores and 0/1 labels (Mann-Whitney U, mid-ranks for ties).

    NaN with an :class:`UndefinedMetricWarning` when only one class is present (``what`` names the metric in
    that warning).

    Examples
    --------
    >>> roc_auc([0.1, 0.4, 0.35, 0.8], [0, 0, 1, 1])
    0.75
    >>> roc_auc([0.5, 0.5], [1, 0])
    0.5
    """
    from scipy.stats import rankdata

    s = _scores(scores, func="roc_auc")
    y = _labels(labels, n=len(s), func="roc_auc")
    n_pos = int(y.sum())
    n_neg = len(y) - n_pos
    if n_pos == 0 or n_neg == 0:
        warnings.warn(f"{what} is undefined with only one class ({n_pos} positive, {n_neg} negative examples); returning NaN.",
                      UndefinedMetricWarning, stacklevel=2)
        return float("nan")
    ranks = rankdata(s)
    return float((ranks[y].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def curve_auc(fpr, *, tpr):
    """Area under an ROC curve given by its points (trapezoid rule).

    1-D ``fpr``/``tpr`` give a float; ``(B, points)`` arrays (one curve per row, e.g. from :func:`roc_curves`) give
    an array of ``B`` areas.

    Examples
    --------
    >>> curve_auc([0, 0, 1], tpr=[0, 1, 1])
    1.0
    >>> curve_auc([[0, 0, 1], [0, 1, 1]], tpr=[[0, 1, 1], [0, 0, 1]]).tolist()
    [1.0, 0.0]
    """
    fpr, tpr = np.asarray(fpr, float), np.asarray(tpr, float)
    area = np.sum(np.diff(fpr, axis=-1) * (tpr[..., 1:] + tpr[..., :-1]) / 2, axis=-1)
    return float(area) if fpr.ndim == 1 else area


def tpr_at_fpr(fpr, *, tpr, target: float):
    """Highest TPR among the ROC points with ``FPR <= target`` (Carlini et al.'s "TPR at low FPR").

    1-D ``fpr``/``tpr`` give a float; ``(B, points)`` arrays (one curve per row, e.g. from :func:`roc_curves`) give
    an array of ``B`` values (NaN for a NaN curve).

    Examples
    --------
    >>> tpr_at_fpr([0.0, 0.005, 0.02, 1.0], tpr=[0.0, 0.3, 0.6, 1.0], target=0.01)
    0.3
    >>> tpr_at_fpr([[0.0, 0.005, 0.02, 1.0], [0.0, 0.02, 0.5, 1.0]], tpr=[[0.0, 0.3, 0.6, 1.0], [0.0, 0.6, 0.9, 1.0]], target=0.01).tolist()
    [0.3, 0.0]
    """
    if isinstance(target, bool) or not isinstance(target, (int, float, np.integer, np.floating)) or not 0 <= target <= 1:
        raise ValueError(f"The 'target' parameter of tpr_at_fpr must be a float in [0, 1]. Got {target!r} instead.")
    fpr, tpr = np.asarray(fpr, float), np.asarray(tpr, float)
    ok = fpr <= target + 1e-12
    if fpr.ndim == 1:
        return float(tpr[ok].max()) if ok.any() else 0.0
    out = np.where(ok, tpr, 0.0).max(axis=-1)
    return np.where(np.isnan(fpr).any(axis=-1), np.nan, out)
