"""Notebook 02's membership-inference study: the candidate pool (:func:`load_attack_pool`), the six attacks on a
non-DP target and one DP target per epsilon (:func:`membership_attack_study`) and the run record's metrics of its
table (:func:`membership_metrics`)."""
from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import torch

from .. import attacks as A
from workbench.results import metric_key
from workbench.validation import InstanceOf, Interval, Seq, check, check_fields

from ._labels import NON_DP, _epsilon_label, metric_label

_POSITIVE = Interval(float, 0, None, closed="neither")
_OPEN_UNIT = Interval(float, 0, 1, closed="neither")
#: The table's TPR columns (:data:`~workbench.privacy.attacks.FPR_TARGETS`).
TPR_COLUMNS = tuple(A.tpr_key(f) for f in A.FPR_TARGETS)


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

    n = check(n, Interval(int, 4, None), name="n", owner="load_attack_pool")
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
    workbench.validation.InvalidParameterError: The 'k_shadows' parameter of MembershipStudyConfig must be an int >= 2. Got 1 instead.
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
        if isinstance(self.epsilons, (int, float, np.integer, np.floating)):
            object.__setattr__(self, "epsilons", (self.epsilons,))
        if isinstance(self.hidden, (int, np.integer)):
            object.__setattr__(self, "hidden", (self.hidden,))
        # online LiRA, RMIA and the reference attack need shadows that did and did not train on each candidate
        check_fields(self, epsilons=Seq(_POSITIVE), k_shadows=Interval(int, 2, None), epochs=Interval(int, 1, None),
                     batch_size=Interval(int, 1, None), lr=_POSITIVE, dp_lr=_POSITIVE, delta=_OPEN_UNIT,
                     hidden=Seq(Interval(int, 1, None)), seed=Interval(int, 0, None))
        if len({_epsilon_label(e) for e in self.epsilons}) != len(self.epsilons):
            raise ValueError(f"The 'epsilons' parameter of {owner} must not repeat a value. Got {self.epsilons!r} instead.")

    def train_config(self, *, dp: bool):
        """The :class:`~workbench.training.TrainConfig` of the non-DP (``dp=False``) or the DP models."""
        from workbench.training import TrainConfig

        return TrainConfig(epochs=self.epochs, batch_size=self.batch_size, lr=self.dp_lr if dp else self.lr, seed=self.seed)

    def noise_multipliers(self, n_train: int) -> dict:
        """``{epsilon: noise multiplier}`` spending each epsilon in ``epochs`` epochs on ``n_train`` examples
        (Poisson sampling at rate ``1 / steps_per_epoch``, the RDP accountant)."""
        from ..accounting import noise_for_epsilon

        n_train = check(n_train, Interval(int, 1, None), name="n_train", owner="MembershipStudyConfig.noise_multipliers")
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
        target; NaN without DP), ``auc``, ``tpr_at_fpr_0.001``, ``tpr_at_fpr_0.01``, ``advantage`` and
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

    from ..dp import DPConfig, train

    def train_fn(X, y, *, seed):
        torch.manual_seed(seed)
        model = MLP(in_features=in_features, hidden=hidden, out_features=n_classes)
        dp = None if noise_multiplier is None else DPConfig(noise_multiplier=noise_multiplier, delta=delta)
        res = train(model, (X, y), config=dataclasses.replace(config, seed=seed), dp=dp, progress=False)
        return res.model, {"epsilon": res.epsilon}

    return train_fn


def membership_attack_study(data: tuple, *, config: MembershipStudyConfig = MembershipStudyConfig()) -> MembershipStudy:
    """Attack a non-DP target and one DP target per epsilon with the six attacks of :data:`~workbench.privacy.attacks.ATTACKS`.

    For each model :func:`~workbench.privacy.attacks.membership_inference` trains the target on a random half of
    the pool and ``config.k_shadows`` shadow models (same recipe) on other random halves, then scores every
    candidate with the loss, reference, LiRA and RMIA (offline, online) attacks.

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
    >>> study.table.attack.tolist()
    ['loss', 'reference', 'lira-offline', 'lira-online', 'rmia-offline', 'rmia-online']
    """
    check(config, InstanceOf(MembershipStudyConfig), name="config", owner="membership_attack_study")
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
                         **{k: row[k] for k in ("auc", *TPR_COLUMNS, "advantage")},
                         "empirical_epsilon_lb": A.empirical_epsilon(rep.results[row["attack"]], delta=config.delta)})
    table = pd.DataFrame(rows, columns=["model", "attack", "epsilon", "auc", *TPR_COLUMNS, "advantage", "empirical_epsilon_lb"])
    return MembershipStudy(table=table, reports=reports, noise_multipliers=sigmas, config=config,
                           timings={"membership_inference_seconds": seconds})


# ------------------------------------------------------------------------------------------- run-record metrics
def membership_metrics(table: pd.DataFrame) -> dict:
    """Flat metrics of a membership table (:attr:`MembershipStudy.table`) for a run record, in the records' one
    naming scheme.

    ``<model>/<attack>/auc``, ``.../tpr_at_fpr_0.001`` and ``.../tpr_at_fpr_0.01`` for every row (``<model>`` is
    ``non_dp`` or ``epsilon_<e>``, ``<attack>`` e.g. ``lira_online``, :func:`~._labels.metric_label`); the first DP
    model (the first whose ``model`` is not ``"non-DP"``) again under fixed names, ``dp/epsilon``,
    ``dp/<attack>/auc``, ``dp/<attack>/tpr_at_fpr_0.01`` and ``dp/<attack>/empirical_epsilon_lb``, so that a batch
    grid giving each run one epsilon collects into one column per metric.

    Examples
    --------
    >>> t = pd.DataFrame({"model": ["non-DP", "eps=1"], "attack": ["loss", "loss"], "epsilon": [None, 0.98],
    ...                   "auc": [0.7, 0.55], "tpr_at_fpr_0.001": [0.02, 0.0], "tpr_at_fpr_0.01": [0.05, 0.01],
    ...                   "empirical_epsilon_lb": [0.4, 0.0]})
    >>> m = membership_metrics(t)
    >>> m["non_dp/loss/auc"], m["epsilon_1/loss/tpr_at_fpr_0.001"], m["dp/epsilon"], m["dp/loss/tpr_at_fpr_0.01"]
    (0.7, 0.0, 0.98, 0.01)
    """
    rows = table.to_dict("records")
    metrics = {}
    for row in rows:
        for name in ("auc", *TPR_COLUMNS):
            metrics[metric_key(metric_label(row["model"]), metric_label(row["attack"]), name)] = row[name]
    first_dp = next((row["model"] for row in rows if row["model"] != NON_DP), None)
    if first_dp is not None:
        dp_rows = [row for row in rows if row["model"] == first_dp]
        metrics["dp/epsilon"] = dp_rows[0]["epsilon"]
        for row in dp_rows:
            for name in ("auc", A.tpr_key(0.01), "empirical_epsilon_lb"):
                metrics[metric_key("dp", metric_label(row["attack"]), name)] = row[name]
    return metrics
