"""LiRA and RMIA, online and offline, with shadow models of fine-tuned MiniLM (:func:`transformer_shadow_study`),
next to the loss attack on the same target.

A shadow model of a transformer is a whole fine-tuning run; here each one is affordable because only the top block(s)
and the head are fine-tuned, on hidden states of the frozen lower blocks computed ONCE for the whole candidate pool
(:mod:`~.minilm_top`). The target and every shadow then train on those cached states through
:func:`workbench.privacy.dp.train` (without DP, or with DP-SGD at ``epsilon``), and the attacks are read at each
shadow budget by :func:`~.shadows.shadow_count_study`.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
import pandas as pd
import torch

from workbench.validation import Boolean, InstanceOf, Interval, Seq, check, check_fields

from .. import attacks as A
from ._labels import class_labels
from .membership import TPR_COLUMNS
from .minilm_top import TopModel, cache_hidden_states
from .shadows import ShadowStudyConfig, shadow_count_study, shadow_metrics

__all__ = ["TransformerShadowConfig", "TransformerShadowStudy", "transformer_shadow_study", "transformer_shadow_metrics"]

_POSITIVE = Interval(float, 0, None, closed="neither")


@dataclass(frozen=True)
class TransformerShadowConfig:
    """How :func:`transformer_shadow_study` fine-tunes the target and its shadows.

    The classifier keeps MiniLM's first ``layers`` blocks (``None``: all 6); its top ``top_layers`` blocks and a fresh
    head are fine-tuned on cached hidden states with Adam for ``epochs`` of ``batch_size`` at ``lr`` (``dp_lr`` with
    DP-SGD, spending ``epsilon`` at ``delta``; ``None``: no DP). ``max(shadow_counts)`` shadows train once on
    complementary halves of the pool and the attacks are read with the first ``k`` of them for each ``k`` in
    ``shadow_counts`` (even numbers). Texts are cut to ``max_len`` tokens; ``fix_variance`` as in
    :class:`~.shadows.ShadowStudyConfig`.

    Examples
    --------
    >>> TransformerShadowConfig(shadow_counts=[8, 4]).shadow_counts
    (4, 8)
    >>> TransformerShadowConfig(top_layers=3, layers=2)
    Traceback (most recent call last):
    ...
    ValueError: The 'top_layers' parameter of TransformerShadowConfig must be at most 'layers' (2). Got 3 instead.
    """

    shadow_counts: tuple = (4, 8)
    epsilon: float | None = None
    layers: int | None = 2
    top_layers: int = 1
    epochs: int = 4
    batch_size: int = 32
    lr: float = 1e-3
    dp_lr: float = 2e-3
    delta: float = 1e-5
    max_len: int = 32
    fix_variance: bool = True
    seed: int = 0

    def __post_init__(self):
        one = Interval(int, 1, None)
        check_fields(self, shadow_counts=Seq(Interval(int, 2, None), min_len=1), epsilon=(_POSITIVE, None),
                     layers=(Interval(int, 1, 6), None), top_layers=one, epochs=one, batch_size=one, lr=_POSITIVE, dp_lr=_POSITIVE,
                     delta=Interval(float, 0, 1, closed="neither"), max_len=Interval(int, 3, None), fix_variance=Boolean(),
                     seed=Interval(int, 0, None))
        if self.top_layers > (self.layers or 6):
            raise ValueError(f"The 'top_layers' parameter of TransformerShadowConfig must be at most 'layers' ({self.layers or 6}). "
                             f"Got {self.top_layers} instead.")
        if any(k % 2 for k in self.shadow_counts):
            raise ValueError(f"The 'shadow_counts' parameter of TransformerShadowConfig must hold even counts (complementary pairs). "
                             f"Got {self.shadow_counts!r} instead.")
        object.__setattr__(self, "shadow_counts", self.shadow_config().shadow_counts)

    def shadow_config(self) -> ShadowStudyConfig:
        """The :class:`~.shadows.ShadowStudyConfig` of the same recipe."""
        return ShadowStudyConfig(shadow_counts=self.shadow_counts, epsilon=self.epsilon, epochs=self.epochs,
                                 batch_size=self.batch_size, lr=self.lr, dp_lr=self.dp_lr, delta=self.delta,
                                 fix_variance=self.fix_variance, seed=self.seed)


@dataclass
class TransformerShadowStudy:
    """What :func:`transformer_shadow_study` measured.

    Attributes
    ----------
    table : pandas.DataFrame
        One row per (shadow count, attack), as :attr:`~.shadows.ShadowStudy.table` (``shadows``, ``attack``, ``online``,
        ``auc``, ``tpr_at_fpr_0.001``, ``tpr_at_fpr_0.01``), plus one ``loss`` row (``shadows`` 0: it needs none).
    shadows : ShadowStudy
    config : TransformerShadowConfig
    timings : dict
        ``minilm_shadow_cache_seconds`` and the shadow study's (``minilm_shadow_target_seconds``, ...).
    """

    table: pd.DataFrame
    shadows: object
    config: TransformerShadowConfig
    timings: dict = field(default_factory=dict)

    @property
    def n_shadows(self) -> int:
        """Shadow models trained (the largest budget)."""
        return max(self.config.shadow_counts)


def transformer_shadow_study(texts: Sequence[str], *, labels, config: TransformerShadowConfig = TransformerShadowConfig(),
                             progress: bool = False) -> TransformerShadowStudy:
    """Membership inference against fine-tuned MiniLM with shadow models: loss, LiRA and RMIA (offline and online).

    Steps (seeded by ``config.seed``): build the pretrained classifier (its head seeded), cache the frozen lower
    blocks' hidden states of every text once, then :func:`~.shadows.shadow_count_study` on the cached pool with
    each model a :class:`~.minilm_top.TopModel` (copies of the pretrained top blocks and a fresh head drawn after
    the model's seed is set): the target trains on a random half, the shadows on complementary halves. The loss
    attack is read from the same target.

    Parameters
    ----------
    texts : sequence of str
        The candidate pool.
    labels : array of int, one per text
    config : TransformerShadowConfig
    progress : bool
        A progress bar over the shadow models.

    Returns
    -------
    TransformerShadowStudy
    """
    from ..transformer import MiniLMClassifier, TokenizedTexts

    owner = "transformer_shadow_study"
    check(config, InstanceOf(TransformerShadowConfig), name="config", owner=owner)
    texts, y = class_labels(texts, labels, owner=owner)
    start = time.perf_counter()
    torch.manual_seed(config.seed)
    base = MiniLMClassifier(n_classes=max(int(y.max()) + 1, 2), layers=config.layers, seed=config.seed).eval()
    pool = TokenizedTexts(texts, y, max_len=config.max_len)
    packed = cache_hidden_states(base, pool, top_layers=config.top_layers)
    cache_seconds = time.perf_counter() - start

    def model_fn():
        return TopModel.from_classifier(base, top_layers=config.top_layers, new_head=True)

    study = shadow_count_study((packed, pool.y), config=config.shadow_config(), model_fn=model_fn, progress=progress)
    loss = A.loss_threshold_attack(study.target_outputs["loss"], is_member=study.is_member)
    loss_row = {"shadows": 0, "attack": "loss", "online": False, "auc": loss.auc, **{A.tpr_key(f): v for f, v in loss.tpr_at.items()}}
    table = pd.concat([pd.DataFrame([loss_row]), study.table], ignore_index=True)[["shadows", "attack", "online", "auc", *TPR_COLUMNS]]
    timings = {"minilm_shadow_cache_seconds": cache_seconds, **{f"minilm_shadow_{k}": v for k, v in study.timings.items()}}
    return TransformerShadowStudy(table=table, shadows=study, config=config, timings=timings)


def transformer_shadow_metrics(table: pd.DataFrame) -> dict:
    """Flat metrics of a :attr:`TransformerShadowStudy.table` for a run record: ``minilm_shadows/loss/auc`` (and its
    TPRs) and ``minilm_shadows/<attack>/k_<count>/auc``, ``.../tpr_at_fpr_0.001``, ``.../tpr_at_fpr_0.01``.

    Examples
    --------
    >>> t = pd.DataFrame({"shadows": [0, 4], "attack": ["loss", "lira-online"], "auc": [0.55, 0.6],
    ...                   "tpr_at_fpr_0.001": [0.0, 0.01], "tpr_at_fpr_0.01": [0.02, 0.05]})
    >>> sorted(transformer_shadow_metrics(t))[:2]
    ['minilm_shadows/lira_online/k_4/auc', 'minilm_shadows/lira_online/k_4/tpr_at_fpr_0.001']
    >>> transformer_shadow_metrics(t)["minilm_shadows/loss/auc"]
    0.55
    """
    return shadow_metrics(table, prefix="minilm_shadows", without_count=("loss",))
