"""Flip metrics: what changes, sample by sample, when an old classifier is replaced by a new one.

A *negative flip* is a sample the old model classified correctly and the new model gets wrong (a
regression a user can notice); a *positive flip* is the reverse. With error rates ``ER_old`` and
``ER_new``, negative flip rate ``NFR`` and positive flip rate ``PFR`` (both fractions of all samples),
the bookkeeping identity is ::

    ER_new = ER_old - PFR + NFR          (so PFR - NFR = ER_old - ER_new)

i.e. a lower average error says nothing about how many individual regressions an update brings
(Yan et al., "Positive-congruent training: towards regression-free model updates", CVPR 2021).

All functions are pure: labels and predictions in (array-likes of class ids), numbers or tables out.

Examples
--------
>>> y   = [0, 1, 2, 2, 1]
>>> old = [0, 1, 0, 2, 0]
>>> new = [0, 2, 2, 2, 1]
>>> s = flip_summary(y, old, new)
>>> s["error_old"], s["error_new"], s["nfr"], s["pfr"]
(0.4, 0.2, 0.2, 0.4)
>>> round(s["error_old"] - s["pfr"] + s["nfr"], 12) == s["error_new"]
True
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd

from ..validation import Interval, Options, check

__all__ = [
    "error_rate",
    "negative_flip_rate",
    "positive_flip_rate",
    "negative_flip_impact",
    "relative_negative_flip_rate",
    "flip_summary",
    "flip_masks",
    "per_class_flips",
    "per_group_flips",
    "flipped_examples",
    "negative_flip_matrix",
    "FLIP_KINDS",
]

#: Kinds of samples :func:`flipped_examples` can list.
FLIP_KINDS = ("negative", "positive", "both_wrong", "changed")


def _as_arrays(y, old, new):
    arrays = [np.asarray(a).reshape(-1) for a in (y, old, new)]
    names = ("y", "old", "new")
    for name, a in zip(names, arrays):
        if a.dtype.kind not in "iub":
            if a.dtype.kind == "f" and np.all(np.isfinite(a)) and np.all(a == np.round(a)):
                continue
            raise ValueError(f"The '{name}' parameter must hold integer class ids. Got dtype {a.dtype} instead.")
    if not len(arrays[0]) == len(arrays[1]) == len(arrays[2]):
        raise ValueError(
            "The 'y', 'old' and 'new' parameters must have the same length. "
            f"Got {len(arrays[0])}, {len(arrays[1])} and {len(arrays[2])} instead."
        )
    if len(arrays[0]) == 0:
        raise ValueError("The 'y' parameter must not be empty.")
    return arrays


def flip_masks(y, old, new) -> dict[str, np.ndarray]:
    """Boolean masks of the four outcome cells of an update.

    Returns
    -------
    dict
        ``both_right``, ``negative`` (old right, new wrong), ``positive`` (old wrong, new right),
        ``both_wrong``; plus ``changed`` (the two predictions differ, whatever the label).

    Examples
    --------
    >>> m = flip_masks([0, 1, 1], [0, 1, 0], [1, 1, 1])
    >>> m["negative"].tolist(), m["positive"].tolist(), m["changed"].tolist()
    ([True, False, False], [False, False, True], [True, False, True])
    """
    y, old, new = _as_arrays(y, old, new)
    old_ok, new_ok = old == y, new == y
    return {
        "both_right": old_ok & new_ok,
        "negative": old_ok & ~new_ok,
        "positive": ~old_ok & new_ok,
        "both_wrong": ~old_ok & ~new_ok,
        "changed": old != new,
    }


def error_rate(y, pred) -> float:
    """Fraction of samples with ``pred != y``.

    Examples
    --------
    >>> error_rate([0, 1, 1, 0], [0, 1, 0, 0])
    0.25
    """
    y, pred, _ = _as_arrays(y, pred, pred)
    return float(np.mean(pred != y))


def negative_flip_rate(y, old, new) -> float:
    """NFR: fraction of *all* samples that the old model got right and the new model gets wrong.

    Examples
    --------
    >>> negative_flip_rate([0, 1, 1, 0], [0, 1, 1, 1], [1, 1, 0, 0])
    0.5
    >>> negative_flip_rate([0, 1, 1, 0], [0, 1, 0, 0], [0, 1, 0, 0])  # identical predictions: no flips
    0.0
    """
    return float(np.mean(flip_masks(y, old, new)["negative"]))


def positive_flip_rate(y, old, new) -> float:
    """PFR: fraction of all samples that the old model got wrong and the new model gets right.

    Examples
    --------
    >>> positive_flip_rate([0, 1, 1, 0], [0, 1, 1, 1], [1, 1, 0, 0])
    0.25
    """
    return float(np.mean(flip_masks(y, old, new)["positive"]))


def negative_flip_impact(y, old, new) -> float:
    """NFI = NFR / ER_new: the share of the new model's errors that are regressions.

    1 means every mistake of the new model is one the old model did not make; NaN if the new model
    makes no error.

    Examples
    --------
    >>> negative_flip_impact([0, 1, 1, 0], [0, 1, 1, 1], [1, 1, 0, 0])
    1.0
    >>> negative_flip_impact([0, 1, 1, 0], [1, 1, 0, 0], [1, 1, 1, 0])
    0.0
    """
    masks = flip_masks(y, old, new)
    errors_new = masks["negative"].sum() + masks["both_wrong"].sum()
    return float(masks["negative"].sum() / errors_new) if errors_new else float("nan")


def relative_negative_flip_rate(y, old, new) -> float:
    """NFR / ((1 - ER_old) * ER_new): the NFR relative to the NFR two models with *independent*
    errors at the same error rates would have.

    Below 1 the new model's errors concentrate on samples the old model also got wrong (congruent
    errors); 1 means independent errors. NaN if either factor is 0.

    Examples
    --------
    >>> relative_negative_flip_rate([0, 0, 0, 0], [0, 0, 1, 1], [0, 1, 0, 1])
    1.0
    """
    y, old, new = _as_arrays(y, old, new)
    expected = np.mean(old == y) * np.mean(new != y)
    return float(negative_flip_rate(y, old, new) / expected) if expected else float("nan")


def flip_summary(y, old, new) -> dict[str, float]:
    """All scalar update metrics at once.

    Returns
    -------
    dict
        ``n``, ``error_old``, ``error_new``, ``nfr``, ``pfr``, ``nfi`` (negative flip impact),
        ``relative_nfr``, ``n_negative``, ``n_positive``, ``changed`` (fraction of changed predictions).

    Examples
    --------
    >>> flip_summary([0, 1], [0, 1], [0, 1])["nfr"]
    0.0
    """
    y, old, new = _as_arrays(y, old, new)
    masks = flip_masks(y, old, new)
    return {
        "n": int(len(y)),
        "error_old": float(np.mean(old != y)),
        "error_new": float(np.mean(new != y)),
        "nfr": float(masks["negative"].mean()),
        "pfr": float(masks["positive"].mean()),
        "nfi": negative_flip_impact(y, old, new),
        "relative_nfr": relative_negative_flip_rate(y, old, new),
        "n_negative": int(masks["negative"].sum()),
        "n_positive": int(masks["positive"].sum()),
        "changed": float(masks["changed"].mean()),
    }


_TABLE_COLUMNS = ["n", "error_old", "error_new", "nfr", "pfr", "nfi", "n_negative", "n_positive", "share_of_negative_flips"]


def per_group_flips(y, old, new, groups, *, names: Sequence[str] | dict | None = None) -> pd.DataFrame:
    """Flip metrics inside each group of samples (e.g. a demographic group, a data source, a class).

    Rates are within the group (NFR of a group = its negative flips / its size);
    ``share_of_negative_flips`` is the group's share of all negative flips.

    Parameters
    ----------
    y, old, new : array-like of int
    groups : array-like
        Group key of each sample.
    names : sequence or dict, optional
        Display names of the group keys (``names[key]``).

    Returns
    -------
    pandas.DataFrame
        One row per group (sorted by key), index ``group``, columns ``name``, ``n``, ``error_old``,
        ``error_new``, ``nfr``, ``pfr``, ``nfi``, ``n_negative``, ``n_positive``, ``share_of_negative_flips``.

    Examples
    --------
    >>> t = per_group_flips([0, 1, 1, 0], [0, 1, 1, 1], [1, 1, 0, 0], groups=["a", "a", "b", "b"])
    >>> t[["nfr", "pfr", "n_negative"]].to_dict("index")
    {'a': {'nfr': 0.5, 'pfr': 0.0, 'n_negative': 1}, 'b': {'nfr': 0.5, 'pfr': 0.5, 'n_negative': 1}}
    """
    y, old, new = _as_arrays(y, old, new)
    groups = np.asarray(groups).reshape(-1)
    if len(groups) != len(y):
        raise ValueError(f"The 'groups' parameter must have one key per sample ({len(y)}). Got {len(groups)} instead.")
    total_negative = int(flip_masks(y, old, new)["negative"].sum())
    rows = []
    for key in np.unique(groups):
        sel = groups == key
        s = flip_summary(y[sel], old[sel], new[sel])
        s["share_of_negative_flips"] = s["n_negative"] / total_negative if total_negative else 0.0
        key = key.item() if hasattr(key, "item") else key
        s["group"] = key
        s["name"] = str(names[key]) if names is not None else str(key)
        rows.append(s)
    return pd.DataFrame(rows).set_index("group")[["name", *_TABLE_COLUMNS]]


def per_class_flips(y, old, new, *, classes: Sequence[str] | None = None, n_classes: int | None = None) -> pd.DataFrame:
    """Flip metrics per true class (rows for classes absent from ``y`` are left out unless ``n_classes``).

    Parameters
    ----------
    y, old, new : array-like of int
    classes : sequence of str, optional
        Class names in id order (the ``name`` column).
    n_classes : int, optional
        Report every class id ``0..n_classes-1`` (absent ones with ``n = 0`` and NaN rates).

    Examples
    --------
    >>> t = per_class_flips([0, 0, 1, 1], [0, 0, 1, 0], [0, 1, 1, 1], classes=["cat", "dog"])
    >>> t["name"].tolist(), t["nfr"].tolist(), t["pfr"].tolist()
    (['cat', 'dog'], [0.5, 0.0], [0.0, 0.5])
    """
    n_classes = check(n_classes, Interval(int, 1, None), None, name="n_classes", owner="per_class_flips")
    table = per_group_flips(y, old, new, groups=y, names=classes)
    if n_classes is not None:
        table = table.reindex(range(n_classes))
        table["n"] = table["n"].fillna(0).astype(int)
        for col in ("n_negative", "n_positive"):
            table[col] = table[col].fillna(0).astype(int)
        table["share_of_negative_flips"] = table["share_of_negative_flips"].fillna(0.0)
        table["name"] = [str(classes[i]) if classes is not None else str(i) for i in range(n_classes)]
    table.index.name = "class"
    return table


def flipped_examples(y, old, new, *, kind: str = "negative", cls: int | None = None) -> pd.DataFrame:
    """The samples of one outcome kind, as a table of row numbers and predictions.

    Parameters
    ----------
    kind : {"negative", "positive", "both_wrong", "changed"}
    cls : int, optional
        Keep only samples whose true label is ``cls``.

    Returns
    -------
    pandas.DataFrame
        Columns ``index`` (row in the inputs), ``label``, ``old``, ``new``.

    Examples
    --------
    >>> flipped_examples([0, 1, 1, 0], [0, 1, 1, 1], [1, 1, 0, 0]).to_dict("list")
    {'index': [0, 2], 'label': [0, 1], 'old': [0, 1], 'new': [1, 0]}
    >>> flipped_examples([0, 1, 1, 0], [0, 1, 1, 1], [1, 1, 0, 0], cls=1)["index"].tolist()
    [2]
    """
    check(kind, Options(FLIP_KINDS), name="kind", owner="flipped_examples")
    cls = check(cls, Interval(int, 0, None), None, name="cls", owner="flipped_examples")
    y, old, new = _as_arrays(y, old, new)
    mask = flip_masks(y, old, new)[kind]
    if cls is not None:
        mask = mask & (y == cls)
    idx = np.flatnonzero(mask)
    return pd.DataFrame({"index": idx, "label": y[idx].astype(np.int64), "old": old[idx].astype(np.int64), "new": new[idx].astype(np.int64)})


def negative_flip_matrix(y, old, new, *, n_classes: int | None = None) -> np.ndarray:
    """Counts of negative flips by (true class, class the new model predicts): where regressions go.

    Returns
    -------
    numpy.ndarray
        Shape (n_classes, n_classes), int; entry ``[c, k]`` counts samples of class ``c`` that the old
        model got right and the new model labels ``k``. The diagonal is 0; the sum is the number of
        negative flips.

    Examples
    --------
    >>> negative_flip_matrix([0, 1, 1, 0], [0, 1, 1, 1], [1, 1, 0, 0]).tolist()
    [[0, 1], [1, 0]]
    """
    y, old, new = _as_arrays(y, old, new)
    k = int(n_classes if n_classes is not None else max(y.max(), old.max(), new.max()) + 1)
    neg = flip_masks(y, old, new)["negative"]
    matrix = np.zeros((k, k), dtype=np.int64)
    np.add.at(matrix, (y[neg].astype(np.int64), new[neg].astype(np.int64)), 1)
    return matrix
