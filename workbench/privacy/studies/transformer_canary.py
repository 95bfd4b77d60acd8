"""Canary extraction from fine-tuned MiniLM (Parikh, Dupuy and Gupta, "Canary extraction in natural language
understanding models", ACL 2022): :func:`invert_canary` (the attack) and :func:`transformer_canary_study`.

The attacker has the fine-tuned classifier's weights (open box), the canary's pattern (``"my pin code is"`` followed by
``n`` digits) and its label, but not the digits. As in the paper, each secret position gets a vector of logits over the
candidate tokens (the ten digit tokens of MiniLM's vocabulary); the model is fed the softmax-weighted mix of those
tokens' *word embeddings* at that position (BERT then adds position embeddings and normalises as for any token), and
the logits are optimised with Adam to minimise the cross-entropy of the canary's label, with an annealed temperature
and several random restarts; the argmax digits are read out. Like the GRU attack of
:func:`workbench.privacy.canaries.extract_canary`, each restart's code is then polished by exact coordinate descent on
hard codes (``refine``) and the restart whose code has the lowest loss wins, so the two attacks compare like for like.

Only the top block(s) and the head are fine-tuned, on hidden states of the frozen lower blocks computed once
(:mod:`~.minilm_top`); the attack differentiates through the whole classifier (frozen bottom and fine-tuned top).
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
import pandas as pd
import torch
from torch import nn

from workbench.results import metric_key
from workbench.validation import InstanceOf, Interval, Options, Seq, check, check_fields

from .. import canaries as C
from ._labels import NON_DP, _epsilon_label, metric_label
from .canary import labelled_split
from .minilm_top import TopModel, cache_hidden_states, forward_embeddings

__all__ = ["canary_token_ids", "code_losses", "invert_canary", "TransformerCanaryConfig", "TransformerCanaryStudy",
           "transformer_canary_study", "canary_recovery", "transformer_canary_metrics"]

_POSITIVE = Interval(float, 0, None, closed="neither")


def _tokenizer(tokenizer):
    if tokenizer is not None:
        return tokenizer
    from workbench.datasets import load_encoder

    return load_encoder("minilm").tokenizer


def canary_token_ids(canary: C.Canary, *, tokenizer=None) -> tuple[list, list, list]:
    """``(head, digits, tail)`` token ids of the canary's text for MiniLM: ``[CLS]`` + the prefix, the ten digit
    tokens ``0``..``9``, and ``[SEP]``; the text of code ``d1 .. dn`` is ``head + [digits[d1], ..., digits[dn]] + tail``.

    Examples
    --------
    >>> c = C.Canary(prefix="my pin code is", code=(3, 9), label=0, repetitions=1)
    >>> head, digits, tail = canary_token_ids(c)
    >>> from workbench.datasets import load_encoder
    >>> load_encoder("minilm").tokenizer(c.text)["input_ids"] == head + [digits[3], digits[9]] + tail
    True
    """
    tok = _tokenizer(tokenizer)
    ids = tok(canary.prefix)["input_ids"]  # [CLS] prefix [SEP]
    digits = tok.convert_tokens_to_ids(list(C.DIGIT_TOKENS))
    if tok.unk_token_id in digits:
        raise ValueError("The tokenizer has no single token for every digit 0-9.")
    return ids[:-1], list(digits), ids[-1:]


def _code_ids(canary, codes, tokenizer) -> torch.Tensor:
    head, digits, tail = canary_token_ids(canary, tokenizer=tokenizer)
    codes = torch.as_tensor(np.asarray(codes), dtype=torch.long)
    if codes.ndim != 2 or codes.shape[1] != canary.n_digits:
        raise ValueError(f"The 'codes' parameter must have shape (m, {canary.n_digits}). Got {tuple(codes.shape)} instead.")
    m = len(codes)
    return torch.cat([torch.tensor(head).expand(m, -1), torch.tensor(digits)[codes], torch.tensor(tail).expand(m, -1)], dim=1)


@torch.no_grad()
def code_losses(model, top: TopModel, *, canary: C.Canary, codes, tokenizer=None, batch_size: int = 256) -> np.ndarray:
    """Cross-entropy of ``canary.label`` for the canary's pattern filled with each code (rows of ``codes``), under the
    classifier made of ``model``'s frozen bottom and ``top`` (both in eval mode).

    With ``codes = canaries.candidate_codes(n)`` this ranks the whole code space (the exhaustive attack, and the
    canary's exposure), affordable up to 3-4 digits.
    """
    ids = _code_ids(canary, codes, tokenizer)
    out = []
    with C.frozen(model, top):
        for start in range(0, len(ids), batch_size):
            chunk = ids[start : start + batch_size]
            logits = forward_embeddings(model, top, model.bert.embeddings.word_embeddings(chunk)).double()
            out.append((torch.logsumexp(logits, 1) - logits[:, canary.label]).numpy())
    return np.concatenate(out) if out else np.empty(0)


def invert_canary(model, top: TopModel, *, canary: C.Canary, tokenizer=None, steps: int = 60, restarts: int = 4,
                  lr: float = 0.3, method: str = "softmax", temperature: tuple = (1.0, 0.1), refine: bool = True,
                  seed: int = 0) -> C.ExtractionResult:
    """Recover the canary's digits from the fine-tuned classifier by a continuous relaxation over the digit tokens'
    embeddings (Parikh et al. 2022), then the argmax.

    Parameters
    ----------
    model : MiniLMClassifier
        Its embeddings and frozen lower blocks (the bottom under ``top``).
    top : TopModel
        The fine-tuned top block(s) and head.
    canary : Canary
        The attack uses its ``prefix``, ``n_digits`` and ``label``; its ``code`` only scores the result.
    tokenizer : optional
        MiniLM's by default.
    steps, restarts, lr : int, int, float
        Adam steps, random restarts (optimised together as one batch), learning rate.
    method : {"softmax", "gumbel"}
        The relaxation: a tempered softmax, or Gumbel-softmax samples (Jang et al. 2017; Parikh et al.'s choice).
    temperature : (start, end)
        Of the softmax over the ten digits, annealed geometrically over the steps.
    refine : bool
        Polish each restart's argmax code by exact coordinate descent on hard codes.
    seed : int
        The restarts' initial logits.

    Returns
    -------
    workbench.privacy.canaries.ExtractionResult
    """
    owner = "invert_canary"
    check(canary, InstanceOf(C.Canary), name="canary", owner=owner)
    check(top, InstanceOf(TopModel), name="top", owner=owner)
    steps = check(steps, Interval(int, 1, None), name="steps", owner=owner)
    restarts = check(restarts, Interval(int, 1, None), name="restarts", owner=owner)
    lr = check(lr, _POSITIVE, name="lr", owner=owner)
    method = check(method, Options(C.EXTRACTION_METHODS), name="method", owner=owner)
    temperature = check(temperature, Seq(_POSITIVE, min_len=2), name="temperature", owner=owner)
    if len(temperature) != 2:
        raise ValueError(f"The 'temperature' parameter of {owner} must be two positive floats (start, end). Got {temperature!r} instead.")
    tokenizer = _tokenizer(tokenizer)
    head, digits, tail = canary_token_ids(canary, tokenizer=tokenizer)
    gen = torch.Generator().manual_seed(int(check(seed, Interval(int, 0, None), name="seed", owner=owner)))
    with C.frozen(model, top):
        table = model.bert.embeddings.word_embeddings.weight
        head_emb = table[head].expand(restarts, -1, -1)
        tail_emb = table[tail].expand(restarts, -1, -1)
        digit_emb = table[digits]  # (10, D)
        target = torch.full((restarts,), canary.label, dtype=torch.long)

        def loss_fn(weights):
            logits = forward_embeddings(model, top, torch.cat([head_emb, weights @ digit_emb, tail_emb], dim=1))
            return nn.functional.cross_entropy(logits, target)

        codes = C.relaxed_digit_search(loss_fn, n_digits=canary.n_digits, steps=steps, restarts=restarts, lr=lr,
                                       method=method, temperature=tuple(temperature), generator=gen)
    return C.extraction_result(codes, canary=canary, refine=refine,
                               losses=lambda c: code_losses(model, top, canary=canary, codes=c, tokenizer=tokenizer))


# ------------------------------------------------------------------------------------------------ the study
@dataclass(frozen=True)
class TransformerCanaryConfig:
    """How :func:`transformer_canary_study` plants canaries, fine-tunes MiniLM and extracts them.

    ``canaries_per_count`` canaries per entry of ``repetitions`` (each with its own text pattern of
    :data:`~workbench.privacy.canaries.PREFIXES` and a random ``n_digits``-digit code; at most 8 canaries in all),
    inserted into the training tweets (a random ``val_fraction`` is held out). The classifier keeps MiniLM's first
    ``layers`` blocks; its top ``top_layers`` blocks and head are fine-tuned on cached hidden states with Adam for
    ``epochs`` of ``batch_size`` at ``lr`` without DP, and at ``dp_lr`` with DP-SGD (the fast engine) for each of
    ``epsilons`` at ``delta``. Texts are cut to ``max_len`` tokens. The attack: :func:`invert_canary` with
    ``extraction_steps``, ``extraction_restarts`` and the ``extraction_method`` relaxation (Gumbel-softmax, as the
    paper and the GRU study use).

    Examples
    --------
    >>> TransformerCanaryConfig(repetitions=[1, 16], epsilons=8).epsilons
    (8.0,)
    >>> TransformerCanaryConfig(repetitions=[1, 8, 64], canaries_per_count=3)
    Traceback (most recent call last):
    ...
    ValueError: TransformerCanaryConfig plants 9 canaries; at most 8 fit (one text pattern each). Lower 'canaries_per_count' or 'repetitions'.
    """

    repetitions: tuple = (1, 8, 64)
    canaries_per_count: int = 2
    n_digits: int = 4
    epsilons: tuple = (1.0, 8.0)
    layers: int | None = 2
    top_layers: int = 1
    epochs: int = 3
    batch_size: int = 32
    lr: float = 1e-3
    dp_lr: float = 2e-3
    delta: float = 1e-5
    max_len: int = 32
    val_fraction: float = 0.2
    extraction_steps: int = 60
    extraction_restarts: int = 4
    extraction_method: str = "gumbel"
    seed: int = 0

    def __post_init__(self):
        for name in ("repetitions", "epsilons"):
            if isinstance(getattr(self, name), (int, float, np.integer, np.floating)):
                object.__setattr__(self, name, (getattr(self, name),))
        one = Interval(int, 1, None)
        check_fields(self, repetitions=Seq(one, min_len=1), canaries_per_count=one, n_digits=Interval(int, 1, 7),
                     epsilons=Seq(_POSITIVE), layers=(Interval(int, 1, 6), None), top_layers=one, epochs=one, batch_size=one,
                     lr=_POSITIVE, dp_lr=_POSITIVE, delta=Interval(float, 0, 1, closed="neither"), max_len=Interval(int, 3, None),
                     val_fraction=Interval(float, 0, 1, closed="neither"), extraction_steps=one, extraction_restarts=one,
                     extraction_method=Options(C.EXTRACTION_METHODS), seed=Interval(int, 0, None))
        n = len(self.repetitions) * self.canaries_per_count
        if n > len(C.PREFIXES):
            raise ValueError(f"TransformerCanaryConfig plants {n} canaries; at most {len(C.PREFIXES)} fit (one text pattern each). "
                             "Lower 'canaries_per_count' or 'repetitions'.")
        if self.top_layers > (self.layers or 6):
            raise ValueError(f"The 'top_layers' parameter of TransformerCanaryConfig must be at most 'layers' ({self.layers or 6}). "
                             f"Got {self.top_layers} instead.")
        if len({_epsilon_label(e) for e in self.epsilons}) != len(self.epsilons):
            raise ValueError(f"The 'epsilons' parameter of TransformerCanaryConfig must not repeat a value. Got {self.epsilons!r} instead.")


@dataclass
class TransformerCanaryStudy:
    """What :func:`transformer_canary_study` measured.

    Attributes
    ----------
    table : pandas.DataFrame
        One row per (model, canary): ``model`` ("non-DP", "eps=1", ...), ``epsilon`` (spent; NaN without DP),
        ``canary`` (index), ``repetitions``, ``label``, ``true`` and ``extracted`` codes, ``digit_accuracy``, ``exact``,
        ``extracted_loss``, ``canary_loss``, ``prefers_other`` (the extracted code has a strictly lower loss than the
        secret: the model has not singled the secret out, so even a perfect search would miss it) and the model's
        ``val_accuracy``.
    canaries : list of Canary
    models : {model label: TopModel}
    config : TransformerCanaryConfig
    timings : dict
        ``minilm_canary_cache_seconds``, ``minilm_canary_training_seconds``, ``minilm_canary_attack_seconds``.
    """

    table: pd.DataFrame
    canaries: list
    models: dict
    config: TransformerCanaryConfig
    timings: dict = field(default_factory=dict)

    @property
    def recovery(self) -> pd.DataFrame:
        """Whole-code recovery rate and digits recovered per model and repetition count (:func:`canary_recovery`)."""
        return canary_recovery(self.table)


def transformer_canary_study(texts: Sequence[str], *, labels,
                             config: TransformerCanaryConfig = TransformerCanaryConfig()) -> TransformerCanaryStudy:
    """Plant canaries in tweets, fine-tune MiniLM's top without DP and at each epsilon, and extract every canary.

    Steps (seeded by ``config.seed``): hold out ``val_fraction`` of the texts; draw the canaries (codes with
    ``seed + 1``, labels cycling over the classes) and insert their copies into the rest; cache the frozen lower
    blocks' hidden states of the training and held-out texts once; for each model (non-DP first, then each epsilon:
    noise fixed by the accountant for the training set's size) fine-tune a fresh :class:`~.minilm_top.TopModel`
    through :func:`workbench.privacy.dp.train` and run :func:`invert_canary` on every canary.

    Parameters
    ----------
    texts : sequence of str
    labels : array of int, one per text
    config : TransformerCanaryConfig

    Returns
    -------
    TransformerCanaryStudy
    """
    from workbench.training import TrainConfig, evaluate

    from ..dp import DPConfig, train
    from ..transformer import MiniLMClassifier, TokenizedTexts

    owner = "transformer_canary_study"
    check(config, InstanceOf(TransformerCanaryConfig), name="config", owner=owner)
    texts, y, is_val = labelled_split(texts, labels, owner=owner, seed=config.seed, val_fraction=config.val_fraction)
    seed = config.seed
    n_classes = max(int(y.max()) + 1, 2)
    reps = [r for r in config.repetitions for _ in range(config.canaries_per_count)]
    canaries = C.make_canaries(repetitions=reps, n_digits=config.n_digits, label=[i % n_classes for i in range(len(reps))],
                               seed=seed + 1)
    data = C.insert_canaries([t for t, v in zip(texts, is_val) if not v], labels=y[~is_val], canaries=canaries, seed=seed)
    start = time.perf_counter()
    torch.manual_seed(seed)
    base = MiniLMClassifier(n_classes=n_classes, layers=config.layers, seed=seed).eval()
    tokenizer_texts = TokenizedTexts(data.texts, data.labels, max_len=config.max_len)
    train_xy = (cache_hidden_states(base, tokenizer_texts, top_layers=config.top_layers), torch.as_tensor(data.labels))
    val_texts = TokenizedTexts([t for t, v in zip(texts, is_val) if v], y[is_val], max_len=config.max_len)
    val_xy = (cache_hidden_states(base, val_texts, top_layers=config.top_layers), val_texts.y)
    cache_seconds = time.perf_counter() - start
    train_seconds = attack_seconds = 0.0
    rows, models = [], {}
    for eps in [None, *config.epsilons]:
        start = time.perf_counter()
        dp = None if eps is None else DPConfig(target_epsilon=eps, delta=config.delta)  # the accountant sets the noise
        torch.manual_seed(seed)
        top = TopModel.from_classifier(base, top_layers=config.top_layers)
        cfg = TrainConfig(epochs=config.epochs, batch_size=config.batch_size, lr=config.lr if dp is None else config.dp_lr, seed=seed)
        res = train(top, train_xy, config=cfg, dp=dp, progress=False)
        label = NON_DP if eps is None else _epsilon_label(eps)
        models[label] = top
        accuracy = evaluate(top, val_xy)["accuracy"]
        train_seconds += time.perf_counter() - start
        start = time.perf_counter()
        for i, c in enumerate(canaries):
            ext = invert_canary(base, top, canary=c, steps=config.extraction_steps, restarts=config.extraction_restarts,
                                method=config.extraction_method, seed=seed)
            rows.append({"model": label, "epsilon": res.epsilon if res.epsilon is not None else float("nan"), "canary": i,
                         "repetitions": c.repetitions, "label": c.label, **ext.summary(),
                         "prefers_other": ext.extracted_loss < ext.canary_loss, "val_accuracy": accuracy})
        attack_seconds += time.perf_counter() - start
    table = pd.DataFrame(rows, columns=["model", "epsilon", "canary", "repetitions", "label", "extracted", "true", "digit_accuracy",
                                        "exact", "extracted_loss", "canary_loss", "prefers_other", "val_accuracy"])
    return TransformerCanaryStudy(table=table, canaries=canaries, models=models, config=config,
                                  timings={"minilm_canary_cache_seconds": cache_seconds,
                                           "minilm_canary_training_seconds": train_seconds,
                                           "minilm_canary_attack_seconds": attack_seconds})


def canary_recovery(table: pd.DataFrame) -> pd.DataFrame:
    """Whole-code recovery rate and mean digits recovered per (model, repetitions) of a canary table
    (:attr:`TransformerCanaryStudy.table`, or the GRU's :attr:`~.canary.CanaryStudy.table` with ``variant`` for
    ``model``): columns ``model``, ``repetitions``, ``canaries``, ``exact_rate``, ``digit_accuracy``.

    Examples
    --------
    >>> t = pd.DataFrame({"model": ["non-DP"] * 3, "repetitions": [8, 8, 1], "exact": [True, False, False],
    ...                   "digit_accuracy": [1.0, 0.5, 0.25]})
    >>> canary_recovery(t).to_dict("records")[1]
    {'model': 'non-DP', 'repetitions': 8, 'canaries': 2, 'exact_rate': 0.5, 'digit_accuracy': 0.75}
    """
    t = table.rename(columns={"variant": "model"}) if "variant" in table and "model" not in table else table
    out = (t.assign(exact=t["exact"].astype(float))
           .groupby(["model", "repetitions"], sort=False)
           .agg(canaries=("exact", "size"), exact_rate=("exact", "mean"), digit_accuracy=("digit_accuracy", "mean"))
           .reset_index())
    order = {m: i for i, m in enumerate(dict.fromkeys(t["model"]))}
    return out.sort_values(["model", "repetitions"], key=lambda s: s.map(order) if s.name == "model" else s,
                           ignore_index=True)


def transformer_canary_metrics(table: pd.DataFrame) -> dict:
    """Flat metrics of a :attr:`TransformerCanaryStudy.table` for a run record:
    ``minilm_canary/<model>/repetitions_<r>/exact_rate`` and ``.../digit_accuracy`` (means over that count's canaries).

    Examples
    --------
    >>> t = pd.DataFrame({"model": ["eps=8"], "repetitions": [64], "exact": [True], "digit_accuracy": [1.0]})
    >>> transformer_canary_metrics(t)
    {'minilm_canary/epsilon_8/repetitions_64/exact_rate': 1.0, 'minilm_canary/epsilon_8/repetitions_64/digit_accuracy': 1.0}
    """
    metrics = {}
    for r in canary_recovery(table).to_dict("records"):
        key = metric_key("minilm_canary", metric_label(r["model"]), f"repetitions_{r['repetitions']}")
        metrics[f"{key}/exact_rate"] = r["exact_rate"]
        metrics[f"{key}/digit_accuracy"] = r["digit_accuracy"]
    return metrics
