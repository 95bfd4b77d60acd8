"""Notebook 02's shadow-budget study: how LiRA and RMIA, online and offline, improve with the number of shadow
models (:func:`shadow_count_study`), one training of the largest budget read at every smaller one."""
from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import torch

from workbench.results import metric_key
from workbench.validation import Boolean, InstanceOf, Interval, Seq, check, check_fields

from .. import attacks as A
from ._labels import metric_label
from .membership import TPR_COLUMNS, _mlp_train_fn

_POSITIVE = Interval(float, 0, None, closed="neither")
#: The attacks compared at each shadow budget.
SHADOW_ATTACKS = ("lira-offline", "lira-online", "rmia-offline", "rmia-online")


@dataclass(frozen=True)
class ShadowStudyConfig:
    """How :func:`shadow_count_study` trains its target and shadow models.

    ``max(shadow_counts)`` shadows are trained once, in complementary pairs
    (:func:`~workbench.privacy.attacks.paired_halves`), and the attacks read at each count in ``shadow_counts``
    (even numbers) from the first shadows. Every model is an MLP head (``hidden``; ``()`` is a linear head, the
    cheapest) trained with Adam for ``epochs`` of ``batch_size`` at ``lr``; with ``epsilon`` the target and its
    shadows train with DP-SGD (the fast engine, learning rate ``dp_lr``, noise spending ``epsilon`` at
    ``delta``). ``fix_variance``: LiRA's one global variance (Carlini et al.'s choice below 64 shadows) or
    per-example variances.

    Examples
    --------
    >>> ShadowStudyConfig(shadow_counts=[4, 16]).shadow_counts
    (4, 16)
    >>> ShadowStudyConfig(shadow_counts=[3])
    Traceback (most recent call last):
    ...
    ValueError: The 'shadow_counts' parameter of ShadowStudyConfig must hold even counts (complementary pairs). Got (3,) instead.
    """

    shadow_counts: tuple = (4, 8, 16, 32, 64)
    epsilon: float | None = None
    epochs: int = 30
    batch_size: int = 32
    lr: float = 1e-3
    dp_lr: float = 3e-3
    delta: float = 1e-5
    hidden: tuple = ()
    fix_variance: bool = True
    seed: int = 0

    def __post_init__(self):
        owner = "ShadowStudyConfig"
        if isinstance(self.hidden, (int, np.integer)):
            object.__setattr__(self, "hidden", (self.hidden,))
        check_fields(self, shadow_counts=Seq(Interval(int, 2, None), min_len=1), epsilon=(_POSITIVE, None),
                     epochs=Interval(int, 1, None), batch_size=Interval(int, 1, None), lr=_POSITIVE, dp_lr=_POSITIVE,
                     delta=Interval(float, 0, 1, closed="neither"), hidden=Seq(Interval(int, 1, None)), fix_variance=Boolean(),
                     seed=Interval(int, 0, None))
        if any(k % 2 for k in self.shadow_counts):
            raise ValueError(f"The 'shadow_counts' parameter of {owner} must hold even counts (complementary pairs). "
                             f"Got {self.shadow_counts!r} instead.")
        object.__setattr__(self, "shadow_counts", tuple(sorted(set(self.shadow_counts))))


@dataclass
class ShadowStudy:
    """What :func:`shadow_count_study` measured.

    Attributes
    ----------
    table : pandas.DataFrame
        One row per (shadow count, attack): ``shadows``, ``attack``, ``online`` (bool), ``auc``, ``tpr_at_fpr_0.001``,
        ``tpr_at_fpr_0.01``.
    shadows : ShadowModels
        All the shadows' outputs (the largest budget).
    is_member : bool array
        The target's membership.
    target_outputs : dict
        The target's ``loss`` and ``phi``.
    config : ShadowStudyConfig
    timings : dict
        ``target_seconds``, ``shadow_train_seconds``, ``shadow_score_seconds``, ``attack_seconds``.
    """

    table: pd.DataFrame
    shadows: A.ShadowModels
    is_member: np.ndarray
    target_outputs: dict
    config: ShadowStudyConfig
    timings: dict = field(default_factory=dict)


def _model_train_fn(model_fn, *, config, noise_multiplier: float | None, delta: float):
    """``train_fn(X, y, *, seed) -> (model, {"epsilon"})`` for any ``model_fn()``: the target's recipe, seeded."""
    import dataclasses

    from ..dp import DPConfig, train

    def train_fn(X, y, *, seed):
        torch.manual_seed(seed)
        dp = None if noise_multiplier is None else DPConfig(noise_multiplier=noise_multiplier, delta=delta)
        res = train(model_fn(), (X, y), config=dataclasses.replace(config, seed=seed), dp=dp, progress=False)
        return res.model, {"epsilon": res.epsilon}

    return train_fn


def shadow_count_study(data: tuple, *, config: ShadowStudyConfig = ShadowStudyConfig(), model_fn=None,
                       progress: bool = False) -> ShadowStudy:
    """LiRA and RMIA (offline and online) against one target, with 2 to ``max(shadow_counts)`` shadow models.

    Steps (seeded by ``config.seed``): the target trains on a random half of the pool (drawn as in
    :func:`~workbench.privacy.attacks.membership_inference`); ``max(shadow_counts)`` shadows train on complementary
    pairs of halves (:func:`~workbench.privacy.attacks.train_shadow_models`, seeds ``seed * 1000 + j + 1``); each
    attack is then read with the first ``k`` shadows for every ``k`` in ``shadow_counts``.

    Parameters
    ----------
    data : (X, y)
        The candidate pool: features (n, d) (float features, or token ids for a text model; any (n, ...) tensor that
        ``model_fn``'s model takes, e.g. MiniLM's cached hidden states) and integer labels (n,).
    config : ShadowStudyConfig
    model_fn : callable, optional
        ``model_fn() -> torch.nn.Module``, a fresh untrained model (called after the seed is set), e.g. the bag of
        embeddings on token ids: ``lambda: make_task_model("bag", task)``. Default: the MLP head of ``config.hidden``
        on float features.
    progress : bool
        A progress bar over the shadow models.

    Returns
    -------
    ShadowStudy

    Examples
    --------
    >>> g = torch.Generator().manual_seed(0)
    >>> X, y = torch.randn(40, 4, generator=g), torch.randint(0, 2, (40,), generator=g)
    >>> study = shadow_count_study((X, y), config=ShadowStudyConfig(shadow_counts=(2, 4), epochs=2))
    >>> study.table[["shadows", "attack"]].values.tolist()[:2], len(study.table)
    ([[2, 'lira-offline'], [2, 'lira-online']], 8)
    """
    owner = "shadow_count_study"
    check(config, InstanceOf(ShadowStudyConfig), name="config", owner=owner)
    X, y = (torch.as_tensor(v) for v in data)
    if model_fn is not None:
        from workbench.validation import Callable

        check(model_fn, Callable(), name="model_fn", owner=owner)
    if X.ndim < 2 or (model_fn is None and X.ndim != 2) or y.ndim != 1 or len(X) != len(y) or len(X) < 4:
        raise ValueError(f"The 'data' parameter of {owner} must be (X, y) with X of shape (n, d) (or (n, ...) for a model_fn "
                         f"that takes it), y of shape (n,) and n >= 4. "
                         f"Got shapes {tuple(X.shape)} and {tuple(y.shape)} instead.")
    from workbench.training import TrainConfig

    from ..accounting import noise_for_epsilon

    n, k_max = len(X), max(config.shadow_counts)
    dp = config.epsilon is not None
    train_config = TrainConfig(epochs=config.epochs, batch_size=config.batch_size, lr=config.dp_lr if dp else config.lr,
                               seed=config.seed)
    sigma = None
    if dp:
        steps_per_epoch = -(-(n // 2) // config.batch_size)
        sigma = noise_for_epsilon(target_epsilon=config.epsilon, sample_rate=1 / steps_per_epoch,
                                  steps=steps_per_epoch * config.epochs, delta=config.delta)
    if model_fn is None:
        train_fn = _mlp_train_fn(in_features=X.shape[1], n_classes=int(y.max()) + 1, config=train_config, hidden=config.hidden,
                                 noise_multiplier=sigma, delta=config.delta)
    else:
        train_fn = _model_train_fn(model_fn, config=train_config, noise_multiplier=sigma, delta=config.delta)
    is_member = np.random.default_rng([config.seed, 7]).permutation(n) < n // 2
    start = time.perf_counter()
    target, _ = train_fn(X[is_member], y[is_member], seed=config.seed * 1000)
    target_out = A.model_outputs(target, X=X, y=y)
    target_seconds = time.perf_counter() - start
    shadows = A.train_shadow_models(train_fn, X=X, y=y, k=k_max, seed=config.seed,
                                    keep=A.paired_halves(n, k=k_max, seed=config.seed), progress=progress)
    start = time.perf_counter()
    rows = []
    for k in config.shadow_counts:
        s = shadows.first(k)
        for name in SHADOW_ATTACKS:
            online = name.endswith("online")
            if name.startswith("lira"):
                r = A.lira_attack(target_out["phi"], shadow_phi=s.phi, shadow_in=s.keep, is_member=is_member, online=online,
                                  fix_variance=config.fix_variance)
            else:
                r = A.rmia_attack(target_out["phi"], shadow_phi=s.phi, shadow_in=s.keep, is_member=is_member, online=online)
            rows.append({"shadows": k, "attack": name, "online": online, "auc": r.auc,
                         **{A.tpr_key(f): v for f, v in r.tpr_at.items()}})
    table = pd.DataFrame(rows, columns=["shadows", "attack", "online", "auc", *TPR_COLUMNS])
    timings = {"target_seconds": target_seconds, "shadow_train_seconds": shadows.timings["train_seconds"],
               "shadow_score_seconds": shadows.timings["score_seconds"], "attack_seconds": time.perf_counter() - start}
    return ShadowStudy(table=table, shadows=shadows, is_member=is_member, target_outputs=target_out, config=config,
                       timings=timings)


def shadow_metrics(table: pd.DataFrame, *, prefix: str = "shadows", without_count=()) -> dict:
    """Flat metrics of a shadow-budget table (:attr:`ShadowStudy.table`) for a run record:
    ``<prefix>/<attack>/k_<count>/auc``, ``.../tpr_at_fpr_0.001`` and ``.../tpr_at_fpr_0.01`` (attacks in
    ``without_count``, which use no shadow model, without the ``k_<count>`` part).

    Examples
    --------
    >>> t = pd.DataFrame({"shadows": [4], "attack": ["lira-online"], "auc": [0.7], "tpr_at_fpr_0.001": [0.01],
    ...                   "tpr_at_fpr_0.01": [0.05]})
    >>> shadow_metrics(t)
    {'shadows/lira_online/k_4/auc': 0.7, 'shadows/lira_online/k_4/tpr_at_fpr_0.001': 0.01, 'shadows/lira_online/k_4/tpr_at_fpr_0.01': 0.05}
    """
    metrics = {}
    for r in table.to_dict("records"):
        count = () if r["attack"] in without_count else (f"k_{r['shadows']}",)
        key = metric_key(prefix, metric_label(r["attack"]), *count)
        for name in ("auc", *TPR_COLUMNS):
            metrics[f"{key}/{name}"] = r[name]
    return metrics
