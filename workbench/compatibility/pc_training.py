"""Positive-congruent (PC) training: update a classifier without breaking what the old one got right.

Focal distillation (Yan et al., "Positive-congruent training: towards regression-free model updates",
CVPR 2021) adds to the new model's cross-entropy a distillation term towards the old model whose
per-sample weight is ``alpha + beta * [old model correct]``::

    L = CE(f_new(x), y) + (alpha + beta * 1[argmax f_old(x) == y]) * T^2 * KL(softmax(f_old(x)/T) || softmax(f_new(x)/T))

``beta = 0`` is plain knowledge distillation (the whole old model, mistakes included); ``alpha = beta = 0``
is the unconstrained update. The ``"l2"`` distance (logit matching, the paper's FD-LM) replaces the
KL term by ``0.5 * mean_k (f_new - f_old)^2``.

Baselines: ``"none"`` (no constraint), ``"distillation"`` (``beta = 0``), ``"focal_distillation"`` and
``"ensemble"`` (average the probabilities of ``n_ensemble`` independently trained new models; ensembles
flip less because their errors are less random).

Old/new pairs differ the way real updates do (:data:`UPDATE_SCENARIOS`): more data, more epochs, a bigger
architecture, or all three.

The same front door trains text models: pass ``model_fn(seed) -> nn.Module`` (e.g. a token model of
:mod:`workbench.textmodels`) and integer token ids as ``X`` (they are kept as ids; float features are flattened
as for images), and ``dp=DPConfig(...)`` to train privately with :func:`workbench.privacy.dp.train` (the focal
distillation loss is a mean of per-sample terms, which DP clipping needs).

Examples
--------
>>> import torch
>>> logits = torch.tensor([[2.0, 0.0], [0.0, 2.0]])
>>> y = torch.tensor([0, 0])
>>> float(focal_distillation_loss(logits, logits, y, alpha=1.0, beta=5.0)) == float(torch.nn.functional.cross_entropy(logits, y))
True
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Mapping, Sequence

import numpy as np
import pandas as pd
import torch
from torch import nn
from torch.nn import functional as F

from ..models import MLP
from ..training import TrainConfig, as_tensors, fit, predict
from ..validation import InstanceOf, Interval, InvalidParameterError, Options, Seq, check, check_fields
from .flips import flip_summary

__all__ = [
    "PCConfig",
    "UpdateScenario",
    "UPDATE_SCENARIOS",
    "PC_METHODS",
    "DISTANCES",
    "update_scenario",
    "focal_weights",
    "focal_distillation_loss",
    "make_pc_loss",
    "EnsembleClassifier",
    "train_old_model",
    "train_new_model",
    "UpdateResult",
    "run_update",
    "pc_tradeoff",
]

PC_METHODS = ("none", "distillation", "focal_distillation", "ensemble")
DISTANCES = ("kl", "l2")


@dataclass(frozen=True)
class PCConfig:
    """How the new model is trained.

    Parameters
    ----------
    method : {"none", "distillation", "focal_distillation", "ensemble"}
    alpha : float
        Distillation weight on every sample (``"distillation"`` and ``"focal_distillation"``).
    beta : float
        Extra distillation weight on samples the old model classifies correctly (focal distillation only).
    temperature : float
        Softmax temperature of the KL term (the term is multiplied by ``T^2`` so gradients keep their scale).
    distance : {"kl", "l2"}
        KL divergence of tempered outputs, or logit matching.
    n_ensemble : int
        Members of the ``"ensemble"`` baseline.

    Examples
    --------
    >>> PCConfig(method="focal", beta=5)
    Traceback (most recent call last):
    ...
    workbench.validation.InvalidParameterError: The 'method' parameter of PCConfig must be one of ('none', 'distillation', 'focal_distillation', 'ensemble'). Got 'focal' instead.
    >>> PCConfig(method="distillation", alpha=1.0).effective_weights
    (1.0, 0.0)
    """

    method: str = "focal_distillation"
    alpha: float = 1.0
    beta: float = 5.0
    temperature: float = 1.0
    distance: str = "kl"
    n_ensemble: int = 3

    def __post_init__(self):
        check_fields(self, method=Options(PC_METHODS), distance=Options(DISTANCES), alpha=Interval(float, 0, None),
                     beta=Interval(float, 0, None), temperature=Interval(float, 0, None, closed="neither"),
                     n_ensemble=Interval(int, 1, None))

    @property
    def effective_weights(self) -> tuple[float, float]:
        """``(alpha, beta)`` actually used by the loss for this method (0 for the unconstrained ones)."""
        if self.method in ("none", "ensemble"):
            return 0.0, 0.0
        if self.method == "distillation":
            return float(self.alpha), 0.0
        return float(self.alpha), float(self.beta)


@dataclass(frozen=True)
class UpdateScenario:
    """An old/new model pair: how much data, how many epochs and how wide an MLP each one gets.

    ``old_fraction`` / ``new_fraction`` are the fractions of the training set each model sees (the old
    model sees the first rows; the new one a superset). Both models share ``lr`` and ``batch_size``.
    """

    name: str = "custom"
    old_hidden: tuple[int, ...] = (64,)
    new_hidden: tuple[int, ...] = (256,)
    old_fraction: float = 0.3
    new_fraction: float = 1.0
    old_epochs: int = 3
    new_epochs: int = 6
    lr: float = 1e-3
    batch_size: int = 64

    def __post_init__(self):
        width = Seq(Interval(int, 1, None))
        check_fields(self, name=InstanceOf(str), old_hidden=width, new_hidden=width, old_fraction=Interval(float, 0, 1, closed="right"),
                     new_fraction=Interval(float, 0, 1, closed="right"), old_epochs=Interval(int, 1, None),
                     new_epochs=Interval(int, 1, None), lr=Interval(float, 0, None, closed="neither"), batch_size=Interval(int, 1, None))
        if self.old_fraction > self.new_fraction:
            raise InvalidParameterError(f"The 'old_fraction' parameter of UpdateScenario must be <= new_fraction ({self.new_fraction}). "
                                        f"Got {self.old_fraction} instead.")

    def train_config(self, which: str, *, seed: int, epoch_scale: float = 1.0) -> TrainConfig:
        epochs = self.old_epochs if which == "old" else self.new_epochs
        return TrainConfig(epochs=max(1, int(round(epochs * epoch_scale))), batch_size=self.batch_size, lr=self.lr, seed=seed)


#: Registered old/new pairs, each mimicking one kind of real model update.
UPDATE_SCENARIOS: dict[str, UpdateScenario] = {
    "more_data": UpdateScenario(name="more_data", old_hidden=(128,), new_hidden=(128,), old_fraction=0.3, new_fraction=1.0, old_epochs=5, new_epochs=5),
    "more_epochs": UpdateScenario(name="more_epochs", old_hidden=(128,), new_hidden=(128,), old_fraction=1.0, new_fraction=1.0, old_epochs=1, new_epochs=6),
    "bigger_model": UpdateScenario(name="bigger_model", old_hidden=(32,), new_hidden=(256, 128), old_fraction=1.0, new_fraction=1.0, old_epochs=5, new_epochs=5),
    "all": UpdateScenario(name="all", old_hidden=(64,), new_hidden=(256, 128), old_fraction=0.3, new_fraction=1.0, old_epochs=3, new_epochs=6),
}


def update_scenario(name: str, **overrides) -> UpdateScenario:
    """A registered :class:`UpdateScenario`, optionally with some fields replaced.

    Examples
    --------
    >>> update_scenario("more_data", new_epochs=2).new_epochs
    2
    >>> update_scenario("newer")
    Traceback (most recent call last):
    ...
    workbench.validation.InvalidParameterError: The 'name' parameter of update_scenario must be one of ('all', 'bigger_model', 'more_data', 'more_epochs'). Got 'newer' instead.
    """
    check(name, Options(tuple(sorted(UPDATE_SCENARIOS))), name="name", owner="update_scenario")
    return dataclasses.replace(UPDATE_SCENARIOS[name], **overrides)


def focal_weights(old_logits: torch.Tensor, targets: torch.Tensor, *, alpha: float, beta: float) -> torch.Tensor:
    """Per-sample distillation weights ``alpha + beta * [old prediction == target]``.

    Examples
    --------
    >>> focal_weights(torch.tensor([[1.0, 0.0], [1.0, 0.0]]), torch.tensor([0, 1]), alpha=1.0, beta=5.0).tolist()
    [6.0, 1.0]
    """
    return alpha + beta * (old_logits.argmax(1) == targets).to(old_logits.dtype)


def focal_distillation_loss(
    new_logits: torch.Tensor,
    old_logits: torch.Tensor,
    targets: torch.Tensor,
    *,
    alpha: float = 1.0,
    beta: float = 5.0,
    temperature: float = 1.0,
    distance: str = "kl",
) -> torch.Tensor:
    """Mean over the batch of cross-entropy + focal-weighted distillation towards the old logits.

    Parameters
    ----------
    new_logits : Tensor (N, C)
        Outputs of the model being trained.
    old_logits : Tensor (N, C)
        Outputs of the old model on the same samples (treated as constants).
    targets : Tensor (N,)
    alpha, beta : float
        Weight ``alpha + beta * [old correct]`` of each sample's distillation term.
    temperature : float
        KL between ``softmax(old / T)`` and ``softmax(new / T)``, times ``T^2``.
    distance : {"kl", "l2"}

    Examples
    --------
    A sample the old model gets right pulls ``1 + beta`` times harder than one it gets wrong:

    >>> new = torch.zeros(2, 3); old = torch.tensor([[3.0, 0, 0], [3.0, 0, 0]]); y = torch.tensor([0, 1])
    >>> ce = torch.nn.functional.cross_entropy(new, y)
    >>> kd = torch.nn.functional.kl_div(torch.log_softmax(new, 1), torch.log_softmax(old, 1), log_target=True, reduction="none").sum(1)
    >>> expected = ce + ((1 + 5) * kd[0] + 1 * kd[1]) / 2
    >>> torch.allclose(focal_distillation_loss(new, old, y, alpha=1, beta=5), expected)
    True
    """
    if distance not in DISTANCES:
        raise ValueError(f"The 'distance' parameter of focal_distillation_loss must be one of {DISTANCES}. Got {distance!r} instead.")
    ce = F.cross_entropy(new_logits, targets)
    if alpha == 0 and beta == 0:
        return ce
    old_logits = old_logits.detach().to(new_logits.dtype)
    weights = focal_weights(old_logits, targets, alpha=alpha, beta=beta)
    if distance == "kl":
        t = float(temperature)
        per_sample = F.kl_div(
            F.log_softmax(new_logits / t, dim=1), F.log_softmax(old_logits / t, dim=1), log_target=True, reduction="none"
        ).sum(1) * t * t
    else:
        per_sample = 0.5 * (new_logits - old_logits).pow(2).mean(1)
    return ce + (weights * per_sample).mean()


def make_pc_loss(old_logits_train: torch.Tensor, *, config: PCConfig):
    """A ``loss_fn(logits, y, idx)`` for :func:`workbench.training.fit` that looks up the old model's
    logits of the batch rows ``idx`` (precomputed on the whole training set) and applies
    :func:`focal_distillation_loss` with ``config``'s weights."""
    alpha, beta = config.effective_weights
    old_logits_train = torch.as_tensor(old_logits_train).float()

    def loss_fn(logits, y, idx):
        return focal_distillation_loss(
            logits, old_logits_train[idx], y, alpha=alpha, beta=beta, temperature=config.temperature, distance=config.distance
        )

    return loss_fn


class EnsembleClassifier(nn.Module):
    """Averages the softmax outputs of its members; ``forward`` returns log mean probabilities (usable as logits)."""

    def __init__(self, members: Sequence[nn.Module]):
        super().__init__()
        self.members = nn.ModuleList(members)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        probs = torch.stack([F.softmax(m(x), dim=1) for m in self.members]).mean(0)
        return torch.log(probs.clamp_min(1e-12))


def _subset(n: int, fraction: float) -> slice:
    return slice(0, max(1, int(round(n * fraction))))


def _inputs(X) -> torch.Tensor:
    """Float features flattened to rows (images); integer token ids kept as they are (text models)."""
    X, _ = as_tensors(X)
    if X.is_floating_point():
        return X.reshape(len(X), -1).float()
    return X.long()


def _fit(model: nn.Module, data: tuple, *, config: TrainConfig, loss_fn=None, dp=None, progress: bool = False) -> None:
    if dp is None:
        fit(model, data, config=config, loss_fn=loss_fn, progress=progress)
        return
    from ..privacy.dp import DPConfig, train

    if not isinstance(dp, DPConfig):
        raise ValueError(f"The 'dp' parameter must be a DPConfig or None. Got {type(dp).__name__} instead.")
    train(model, data, config=config, dp=dp, loss_fn=loss_fn, progress=progress)


def train_old_model(train: tuple, *, scenario: UpdateScenario, n_classes: int | None = None, seed: int = 0, progress: bool = False,
                    model_fn=None, dp=None) -> nn.Module:
    """Train the old model of ``scenario`` on the first ``old_fraction`` of ``train = (X, y)``.

    ``model_fn(seed) -> nn.Module`` replaces the scenario's MLP (``old_hidden`` is then unused), e.g. for a
    token model on integer ids; ``dp`` (a :class:`~workbench.privacy.dp.DPConfig`) trains it with DP-SGD.
    """
    X, y = as_tensors(*train)
    X = _inputs(X)
    n_classes = int(n_classes or int(y.max()) + 1)
    rows = _subset(len(X), scenario.old_fraction)
    torch.manual_seed(seed)
    model = model_fn(seed) if model_fn is not None else MLP(in_features=X.shape[1], out_features=n_classes, hidden=scenario.old_hidden)
    _fit(model, (X[rows], y[rows]), config=scenario.train_config("old", seed=seed), dp=dp, progress=progress)
    return model.eval()


def train_new_model(
    train: tuple,
    *,
    scenario: UpdateScenario,
    pc: PCConfig = PCConfig(),
    old_model: nn.Module | None = None,
    old_logits: torch.Tensor | None = None,
    n_classes: int | None = None,
    seed: int = 1,
    progress: bool = False,
    model_fn=None,
    dp=None,
) -> nn.Module:
    """Train the new model of ``scenario`` on the first ``new_fraction`` of ``train`` with ``pc``'s method.

    ``model_fn(seed) -> nn.Module`` replaces the scenario's MLP (``new_hidden`` is then unused): any classifier
    of ``X``, e.g. a token model of :mod:`workbench.textmodels` on integer ids. ``dp`` (a
    :class:`~workbench.privacy.dp.DPConfig`) trains with DP-SGD, the focal distillation loss included.

    Distillation methods need the old model's logits on the training rows: pass ``old_logits`` (rows of
    ``train``) or ``old_model`` (they are then computed once). ``"ensemble"`` trains ``pc.n_ensemble``
    members with seeds ``seed, seed + 1, ...`` and returns an :class:`EnsembleClassifier`.
    The unconstrained model with the same ``seed`` starts from the same initial weights and sees the same
    batches, so differences between methods come from the loss alone.
    """
    X, y = as_tensors(*train)
    X = _inputs(X)
    n_classes = int(n_classes or int(y.max()) + 1)
    rows = _subset(len(X), scenario.new_fraction)
    X, y = X[rows], y[rows]
    alpha, beta = pc.effective_weights
    loss_fn = None
    if alpha or beta:
        if old_logits is None:
            if old_model is None:
                raise ValueError(f"The 'old_model' or 'old_logits' parameter of train_new_model is needed for method {pc.method!r}.")
            old_logits = predict(old_model, X)
        old_logits = torch.as_tensor(old_logits)[: len(X)]
        loss_fn = make_pc_loss(old_logits, config=pc)

    def one(member_seed: int) -> nn.Module:
        torch.manual_seed(member_seed)
        if model_fn is not None:
            model = model_fn(member_seed)
        else:
            model = MLP(in_features=X.shape[1], out_features=n_classes, hidden=scenario.new_hidden)
        _fit(model, (X, y), config=scenario.train_config("new", seed=member_seed), loss_fn=loss_fn, dp=dp, progress=progress)
        return model.eval()

    if pc.method == "ensemble":
        return EnsembleClassifier([one(seed + k) for k in range(pc.n_ensemble)]).eval()
    return one(seed)


@dataclass
class UpdateResult:
    """Old model, new models (by method name), their test predictions and the flip summary table."""

    old_model: nn.Module
    new_models: dict[str, nn.Module]
    old_pred: np.ndarray
    new_preds: dict[str, np.ndarray]
    labels: np.ndarray
    summary: pd.DataFrame = field(default_factory=pd.DataFrame)


def run_update(
    train: tuple,
    test: tuple,
    *,
    scenario: UpdateScenario,
    methods: Mapping[str, PCConfig],
    n_classes: int | None = None,
    seed: int = 0,
    old_model: nn.Module | None = None,
    progress: bool = False,
) -> UpdateResult:
    """Train (or reuse) the old model, train one new model per entry of ``methods`` and compare them.

    Returns
    -------
    UpdateResult
        ``summary`` has one row per method (index ``method``) with the columns of
        :func:`~workbench.compatibility.flips.flip_summary` plus ``alpha``, ``beta``, ``temperature``.
    """
    X, y = as_tensors(*train)
    X = _inputs(X)
    Xt, yt = as_tensors(*test)
    Xt = _inputs(Xt)
    n_classes = int(n_classes or int(max(y.max(), yt.max())) + 1)
    if old_model is None:
        old_model = train_old_model((X, y), scenario=scenario, n_classes=n_classes, seed=seed, progress=progress)
    old_logits = predict(old_model, X)
    old_pred = predict(old_model, Xt).argmax(1).numpy()
    labels = yt.numpy()
    new_models, new_preds, rows = {}, {}, []
    for name, pc in methods.items():
        model = train_new_model((X, y), scenario=scenario, pc=pc, old_logits=old_logits, n_classes=n_classes, seed=seed + 1, progress=progress)
        pred = predict(model, Xt).argmax(1).numpy()
        new_models[name], new_preds[name] = model, pred
        alpha, beta = pc.effective_weights
        rows.append({"method": name, "kind": pc.method, "alpha": alpha, "beta": beta, "temperature": pc.temperature,
                     **flip_summary(labels, old_pred, pred)})
    summary = pd.DataFrame(rows).set_index("method") if rows else pd.DataFrame()
    return UpdateResult(old_model, new_models, old_pred, new_preds, labels, summary)


def pc_tradeoff(
    train: tuple,
    test: tuple,
    *,
    scenario: UpdateScenario,
    old_model: nn.Module,
    betas: Sequence[float] = (0.0, 1.0, 5.0, 20.0),
    temperatures: Sequence[float] = (1.0,),
    alpha: float = 1.0,
    distance: str = "kl",
    n_classes: int | None = None,
    seed: int = 0,
    progress: bool = False,
) -> pd.DataFrame:
    """NFR and error of focal-distilled new models over a grid of ``beta`` x ``temperature``.

    Returns
    -------
    pandas.DataFrame
        One row per grid point: ``alpha``, ``beta``, ``temperature`` and the
        :func:`~workbench.compatibility.flips.flip_summary` columns.
    """
    methods = {
        f"beta={float(b):g}, T={float(t):g}": PCConfig(method="focal_distillation", alpha=alpha, beta=float(b), temperature=float(t), distance=distance)
        for t in temperatures for b in betas
    }
    result = run_update(train, test, scenario=scenario, methods=methods, n_classes=n_classes, seed=seed, old_model=old_model, progress=progress)
    return result.summary.reset_index()
