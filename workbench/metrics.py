"""Ranking metrics shared by every study: ROC curve, its area, TPR at a low FPR. Pure functions.

One definition each, used by the privacy attacks (members vs non-members), the fairness group metrics
(subgroup AUC, BPSN/BNSP) and the update scorecard. Scores are "higher = more likely positive"; ties count one
half (mid-ranks), as in scikit-learn.
"""
from __future__ import annotations

import warnings

import numpy as np

__all__ = ["UndefinedMetricWarning", "roc_curve", "roc_auc", "curve_auc", "tpr_at_fpr"]


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


def roc_curve(scores, labels) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """ROC of the rule "positive iff score >= threshold", one point per distinct score.

    Returns ``(fpr, tpr, thresholds)``, starting at (0, 0) with threshold ``+inf`` and ending at (1, 1); tied
    scores move FPR and TPR together.

    Examples
    --------
    >>> fpr, tpr, thr = roc_curve([0.9, 0.8, 0.3, 0.1], [1, 0, 1, 0])
    >>> fpr.tolist(), tpr.tolist()
    ([0.0, 0.0, 0.5, 0.5, 1.0], [0.0, 0.5, 0.5, 1.0, 1.0])
    """
    s = _scores(scores, func="roc_curve")
    y = _labels(labels, n=len(s), func="roc_curve")
    if y.all() or not y.any():
        raise ValueError("The 'labels' parameter of roc_curve must contain both positives and negatives.")
    order = np.argsort(-s, kind="mergesort")
    s, y = s[order], y[order]
    last_of_run = np.r_[np.diff(s) != 0, True]
    tp = np.cumsum(y)[last_of_run]
    fp = np.cumsum(~y)[last_of_run]
    return np.r_[0.0, fp / (~y).sum()], np.r_[0.0, tp / y.sum()], np.r_[np.inf, s[last_of_run]]


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


def curve_auc(fpr, *, tpr) -> float:
    """Area under an ROC curve given by its points (trapezoid rule).

    Examples
    --------
    >>> curve_auc([0, 0, 1], tpr=[0, 1, 1])
    1.0
    """
    fpr, tpr = np.asarray(fpr, float), np.asarray(tpr, float)
    return float(np.sum(np.diff(fpr) * (tpr[1:] + tpr[:-1]) / 2))


def tpr_at_fpr(fpr, *, tpr, target: float) -> float:
    """Highest TPR among the ROC points with ``FPR <= target`` (Carlini et al.'s "TPR at low FPR").

    Examples
    --------
    >>> tpr_at_fpr([0.0, 0.005, 0.02, 1.0], tpr=[0.0, 0.3, 0.6, 1.0], target=0.01)
    0.3
    """
    if isinstance(target, bool) or not isinstance(target, (int, float, np.integer, np.floating)) or not 0 <= target <= 1:
        raise ValueError(f"The 'target' parameter of tpr_at_fpr must be a float in [0, 1]. Got {target!r} instead.")
    fpr, tpr = np.asarray(fpr, float), np.asarray(tpr, float)
    ok = fpr <= target + 1e-12
    return float(tpr[ok].max()) if ok.any() else 0.0
