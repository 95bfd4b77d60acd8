"""Notebook 02's canary study: secrets inserted into tweets, four training variants, exposure and extraction
(:func:`canary_study`), and the run record's metrics of its table (:func:`canary_metrics`)."""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
import pandas as pd
import torch

from .. import canaries as C
from workbench.results import metric_key
from workbench.validation import InstanceOf, Interval, Seq, check, check_fields

from ._labels import NON_DP, class_labels, metric_label


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
    workbench.validation.InvalidParameterError: The 'dropout' parameter of CanaryStudyConfig must be a float in [0, 1). Got 1.0 instead.
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
        if isinstance(self.repetitions, (int, np.integer)):
            object.__setattr__(self, "repetitions", (self.repetitions,))
        positive, one = Interval(float, 0, None, closed="neither"), Interval(int, 1, None)
        check_fields(self, repetitions=Seq(one, min_len=1), n_digits=Interval(int, 1, 7), epochs=one, extraction_steps=one,
                     extraction_restarts=one, max_len=one, batch_size=one, dim=one, hidden=one,
                     extrapolation_samples=Interval(int, 20, None), max_vocab=Interval(int, 3, None), seed=Interval(int, 0, None),
                     dropout=Interval(float, 0, 1, closed="left"), dp_epsilon=positive, lr=positive, dp_lr=positive,
                     dp_delta=Interval(float, 0, 1, closed="neither"), val_fraction=Interval(float, 0, 1, closed="neither"))
        if len(self.repetitions) > len(C.PREFIXES):  # one text pattern per canary
            raise ValueError(f"The 'repetitions' parameter of {owner} must hold 1 to {len(C.PREFIXES)} counts (one canary each). "
                             f"Got {self.repetitions!r} instead.")

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


def labelled_split(texts, labels, *, owner: str, seed: int, val_fraction: float):
    """Check ``labels`` (one class id >= 0 per text) and draw the seeded validation split of a canary study.

    Returns ``(texts as a list of str, labels as an array, is_val boolean mask)``; both sides must be non-empty.
    """
    texts, y = class_labels(texts, labels, owner=owner)
    is_val = np.random.default_rng(seed).random(len(texts)) < val_fraction
    if is_val.all() or not is_val.any():
        raise ValueError(f"{owner} needs texts on both sides of the validation split; got {len(texts)} texts "
                         f"with val_fraction={val_fraction}. Pass more texts.")
    return texts, y, is_val


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

    from ..dp import DPConfig, train

    check(config, InstanceOf(CanaryStudyConfig), name="config", owner="canary_study")
    texts, labels, is_val = labelled_split(texts, labels, owner="canary_study", seed=config.seed,
                                           val_fraction=config.val_fraction)
    seed = config.seed
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
def canary_metrics(table: pd.DataFrame) -> dict:
    """Flat metrics of a canary table (:attr:`CanaryStudy.table`) for a run record, in the records' one naming
    scheme: ``canary/<variant>/repetitions_<r>/exposure``, ``.../extrapolated_exposure`` and ``.../digit_accuracy``,
    where ``<variant>`` is ``non_dp``, ``early_stop``, ``dropout_<p>`` or ``dp_epsilon_<e>``
    (:func:`~._labels.metric_label`).

    Examples
    --------
    >>> t = pd.DataFrame({"variant": ["non-DP"], "repetitions": [8], "exposure": [5.0], "extrapolated": [4.5],
    ...                   "digit_accuracy": [0.25]})
    >>> canary_metrics(t)
    {'canary/non_dp/repetitions_8/exposure': 5.0, 'canary/non_dp/repetitions_8/extrapolated_exposure': 4.5, 'canary/non_dp/repetitions_8/digit_accuracy': 0.25}
    """
    metrics = {}
    for row in table.to_dict("records"):
        key = metric_key("canary", metric_label(row["variant"]), f"repetitions_{row['repetitions']}")
        metrics[f"{key}/exposure"] = row["exposure"]
        metrics[f"{key}/extrapolated_exposure"] = row["extrapolated"]
        metrics[f"{key}/digit_accuracy"] = row["digit_accuracy"]
    return metrics
