"""The scorecard's measures, each a pure function of predictions, labels and scores.

Row-level measures are written as *ratios of sums over rows*: a function returns, for every measure, the
per-row numerator and denominator, and the value is ``sum(numerator) / sum(denominator)``. That is what lets
:mod:`workbench.scorecard.bootstrap` evaluate every measure on 1,000 resamples with two matrix products. A slice
(a class, a demographic group) multiplies both by its 0/1 mask.

=================  =========================================================  ===================================
measure            numerator (per row)                                        denominator
=================  =========================================================  ===================================
``accuracy``       prediction == label                                        1
``nfr``            old right and new wrong (a negative flip)                  1
``pfr``            old wrong and new right (a positive flip)                  1
``nfi``            negative flip                                              new wrong (NFI = NFR / ER_new)
``mean_score``     score                                                      1
``positive_rate``  score >= threshold                                         1
``fpr``            score >= threshold and label is the negative class         label is the negative class
``fnr``            score < threshold and label is the positive class          label is the positive class
=================  =========================================================  ===================================

The flip measures agree with :mod:`workbench.compatibility.flips` (tested); the group rates with
:func:`workbench.fairness.groups.group_metrics`. A *fairness gap* of one group attribute (gender, race) is the
largest minus the smallest rate over its groups (for two groups, the absolute difference), the
``*_gap`` values of :func:`workbench.fairness.groups.fairness_gaps`. Membership inference is scored with the
one ROC of :mod:`workbench.metrics`.

Examples
--------
>>> y, old, new = np.array([0, 1, 1, 0]), np.array([0, 1, 1, 1]), np.array([1, 1, 0, 0])
>>> num, den = flip_ratios(y, old, new)["nfr"]
>>> float(num.sum() / den.sum())
0.5
"""
from __future__ import annotations

from typing import Mapping

import numpy as np
import pandas as pd

from .. import metrics
from ..validation import Interval, check

__all__ = [
    "MODEL_MEASURES",
    "FLIP_MEASURES",
    "GROUP_RATES",
    "model_ratios",
    "flip_ratios",
    "group_rate_ratios",
    "gap",
    "membership_auc",
    "membership_tpr_at_fpr",
    "membership_measures",
    "membership_measures_resampled",
    "cumulative_flips",
]

MODEL_MEASURES = ("accuracy",)
FLIP_MEASURES = ("nfr", "pfr", "nfi")
GROUP_RATES = ("mean_score", "positive_rate", "fpr", "fnr")


def model_ratios(labels, pred) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Per-row numerator and denominator of each single-model measure (``accuracy``).

    Examples
    --------
    >>> num, den = model_ratios([0, 1, 2], [0, 1, 1])["accuracy"]
    >>> num.tolist(), den.tolist()
    ([1.0, 1.0, 0.0], [1.0, 1.0, 1.0])
    """
    y, p = np.asarray(labels).reshape(-1), np.asarray(pred).reshape(-1)
    return {"accuracy": ((p == y).astype(float), np.ones(len(y)))}


def flip_ratios(labels, old, new) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Per-row numerator and denominator of ``nfr``, ``pfr`` and ``nfi`` (negative flip impact).

    Examples
    --------
    >>> r = flip_ratios([0, 1, 1, 0], [0, 1, 1, 1], [1, 1, 0, 0])
    >>> [float(n.sum() / d.sum()) for n, d in r.values()]
    [0.5, 0.25, 1.0]
    """
    y, o, n = (np.asarray(a).reshape(-1) for a in (labels, old, new))
    old_ok, new_ok = o == y, n == y
    negative = (old_ok & ~new_ok).astype(float)
    ones = np.ones(len(y))
    return {
        "nfr": (negative, ones),
        "pfr": ((~old_ok & new_ok).astype(float), ones),
        "nfi": (negative, (~new_ok).astype(float)),
    }


def group_rate_ratios(scores, labels=None, *, threshold: float = 0.5, positive_class=None,
                      negative_class=None) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Per-row numerator and denominator of the rates whose spread across groups is a fairness gap.

    ``mean_score`` and ``positive_rate`` (score >= ``threshold``) are always returned; ``fpr`` and ``fnr`` only
    when ``labels``, ``positive_class`` and ``negative_class`` are given (rows of any other class count in
    neither, as the neutral sentences of the evaluation corpus in notebook 05).

    Examples
    --------
    >>> r = group_rate_ratios([0.9, 0.2, 0.6, 0.7], [2, 0, 0, 2], positive_class=2, negative_class=0)
    >>> {k: float(n.sum() / d.sum()) for k, (n, d) in r.items()}
    {'mean_score': 0.6, 'positive_rate': 0.75, 'fpr': 0.5, 'fnr': 0.0}
    """
    threshold = check(threshold, Interval(float, None, None), name="threshold", owner="group_rate_ratios")
    s = np.asarray(scores, dtype=float).reshape(-1)
    if not np.isfinite(s).all():
        raise ValueError("The 'scores' parameter of group_rate_ratios must be finite (no NaN or inf).")
    pred = s >= threshold
    ones = np.ones(len(s))
    out = {"mean_score": (s, ones), "positive_rate": (pred.astype(float), ones)}
    if labels is not None and positive_class is not None and negative_class is not None:
        y = np.asarray(labels).reshape(-1)
        pos, neg = y == positive_class, y == negative_class
        out["fpr"] = ((pred & neg).astype(float), neg.astype(float))
        out["fnr"] = ((~pred & pos).astype(float), pos.astype(float))
    return out


def gap(rates, *, axis: int = -1) -> np.ndarray:
    """Largest minus smallest of the group ``rates`` along ``axis``, ignoring NaN; NaN when fewer than two groups
    have a value.

    Examples
    --------
    >>> gap(np.array([[0.2, 0.5, np.nan], [0.1, np.nan, np.nan]])).tolist()
    [0.3, nan]
    """
    r = np.asarray(rates, dtype=float)
    defined = (~np.isnan(r)).sum(axis=axis)
    filled_hi = np.where(np.isnan(r), -np.inf, r).max(axis=axis)
    filled_lo = np.where(np.isnan(r), np.inf, r).min(axis=axis)
    with np.errstate(invalid="ignore"):
        out = filled_hi - filled_lo
    return np.where(defined >= 2, out, np.nan)


def _membership_data(member_scores, nonmember_scores, *, func: str) -> tuple[np.ndarray, np.ndarray]:
    m = np.asarray(member_scores, dtype=float).reshape(-1)
    nm = np.asarray(nonmember_scores, dtype=float).reshape(-1)
    if len(m) == 0 or len(nm) == 0:
        raise ValueError(f"The 'member_scores' and 'nonmember_scores' parameters of {func} must not be empty. "
                         f"Got {len(m)} and {len(nm)} scores.")
    return np.r_[m, nm], np.r_[np.ones(len(m), bool), np.zeros(len(nm), bool)]


def membership_auc(member_scores, nonmember_scores) -> float:
    """AUC of a membership-inference attack (higher score = "member"): 0.5 is no leakage, 1 total leakage.

    Examples
    --------
    >>> membership_auc([0.9, 0.4], [0.5, 0.1])
    0.75
    """
    s, y = _membership_data(member_scores, nonmember_scores, func="membership_auc")
    return metrics.roc_auc(s, y, what="Membership AUC")


def membership_tpr_at_fpr(member_scores, nonmember_scores, *, target: float = 0.01) -> float:
    """TPR of the attack at FPR ``target`` (Carlini et al.'s low-FPR operating point; :func:`workbench.metrics.tpr_at_fpr`).

    Examples
    --------
    >>> membership_tpr_at_fpr([0.9, 0.8, 0.3], [0.85, 0.1, 0.0, 0.2], target=0.2)
    0.3333333333333333
    """
    s, y = _membership_data(member_scores, nonmember_scores, func="membership_tpr_at_fpr")
    fpr, tpr, _ = metrics.roc_curve(s, y)
    return metrics.tpr_at_fpr(fpr, tpr=tpr, target=target)


def membership_measures(member_scores, nonmember_scores, *, target: float = 0.01) -> tuple[float, float]:
    """``(AUC, TPR at FPR target)`` from one ROC curve (:func:`workbench.metrics.roc_curve`): the trapezoid area of
    the curve (:func:`workbench.metrics.curve_auc`) equals the Mann-Whitney AUC with ties counted one half, so one
    sort serves both numbers (what the bootstrap calls per resample).

    Examples
    --------
    >>> [round(v, 4) for v in membership_measures([0.9, 0.8, 0.3], [0.85, 0.1, 0.0, 0.2], target=0.2)]
    [0.8333, 0.3333]
    """
    s, y = _membership_data(member_scores, nonmember_scores, func="membership_measures")
    fpr, tpr, _ = metrics.roc_curve(s, y)
    return metrics.curve_auc(fpr, tpr=tpr), metrics.tpr_at_fpr(fpr, tpr=tpr, target=target)


def membership_measures_resampled(member_scores, nonmember_scores, *, weights: np.ndarray,
                                  target: float = 0.01) -> tuple[np.ndarray, np.ndarray]:
    """:func:`membership_measures` on many resamples at once: ``weights`` (B, members + non-members) holds each
    resample's counts of every member, then every non-member (e.g.
    :func:`~workbench.scorecard.bootstrap.stratified_resample_weights`). One sort and matrix operations
    (:func:`workbench.metrics.roc_curves`); resample ``b`` gives exactly ``membership_measures`` of its rows repeated.

    Returns
    -------
    aucs, tprs : numpy.ndarray (B,)

    Examples
    --------
    >>> aucs, tprs = membership_measures_resampled([0.9, 0.8, 0.3], [0.85, 0.1, 0.0, 0.2], target=0.2,
    ...                                            weights=np.array([[1, 1, 1, 1, 1, 1, 1], [0, 2, 1, 1, 0, 1, 2]]))
    >>> aucs.round(4).tolist(), tprs.round(4).tolist()
    ([0.8333, 0.75], [0.3333, 0.0])
    """
    s, y = _membership_data(member_scores, nonmember_scores, func="membership_measures_resampled")
    weights = np.asarray(weights, dtype=float)
    if weights.ndim != 2 or weights.shape[1] != len(s):
        raise ValueError(f"The 'weights' parameter of membership_measures_resampled must be a (B, {len(s)}) matrix "
                         f"(members then non-members). Got shape {weights.shape} instead.")
    aucs, tprs = np.empty(len(weights)), np.empty(len(weights))
    chunk = max(1, 2**18 // len(s))  # resamples per block: about 2 MB of float64 per array, which stays in cache
    for start in range(0, len(weights), chunk):
        fpr, tpr, _ = metrics.roc_curves(s, y, sample_weight=weights[start:start + chunk])
        aucs[start:start + chunk] = metrics.curve_auc(fpr, tpr=tpr)
        tprs[start:start + chunk] = metrics.tpr_at_fpr(fpr, tpr=tpr, target=target)
    return aucs, tprs


def cumulative_flips(labels, preds: Mapping[str, np.ndarray]) -> pd.DataFrame:
    """Flips along a chain of model versions (``preds`` in release order).

    For each version after the first: the step's NFR against the previous version, the sum of step NFRs so far,
    the *cumulative* NFR against the first version (right in the first, wrong now, whatever happened in between)
    and the share of examples that regressed *at some step* so far (right at some version, wrong at a later one:
    a user who saw any regression). Cumulative NFR can be below the sum of steps (an example that flips back
    is not counted) or above a single step.

    Returns
    -------
    pandas.DataFrame
        Index ``version`` (every version after the first); columns ``accuracy``, ``step_nfr``, ``sum_step_nfr``,
        ``cumulative_nfr``, ``ever_regressed``.

    Examples
    --------
    >>> y = [1, 1, 1, 1]
    >>> t = cumulative_flips(y, {"v1": [1, 1, 0, 0], "v2": [0, 1, 1, 0], "v3": [1, 0, 1, 0]})
    >>> t[["step_nfr", "sum_step_nfr", "cumulative_nfr", "ever_regressed"]].values.tolist()
    [[0.25, 0.25, 0.25, 0.25], [0.25, 0.5, 0.25, 0.5]]
    """
    names = list(preds)
    if len(names) < 2:
        raise ValueError(f"The 'preds' parameter of cumulative_flips needs at least two versions. Got {names}.")
    y = np.asarray(labels).reshape(-1)
    correct = np.stack([np.asarray(preds[k]).reshape(-1) == y for k in names])  # (versions, n)
    rows, total = [], 0.0
    for i in range(1, len(names)):
        step = float(np.mean(correct[i - 1] & ~correct[i]))
        total += step
        ever_right_before = np.zeros(len(y), bool)
        regressed = np.zeros(len(y), bool)
        for j in range(i + 1):  # right at some version < j and wrong at j
            regressed |= ever_right_before & ~correct[j]
            ever_right_before |= correct[j]
        rows.append({"version": names[i], "accuracy": float(correct[i].mean()), "step_nfr": step, "sum_step_nfr": total,
                     "cumulative_nfr": float(np.mean(correct[0] & ~correct[i])), "ever_regressed": float(regressed.mean())})
    return pd.DataFrame(rows).set_index("version")
