"""Theory vs practice on a fine-tuned transformer: the one-run audit (Steinke et al. 2023) of MiniLM fine-tuned on
tweets without DP and with DP-SGD at each epsilon (:func:`transformer_audit_study`).

Shadow models of a whole transformer are expensive on a laptop CPU (:mod:`.transformer_shadows` trains them on the top
block only), which is exactly where the one-run audit shines: one fine-tuning per model. The canaries are tweets with a random wrong label, each in the training set with probability
1/2; the score is minus the fine-tuned model's loss on the canary; the audit turns the correct guesses into a lower
bound on epsilon. The table also gives the loss attack's TPR at low FPR on the same canaries (members: the included
ones), so the rows read like :func:`~.auditing.audit_vs_promise`'s.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
import pandas as pd
import torch

from workbench.results import metric_key
from workbench.validation import Boolean, InstanceOf, Interval, Options, Seq, check, check_fields

from .. import attacks as A
from ..audit import one_run_audit
from ._labels import NON_DP, _epsilon_label, class_labels, metric_label
from .membership import TPR_COLUMNS

_POSITIVE = Interval(float, 0, None, closed="neither")


@dataclass(frozen=True)
class TransformerAuditConfig:
    """How :func:`transformer_audit_study` fine-tunes and audits MiniLM.

    ``n_canaries`` texts become canaries (with ``mislabel``: a random wrong label), each included independently with
    probability 1/2; every other text is always included. Each model is a
    :class:`~workbench.privacy.transformer.MiniLMClassifier` keeping the first ``layers`` blocks (``None``: all 6),
    of which ``part`` is trained (:func:`~workbench.privacy.trainable.select_trainable`: ``"all"``,
    ``"last_layers"`` (``last_layers`` blocks + head), ``"bias"``, ``"head"``), with Adam for ``epochs`` of
    ``batch_size`` at ``lr`` (``dp_lr`` under DP-SGD, the fast engine, noise fixed before the canaries are drawn to
    spend each epsilon of ``epsilons`` at ``delta`` on the expected training-set size). Texts are cut to ``max_len``
    tokens. The audit runs at ``confidence``.

    Examples
    --------
    >>> TransformerAuditConfig(epsilons=[8]).epsilons
    (8.0,)
    >>> TransformerAuditConfig(part="everything")
    Traceback (most recent call last):
    ...
    workbench.validation.InvalidParameterError: The 'part' parameter of TransformerAuditConfig must be one of ('all', 'bias', 'head', 'last_layers'). Got 'everything' instead.
    """

    epsilons: tuple = (1.0, 3.0, 8.0)
    n_canaries: int = 200
    mislabel: bool = True
    layers: int | None = 2
    part: str = "last_layers"
    last_layers: int = 1
    epochs: int = 2
    batch_size: int = 32
    lr: float = 5e-4
    dp_lr: float = 2e-3
    delta: float = 1e-5
    max_len: int = 32
    confidence: float = 0.95
    seed: int = 0

    def __post_init__(self):
        if isinstance(self.epsilons, (int, float, np.integer, np.floating)):
            object.__setattr__(self, "epsilons", (self.epsilons,))
        one = Interval(int, 1, None)
        check_fields(self, epsilons=Seq(_POSITIVE), n_canaries=Interval(int, 2, None), mislabel=Boolean(),
                     layers=(Interval(int, 1, 6), None), part=Options(("all", "bias", "head", "last_layers")), last_layers=one,
                     epochs=one, batch_size=one, lr=_POSITIVE, dp_lr=_POSITIVE, delta=Interval(float, 0, 1, closed="neither"),
                     max_len=Interval(int, 3, None), confidence=Interval(float, 0, 1, closed="neither"), seed=Interval(int, 0, None))
        if len({_epsilon_label(e) for e in self.epsilons}) != len(self.epsilons):
            raise ValueError(f"The 'epsilons' parameter of TransformerAuditConfig must not repeat a value. Got {self.epsilons!r} instead.")


@dataclass
class TransformerAudit:
    """What :func:`transformer_audit_study` measured.

    Attributes
    ----------
    table : pandas.DataFrame
        One row per model: ``model`` ("non-DP", "eps=1", ...), ``promised_epsilon`` (the accountant's, NaN without
        DP), ``audited_epsilon_lb``, ``confidence``, ``max_epsilon_lb``, ``bound_holds``, ``guess_accuracy``,
        ``tpr_at_fpr_0.001`` and ``tpr_at_fpr_0.01`` (the loss attack on the canaries), ``val_accuracy`` (on the texts
        passed as ``val``; NaN without) and ``trainable`` (parameters trained).
    audits : {model label: AuditResult}
    included : bool array
    config : TransformerAuditConfig
    timings : dict
        ``transformer_audit_seconds``.
    """

    table: pd.DataFrame
    audits: dict
    included: np.ndarray
    config: TransformerAuditConfig
    timings: dict = field(default_factory=dict)


def transformer_audit_study(texts: Sequence[str], *, labels, val: tuple | None = None,
                            config: TransformerAuditConfig = TransformerAuditConfig()) -> TransformerAudit:
    """Fine-tune MiniLM without DP and at each epsilon, once each, and audit every model with one run.

    Steps (seeded by ``config.seed``): draw the canaries among ``texts``, their wrong labels and inclusion bits; for
    each model (non-DP first) build a fresh classifier from the installed weights, select its trainable part,
    fine-tune it on the other texts plus the included canaries through :func:`workbench.privacy.dp.train`, score the
    canaries by minus the loss, audit (:func:`~workbench.privacy.audit.one_run_audit`) and run the loss attack on
    them.

    Parameters
    ----------
    texts : sequence of str
    labels : array of int, one per text
    val : (texts, labels), optional
        Held-out texts for the models' accuracy.
    config : TransformerAuditConfig

    Returns
    -------
    TransformerAudit
    """
    from workbench.training import TrainConfig, evaluate, predict

    from ..accounting import noise_for_epsilon
    from ..dp import DPConfig, train
    from ..trainable import select_trainable
    from ..transformer import MiniLMClassifier, TokenizedTexts

    owner = "transformer_audit_study"
    check(config, InstanceOf(TransformerAuditConfig), name="config", owner=owner)
    texts, y = class_labels(texts, labels, owner=owner)
    n, m = len(texts), config.n_canaries
    if n <= m:
        raise ValueError(f"The 'texts' parameter of {owner} needs more texts than the {m} canaries. Got {n}.")
    n_classes = max(int(y.max()) + 1, 2)
    rng = np.random.default_rng([config.seed, 19])
    order = rng.permutation(n)
    canary_idx, base_idx = order[:m], order[m:]
    y_canary = y[canary_idx].copy()
    if config.mislabel:
        y_canary = (y_canary + rng.integers(1, n_classes, m)) % n_classes
    included = rng.random(m) < 0.5
    train_texts = [texts[i] for i in base_idx] + [texts[i] for i, inc in zip(canary_idx, included) if inc]
    train_set = TokenizedTexts(train_texts, np.r_[y[base_idx], y_canary[included]], max_len=config.max_len)
    canary_set = TokenizedTexts([texts[i] for i in canary_idx], y_canary, max_len=config.max_len)
    val_set = None if val is None else TokenizedTexts(list(val[0]), np.asarray(val[1]), max_len=config.max_len)
    steps_per_epoch = -(-(len(base_idx) + m // 2) // config.batch_size)  # fixed before the bits are known
    start = time.perf_counter()
    rows, audits = [], {}
    for eps in [None, *config.epsilons]:
        dp = None
        if eps is not None:
            sigma = noise_for_epsilon(target_epsilon=eps, sample_rate=1 / steps_per_epoch, steps=steps_per_epoch * config.epochs,
                                      delta=config.delta)
            dp = DPConfig(noise_multiplier=sigma, delta=config.delta)
        torch.manual_seed(config.seed)
        model = MiniLMClassifier(n_classes=n_classes, layers=config.layers, seed=config.seed)
        info = select_trainable(model, part=config.part, last_layers=config.last_layers)
        cfg = TrainConfig(epochs=config.epochs, batch_size=config.batch_size, lr=config.lr if dp is None else config.dp_lr,
                          seed=config.seed)
        res = train(model, train_set, config=cfg, dp=dp, progress=False)
        loss = A.per_example_loss(predict(model, canary_set).double().numpy(), labels=y_canary)
        label = NON_DP if eps is None else _epsilon_label(eps)
        audits[label] = audit = one_run_audit(-loss, included=included, delta=config.delta, confidence=config.confidence)
        attack = A.evaluate_scores(-loss, is_member=included, name="loss")
        promised = res.epsilon if res.epsilon is not None else float("nan")
        rows.append({"model": label, "promised_epsilon": promised, "audited_epsilon_lb": audit.epsilon_lb,
                     "confidence": audit.confidence, "max_epsilon_lb": audit.max_epsilon_lb,
                     "bound_holds": bool(eps is None or audit.epsilon_lb <= promised), "guess_accuracy": audit.accuracy,
                     **{A.tpr_key(f): v for f, v in attack.tpr_at.items()},
                     "val_accuracy": evaluate(model, val_set)["accuracy"] if val_set is not None else float("nan"),
                     "trainable": info["trainable"]})
    table = pd.DataFrame(rows, columns=["model", "promised_epsilon", "audited_epsilon_lb", "confidence", "max_epsilon_lb",
                                        "bound_holds", "guess_accuracy", *TPR_COLUMNS, "val_accuracy", "trainable"])
    return TransformerAudit(table=table, audits=audits, included=included, config=config,
                            timings={"transformer_audit_seconds": time.perf_counter() - start})


def transformer_audit_metrics(table: pd.DataFrame) -> dict:
    """Flat metrics of a :attr:`TransformerAudit.table` for a run record: ``transformer_audit/<model>/epsilon_lb``,
    ``.../promised_epsilon`` (DP models only), ``.../tpr_at_fpr_0.01`` and ``.../val_accuracy``.

    Examples
    --------
    >>> t = pd.DataFrame({"model": ["non-DP", "eps=8"], "promised_epsilon": [float("nan"), 7.9], "audited_epsilon_lb": [0.5, 0.0],
    ...                   "tpr_at_fpr_0.01": [0.03, 0.01], "val_accuracy": [0.6, 0.5]})
    >>> sorted(transformer_audit_metrics(t))[:3]
    ['transformer_audit/epsilon_8/epsilon_lb', 'transformer_audit/epsilon_8/promised_epsilon', 'transformer_audit/epsilon_8/tpr_at_fpr_0.01']
    >>> "transformer_audit/non_dp/promised_epsilon" in transformer_audit_metrics(t)
    False
    """
    metrics = {}
    for r in table.to_dict("records"):
        key = metric_key("transformer_audit", metric_label(r["model"]))
        metrics[f"{key}/epsilon_lb"] = r["audited_epsilon_lb"]
        if not pd.isna(r["promised_epsilon"]):
            metrics[f"{key}/promised_epsilon"] = r["promised_epsilon"]
        metrics[f"{key}/tpr_at_fpr_0.01"] = r["tpr_at_fpr_0.01"]
        metrics[f"{key}/val_accuracy"] = r["val_accuracy"]
    return metrics
