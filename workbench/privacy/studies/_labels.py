"""The labels that name a model in every study table (:data:`NON_DP` and ``eps=<epsilon>``), and their names in run
records' metric keys (:func:`metric_label`: ``non_dp``, ``epsilon_<e>``)."""
from __future__ import annotations

import re

import numpy as np

#: Label of the model trained without DP in every study table.
NON_DP = "non-DP"


def _epsilon_label(epsilon: float) -> str:
    return f"eps={epsilon:g}"


def metric_label(label: str) -> str:
    """A table label as one level of a metric name in the records' one scheme (:func:`workbench.results.metric_key`).

    Lower case; ``eps=<e>`` becomes ``epsilon_<e>``; a parenthesised remark is dropped; any other run of characters
    outside ``[a-z0-9.]`` becomes one ``_``.

    Examples
    --------
    >>> [metric_label(x) for x in ["non-DP", "eps=8", "DP eps=1", "early stop (epoch 3)", "dropout 0.5", "lira-online"]]
    ['non_dp', 'epsilon_8', 'dp_epsilon_1', 'early_stop', 'dropout_0.5', 'lira_online']
    """
    text = re.sub(r"\(.*?\)", "", str(label).lower()).replace("eps=", "epsilon_")
    return re.sub(r"[^a-z0-9.]+", "_", text).strip("_")


def class_labels(texts, labels, *, owner: str):
    """``texts`` as a list of str and ``labels`` as an array, checked: one class id >= 0 per text.

    Examples
    --------
    >>> class_labels(["a", "b"], [0, 2], owner="f")[1]
    array([0, 2])
    """
    texts = [str(t) for t in texts]
    y = np.asarray(labels)
    if y.shape != (len(texts),) or not np.issubdtype(y.dtype, np.integer) or (len(y) and y.min() < 0):
        raise ValueError(f"The 'labels' parameter of {owner} must hold one class id >= 0 per text ({len(texts)}). "
                         f"Got shape {y.shape} and dtype {y.dtype} instead.")
    return texts, y
