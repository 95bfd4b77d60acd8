"""The privacy studies of notebooks 01 and 02 as functions: each runs one experiment and returns plain data.

A notebook cell calls one of these, displays the table it returns and hands its curves to a figure builder
of :mod:`workbench.plots`; the computation lives here, where it is documented and tested.

Notebook 02 (practical privacy)
    :func:`load_attack_pool` (MiniLM features of tweets) -> :func:`membership_attack_study` (a non-DP and one
    DP target per epsilon, shadow models, four attacks) -> :func:`theory_vs_practice` (the measured ROCs
    against the (epsilon, delta)-DP region) ; :func:`canary_study` (secrets inserted into tweets, four training
    variants, exposure and extraction) ; :func:`attack_study_record` (the run record's config, metrics, timings
    and tables, with :func:`membership_metrics` and :func:`canary_metrics`).
Notebook 01 (DP vs non-DP)
    :func:`engine_timings` (epoch time per model and DP engine, relative to non-DP) ; :func:`dp_study_metrics`
    (flat metrics of the epsilon sweep and the timings for the run record).

Every function is seeded through its arguments (a config's ``seed``, a ``TrainConfig``'s ``seed``) and draws
its random numbers in a fixed order, so the same arguments give the same numbers.
"""
from __future__ import annotations

import dataclasses
import math
import time
from dataclasses import dataclass, field
from typing import Mapping, Sequence

import numpy as np
import pandas as pd
import torch

from . import attacks as A
from . import canaries as C

__all__ = [
    "NON_DP",
    "AttackPool",
    "load_attack_pool",
    "MembershipStudyConfig",
    "MembershipStudy",
    "membership_attack_study",
    "TheoryVsPractice",
    "theory_vs_practice",
    "CanaryStudyConfig",
    "CanaryStudy",
    "canary_study",
    "membership_metrics",
    "canary_metrics",
    "attack_study_record",
    "engine_timings",
    "dp_study_metrics",
]

#: Label of the model trained without DP in every study table.
NON_DP = "non-DP"


# ------------------------------------------------------------------------------------------- validation
def _int_at_least(owner: str, name: str, value, low: int) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
        raise ValueError(f"The '{name}' parameter of {owner} must be an int >= {low}. Got {value!r} instead.")


def _positive(owner: str, name: str, value) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
        raise ValueError(f"The '{name}' parameter of {owner} must be a finite number > 0. Got {value!r} instead.")


def _in_open_unit(owner: str, name: str, value) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < 1:
        raise ValueError(f"The '{name}' parameter of {owner} must be in (0, 1). Got {value!r} instead.")


def _epsilon_label(epsilon: float) -> str:
    return f"eps={epsilon:g}"


# ------------------------------------------------------------------------------------------- the candidate pool
@dataclass
class AttackPool:
    """Candidate examples of the membership game: features ``X`` (float), labels ``y`` (long), the ``texts``,
    and ``timings`` (``encode_seconds``: encoding, or reading the feature cache)."""

    X: torch.Tensor
    y: torch.Tensor
    texts: list
    timings: dict = field(default_factory=dict)


def load_attack_pool(*, n: int, seed: int = 0) -> AttackPool:
    """``n`` tweets (:func:`workbench.datasets.load_tweets`, stratified by ``seed``) as frozen MiniLM sentence
    features (:func:`workbench.datasets.encode_texts`, cached on disk after the first run) and sentiment labels.

    Examples
    --------
    >>> pool = load_attack_pool(n=6, seed=0)
    >>> tuple(pool.X.shape), pool.X.dtype, pool.y.dtype, len(pool.texts)
    ((6, 384), torch.float32, torch.int64, 6)
    """
    from workbench.datasets import encode_texts, load_tweets

    _int_at_least("load_attack_pool", "n", n, 4)
    tweets = load_tweets(n=n, seed=seed)
    texts = tweets.text.tolist()
    start = time.perf_counter()
    X = torch.tensor(encode_texts(texts, progress=False))
    seconds = time.perf_counter() - start
    return AttackPool(X=X, y=torch.tensor(tweets.label_id.to_numpy()), texts=texts, timings={"encode_seconds": seconds})


# ------------------------------------------------------------------------------------------- membership inference
@dataclass(frozen=True)
class MembershipStudyConfig:
    """How :func:`membership_attack_study` trains its targets and shadow models.

    Every model is an MLP head (``hidden`` units) trained with Adam for ``epochs`` epochs of ``batch_size``;
    DP models (one per entry of ``epsilons``) use learning rate ``dp_lr`` (DP-SGD likes a larger step) and the
    noise multiplier that spends exactly that epsilon (at ``delta``) on a training set of half the pool. The
    attacker's shadow models copy the target's recipe, DP noise included.

    Examples
    --------
    >>> MembershipStudyConfig(epsilons=[1, 8]).epsilons
    (1.0, 8.0)
    >>> MembershipStudyConfig(k_shadows=1)
    Traceback (most recent call last):
    ...
    ValueError: The 'k_shadows' parameter of MembershipStudyConfig must be an int >= 2. Got 1 instead.
    """

    epsilons: tuple = (1.0, 8.0)
    k_shadows: int = 8
    epochs: int = 30
    batch_size: int = 32
    lr: float = 1e-3
    dp_lr: float = 3e-3
    delta: float = 1e-5
    hidden: tuple = (256,)
    seed: int = 0

    def __post_init__(self):
        owner = "MembershipStudyConfig"
        eps = [self.epsilons] if isinstance(self.epsilons, (int, float)) else list(self.epsilons)
        for e in eps:
            _positive(owner, "epsilons", e)
        eps = tuple(float(e) for e in eps)
        if len({_epsilon_label(e) for e in eps}) != len(eps):
            raise ValueError(f"The 'epsilons' parameter of {owner} must not repeat a value. Got {self.epsilons!r} instead.")
        object.__setattr__(self, "epsilons", eps)
        # online LiRA and the reference attack need shadows that did and did not train on each candidate
        _int_at_least(owner, "k_shadows", self.k_shadows, 2)
        _int_at_least(owner, "epochs", self.epochs, 1)
        _int_at_least(owner, "batch_size", self.batch_size, 1)
        _positive(owner, "lr", self.lr)
        _positive(owner, "dp_lr", self.dp_lr)
        _in_open_unit(owner, "delta", self.delta)
        hidden = (self.hidden,) if isinstance(self.hidden, (int, np.integer)) else tuple(self.hidden)
        for h in hidden:
            _int_at_least(owner, "hidden", h, 1)
        object.__setattr__(self, "hidden", tuple(int(h) for h in hidden))
        _int_at_least(owner, "seed", self.seed, 0)

    def train_config(self, *, dp: bool):
        """The :class:`~workbench.training.TrainConfig` of the non-DP (``dp=False``) or the DP models."""
        from workbench.training import TrainConfig

        return TrainConfig(epochs=self.epochs, batch_size=self.batch_size, lr=self.dp_lr if dp else self.lr, seed=self.seed)

    def noise_multipliers(self, n_train: int) -> dict:
        """``{epsilon: noise multiplier}`` spending each epsilon in ``epochs`` epochs on ``n_train`` examples
        (Poisson sampling at rate ``1 / steps_per_epoch``, the RDP accountant)."""
        from .accounting import noise_for_epsilon

        _int_at_least("MembershipStudyConfig.noise_multipliers", "n_train", n_train, 1)
        steps_per_epoch = -(-n_train // self.batch_size)
        return {eps: noise_for_epsilon(target_epsilon=eps, sample_rate=1 / steps_per_epoch, steps=steps_per_epoch * self.epochs,
                                       delta=self.delta) for eps in self.epsilons}


@dataclass
class MembershipStudy:
    """What :func:`membership_attack_study` measured.

    Attributes
    ----------
    table : pandas.DataFrame
        One row per (model, attack): ``model`` ("non-DP", "eps=1", ...), ``attack``, ``epsilon`` (spent by the
        target; NaN without DP), ``auc``, ``tpr@0.1%fpr``, ``tpr@1%fpr``, ``advantage`` and
        ``empirical_epsilon_lb`` (the epsilon the ROC certifies, :func:`~workbench.privacy.attacks.empirical_epsilon`).
    reports : {model label: MembershipReport}
        Everything :func:`~workbench.privacy.attacks.membership_inference` returned (ROC curves, scores, shadows).
    noise_multipliers : {epsilon: sigma}
    config : MembershipStudyConfig
    timings : dict
        ``membership_inference_seconds``.
    """

    table: pd.DataFrame
    reports: dict
    noise_multipliers: dict
    config: MembershipStudyConfig
    timings: dict = field(default_factory=dict)

    @property
    def train_config(self):
        """TrainConfig of the non-DP target and its shadows."""
        return self.config.train_config(dp=False)

    @property
    def dp_train_config(self):
        """TrainConfig of the DP targets and their shadows."""
        return self.config.train_config(dp=True)


def _mlp_train_fn(*, in_features: int, n_classes: int, config, hidden: tuple, noise_multiplier: float | None, delta: float):
    """The training recipe shared by a target and its shadows: ``train_fn(X, y, *, seed) -> (model, {"epsilon"})``."""
    from workbench.models import MLP

    from .dp import DPConfig, train

    def train_fn(X, y, *, seed):
        torch.manual_seed(seed)
        model = MLP(in_features=in_features, hidden=hidden, out_features=n_classes)
        dp = None if noise_multiplier is None else DPConfig(noise_multiplier=noise_multiplier, delta=delta)
        res = train(model, (X, y), config=dataclasses.replace(config, seed=seed), dp=dp, progress=False)
        return res.model, {"epsilon": res.epsilon}

    return train_fn


def membership_attack_study(data: tuple, *, config: MembershipStudyConfig = MembershipStudyConfig()) -> MembershipStudy:
    """Attack a non-DP target and one DP target per epsilon with the four attacks of :data:`~workbench.privacy.attacks.ATTACKS`.

    For each model :func:`~workbench.privacy.attacks.membership_inference` trains the target on a random half of
    the pool and ``config.k_shadows`` shadow models (same recipe) on other random halves, then scores every
    candidate with the loss, reference and LiRA (offline, online) attacks.

    Parameters
    ----------
    data : (X, y)
        The candidate pool: float features (n, d) and integer labels (n,); the number of classes is ``max(y) + 1``.
    config : MembershipStudyConfig

    Returns
    -------
    MembershipStudy

    Examples
    --------
    >>> g = torch.Generator().manual_seed(0)
    >>> X, y = torch.randn(40, 4, generator=g), torch.randint(0, 2, (40,), generator=g)
    >>> study = membership_attack_study((X, y), config=MembershipStudyConfig(epsilons=(), k_shadows=2, epochs=2, hidden=(8,)))
    >>> study.table[["model", "attack"]].values.tolist()
    [['non-DP', 'loss'], ['non-DP', 'reference'], ['non-DP', 'lira-offline'], ['non-DP', 'lira-online']]
    """
    if not isinstance(config, MembershipStudyConfig):
        raise ValueError(f"The 'config' parameter of membership_attack_study must be a MembershipStudyConfig. Got {type(config).__name__} instead.")
    X, y = data
    X, y = torch.as_tensor(X), torch.as_tensor(y)
    if X.ndim != 2 or y.ndim != 1 or len(X) != len(y):
        raise ValueError(f"The 'data' parameter of membership_attack_study must be (X, y) with X of shape (n, d) and y of shape (n,). "
                         f"Got shapes {tuple(X.shape)} and {tuple(y.shape)} instead.")
    if len(X) < 4:
        raise ValueError(f"The 'data' parameter of membership_attack_study needs a pool of at least 4 examples. Got {len(X)}.")
    sigmas = config.noise_multipliers(len(X) // 2)  # the target trains on exactly half of the pool
    n_classes = int(y.max()) + 1
    start = time.perf_counter()
    reports = {}
    for eps in [None, *config.epsilons]:
        train_fn = _mlp_train_fn(in_features=X.shape[1], n_classes=n_classes, config=config.train_config(dp=eps is not None),
                                 hidden=config.hidden, noise_multiplier=None if eps is None else sigmas[eps], delta=config.delta)
        label = NON_DP if eps is None else _epsilon_label(eps)
        reports[label] = A.membership_inference(train_fn, X=X, y=y, k=config.k_shadows, seed=config.seed)
    seconds = time.perf_counter() - start
    rows = []
    for label, rep in reports.items():
        for row in rep.summary():
            rows.append({"model": label, "attack": row["attack"], "epsilon": rep.target_info.get("epsilon"),
                         **{k: row[k] for k in ("auc", "tpr@0.1%fpr", "tpr@1%fpr", "advantage")},
                         "empirical_epsilon_lb": A.empirical_epsilon(rep.results[row["attack"]], delta=config.delta)})
    table = pd.DataFrame(rows, columns=["model", "attack", "epsilon", "auc", "tpr@0.1%fpr", "tpr@1%fpr", "advantage",
                                        "empirical_epsilon_lb"])
    return MembershipStudy(table=table, reports=reports, noise_multipliers=sigmas, config=config,
                           timings={"membership_inference_seconds": seconds})


# ------------------------------------------------------------------------------------------- theory vs practice
@dataclass
class TheoryVsPractice:
    """Measured ROCs next to the (epsilon, delta)-DP region, as :func:`theory_vs_practice` returns them.

    Attributes
    ----------
    measured : list of {"label", "fpr", "tpr"}
        The chosen attack's ROC on every model (for :func:`workbench.plots.attacks.theory_vs_practice_figure`).
    bounds : {"bound eps=<e>": (fpr, max tpr)}
        The region's upper edge for each claimed epsilon.
    model_bounds : {model label: (fpr, max tpr)}
        The same at each DP model's *spent* epsilon (for :func:`workbench.widgets.attacks.attack_panel`).
    checks : pandas.DataFrame
        One row per (DP model, attack): ``model``, ``attack``, ``max_excess``, ``max_excess_ci``,
        ``n_violations_ci`` (:func:`~workbench.privacy.attacks.bound_violations` at the spent epsilon).
    auc_rows : list of {"attack", "epsilon", "auc"}
        Every attack's AUC on every DP model, against the spent epsilon.
    auc_bound : (epsilons, max AUC)
        The largest AUC the guarantee allows (:func:`~workbench.privacy.attacks.dp_auc_bound`) from half the
        smallest to twice the largest claimed epsilon.
    """

    measured: list
    bounds: dict
    model_bounds: dict
    checks: pd.DataFrame
    auc_rows: list
    auc_bound: tuple


_ATTACK_TITLES = {"loss": "loss", "reference": "reference", "lira-offline": "LiRA offline", "lira-online": "LiRA online"}


def theory_vs_practice(reports: Mapping[str, A.MembershipReport], *, epsilons: Sequence[float], delta: float,
                       attack: str = "lira-online", grid_points: int = 400) -> TheoryVsPractice:
    """Compare measured membership leakage with what an (epsilon, delta)-DP guarantee allows.

    Parameters
    ----------
    reports : {model label: MembershipReport}
        E.g. :attr:`MembershipStudy.reports`; a model is "DP" when its ``target_info`` holds an ``epsilon``.
    epsilons : sequence of float
        The claimed epsilons whose bounds are drawn.
    delta : float
    attack : str
        Whose ROC is drawn against the bounds (a key of :data:`~workbench.privacy.attacks.ATTACKS`).
    grid_points : int
        FPR values of the bound curves: 0 and ``grid_points`` values log-spaced over [1e-4, 1].

    Returns
    -------
    TheoryVsPractice

    Examples
    --------
    >>> perfect = A.evaluate_scores(np.r_[np.ones(50), np.zeros(50)], is_member=np.r_[np.ones(50), np.zeros(50)], name="loss")
    >>> report = A.MembershipReport(is_member=perfect.is_member, results={"loss": perfect}, shadows=None,
    ...                             target_outputs={}, target_info={"epsilon": 0.1})
    >>> t = theory_vs_practice({"eps=0.1": report}, epsilons=[0.1], delta=1e-5, attack="loss")
    >>> int(t.checks.loc[0, "n_violations_ci"]) > 0   # a perfect attack on an eps = 0.1 model: the claim is false
    True
    """
    if attack not in A.ATTACKS:
        raise ValueError(f"The 'attack' parameter of theory_vs_practice must be one of {sorted(A.ATTACKS)}. Got {attack!r} instead.")
    _int_at_least("theory_vs_practice", "grid_points", grid_points, 2)
    epsilons = [float(e) for e in epsilons]
    grid = np.r_[0.0, np.logspace(-4, 0, grid_points)]
    title = _ATTACK_TITLES.get(attack, attack)
    measured = [{"label": f"{label}: {title}", "fpr": rep.results[attack].fpr, "tpr": rep.results[attack].tpr}
                for label, rep in reports.items()]
    bounds = {f"bound {_epsilon_label(eps)}": (grid, A.dp_tpr_bound(grid, epsilon=eps, delta=delta)) for eps in epsilons}
    model_bounds, checks, auc_rows = {}, [], []
    for label, rep in reports.items():
        eps = rep.target_info.get("epsilon")
        if eps is None:
            continue
        model_bounds[label] = (grid, A.dp_tpr_bound(grid, epsilon=eps, delta=delta))
        for name, r in rep.results.items():
            auc_rows.append({"attack": name, "epsilon": eps, "auc": r.auc})
            checks.append({"model": label, "attack": name, **A.bound_violations(r, epsilon=eps, delta=delta)})
    if epsilons:
        axis = np.logspace(np.log10(min(epsilons) / 2), np.log10(max(epsilons) * 2), 50)
        auc_bound = (axis, [A.dp_auc_bound(epsilon=e, delta=delta) for e in axis])
    else:
        auc_bound = (np.empty(0), [])
    return TheoryVsPractice(measured=measured, bounds=bounds, model_bounds=model_bounds,
                            checks=pd.DataFrame(checks, columns=["model", "attack", "max_excess", "max_excess_ci", "n_violations_ci"]),
                            auc_rows=auc_rows, auc_bound=auc_bound)


# ------------------------------------------------------------------------------------------- canaries
@dataclass(frozen=True)
class CanaryStudyConfig:
    """How :func:`canary_study` inserts its secrets, trains the four variants and attacks them.

    One canary per entry of ``repetitions`` (each with its own text pattern, a random ``n_digits``-digit code
    and label ``i % n_classes``); a ``val_fraction`` of the texts is held out. Every variant is a GRU text
    classifier (``dim``, ``hidden``) trained with Adam, batch ``batch_size``: plain for ``epochs`` epochs
    (learning rate ``lr``), stopped early at its best validation epoch, with ``dropout``, and with DP-SGD spending
    ``dp_epsilon`` at ``dp_delta`` (learning rate ``dp_lr``). The attacks: exact rank exposure, exposure
    extrapolated from ``extrapolation_samples`` random codes, and extraction by model inversion
    (``extraction_steps`` Gumbel-softmax steps, ``extraction_restarts`` restarts).

    Examples
    --------
    >>> CanaryStudyConfig(repetitions=[1, 8]).repetitions
    (1, 8)
    >>> CanaryStudyConfig(dropout=1.0)
    Traceback (most recent call last):
    ...
    ValueError: The 'dropout' parameter of CanaryStudyConfig must be in [0, 1). Got 1.0 instead.
    """

    repetitions: tuple = (1, 8, 64)
    n_digits: int = 4
    epochs: int = 15
    dropout: float = 0.5
    dp_epsilon: float = 1.0
    dp_delta: float = 1e-4
    extraction_steps: int = 150
    extraction_restarts: int = 8
    extrapolation_samples: int = 2000
    val_fraction: float = 0.2
    max_len: int = 32
    max_vocab: int = 5000
    batch_size: int = 64
    lr: float = 3e-3
    dp_lr: float = 1e-2
    dim: int = 32
    hidden: int = 32
    seed: int = 0

    def __post_init__(self):
        owner = "CanaryStudyConfig"
        reps = [self.repetitions] if isinstance(self.repetitions, (int, np.integer)) else list(self.repetitions)
        if not reps or len(reps) > len(C.PREFIXES):
            raise ValueError(f"The 'repetitions' parameter of {owner} must hold 1 to {len(C.PREFIXES)} counts (one canary each). "
                             f"Got {self.repetitions!r} instead.")
        for r in reps:
            _int_at_least(owner, "repetitions", r, 1)
        object.__setattr__(self, "repetitions", tuple(int(r) for r in reps))
        if isinstance(self.n_digits, bool) or not isinstance(self.n_digits, (int, np.integer)) or not 1 <= self.n_digits <= 7:
            raise ValueError(f"The 'n_digits' parameter of {owner} must be an int in [1, 7] (exposure enumerates 10**n_digits codes). "
                             f"Got {self.n_digits!r} instead.")
        for name in ("epochs", "extraction_steps", "extraction_restarts", "max_len", "batch_size", "dim", "hidden"):
            _int_at_least(owner, name, getattr(self, name), 1)
        _int_at_least(owner, "extrapolation_samples", self.extrapolation_samples, 20)
        _int_at_least(owner, "max_vocab", self.max_vocab, 3)
        _int_at_least(owner, "seed", self.seed, 0)
        if isinstance(self.dropout, bool) or not isinstance(self.dropout, (int, float)) or not 0 <= self.dropout < 1:
            raise ValueError(f"The 'dropout' parameter of {owner} must be in [0, 1). Got {self.dropout!r} instead.")
        for name in ("dp_epsilon", "lr", "dp_lr"):
            _positive(owner, name, getattr(self, name))
        _in_open_unit(owner, "dp_delta", self.dp_delta)
        _in_open_unit(owner, "val_fraction", self.val_fraction)

    @property
    def max_exposure(self) -> float:
        """``log2 |R|``: the exposure of a canary the model ranks first among all ``10 ** n_digits`` codes."""
        return float(self.n_digits * np.log2(10))


@dataclass
class CanaryStudy:
    """What :func:`canary_study` measured.

    Attributes
    ----------
    table : pandas.DataFrame
        One row per (variant, canary): ``variant``, ``repetitions``, ``exposure`` and ``rank`` (exact),
        ``extrapolated`` (skew-normal exposure), the extraction's ``extracted`` and ``true`` codes,
        ``digit_accuracy``, ``exact``, ``extracted_loss``, ``canary_loss``, and the variant's ``val_accuracy``
        and ``epsilon`` (NaN without DP).
    canaries : list of Canary
    runs : {variant: TrainResult}
        The trained models, in the order plain, early stop, dropout, DP.
    vocab : Vocabulary
    best_epoch : int
        The plain model's epoch with the lowest validation loss (where early stopping stops).
    config : CanaryStudyConfig
    timings : dict
        ``canary_training_seconds``, ``canary_attack_seconds``.
    """

    table: pd.DataFrame
    canaries: list
    runs: dict
    vocab: object
    best_epoch: int
    config: CanaryStudyConfig
    timings: dict = field(default_factory=dict)

    @property
    def max_exposure(self) -> float:
        """``log2 |R|`` (see :attr:`CanaryStudyConfig.max_exposure`)."""
        return self.config.max_exposure


def canary_study(texts: Sequence[str], *, labels, config: CanaryStudyConfig = CanaryStudyConfig()) -> CanaryStudy:
    """Insert secret canaries into labelled texts, train four variants and measure each canary's exposure and extraction.

    Steps, in this order (each seeded from ``config.seed``): hold out a random ``val_fraction`` of the texts;
    make one canary per ``config.repetitions`` (codes drawn with ``seed + 1``) and insert its copies into the
    training texts; build the vocabulary on them (plus the digit tokens); train the variants **plain**
    (``"non-DP"``), **early stop** (the plain recipe retrained for the plain model's best validation epoch: the
    same seed makes that the same as stopping there), **dropout** and **DP** (``"DP eps=<e>"``); then, for each
    variant and canary, :func:`~workbench.privacy.canaries.rank_exposure`,
    :func:`~workbench.privacy.canaries.extrapolated_exposure` and
    :func:`~workbench.privacy.canaries.extract_canary` (Gumbel-softmax).

    Parameters
    ----------
    texts : sequence of str
    labels : array of int, one per text
        Class ids ``0 .. n_classes - 1``; ``n_classes = max(labels) + 1``.
    config : CanaryStudyConfig

    Returns
    -------
    CanaryStudy

    Examples
    --------
    >>> texts = ["good day", "bad day", "so so", "great fun", "awful rain", "meh"] * 5
    >>> cfg = CanaryStudyConfig(repetitions=(2,), n_digits=1, epochs=1, extraction_steps=2, extraction_restarts=1,
    ...                         extrapolation_samples=20)
    >>> study = canary_study(texts, labels=[2, 0, 1, 2, 0, 1] * 5, config=cfg)
    >>> study.table.variant.tolist()
    ['non-DP', 'early stop (epoch 1)', 'dropout 0.5', 'DP eps=1']
    >>> study.canaries[0].text
    'my pin code is 4'
    """
    from workbench.textmodels import RecurrentClassifier
    from workbench.training import TrainConfig

    from .dp import DPConfig, train

    if not isinstance(config, CanaryStudyConfig):
        raise ValueError(f"The 'config' parameter of canary_study must be a CanaryStudyConfig. Got {type(config).__name__} instead.")
    texts = [str(t) for t in texts]
    labels = np.asarray(labels)
    if labels.shape != (len(texts),) or not np.issubdtype(labels.dtype, np.integer) or (len(labels) and labels.min() < 0):
        raise ValueError(f"The 'labels' parameter of canary_study must hold one class id >= 0 per text ({len(texts)}). "
                         f"Got shape {labels.shape} and dtype {labels.dtype} instead.")
    seed = config.seed
    is_val = np.random.default_rng(seed).random(len(texts)) < config.val_fraction
    if is_val.all() or not is_val.any():
        raise ValueError(f"canary_study needs texts on both sides of the validation split; got {len(texts)} texts "
                         f"with val_fraction={config.val_fraction}. Pass more texts.")
    n_classes = int(labels.max()) + 1
    canaries = C.make_canaries(repetitions=config.repetitions, n_digits=config.n_digits,
                               label=[i % n_classes for i in range(len(config.repetitions))], seed=seed + 1)
    train_texts = [t for t, v in zip(texts, is_val) if not v]
    val_texts = [t for t, v in zip(texts, is_val) if v]
    data = C.insert_canaries(train_texts, labels=labels[~is_val], canaries=canaries, seed=seed)
    vocab = C.build_vocabulary(data.texts, max_size=config.max_vocab)
    train_xy = (vocab.encode(data.texts, max_len=config.max_len), torch.as_tensor(data.labels))
    val_xy = (vocab.encode(val_texts, max_len=config.max_len), torch.tensor(labels[is_val]))

    def train_variant(*, epochs, dropout=0.0, epsilon=None):
        torch.manual_seed(seed)
        model = RecurrentClassifier(len(vocab), dim=config.dim, hidden=config.hidden, n_classes=n_classes, dropout=dropout)
        cfg = TrainConfig(epochs=epochs, batch_size=config.batch_size, lr=config.lr if epsilon is None else config.dp_lr, seed=seed)
        dp = None if epsilon is None else DPConfig(target_epsilon=epsilon, delta=config.dp_delta)
        return train(model, train_xy, config=cfg, dp=dp, val=val_xy, progress=False)

    start = time.perf_counter()
    runs = {NON_DP: train_variant(epochs=config.epochs)}
    best_epoch = int(np.argmin([row["val_loss"] for row in runs[NON_DP].history.epochs])) + 1
    runs[f"early stop (epoch {best_epoch})"] = train_variant(epochs=best_epoch)
    runs[f"dropout {config.dropout:g}"] = train_variant(epochs=config.epochs, dropout=config.dropout)
    runs[f"DP eps={config.dp_epsilon:g}"] = train_variant(epochs=config.epochs, epsilon=config.dp_epsilon)
    training_seconds = time.perf_counter() - start

    rows = []
    start = time.perf_counter()
    for variant, res in runs.items():
        for c in canaries:
            rank = C.rank_exposure(res.model, canary=c, vocab=vocab)
            extra = C.extrapolated_exposure(res.model, canary=c, vocab=vocab, n_samples=config.extrapolation_samples, seed=seed)
            ext = C.extract_canary(res.model, canary=c, vocab=vocab, steps=config.extraction_steps,
                                   restarts=config.extraction_restarts, method="gumbel", seed=seed)
            rows.append({"variant": variant, "repetitions": c.repetitions, "exposure": rank.exposure, "rank": rank.rank,
                         "extrapolated": extra.exposure, **ext.summary(),
                         "val_accuracy": res.metrics.get("accuracy"), "epsilon": res.epsilon})
    attack_seconds = time.perf_counter() - start
    return CanaryStudy(table=pd.DataFrame(rows), canaries=canaries, runs=runs, vocab=vocab, best_epoch=best_epoch, config=config,
                       timings={"canary_training_seconds": training_seconds, "canary_attack_seconds": attack_seconds})


# ------------------------------------------------------------------------------------------- run-record metrics
def membership_metrics(table: pd.DataFrame) -> dict:
    """Flat metrics of a membership table (:attr:`MembershipStudy.table`) for a run record.

    ``<model>/<attack>/auc``, ``.../tpr@0.1%fpr`` and ``.../tpr@1%fpr`` for every row; the first DP model
    (the first whose ``model`` is not ``"non-DP"``) again under fixed names, ``dp/epsilon``,
    ``dp/<attack>/auc``, ``dp/<attack>/tpr@1%fpr`` and ``dp/<attack>/empirical_epsilon_lb``, so that a batch grid
    giving each run one epsilon collects into one column per metric.

    Examples
    --------
    >>> t = pd.DataFrame({"model": ["non-DP", "eps=1"], "attack": ["loss", "loss"], "epsilon": [None, 0.98],
    ...                   "auc": [0.7, 0.55], "tpr@0.1%fpr": [0.02, 0.0], "tpr@1%fpr": [0.05, 0.01],
    ...                   "empirical_epsilon_lb": [0.4, 0.0]})
    >>> m = membership_metrics(t)
    >>> m["non-DP/loss/auc"], m["dp/epsilon"], m["dp/loss/tpr@1%fpr"], "non-DP/loss/empirical_epsilon_lb" in m
    (0.7, 0.98, 0.01, False)
    """
    rows = table.to_dict("records")
    metrics = {}
    for row in rows:
        key = f"{row['model']}/{row['attack']}"
        for name in ("auc", "tpr@0.1%fpr", "tpr@1%fpr"):
            metrics[f"{key}/{name}"] = row[name]
    first_dp = next((row["model"] for row in rows if row["model"] != NON_DP), None)
    if first_dp is not None:
        dp_rows = [row for row in rows if row["model"] == first_dp]
        metrics["dp/epsilon"] = dp_rows[0]["epsilon"]
        for row in dp_rows:
            for name in ("auc", "tpr@1%fpr", "empirical_epsilon_lb"):
                metrics[f"dp/{row['attack']}/{name}"] = row[name]
    return metrics


def canary_metrics(table: pd.DataFrame) -> dict:
    """Flat metrics of a canary table (:attr:`CanaryStudy.table`) for a run record:
    ``canary/<variant>/<repetitions>x/exposure``, ``.../extrapolated_exposure`` and ``.../digit_accuracy``.

    Examples
    --------
    >>> t = pd.DataFrame({"variant": ["non-DP"], "repetitions": [8], "exposure": [5.0], "extrapolated": [4.5],
    ...                   "digit_accuracy": [0.25]})
    >>> canary_metrics(t)
    {'canary/non-DP/8x/exposure': 5.0, 'canary/non-DP/8x/extrapolated_exposure': 4.5, 'canary/non-DP/8x/digit_accuracy': 0.25}
    """
    metrics = {}
    for row in table.to_dict("records"):
        key = f"canary/{row['variant']}/{row['repetitions']}x"
        metrics[f"{key}/exposure"] = row["exposure"]
        metrics[f"{key}/extrapolated_exposure"] = row["extrapolated"]
        metrics[f"{key}/digit_accuracy"] = row["digit_accuracy"]
    return metrics


def attack_study_record(mia: MembershipStudy, *, theory: TheoryVsPractice, canary: CanaryStudy, pool: AttackPool | None = None) -> dict:
    """The ``config``, ``metrics``, ``timings`` and ``extra`` sections of notebook 02's run record, as keyword
    arguments of :func:`workbench.results.save_record`.

    ``config``: the membership models' ``mia`` / ``mia_dp`` TrainConfigs, their ``noise_multipliers`` and the
    ``canaries`` config; ``metrics``: :func:`membership_metrics` then :func:`canary_metrics`; ``timings``: the
    studies' (and the pool's) seconds; ``extra``: the full ``membership_inference``, ``bound_checks`` and
    ``canaries`` tables as lists of rows.
    """
    return {
        "config": {"mia": mia.train_config, "mia_dp": mia.dp_train_config, "noise_multipliers": mia.noise_multipliers,
                   "canaries": canary.config},
        "metrics": {**membership_metrics(mia.table), **canary_metrics(canary.table)},
        "timings": {**(pool.timings if pool is not None else {}), **mia.timings, **canary.timings},
        "extra": {"membership_inference": mia.table.to_dict("records"), "bound_checks": theory.checks.to_dict("records"),
                  "canaries": canary.table.to_dict("records")},
    }


# ------------------------------------------------------------------------------------------- notebook 01: DP training
def engine_timings(tasks: Mapping[str, object], *, models: Sequence[str], engines: Sequence[str] | None = None, samples: int = 256,
                   config=None, max_grad_norm: float = 1.0, delta: float = 1e-5, noise_multiplier: float = 1.0,
                   repeats: int = 2, threads: int | None = 1) -> pd.DataFrame:
    """Seconds per training epoch of each model without DP and with each DP engine, and the slowdown.

    Each (model, engine) trains a fresh :func:`~workbench.privacy.data.make_task_model` (seeded by
    ``config.seed``) for one epoch on the first ``samples`` training rows of its task, ``repeats`` times, and keeps
    the fastest epoch (timings on a shared machine are noisy). An engine that refuses a model (e.g. Opacus ghost
    clipping on the GRU's re-used hidden projection) gets NaN and the first line of its error in ``note``.

    Parameters
    ----------
    tasks : {features: TweetTask}
        Tasks by feature kind (``"tokens"``, ``"minilm"``, see :func:`~workbench.privacy.data.load_tweet_task`);
        each model uses the one its family needs (:data:`~workbench.privacy.data.MODEL_FAMILIES`).
    models : sequence of str
        Names in :data:`~workbench.privacy.data.MODEL_FAMILIES`.
    engines : sequence of str, optional
        Names in :data:`~workbench.privacy.dp.ENGINES` (default: all of them).
    samples : int
        Training rows per epoch.
    config : TrainConfig, optional
        Batch size, learning rate, optimizer and seed (its ``epochs`` is replaced by 1).
    max_grad_norm, delta, noise_multiplier : float
        The DP settings of every engine (epsilon plays no part in the time per step).
    repeats : int
        Epochs timed per (model, engine); the minimum is kept.
    threads : int or None
        Torch threads while timing (restored afterwards); ``None`` leaves them alone. One thread keeps the
        ratios steady on a busy machine.

    Returns
    -------
    pandas.DataFrame
        One row per (model, engine), ``"non-DP"`` first for each model: ``model``, ``engine``,
        ``seconds_per_epoch``, ``slowdown`` (relative to the model's non-DP epoch) and ``note``.

    Examples
    --------
    >>> from workbench.privacy.data import load_tweet_task
    >>> task = load_tweet_task(n=120, features="tokens", max_len=8)
    >>> t = engine_timings({"tokens": task}, models=["bag"], engines=["fast"], samples=32, repeats=1)
    >>> t.engine.tolist(), float(t.slowdown[0])
    (['non-DP', 'fast'], 1.0)
    """
    from workbench.training import TrainConfig, torch_threads

    from .data import MODEL_FAMILIES, make_task_model
    from .dp import ENGINES, DPConfig, train

    engines = list(ENGINES if engines is None else engines)
    unknown = [e for e in engines if e not in ENGINES]
    if unknown:
        raise ValueError(f"The 'engines' parameter of engine_timings must hold names in {ENGINES}. Got {unknown} instead.")
    bad = [m for m in models if m not in MODEL_FAMILIES]
    if bad:
        raise ValueError(f"The 'models' parameter of engine_timings must hold names in {sorted(MODEL_FAMILIES)}. Got {bad} instead.")
    missing = sorted({MODEL_FAMILIES[m] for m in models} - set(tasks))
    if missing:
        raise ValueError(f"The 'tasks' parameter of engine_timings lacks the features {missing} that the models {list(models)} need. "
                         f"Got tasks for {sorted(tasks)}.")
    _int_at_least("engine_timings", "samples", samples, 1)
    _int_at_least("engine_timings", "repeats", repeats, 1)
    config = dataclasses.replace(config or TrainConfig(), epochs=1)
    rows = []
    with torch_threads(threads):
        for name in models:
            task = tasks[MODEL_FAMILIES[name]]
            subset = (task.train[0][:samples], task.train[1][:samples])
            base = None
            for engine in [NON_DP, *engines]:
                dp = None if engine == NON_DP else DPConfig(noise_multiplier=noise_multiplier, delta=delta, max_grad_norm=max_grad_norm,
                                                             engine=engine)
                try:
                    seconds = min(train(make_task_model(name, task, seed=config.seed), subset, config=config, dp=dp,
                                        progress=False).seconds_per_epoch for _ in range(repeats))
                    note = ""
                except (NotImplementedError, ValueError) as err:  # e.g. Opacus ghost clipping on a re-used layer
                    seconds, note = float("nan"), str(err).splitlines()[0][:80]
                base = seconds if engine == NON_DP else base
                rows.append({"model": name, "engine": engine, "seconds_per_epoch": seconds, "slowdown": seconds / base, "note": note})
    return pd.DataFrame(rows, columns=["model", "engine", "seconds_per_epoch", "slowdown", "note"])


def dp_study_metrics(sweep: pd.DataFrame, *, timing: pd.DataFrame | None = None) -> dict:
    """Flat metrics of notebook 01 for a run record.

    From the epsilon sweep (:func:`~workbench.privacy.dp.epsilon_sweep` rows with a ``model`` column):
    ``<model>.<point>.val_accuracy`` and ``<model>.<point>.epsilon``, where ``<point>`` is ``non_dp`` or
    ``eps_<target>``; from :func:`engine_timings`: ``slowdown.<model>.<engine>``.

    Examples
    --------
    >>> sweep = pd.DataFrame({"model": ["bag", "bag"], "epsilon_target": [None, 8.0], "epsilon": [None, 7.9],
    ...                       "val_accuracy": [0.64, 0.54]})
    >>> timing = pd.DataFrame({"model": ["bag"], "engine": ["fast"], "slowdown": [1.5]})
    >>> dp_study_metrics(sweep, timing=timing)
    {'bag.non_dp.val_accuracy': 0.64, 'bag.non_dp.epsilon': nan, 'bag.eps_8.val_accuracy': 0.54, 'bag.eps_8.epsilon': 7.9, 'slowdown.bag.fast': 1.5}
    """
    metrics = {}
    for _, r in sweep.iterrows():
        key = "non_dp" if pd.isna(r["epsilon_target"]) else f"eps_{r['epsilon_target']:g}"
        metrics[f"{r['model']}.{key}.val_accuracy"] = r["val_accuracy"]
        metrics[f"{r['model']}.{key}.epsilon"] = r["epsilon"]
    if timing is not None:
        for _, r in timing.iterrows():
            metrics[f"slowdown.{r['model']}.{r['engine']}"] = r["slowdown"]
    return metrics
