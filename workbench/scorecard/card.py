"""The front door: :func:`scorecard` judges one model update on every dimension at once, with intervals.

Inputs are what the two models *produced* (no training happens here): each model's predicted classes and
positivity scores on one shared evaluation set, and its membership-inference attack scores on its own training
members and on non-members (:class:`ModelOutputs`). The output is one tidy table, one row per measure and slice:

``dimension``   "accuracy", "flips", "fairness" or "privacy"
``measure``     ``accuracy``; ``nfr``, ``pfr``, ``nfi``; ``<rate>_gap`` (``mean_score_gap``, ``positive_rate_gap``,
                ``fpr_gap``, ``fnr_gap``); ``mia_auc``, ``mia_tpr_at_fpr_0.01``
``group``       the slicing attribute: "all", "class", a group column ("gender", "race", yours) ;
                for fairness gaps, the attribute across whose groups the gap is taken
``slice``       the value within it ("all", "negative", "female", ...)
``n``           evaluation rows in the slice (members + non-members for privacy rows)
``old``, ``new``, ``change`` (= new - old) and their intervals ``old_low`` ... ``change_high``.

Flip measures describe the *pair*, not one model: their value is in ``new`` (with ``new_low``/``new_high``), and
``old``/``change`` are NaN.

Intervals are seeded percentile bootstraps (:mod:`.bootstrap`): the evaluation rows are resampled ``n_boot`` times
(one count matrix shared by every measure, so old and new are compared on the same resample and the change's
interval accounts for their correlation); members and non-members are resampled separately (stratified), per
model.

Examples
--------
>>> y = np.array([0, 1, 2, 2, 1, 0])
>>> old = ModelOutputs(pred=[0, 1, 0, 2, 0, 0])
>>> new = ModelOutputs(pred=[0, 2, 2, 2, 1, 0])
>>> t = scorecard(old, new, labels=y, config=ScorecardConfig(n_boot=50))
>>> t.set_index(["measure", "group", "slice"]).loc[("accuracy", "all", "all"), ["old", "new", "change"]].round(3).tolist()
[0.667, 0.833, 0.167]
>>> float(t.set_index(["measure", "group", "slice"]).loc[("nfr", "all", "all"), "new"].round(3))
0.167
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np
import pandas as pd

from ..validation import Interval, check, check_fields
from . import measures as M
from .bootstrap import percentile_interval, ratio_estimates, resample_weights, stratified_resample_weights

__all__ = ["ModelOutputs", "ScorecardConfig", "scorecard", "COLUMNS", "DIMENSIONS", "MISSING_GROUP_VALUES"]

COLUMNS = ["dimension", "measure", "group", "slice", "n", "old", "new", "change",
           "old_low", "old_high", "new_low", "new_high", "change_low", "change_high"]
DIMENSIONS = ("accuracy", "flips", "fairness", "privacy")
#: Group values that mean "this row belongs to no group of this attribute".
MISSING_GROUP_VALUES = ("", "none", "unspecified")


def _array(value, *, name: str, dtype=None) -> np.ndarray | None:
    if value is None:
        return None
    a = np.asarray(value.detach().cpu().numpy() if hasattr(value, "detach") else value, dtype=dtype).reshape(-1)
    return a


@dataclass(frozen=True, eq=False)
class ModelOutputs:
    """What one model produced, for :func:`scorecard`.

    Parameters
    ----------
    pred : array (n,) of int
        Predicted class of every evaluation row.
    score : array (n,) of float, optional
        Positivity score of every evaluation row (higher = more positive), for the fairness gaps.
    member_scores, nonmember_scores : arrays, optional
        Membership-inference attack scores (higher = "member") on this model's own training members and on
        examples it never saw, for the privacy rows.

    Examples
    --------
    >>> ModelOutputs(pred=[0, 1], score=[0.5]).pred
    Traceback (most recent call last):
    ...
    workbench.validation.InvalidParameterError: The 'score' parameter of ModelOutputs must have one entry per prediction (2). Got 1 instead.
    """

    pred: np.ndarray
    score: np.ndarray | None = None
    member_scores: np.ndarray | None = None
    nonmember_scores: np.ndarray | None = None

    def __post_init__(self):
        from ..validation import InvalidParameterError

        pred = _array(self.pred, name="pred")
        if pred is None or len(pred) == 0:
            raise InvalidParameterError("The 'pred' parameter of ModelOutputs must be a non-empty array of class ids.")
        object.__setattr__(self, "pred", pred)
        for name in ("score", "member_scores", "nonmember_scores"):
            object.__setattr__(self, name, _array(getattr(self, name), name=name, dtype=float))
        if self.score is not None and len(self.score) != len(pred):
            raise InvalidParameterError(f"The 'score' parameter of ModelOutputs must have one entry per prediction ({len(pred)}). "
                                        f"Got {len(self.score)} instead.")
        if (self.member_scores is None) != (self.nonmember_scores is None):
            raise InvalidParameterError("ModelOutputs needs both 'member_scores' and 'nonmember_scores', or neither.")

    @property
    def has_membership(self) -> bool:
        return self.member_scores is not None


@dataclass(frozen=True)
class ScorecardConfig:
    """How :func:`scorecard` measures.

    Parameters
    ----------
    n_boot : int
        Bootstrap resamples (>= 10).
    confidence : float
        Level of the percentile intervals.
    seed : int
        Seed of the resamples (same seed, same intervals).
    threshold : float
        A score >= threshold counts as a positive prediction (positive rate, FPR, FNR).
    positive_class, negative_class : int, optional
        Label ids that count as positive / negative for the FPR and FNR gaps (both or neither).
    fpr_target : float
        FPR at which the attack's TPR is reported.

    Examples
    --------
    >>> ScorecardConfig(n_boot=5)
    Traceback (most recent call last):
    ...
    workbench.validation.InvalidParameterError: The 'n_boot' parameter of ScorecardConfig must be an int >= 10. Got 5 instead.
    """

    n_boot: int = 1000
    confidence: float = 0.95
    seed: int = 0
    threshold: float = 0.5
    positive_class: int | None = None
    negative_class: int | None = None
    fpr_target: float = 0.01

    def __post_init__(self):
        check_fields(self, n_boot=Interval(int, 10, None), confidence=Interval(float, 0, 1, closed="neither"),
                     seed=Interval(int, 0, None), threshold=Interval(float, None, None),
                     positive_class=(Interval(int, 0, None), None), negative_class=(Interval(int, 0, None), None),
                     fpr_target=Interval(float, 0, 1, closed="neither"))
        if (self.positive_class is None) != (self.negative_class is None):
            from ..validation import InvalidParameterError

            raise InvalidParameterError("ScorecardConfig needs both 'positive_class' and 'negative_class', or neither.")

    @property
    def tpr_measure(self) -> str:
        return f"mia_tpr_at_fpr_{self.fpr_target:g}"


def _group_table(groups, n: int) -> pd.DataFrame:
    if groups is None:
        return pd.DataFrame(index=range(n))
    table = pd.DataFrame(groups) if not isinstance(groups, pd.DataFrame) else groups
    table = table.reset_index(drop=True)
    if len(table) != n:
        from ..validation import InvalidParameterError

        raise InvalidParameterError(f"The 'groups' parameter of scorecard must have one row per evaluation row ({n}). "
                                    f"Got {len(table)} instead.")
    return table


def _slices(values: np.ndarray) -> list[tuple[str, np.ndarray]]:
    keys = pd.Series(values).astype(object)
    missing = keys.isna() | keys.astype(str).str.strip().str.lower().isin(MISSING_GROUP_VALUES)
    names = sorted({str(v) for v in keys[~missing]})
    text = keys.astype(str).to_numpy()
    return [(name, (text == name) & ~missing.to_numpy()) for name in names]


class _Ratios:
    """Columns of numerators and denominators, with a key per column."""

    def __init__(self):
        self.keys, self.num, self.den = [], [], []

    def add(self, key, num, den, mask=None):
        if mask is not None:
            num, den = num * mask, den * mask
        self.keys.append(key)
        self.num.append(num)
        self.den.append(den)

    def evaluate(self, weights: np.ndarray) -> np.ndarray:
        return ratio_estimates(np.stack(self.num, axis=1), np.stack(self.den, axis=1), weights=weights)


def scorecard(old: ModelOutputs, new: ModelOutputs, *, labels, groups=None, classes: Sequence[str] | None = None,
              fairness_groups: Sequence[str] | None = None, config: ScorecardConfig = ScorecardConfig(),
              progress: bool = False) -> pd.DataFrame:
    """Every dimension of the update ``old -> new`` in one table (see the module docstring for its columns).

    Parameters
    ----------
    old, new : ModelOutputs
        The two models' outputs on the same evaluation rows.
    labels : array (n,) of int
        True class of every evaluation row.
    groups : DataFrame or mapping of column -> array (n,), optional
        Group columns (e.g. ``gender``, ``race``, a data source). A value of "", "none", "unspecified", None or
        NaN means the row belongs to no group of that column. Flips are reported per group of every column.
    classes : sequence of str, optional
        Class names in id order (for the per-class slices); default the ids.
    fairness_groups : sequence of str, optional
        Columns of ``groups`` across whose groups fairness gaps are taken (default: all of them when both models
        have a ``score``, none otherwise). Naming columns without scores is an error.
    config : ScorecardConfig
    progress : bool
        Kept for callers that pass it; nothing is slow enough to need a bar any more (the membership bootstrap is
        matrix operations too, :func:`workbench.metrics.roc_curves`).

    Returns
    -------
    pandas.DataFrame
        Columns :data:`COLUMNS`, rows ordered by dimension (accuracy, flips, fairness, privacy).
    """
    from ..validation import InvalidParameterError

    for name, value in (("old", old), ("new", new)):
        if not isinstance(value, ModelOutputs):
            raise InvalidParameterError(f"The {name!r} parameter of scorecard must be a ModelOutputs. Got {type(value).__name__} instead.")
    if not isinstance(config, ScorecardConfig):
        raise InvalidParameterError(f"The 'config' parameter of scorecard must be a ScorecardConfig. Got {type(config).__name__} instead.")
    y = _array(labels, name="labels")
    n = len(y)
    for name, value in (("old", old), ("new", new)):
        if len(value.pred) != n:
            raise InvalidParameterError(f"The {name!r} predictions given to scorecard must have one entry per label ({n}). "
                                        f"Got {len(value.pred)} instead.")
    table = _group_table(groups, n)
    with_scores = old.score is not None and new.score is not None
    if fairness_groups is None:  # default: every group column, when there are scores to compare
        fairness_groups = list(table.columns) if with_scores else []
    fairness_groups = [str(g) for g in fairness_groups]
    unknown = [g for g in fairness_groups if g not in table.columns]
    if unknown:
        raise InvalidParameterError(f"Unknown column(s) {unknown} in the 'fairness_groups' parameter of scorecard; "
                                    f"accepted values are {list(table.columns)}.")
    if fairness_groups and not with_scores:
        raise InvalidParameterError("scorecard needs both models' 'score' for the fairness gaps of 'fairness_groups'; "
                                    "pass ModelOutputs(score=...) or fairness_groups=().")

    class_ids = np.unique(y)
    slicing = [("all", [("all", np.ones(n, bool))])]
    slicing.append(("class", [(str(classes[int(c)]) if classes is not None else str(c), y == c) for c in class_ids]))
    for col in table.columns:
        slicing.append((str(col), _slices(table[col].to_numpy())))

    ratios = _Ratios()
    per_model = {w: M.model_ratios(y, m.pred) for w, m in (("old", old), ("new", new))}
    flips = M.flip_ratios(y, old.pred, new.pred)
    for group, slices in slicing:
        for slice_name, mask in slices:
            maskf = mask.astype(float)
            for measure in M.MODEL_MEASURES:
                for which in ("old", "new"):
                    ratios.add(("accuracy", measure, group, slice_name, which), *per_model[which][measure], maskf)
            for measure in M.FLIP_MEASURES:
                ratios.add(("flips", measure, group, slice_name, "pair"), *flips[measure], maskf)
    fair_keys = []
    if with_scores and fairness_groups:
        kw = dict(threshold=config.threshold, positive_class=config.positive_class, negative_class=config.negative_class)
        rates = {w: M.group_rate_ratios(m.score, y, **kw) for w, m in (("old", old), ("new", new))}
        for col in fairness_groups:
            slices = _slices(table[col].to_numpy())
            for rate in rates["old"]:
                fair_keys.append((col, rate, [s for s, _ in slices]))
                for slice_name, mask in slices:
                    for which in ("old", "new"):
                        ratios.add(("fairness_rate", rate, col, slice_name, which), *rates[which][rate], mask.astype(float))

    point = ratios.evaluate(np.ones((1, n)))[0]
    boot = ratios.evaluate(resample_weights(n, n_boot=config.n_boot, seed=config.seed))
    col_of = {k: i for i, k in enumerate(ratios.keys)}
    sizes = {(k[2], k[3]): None for k in ratios.keys}
    for group, slices in slicing:
        for slice_name, mask in slices:
            sizes[(group, slice_name)] = int(mask.sum())

    rows = []

    def add_row(dimension, measure, group, slice_name, size, old_v, new_v, old_b, new_b):
        row = {"dimension": dimension, "measure": measure, "group": group, "slice": slice_name, "n": size,
               "old": old_v, "new": new_v, "change": new_v - old_v}
        for which, samples in (("old", old_b), ("new", new_b), ("change", new_b - old_b)):
            low, high = percentile_interval(samples[:, None], confidence=config.confidence)
            row[f"{which}_low"], row[f"{which}_high"] = float(low[0]), float(high[0])
        rows.append(row)

    nan_b = np.full(config.n_boot, np.nan)
    for group, slices in slicing:
        for slice_name, _ in slices:
            size = sizes[(group, slice_name)]
            for measure in M.MODEL_MEASURES:
                i_old, i_new = col_of[("accuracy", measure, group, slice_name, "old")], col_of[("accuracy", measure, group, slice_name, "new")]
                add_row("accuracy", measure, group, slice_name, size, point[i_old], point[i_new], boot[:, i_old], boot[:, i_new])
    for group, slices in slicing:
        for slice_name, _ in slices:
            size = sizes[(group, slice_name)]
            for measure in M.FLIP_MEASURES:
                i = col_of[("flips", measure, group, slice_name, "pair")]
                add_row("flips", measure, group, slice_name, size, np.nan, point[i], nan_b, boot[:, i])
                rows[-1]["change"] = np.nan
    for col, rate, slice_names in fair_keys:
        idx = {w: [col_of[("fairness_rate", rate, col, s, w)] for s in slice_names] for w in ("old", "new")}
        size = int(sum(sizes[(col, s)] for s in slice_names))
        add_row("fairness", f"{rate}_gap", col, "all", size, float(M.gap(point[idx["old"]])), float(M.gap(point[idx["new"]])),
                M.gap(boot[:, idx["old"]]), M.gap(boot[:, idx["new"]]))
    if old.has_membership and new.has_membership:
        rows.extend(_privacy_rows(old, new, config=config, progress=progress))
    elif old.has_membership or new.has_membership:
        raise InvalidParameterError("scorecard needs membership scores for both models, or for neither.")
    return pd.DataFrame(rows, columns=COLUMNS)


_MEMBERSHIP_CACHE: dict = {}


def _membership_boot(outputs: ModelOutputs, *, config: ScorecardConfig, progress: bool, desc: str):
    """Point estimates and bootstrap samples of (AUC, TPR at ``fpr_target``) for one model.

    Members and non-members are resampled separately with a generator seeded by ``(config.seed, 1)`` only, so the
    result depends on the model's scores and the config alone and is memoised (a model compared in several updates
    is resampled once). All resamples are evaluated at once (:func:`.measures.membership_measures_resampled`)."""
    import hashlib

    m, nm = outputs.member_scores, outputs.nonmember_scores
    key = (hashlib.sha1(m.tobytes() + b"|" + nm.tobytes()).hexdigest(), len(m), config.n_boot, config.seed, config.fpr_target)
    if key in _MEMBERSHIP_CACHE:
        return _MEMBERSHIP_CACHE[key]
    rng = np.random.default_rng([config.seed, 1])  # independent of the evaluation-row resamples
    weights = stratified_resample_weights(len(m), len(nm), n_boot=config.n_boot, rng=rng)  # members, non-members apart
    aucs, tprs = M.membership_measures_resampled(m, nm, weights=weights, target=config.fpr_target)
    result = (M.membership_measures(m, nm, target=config.fpr_target), (aucs, tprs))
    if len(_MEMBERSHIP_CACHE) >= 32:
        _MEMBERSHIP_CACHE.pop(next(iter(_MEMBERSHIP_CACHE)))
    _MEMBERSHIP_CACHE[key] = result
    return result


def _privacy_rows(old: ModelOutputs, new: ModelOutputs, *, config: ScorecardConfig, progress: bool) -> list[dict]:
    (auc_o, tpr_o), (aucs_o, tprs_o) = _membership_boot(old, config=config, progress=progress, desc="privacy (old)")
    (auc_n, tpr_n), (aucs_n, tprs_n) = _membership_boot(new, config=config, progress=progress, desc="privacy (new)")
    size = len(new.member_scores) + len(new.nonmember_scores)
    rows = []
    for measure, o, nw, ob, nb in (("mia_auc", auc_o, auc_n, aucs_o, aucs_n), (config.tpr_measure, tpr_o, tpr_n, tprs_o, tprs_n)):
        row = {"dimension": "privacy", "measure": measure, "group": "all", "slice": "all", "n": size,
               "old": o, "new": nw, "change": nw - o}
        for which, samples in (("old", ob), ("new", nb), ("change", nb - ob)):
            low, high = percentile_interval(samples[:, None], confidence=config.confidence)
            row[f"{which}_low"], row[f"{which}_high"] = float(low[0]), float(high[0])
        rows.append(row)
    return rows
