"""Notebook 02's privacy audit: an epsilon lower bound measured from one training run per model
(:func:`one_run_audit_study`, Steinke et al. 2023) and the theory-vs-practice table that puts it next to the
promised epsilon and the attacks' TPR at low FPR (:func:`audit_vs_promise`)."""
from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import torch

from workbench.results import metric_key
from workbench.validation import Boolean, InstanceOf, Interval, Options, Seq, check, check_fields

from .. import attacks as A
from ..audit import one_run_audit
from ._labels import NON_DP, _epsilon_label, metric_label
from .membership import TPR_COLUMNS, _mlp_train_fn

_POSITIVE = Interval(float, 0, None, closed="neither")


@dataclass(frozen=True)
class AuditStudyConfig:
    """How :func:`one_run_audit_study` plants its canaries, trains one model per epsilon and audits it.

    ``n_canaries`` examples of the pool become canaries, each included in training independently with
    probability 1/2; the rest of the pool is always included. With ``mislabel`` every canary gets a random wrong
    label (an outlier the model can only fit by memorising it: the strongest signal an input-space auditor can
    plant). Models are MLP heads (``hidden``) trained like the membership study's: Adam, ``epochs`` of
    ``batch_size``, learning rate ``lr`` (``dp_lr`` with DP-SGD); a DP model's noise multiplier is fixed before
    the canaries are drawn, spending each epsilon in ``epsilons`` at ``delta`` on the expected training-set size.
    The audit guesses on the canaries' losses at ``confidence``.

    Examples
    --------
    >>> AuditStudyConfig(epsilons=[1, 8]).epsilons
    (1.0, 8.0)
    >>> AuditStudyConfig(confidence=1.0)
    Traceback (most recent call last):
    ...
    workbench.validation.InvalidParameterError: The 'confidence' parameter of AuditStudyConfig must be a float in (0, 1). Got 1.0 instead.
    """

    epsilons: tuple = (1.0, 3.0, 8.0)
    n_canaries: int = 500
    mislabel: bool = True
    epochs: int = 30
    batch_size: int = 32
    lr: float = 1e-3
    dp_lr: float = 3e-3
    delta: float = 1e-5
    hidden: tuple = (256,)
    confidence: float = 0.95
    seed: int = 0

    def __post_init__(self):
        if isinstance(self.epsilons, (int, float, np.integer, np.floating)):
            object.__setattr__(self, "epsilons", (self.epsilons,))
        if isinstance(self.hidden, (int, np.integer)):
            object.__setattr__(self, "hidden", (self.hidden,))
        open_unit = Interval(float, 0, 1, closed="neither")
        check_fields(self, epsilons=Seq(_POSITIVE), n_canaries=Interval(int, 2, None), mislabel=Boolean(),
                     epochs=Interval(int, 1, None), batch_size=Interval(int, 1, None), lr=_POSITIVE, dp_lr=_POSITIVE,
                     delta=open_unit, hidden=Seq(Interval(int, 1, None)), confidence=open_unit, seed=Interval(int, 0, None))
        if len({_epsilon_label(e) for e in self.epsilons}) != len(self.epsilons):
            raise ValueError(f"The 'epsilons' parameter of AuditStudyConfig must not repeat a value. Got {self.epsilons!r} instead.")

    def train_config(self, *, dp: bool):
        """The :class:`~workbench.training.TrainConfig` of the non-DP (``dp=False``) or the DP models."""
        from workbench.training import TrainConfig

        return TrainConfig(epochs=self.epochs, batch_size=self.batch_size, lr=self.dp_lr if dp else self.lr, seed=self.seed)


@dataclass
class AuditStudy:
    """What :func:`one_run_audit_study` measured.

    Attributes
    ----------
    table : pandas.DataFrame
        One row per model: ``model`` ("non-DP", "eps=1", ...), ``epsilon`` (what the accountant promises for the run;
        NaN without DP), ``epsilon_lb`` (the audit's lower bound), ``confidence``, ``canaries``, ``guesses``,
        ``correct``, ``guess_accuracy`` and ``max_epsilon_lb`` (what perfect guesses would certify).
    audits : {model label: AuditResult}
    included : bool array
        Which canaries training used (the same draw for every model).
    scores : {model label: array}
        Each model's canary scores (minus the loss).
    config : AuditStudyConfig
    timings : dict
        ``audit_seconds``.
    """

    table: pd.DataFrame
    audits: dict
    included: np.ndarray
    scores: dict
    config: AuditStudyConfig
    timings: dict = field(default_factory=dict)


def one_run_audit_study(data: tuple, *, config: AuditStudyConfig = AuditStudyConfig()) -> AuditStudy:
    """Audit a non-DP model and one DP model per epsilon, each from one training run (Steinke et al. 2023).

    Steps, in this order (seeded by ``config.seed``): draw ``n_canaries`` canaries from the pool, their wrong
    labels (with ``mislabel``) and their inclusion bits; train each model (the non-DP one first) on the rest of the
    pool plus the included canaries; score every canary by minus the model's loss on it; audit the scores with
    :func:`~workbench.privacy.audit.one_run_audit` at the model's delta.

    Parameters
    ----------
    data : (X, y)
        The pool: float features (n, d) and integer labels (n,); ``n`` must exceed ``n_canaries``.
    config : AuditStudyConfig

    Returns
    -------
    AuditStudy

    Examples
    --------
    >>> g = torch.Generator().manual_seed(0)
    >>> X, y = torch.randn(60, 4, generator=g), torch.randint(0, 2, (60,), generator=g)
    >>> study = one_run_audit_study((X, y), config=AuditStudyConfig(epsilons=(2.0,), n_canaries=20, epochs=2, hidden=(8,)))
    >>> study.table.model.tolist(), bool((study.table.epsilon_lb >= 0).all())
    (['non-DP', 'eps=2'], True)
    """
    from ..accounting import noise_for_epsilon

    owner = "one_run_audit_study"
    check(config, InstanceOf(AuditStudyConfig), name="config", owner=owner)
    X, y = (torch.as_tensor(v) for v in data)
    if X.ndim != 2 or y.ndim != 1 or len(X) != len(y):
        raise ValueError(f"The 'data' parameter of {owner} must be (X, y) with X of shape (n, d) and y of shape (n,). "
                         f"Got shapes {tuple(X.shape)} and {tuple(y.shape)} instead.")
    n, m = len(X), config.n_canaries
    if n <= m:
        raise ValueError(f"The 'data' parameter of {owner} needs more examples than the {m} canaries. Got {n}.")
    n_classes = int(y.max()) + 1
    rng = np.random.default_rng([config.seed, 13])
    order = rng.permutation(n)
    canary_idx, base_idx = order[:m], order[m:]
    y_canary = y[canary_idx].clone()
    if config.mislabel and n_classes > 1:
        shift = torch.as_tensor(rng.integers(1, n_classes, m))
        y_canary = (y_canary + shift) % n_classes
    included = rng.random(m) < 0.5
    X_train = torch.cat([X[base_idx], X[canary_idx[included]]])
    y_train = torch.cat([y[base_idx], y_canary[included]])
    # the noise is fixed before the bits are drawn (from the expected size), so it does not depend on them
    steps_per_epoch = -(-(len(base_idx) + m // 2) // config.batch_size)
    start = time.perf_counter()
    audits, scores, rows = {}, {}, []
    for eps in [None, *config.epsilons]:
        sigma = None if eps is None else noise_for_epsilon(target_epsilon=eps, sample_rate=1 / steps_per_epoch,
                                                          steps=steps_per_epoch * config.epochs, delta=config.delta)
        train_fn = _mlp_train_fn(in_features=X.shape[1], n_classes=n_classes, config=config.train_config(dp=eps is not None),
                                 hidden=config.hidden, noise_multiplier=sigma, delta=config.delta)
        model, info = train_fn(X_train, y_train, seed=config.seed * 1000)
        label = NON_DP if eps is None else _epsilon_label(eps)
        scores[label] = -A.model_outputs(model, X=X[canary_idx], y=y_canary)["loss"]
        audits[label] = one_run_audit(scores[label], included=included, delta=config.delta, confidence=config.confidence)
        rows.append({"model": label, "epsilon": info.get("epsilon"), **audits[label].summary()})
    table = pd.DataFrame(rows, columns=["model", "epsilon", "epsilon_lb", "confidence", "canaries", "guesses", "correct",
                                        "guess_accuracy", "max_epsilon_lb"])
    return AuditStudy(table=table, audits=audits, included=included, scores=scores, config=config,
                      timings={"audit_seconds": time.perf_counter() - start})


def audit_vs_promise(audit: pd.DataFrame, *, membership: pd.DataFrame, attack: str = "lira-online") -> pd.DataFrame:
    """Theory vs practice in one table: per model, the promised epsilon, the audited lower bound, and what the
    ``attack`` of the membership study achieves at low FPR.

    Parameters
    ----------
    audit : pandas.DataFrame
        :attr:`AuditStudy.table`.
    membership : pandas.DataFrame
        :attr:`~.membership.MembershipStudy.table` (same model labels).
    attack : str
        Whose TPR columns are shown (a key of :data:`~workbench.privacy.attacks.ATTACKS`).

    Returns
    -------
    pandas.DataFrame
        ``model``, ``promised_epsilon``, ``audited_epsilon_lb``, ``confidence``, ``max_epsilon_lb``, ``bound_holds``
        (audited <= promised; True without DP), ``attack``, ``tpr_at_fpr_0.001``, ``tpr_at_fpr_0.01``,
        ``roc_epsilon_lb`` (the attack ROC's own heuristic bound); models missing from ``membership`` get NaN.

    Examples
    --------
    >>> audit = pd.DataFrame({"model": ["non-DP", "eps=1"], "epsilon": [None, 0.99], "epsilon_lb": [2.5, 0.1],
    ...                       "confidence": [0.95, 0.95], "max_epsilon_lb": [5.8, 5.8]})
    >>> mia = pd.DataFrame({"model": ["non-DP", "eps=1"], "attack": ["lira-online"] * 2, "tpr_at_fpr_0.001": [0.05, 0.0],
    ...                     "tpr_at_fpr_0.01": [0.1, 0.01], "empirical_epsilon_lb": [1.2, 0.0]})
    >>> audit_vs_promise(audit, membership=mia).bound_holds.tolist()
    [True, True]
    """
    attack = check(attack, Options(tuple(A.ATTACKS)), name="attack", owner="audit_vs_promise")
    mia = membership[membership.attack == attack].set_index("model")
    rows = []
    for r in audit.to_dict("records"):
        promised = r["epsilon"]
        has_dp = promised is not None and not pd.isna(promised)
        in_mia = r["model"] in mia.index
        rows.append({"model": r["model"], "promised_epsilon": promised if has_dp else float("nan"),
                     "audited_epsilon_lb": r["epsilon_lb"], "confidence": r["confidence"], "max_epsilon_lb": r["max_epsilon_lb"],
                     "bound_holds": bool(not has_dp or r["epsilon_lb"] <= promised), "attack": attack,
                     **{c: (mia.loc[r["model"], c] if in_mia else float("nan")) for c in TPR_COLUMNS},
                     "roc_epsilon_lb": mia.loc[r["model"], "empirical_epsilon_lb"] if in_mia else float("nan")})
    return pd.DataFrame(rows, columns=["model", "promised_epsilon", "audited_epsilon_lb", "confidence", "max_epsilon_lb",
                                       "bound_holds", "attack", *TPR_COLUMNS, "roc_epsilon_lb"])


def audit_metrics(table: pd.DataFrame) -> dict:
    """Flat metrics of an audit table (:attr:`AuditStudy.table`) for a run record: ``audit/<model>/epsilon_lb``,
    ``.../guess_accuracy`` and ``.../promised_epsilon`` (DP models only), ``<model>`` as in
    :func:`~.membership.membership_metrics`.

    Examples
    --------
    >>> t = pd.DataFrame({"model": ["non-DP", "eps=8"], "epsilon": [None, 7.9], "epsilon_lb": [3.1, 0.4],
    ...                   "guess_accuracy": [0.9, 0.6]})
    >>> audit_metrics(t)
    {'audit/non_dp/epsilon_lb': 3.1, 'audit/non_dp/guess_accuracy': 0.9, 'audit/epsilon_8/epsilon_lb': 0.4, 'audit/epsilon_8/guess_accuracy': 0.6, 'audit/epsilon_8/promised_epsilon': 7.9}
    """
    metrics = {}
    for r in table.to_dict("records"):
        key = metric_key("audit", metric_label(r["model"]))
        metrics[f"{key}/epsilon_lb"] = r["epsilon_lb"]
        metrics[f"{key}/guess_accuracy"] = r["guess_accuracy"]
        if r["epsilon"] is not None and not pd.isna(r["epsilon"]):
            metrics[f"{key}/promised_epsilon"] = r["epsilon"]
    return metrics
