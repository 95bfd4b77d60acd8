"""Accumulated prediction sensitivity (Krishna et al., ACL 2022, "Measuring fairness of text classifiers
via prediction sensitivity").

For a task classifier ``f`` with class probabilities ``f(x) in R^K`` over input features ``x in R^n``,
the Jacobian ``J(x) = df/dx`` (K x n) says how much each prediction moves when each feature moves.
A *protected-status model* ``g`` predicts membership of a protected group (e.g. gender) from the same
features; features that ``g`` relies on encode the protected attribute. With the feature weights

    v(x) = |dg/dx| / || dg/dx ||_1            (non-negative, sums to 1)

the prediction sensitivity of one example and its accumulation over a data set are

    PS(x) = 1^T |J(x)| v(x) = sum_k sum_i |df_k/dx_i| v_i(x)
    APS   = mean over the data set of PS(x).

PS is large when the prediction changes quickly along the features that carry group membership: a
small, identity-only change of the input would move the prediction, which is what counterfactual
fairness measures with a discrete swap (:mod:`workbench.fairness.counterfactual`).
:func:`compare_with_counterfactual` correlates the two on the same examples.

For a logistic protected model ``g(x) = sigmoid(w.x + b)``, ``dg/dx = g(1-g) w``, so ``v = |w| / ||w||_1``
for every example (:func:`linear_feature_weights`). Any differentiable torch module can be used instead;
its per-example gradients give per-example weights.

In this workbench the input features are the pooled sentence-encoder features the sentiment classifier
reads (:mod:`workbench.fairness.classifier`), not word embeddings as in parts of the paper: the weights
then say which encoder dimensions carry gender.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
from torch import nn

from workbench.validation import Interval, check

__all__ = [
    "SensitivityResult",
    "fit_protected_model",
    "linear_feature_weights",
    "feature_weights",
    "prediction_jacobian",
    "prediction_sensitivity",
    "accumulated_prediction_sensitivity",
    "compare_with_counterfactual",
]


@dataclass(frozen=True)
class SensitivityResult:
    """Per-example prediction sensitivities and their accumulation (mean) over the data set."""

    per_example: np.ndarray
    aps: float
    weights: np.ndarray  # (n_features,) or (N, n_features)

    def to_frame(self, **columns) -> pd.DataFrame:
        return pd.DataFrame({**columns, "sensitivity": self.per_example})


def _features(X, *, func: str) -> torch.Tensor:
    x = X if isinstance(X, torch.Tensor) else torch.as_tensor(np.asarray(X))
    x = x.detach().float()
    if x.dim() != 2 or len(x) == 0:
        raise ValueError(f"The 'X' parameter of {func} must be a non-empty 2-D array (examples x features). Got shape {tuple(x.shape)}.")
    if not torch.isfinite(x).all():
        raise ValueError(f"The 'X' parameter of {func} must hold finite numbers.")
    return x


def fit_protected_model(X, groups, *, C: float = 1.0, seed: int = 0):
    """Fit a logistic protected-status model ``P(group | x)`` (scikit-learn) on features ``X``.

    ``groups`` holds two distinct values (e.g. "female"/"male"); the model's ``classes_`` gives the order.

    Examples
    --------
    >>> rng = np.random.default_rng(0); X = rng.normal(size=(200, 3)); g = np.where(X[:, 2] > 0, "f", "m")
    >>> model = fit_protected_model(X, g)
    >>> int(np.argmax(linear_feature_weights(model)))
    2
    """
    from sklearn.linear_model import LogisticRegression

    X = np.asarray(X, dtype=float)
    groups = np.asarray(groups).reshape(-1)
    if len(groups) != len(X):
        raise ValueError(f"The 'groups' parameter of fit_protected_model must have one entry per row of X. Got {len(groups)} for {len(X)} rows.")
    values = np.unique(groups)
    if len(values) != 2:
        raise ValueError(f"The 'groups' parameter of fit_protected_model must hold exactly two groups. Got {values.tolist()[:10]}.")
    C = check(C, Interval(float, 0, None, closed="neither"), name="C", owner="fit_protected_model")
    return LogisticRegression(C=C, max_iter=2000, random_state=seed).fit(X, groups)


def linear_feature_weights(model_or_coef) -> np.ndarray:
    """``|w| / ||w||_1`` from a linear model's ``coef_`` (one row) or from a weight vector.

    Examples
    --------
    >>> linear_feature_weights(np.array([1.0, -3.0, 0.0]))
    array([0.25, 0.75, 0.  ])
    """
    w = getattr(model_or_coef, "coef_", model_or_coef)
    w = np.asarray(w, dtype=float)
    if w.ndim == 2:
        if w.shape[0] != 1:
            raise ValueError(f"linear_feature_weights needs a binary linear model (one row of coefficients). Got {w.shape[0]} rows.")
        w = w[0]
    a = np.abs(w)
    total = a.sum()
    if not np.isfinite(total) or total == 0:
        raise ValueError("The protected model's weights are all zero (or not finite): no feature encodes the group.")
    return a / total


def feature_weights(protected, X) -> np.ndarray:
    """Feature weights ``v`` from ``protected``: a weight vector, a fitted linear model (``coef_``), or a
    torch module mapping features to one logit / probability (or two-class logits) per example.

    Returns shape (n_features,) for linear models and vectors, (N, n_features) for torch modules.
    """
    x = _features(X, func="feature_weights")
    if isinstance(protected, nn.Module):
        xs = x.clone().requires_grad_(True)
        was = protected.training
        protected.eval()
        try:
            out = protected(xs)
        finally:
            protected.train(was)
        if out.dim() == 2 and out.shape[1] == 2:
            out = out[:, 1] - out[:, 0]  # log-odds of the second group
        out = out.reshape(len(xs), -1)
        if out.shape[1] != 1:
            raise ValueError(f"A torch protected model must output one value (or two logits) per example. Got {out.shape[1]}.")
        (grad,) = torch.autograd.grad(out.sum(), xs)
        a = grad.abs().numpy().astype(float)
        total = a.sum(axis=1, keepdims=True)
        return np.divide(a, total, out=np.zeros_like(a), where=total > 0)
    v = linear_feature_weights(protected)
    if v.shape[0] != x.shape[1]:
        raise ValueError(f"The protected model has {v.shape[0]} weights but X has {x.shape[1]} features.")
    return v


def prediction_jacobian(classifier: nn.Module, X, *, batch_size: int = 1024) -> np.ndarray:
    """Jacobian of the class probabilities (softmax of the logits) w.r.t. the input features: (N, K, n).

    One backward pass per class over a whole batch: per-example gradients are exact because examples
    do not interact in the forward pass (no BatchNorm: the workbench's models are per-example).
    """
    x = _features(X, func="prediction_jacobian")
    was = classifier.training
    classifier.eval()
    chunks = []
    try:
        for start in range(0, len(x), batch_size):
            xb = x[start : start + batch_size].clone().requires_grad_(True)
            probs = torch.softmax(classifier(xb), dim=-1)
            rows = []
            for k in range(probs.shape[1]):
                (g,) = torch.autograd.grad(probs[:, k].sum(), xb, retain_graph=k < probs.shape[1] - 1)
                rows.append(g)
            chunks.append(torch.stack(rows, dim=1).numpy())
    finally:
        classifier.train(was)
    return np.concatenate(chunks).astype(float)


def prediction_sensitivity(classifier: nn.Module, X, *, protected, batch_size: int = 1024) -> np.ndarray:
    """Per-example prediction sensitivity ``PS(x) = 1^T |J(x)| v(x)`` (see the module docstring)."""
    jac = prediction_jacobian(classifier, X, batch_size=batch_size)
    v = feature_weights(protected, X)
    if v.ndim == 1:
        return np.abs(jac).sum(axis=1) @ v
    return np.einsum("nki,ni->n", np.abs(jac), v)


def accumulated_prediction_sensitivity(classifier: nn.Module, X, *, protected, batch_size: int = 1024) -> SensitivityResult:
    """Prediction sensitivity of every example of ``X`` and their mean, the APS of the data set.

    Examples
    --------
    >>> _ = torch.manual_seed(0); clf = nn.Linear(3, 2)
    >>> with torch.no_grad():
    ...     _ = clf.weight.copy_(torch.tensor([[1.0, 0.0, 0.0], [-1.0, 0.0, 0.0]])); _ = clf.bias.zero_()
    >>> r = accumulated_prediction_sensitivity(clf, torch.zeros(4, 3), protected=np.array([0.0, 0.0, 5.0]))
    >>> r.aps  # the classifier ignores the only feature that carries the group
    0.0
    >>> round(accumulated_prediction_sensitivity(clf, torch.zeros(4, 3), protected=np.array([1.0, 0.0, 0.0])).aps, 4)
    1.0
    """
    v = feature_weights(protected, X)
    jac = prediction_jacobian(classifier, X, batch_size=batch_size)
    per = np.abs(jac).sum(axis=1) @ v if v.ndim == 1 else np.einsum("nki,ni->n", np.abs(jac), v)
    return SensitivityResult(per_example=per, aps=float(per.mean()), weights=v)


def compare_with_counterfactual(sensitivity, counterfactual_gap) -> pd.Series:
    """Correlation of per-example prediction sensitivity with the counterfactual gap on the same examples.

    Returns
    -------
    pandas.Series
        ``n``, ``pearson_r``, ``pearson_p``, ``spearman_rho``, ``spearman_p`` (NaN when either input is
        constant).

    Examples
    --------
    >>> compare_with_counterfactual([0.1, 0.2, 0.3, 0.5], [0.0, 0.1, 0.15, 0.4])["spearman_rho"].item()
    1.0
    """
    from scipy import stats

    a = np.asarray(sensitivity, dtype=float).reshape(-1)
    b = np.asarray(counterfactual_gap, dtype=float).reshape(-1)
    if len(a) != len(b):
        raise ValueError(f"compare_with_counterfactual needs one counterfactual gap per sensitivity. Got {len(b)} gaps for {len(a)} sensitivities.")
    if len(a) < 3:
        raise ValueError(f"compare_with_counterfactual needs at least 3 examples. Got {len(a)}.")
    if np.ptp(a) == 0 or np.ptp(b) == 0:
        nan = float("nan")
        return pd.Series({"n": len(a), "pearson_r": nan, "pearson_p": nan, "spearman_rho": nan, "spearman_p": nan})
    pr = stats.pearsonr(a, b)
    sr = stats.spearmanr(a, b)
    return pd.Series({"n": len(a), "pearson_r": float(pr.statistic), "pearson_p": float(pr.pvalue),
                      "spearman_rho": float(sr.statistic), "spearman_p": float(sr.pvalue)})
