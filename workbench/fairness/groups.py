"""Extrinsic group metrics of a classifier's scores: rates by group, error-rate gaps, bias AUCs.

All functions are pure: arrays in, pandas out. Scores are a classifier's scores for the positive class
(higher = more positive), labels are binary (1 positive, 0 negative) and groups say which identity group
each example belongs to.

Groups come in one of two forms:

* a 1-D sequence of group names, one per example (``None``/NaN = the example mentions no group and
  belongs only to the *background*);
* a 2-D boolean membership table (DataFrame or mapping ``name -> mask``), for data where an example can
  mention several identities (as in the Jigsaw Unintended Bias data set).

The bias AUCs follow Borkan et al. (2019), "Nuanced metrics for measuring unintended bias with real data
for text classification":

==============  ==============================================================================
subgroup AUC    AUC on the examples that mention the subgroup only
BPSN AUC        Background Positive, Subgroup Negative: positives *not* mentioning the subgroup
                against negatives that mention it. Low: the model scores the subgroup's negatives
                higher than other positives (false positives for the subgroup).
BNSP AUC        Background Negative, Subgroup Positive: negatives not mentioning the subgroup
                against positives that mention it. Low: false negatives for the subgroup.
==============  ==============================================================================

and are summarised across subgroups by the generalized (power) mean with ``p = -5`` as in the Jigsaw
competition, which weighs the worst subgroup most.

Examples
--------
>>> scores = [0.9, 0.6, 0.3, 0.2, 0.8, 0.7, 0.65, 0.4]
>>> labels = [1, 1, 0, 0, 1, 1, 0, 0]
>>> groups = ["a", "a", "a", "a", "b", "b", "b", "b"]
>>> bias_aucs(scores, labels, groups)
       size  subgroup_auc  bpsn_auc  bnsp_auc
group
a         4           1.0      1.00      0.75
b         4           1.0      0.75      1.00

Group b's negatives (0.65) outscore one of a's positives (0.6): a false-positive risk for b (low
BPSN AUC of b) and a false-negative risk for a (low BNSP AUC of a).
"""
from __future__ import annotations

import warnings
from typing import Mapping, Sequence

import numpy as np
import pandas as pd

# One ROC/AUC for the whole workbench; re-exported here because the group metrics are defined with it.
from workbench.metrics import UndefinedMetricWarning, roc_auc
from workbench.validation import Interval, check

__all__ = [
    "roc_auc",
    "membership",
    "group_metrics",
    "fairness_gaps",
    "bias_aucs",
    "generalized_mean",
    "bias_summary",
    "UndefinedMetricWarning",
]


# --------------------------------------------------------------------------------------------- checks
def _scores(scores, *, func: str) -> np.ndarray:
    s = np.asarray(scores, dtype=float).reshape(-1) if np.ndim(scores) else np.asarray([scores], float)
    if s.size == 0:
        raise ValueError(f"The 'scores' parameter of {func} must not be empty.")
    if not np.all(np.isfinite(s)):
        raise ValueError(f"The 'scores' parameter of {func} must hold finite numbers. Got NaN or inf.")
    return s


def _labels(labels, n: int, *, func: str) -> np.ndarray:
    y = np.asarray(labels).reshape(-1)
    if len(y) != n:
        raise ValueError(f"The 'labels' parameter of {func} must have one entry per score. Got {len(y)} labels for {n} scores.")
    if y.dtype == bool:
        return y.astype(int)
    try:
        yf = y.astype(float)
    except (TypeError, ValueError):
        raise ValueError(f"The 'labels' parameter of {func} must be binary (0/1 or bool). Got values {sorted(set(y.tolist()))[:5]}.") from None
    if not np.all(np.isin(yf, (0.0, 1.0))):
        bad = sorted(set(yf[~np.isin(yf, (0.0, 1.0))].tolist()))[:5]
        raise ValueError(f"The 'labels' parameter of {func} must be binary (0/1 or bool). Got other values {bad}.")
    return yf.astype(int)


def membership(groups, n: int | None = None, *, subgroups: Sequence[str] | None = None, func: str = "membership") -> pd.DataFrame:
    """Turn ``groups`` (1-D names or a 2-D membership table) into a boolean DataFrame, one column per group.

    Parameters
    ----------
    groups : sequence of names, DataFrame of bools or mapping name -> boolean mask
    n : int, optional
        Expected number of examples (a clear error if ``groups`` has another length).
    subgroups : sequence of str, optional
        Keep only these groups, in this order; unknown names raise ``ValueError`` listing the known ones.

    Examples
    --------
    >>> membership(["f", "m", None, "f"]).astype(int)
       f  m
    0  1  0
    1  0  1
    2  0  0
    3  1  0
    """
    if isinstance(groups, pd.DataFrame):
        table = groups.reset_index(drop=True).copy()
    elif isinstance(groups, Mapping):
        table = pd.DataFrame({str(k): np.asarray(v).reshape(-1) for k, v in groups.items()})
    else:
        arr = np.asarray(groups, dtype=object).reshape(-1) if np.ndim(groups) else None
        if arr is None:
            raise ValueError(f"The 'groups' parameter of {func} must be a sequence of group names or a membership table.")
        names = [g for g in dict.fromkeys(arr.tolist()) if not _missing(g)]
        try:
            names = sorted(names)
        except TypeError:
            pass
        table = pd.DataFrame({str(g): np.array([(not _missing(v)) and v == g for v in arr], dtype=bool) for g in names},
                             index=range(len(arr)))
    if n is not None and len(table) != n:
        raise ValueError(f"The 'groups' parameter of {func} must have one entry per score. Got {len(table)} group entries for {n} scores.")
    for col in table.columns:
        if table[col].dtype != bool:
            values = set(pd.unique(table[col]).tolist())
            if not values <= {0, 1, True, False}:
                raise ValueError(f"The membership column {col!r} given to {func} must be boolean. Got values {sorted(map(str, values))[:5]}.")
            table[col] = table[col].astype(bool)
    table.columns = [str(c) for c in table.columns]
    if table.shape[1] == 0:
        raise ValueError(f"The 'groups' parameter of {func} names no group.")
    if subgroups is not None:
        subgroups = [str(s) for s in subgroups]
        unknown = [s for s in subgroups if s not in table.columns]
        if unknown:
            raise ValueError(f"Unknown group(s) {unknown} in the 'subgroups' parameter of {func}; accepted values are {list(table.columns)}.")
        table = table[subgroups]
    return table


def _missing(v) -> bool:
    return v is None or (isinstance(v, float) and np.isnan(v))


# ----------------------------------------------------------------------------------------- group rates
def group_metrics(scores, groups, *, labels=None, threshold: float = 0.5, subgroups: Sequence[str] | None = None) -> pd.DataFrame:
    """Per-group size, mean score, positive rate and (with labels) TPR, FPR, FNR, each with its gap to all data.

    Parameters
    ----------
    scores : array-like of float
        Score of the positive class per example.
    groups : 1-D group names or 2-D membership table (see the module docstring)
    labels : array-like of {0, 1}, optional
        True classes; adds ``tpr``, ``fpr``, ``fnr``, ``accuracy`` columns (NaN with a warning where a
        group has no example of the class the rate conditions on).
    threshold : float
        An example is predicted positive when its score is ``>= threshold``.
    subgroups : sequence of str, optional
        Groups to report (default: all).

    Returns
    -------
    pandas.DataFrame
        Index ``group`` (the groups, then ``"all"``). Columns ``n``, ``mean_score``, ``positive_rate``
        [, ``tpr``, ``fpr``, ``fnr``, ``accuracy``] and ``<metric>_gap`` = group value - value on all data.

    Examples
    --------
    >>> t = group_metrics([0.9, 0.2, 0.6, 0.7], ["f", "f", "m", "m"], labels=[1, 0, 0, 1])
    >>> t[["n", "positive_rate", "fpr", "fpr_gap"]]
           n  positive_rate  fpr  fpr_gap
    group
    f      2           0.50  0.0     -0.5
    m      2           1.00  1.0      0.5
    all    4           0.75  0.5      0.0
    """
    s = _scores(scores, func="group_metrics")
    table = membership(groups, len(s), subgroups=subgroups, func="group_metrics")
    y = None if labels is None else _labels(labels, len(s), func="group_metrics")
    pred = s >= threshold
    rows = {}
    masks = {**{c: table[c].to_numpy() for c in table.columns}, "all": np.ones(len(s), dtype=bool)}
    for name, m in masks.items():
        row = {"n": int(m.sum())}
        if row["n"] == 0:
            warnings.warn(f"Group {name!r} has no examples; its metrics are NaN.", UndefinedMetricWarning, stacklevel=2)
        row["mean_score"] = float(s[m].mean()) if row["n"] else np.nan
        row["positive_rate"] = float(pred[m].mean()) if row["n"] else np.nan
        if y is not None:
            pos, neg = m & (y == 1), m & (y == 0)
            row["tpr"] = _rate(pred[pos], name, "TPR", "positive")
            row["fpr"] = _rate(pred[neg], name, "FPR", "negative")
            row["fnr"] = 1.0 - row["tpr"]
            row["accuracy"] = float((pred[m] == (y[m] == 1)).mean()) if row["n"] else np.nan
        rows[name] = row
    out = pd.DataFrame.from_dict(rows, orient="index")
    out.index.name = "group"
    for col in [c for c in out.columns if c not in ("n",)]:
        out[f"{col}_gap"] = out[col] - out.loc["all", col]
    return out


def _rate(flags: np.ndarray, group: str, what: str, cls: str) -> float:
    if len(flags) == 0:
        warnings.warn(f"{what} of group {group!r} is undefined: it has no {cls} examples; returning NaN.",
                      UndefinedMetricWarning, stacklevel=3)
        return float("nan")
    return float(flags.mean())


def fairness_gaps(scores, labels, groups, *, threshold: float = 0.5, subgroups: Sequence[str] | None = None) -> pd.Series:
    """Scalar gaps across groups: largest differences and Dixon et al.'s equality differences.

    Returns
    -------
    pandas.Series
        ``positive_rate_gap`` (max - min over groups: the demographic-parity difference),
        ``mean_score_gap``, ``fpr_gap``, ``fnr_gap`` (max - min), and ``fped``, ``fned``: the false
        positive / negative equality differences of Dixon et al. (2018), sum over groups of
        ``|rate(all) - rate(group)|``. NaN group rates are left out (they were warned about).

    Examples
    --------
    >>> g = fairness_gaps([0.9, 0.2, 0.6, 0.7], [1, 0, 0, 1], ["f", "f", "m", "m"])
    >>> g[["fpr_gap", "fped"]].round(4).tolist()
    [1.0, 1.0]
    """
    t = group_metrics(scores, groups, labels=labels, threshold=threshold, subgroups=subgroups)
    g = t.drop(index="all")
    out = {}
    for col in ("positive_rate", "mean_score", "fpr", "fnr"):
        vals = g[col].dropna()
        out[f"{col}_gap"] = float(vals.max() - vals.min()) if len(vals) else float("nan")
    out["fped"] = float(g["fpr_gap"].abs().sum(min_count=1))
    out["fned"] = float(g["fnr_gap"].abs().sum(min_count=1))
    return pd.Series(out, name="gap")


# ----------------------------------------------------------------------------------------- bias AUCs
def bias_aucs(scores, labels, groups, *, subgroups: Sequence[str] | None = None) -> pd.DataFrame:
    """Subgroup AUC, BPSN AUC and BNSP AUC (Borkan et al., 2019) for every subgroup.

    The background of a subgroup is every example that does *not* mention it (including examples of
    other groups and examples with no group). An AUC whose subset holds a single class is NaN, with a
    warning naming the subgroup.

    Returns
    -------
    pandas.DataFrame
        Index ``group``; columns ``size`` (examples mentioning it), ``subgroup_auc``, ``bpsn_auc``,
        ``bnsp_auc``.
    """
    s = _scores(scores, func="bias_aucs")
    y = _labels(labels, len(s), func="bias_aucs")
    table = membership(groups, len(s), subgroups=subgroups, func="bias_aucs")
    rows = {}
    for name in table.columns:
        m = table[name].to_numpy()
        bpsn = (~m & (y == 1)) | (m & (y == 0))
        bnsp = (~m & (y == 0)) | (m & (y == 1))
        rows[name] = {
            "size": int(m.sum()),
            "subgroup_auc": roc_auc(s[m], y[m], what=f"Subgroup AUC of {name!r}"),
            "bpsn_auc": roc_auc(s[bpsn], y[bpsn], what=f"BPSN AUC of {name!r}"),
            "bnsp_auc": roc_auc(s[bnsp], y[bnsp], what=f"BNSP AUC of {name!r}"),
        }
    out = pd.DataFrame.from_dict(rows, orient="index")
    out.index.name = "group"
    return out


def generalized_mean(values, *, p: float = -5.0) -> float:
    """Power mean ``(mean(v ** p)) ** (1 / p)`` (geometric mean at ``p = 0``); NaNs dropped with a warning.

    With ``p = -5`` (the Jigsaw choice) the result sits close to the smallest value, so one badly
    treated subgroup pulls the summary down. Values must be > 0 for ``p <= 0``.

    Examples
    --------
    >>> round(generalized_mean([0.9, 0.9]), 6)
    0.9
    >>> round(generalized_mean([1.0, 0.5], p=1), 6), round(generalized_mean([1.0, 0.5], p=-5), 4)
    (0.75, 0.5708)
    """
    v = np.asarray(values, dtype=float).reshape(-1)
    if np.isnan(v).any():
        warnings.warn(f"generalized_mean dropped {int(np.isnan(v).sum())} NaN value(s).", UndefinedMetricWarning, stacklevel=2)
        v = v[~np.isnan(v)]
    if len(v) == 0:
        return float("nan")
    if p <= 0 and np.any(v <= 0):
        raise ValueError(f"The 'values' of generalized_mean must be > 0 when p <= 0. Got p={p} and min value {v.min()}.")
    if p == 0:
        return float(np.exp(np.mean(np.log(v))))
    return float(np.mean(v**p) ** (1.0 / p))


def bias_summary(scores, labels, groups, *, p: float = -5.0, overall_weight: float = 0.25,
                 subgroups: Sequence[str] | None = None) -> pd.Series:
    """Jigsaw-style summary: overall AUC, the power means of the three bias AUCs and the final score.

    ``final = overall_weight * overall_auc + (1 - overall_weight) * mean(power means)``.

    Examples
    --------
    >>> s = bias_summary([0.9, 0.6, 0.3, 0.2, 0.8, 0.7, 0.65, 0.4], [1, 1, 0, 0, 1, 1, 0, 0], list("aaaabbbb"))
    >>> s.round(4).tolist()
    [0.9375, 1.0, 0.8256, 0.8256, 0.8972]
    """
    overall_weight = check(overall_weight, Interval(float, 0, 1), name="overall_weight", owner="bias_summary")
    s = _scores(scores, func="bias_summary")
    y = _labels(labels, len(s), func="bias_summary")
    table = bias_aucs(s, y, groups, subgroups=subgroups)
    out = {"overall_auc": roc_auc(s, y, what="Overall AUC")}
    for col in ("subgroup_auc", "bpsn_auc", "bnsp_auc"):
        out[f"{col}_power_mean"] = generalized_mean(table[col].to_numpy(), p=p)
    means = [out[f"{c}_power_mean"] for c in ("subgroup_auc", "bpsn_auc", "bnsp_auc")]
    out["final"] = overall_weight * out["overall_auc"] + (1 - overall_weight) * float(np.mean(means))
    return pd.Series(out, name="bias")
