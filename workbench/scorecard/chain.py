"""Notebook 09's model-update chain on text: tweet-sentiment classifiers v1 -> v2 -> v3, and DP variants.

=============  =======================================================================================================
version        what it is
=============  =======================================================================================================
``v1``         a linear head on frozen MiniLM sentence features (the deployed model), trained on the *old* tweets
``v2``         MiniLM fine-tuned on the same tweets (:class:`workbench.privacy.transformer.MiniLMClassifier`: the
               installed weights cut to the first ``encoder_layers`` blocks, a linear head on the masked mean of
               the token states; the last ``trainable_layers`` blocks and the head are trained, the rest frozen,
               :func:`workbench.privacy.trainable.select_trainable`), through the training front door
               (:func:`workbench.compatibility.pc_training.train_old_model` -> :func:`workbench.training.fit` /
               :func:`workbench.privacy.dp.train`)
``v3_no_pc``   v2's recipe from the pretrained weights again, on *all* tweets (old + new), plain cross-entropy: the
               usual update
``v3``         the same, with positive-congruent training: focal distillation from v2
               (:mod:`workbench.compatibility.pc_training`, ``alpha + beta * [v2 right]``)
``v2_dp``      v2 trained with DP-SGD at ``dp_epsilon`` (the fast engine of :mod:`workbench.privacy.dp`)
``v3_dp``      v3 (focal distillation from v2_dp) with DP-SGD at ``dp_epsilon``
=============  =======================================================================================================

Every version is evaluated on the same rows: held-out tweets (never trained on) plus sentences of the templated
evaluation corpus (:mod:`workbench.fairness.evaluation_corpus`), whose label is the sentence's valence (joy ->
positive; anger, fear, sadness -> negative; no emotion word -> neutral) and whose gender and race columns give the
demographic slices. The positivity score ``(1 + P(positive) - P(negative)) / 2`` of notebook 05 feeds the fairness
gaps. For membership inference each model's *members* are a sample of its own training tweets and its
*non-members* the held-out tweets; the attack score is minus the example's loss (the loss-threshold attack of
notebook 02).

:func:`run_chain` trains everything once and caches the outputs (not the models) under
``data/cache/scorecard/``; later calls with the same config read the cache in milliseconds.
"""
from __future__ import annotations

import functools
import hashlib
import json
import time
from dataclasses import asdict, dataclass, field

import numpy as np
import pandas as pd

from ..validation import Because, InstanceOf, Interval, check, check_fields
from .card import ModelOutputs

__all__ = ["VERSIONS", "ChainConfig", "UpdateChain", "run_chain", "corpus_labels", "CACHE_VERSION"]

VERSIONS = ("v1", "v2", "v3_no_pc", "v3", "v2_dp", "v3_dp")
#: Bump when the training recipe changes, so stale cached outputs are not reused.
CACHE_VERSION = 2  # 2: v2/v3 are fine-tuned MiniLM (1: bag-of-embeddings token models)
_VALENCE_TO_LABEL = {"negative": 0, "none": 1, "positive": 2}


@dataclass(frozen=True)
class ChainConfig:
    """Sizes and recipes of the update chain.

    Parameters
    ----------
    n_tweets : int
        Stratified sample of the tweets; ``eval_fraction`` of it is held out (evaluation rows and non-members).
    eval_fraction : float
    old_fraction : float
        Share of the training tweets that v1 and v2 saw (the rest arrives with the v3 update).
    words_per_emotion, names_per_group, noun_phrases : int
        Size of the evaluation-corpus subsample (:func:`~workbench.fairness.evaluation_corpus.subsample_corpus`).
    head_epochs : int
        Epochs of v1's head.
    encoder_layers : int
        MiniLM blocks kept for the fine-tuned versions (of 6; fewer is faster, as in notebook 02).
    trainable_layers : int
        Last blocks fine-tuned (with the head), at most ``encoder_layers``; the embeddings and earlier blocks stay
        frozen.
    finetune_epochs : int
        Epochs of every fine-tuning (v2, v3, DP variants).
    max_len : int
        MiniLM tokens kept per text (special tokens included).
    batch_size : int
        (Expected, with DP) batch size of the fine-tunings.
    lr : float
        Adam learning rate of v1's head (used as ``lr / 3``).
    finetune_lr, dp_lr : float
        Adam learning rates of the fine-tunings without / with DP.
    beta : float
        Focal distillation weight on examples the previous model got right (alpha is 1).
    dp_epsilon, delta : float
        Privacy budget of the DP variants.
    n_members : int
        Members sampled per model for the membership attack (at most its training-set size).
    seed : int

    Examples
    --------
    >>> ChainConfig(old_fraction=1.5)
    Traceback (most recent call last):
    ...
    workbench.validation.InvalidParameterError: The 'old_fraction' parameter of ChainConfig must be a float in (0, 1). Got 1.5 instead.
    >>> ChainConfig(encoder_layers=2, trainable_layers=3)
    Traceback (most recent call last):
    ...
    workbench.validation.InvalidParameterError: The 'trainable_layers' parameter of ChainConfig must be an int in [1, 2] (at most encoder_layers=2). Got 3 instead.
    """

    n_tweets: int = 3000
    eval_fraction: float = 0.25
    old_fraction: float = 0.5
    words_per_emotion: int = 2
    names_per_group: int = 5
    noun_phrases: int = 10
    head_epochs: int = 20
    encoder_layers: int = 2
    trainable_layers: int = 1
    finetune_epochs: int = 1
    max_len: int = 32
    batch_size: int = 32
    lr: float = 0.01
    finetune_lr: float = 5e-4
    dp_lr: float = 2e-3
    beta: float = 5.0
    dp_epsilon: float = 8.0
    delta: float = 1e-5
    n_members: int = 1000
    seed: int = 0

    def __post_init__(self):
        one, positive = Interval(int, 1, None), Interval(float, 0, None, closed="neither")
        check_fields(self, n_tweets=Interval(int, 60, None), eval_fraction=Interval(float, 0, 1, closed="neither"),
                     old_fraction=Interval(float, 0, 1, closed="neither"), words_per_emotion=Interval(int, 0, 5),
                     names_per_group=Interval(int, 0, 10), noun_phrases=Interval(int, 0, 10), head_epochs=one,
                     encoder_layers=Interval(int, 1, 6), trainable_layers=one, finetune_epochs=one,
                     max_len=Interval(int, 3, None), batch_size=one, lr=positive, finetune_lr=positive, dp_lr=positive,
                     beta=Interval(float, 0, None), dp_epsilon=positive, delta=Interval(float, 0, 1, closed="neither"),
                     n_members=Interval(int, 10, None), seed=Interval(int, 0, None))
        check_fields(self, trainable_layers=Because(Interval(int, 1, self.encoder_layers),
                                                    f"at most encoder_layers={self.encoder_layers}"))

    def cache_key(self) -> str:
        text = json.dumps({**asdict(self), "cache_version": CACHE_VERSION}, sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:16]


@dataclass
class UpdateChain:
    """The chain's outputs: what :func:`workbench.scorecard.scorecard` needs for any pair of versions.

    Attributes
    ----------
    outputs : {version: ModelOutputs}
    labels : numpy.ndarray
        Class id of every evaluation row.
    groups : pandas.DataFrame
        ``source`` ("tweet" / "corpus"), ``gender`` and ``race`` ("" where the row mentions none) per evaluation row.
    texts : list of str
        The evaluation rows' texts.
    info : pandas.DataFrame
        One row per version: ``trained_on`` (tweets), ``epsilon`` (NaN without DP), ``accuracy`` on the evaluation rows,
        ``seconds`` (training, 0 when read from the cache).
    config : ChainConfig
    from_cache : bool
    """

    outputs: dict
    labels: np.ndarray
    groups: pd.DataFrame
    texts: list
    info: pd.DataFrame
    config: ChainConfig
    from_cache: bool = False
    timings: dict = field(default_factory=dict)

    @property
    def versions(self) -> list[str]:
        return list(self.outputs)


def corpus_labels(valence) -> np.ndarray:
    """Tweet-label ids (negative 0, neutral 1, positive 2) of evaluation-corpus sentences from their valence.

    Examples
    --------
    >>> corpus_labels(["positive", "none", "negative"]).tolist()
    [2, 1, 0]
    """
    return np.array([_VALENCE_TO_LABEL[v] for v in valence], dtype=np.int64)


def _evaluation_rows(config: ChainConfig):
    from workbench.datasets import load_tweets
    from workbench.fairness.evaluation_corpus import load_evaluation_corpus, subsample_corpus

    tweets = load_tweets(n=config.n_tweets, seed=config.seed).reset_index(drop=True)
    rng = np.random.default_rng(config.seed)
    order = rng.permutation(len(tweets))
    n_eval = max(1, int(round(len(tweets) * config.eval_fraction)))
    eval_idx, train_idx = np.sort(order[:n_eval]), order[n_eval:]
    n_old = max(1, int(round(len(train_idx) * config.old_fraction)))
    corpus = subsample_corpus(load_evaluation_corpus(), words_per_emotion=config.words_per_emotion,
                              noun_phrases=config.noun_phrases, names_per_group=config.names_per_group)
    texts = tweets.text.iloc[eval_idx].tolist() + corpus.sentence.tolist()
    labels = np.r_[tweets.label_id.to_numpy()[eval_idx], corpus_labels(corpus.valence)]
    groups = pd.DataFrame({
        "source": ["tweet"] * len(eval_idx) + ["corpus"] * len(corpus),
        "gender": [""] * len(eval_idx) + corpus.gender.tolist(),
        "race": [""] * len(eval_idx) + [r if r != "unspecified" else "" for r in corpus.race],
    })
    return tweets, train_idx[:n_old], train_idx, eval_idx, texts, labels, groups


def _train_versions(config: ChainConfig, tweets, old_idx, all_idx, eval_texts, progress: bool) -> tuple[dict, dict, dict]:
    """Train every version; return {version: (eval logits, member logits, member labels)}, training sizes, seconds."""
    import torch

    from workbench.compatibility.pc_training import PCConfig, UpdateScenario, train_new_model, train_old_model
    from workbench.datasets import encode_texts
    from workbench.models import MLP
    from workbench.privacy.dp import DPConfig
    from workbench.training import TrainConfig, fit, predict

    texts = tweets.text.tolist()
    y = torch.as_tensor(np.array(tweets.label_id.to_numpy(), dtype=np.int64))
    rng = np.random.default_rng([config.seed, 9])
    out, sizes, seconds = {}, {}, {}

    def members_of(idx):
        return np.sort(rng.choice(idx, size=min(config.n_members, len(idx)), replace=False))

    # v1: linear head on frozen MiniLM features (standardised with the training rows' statistics)
    t = time.perf_counter()
    feats = encode_texts(texts, progress=progress)
    eval_feats = encode_texts(eval_texts, progress=progress)
    mean, scale = feats[old_idx].mean(0), feats[old_idx].std(0) + 1e-6
    Xf = torch.as_tensor((feats - mean) / scale)
    Xf_eval = torch.as_tensor((eval_feats - mean) / scale)
    torch.manual_seed(config.seed)
    head = MLP(in_features=Xf.shape[1], hidden=(), out_features=3)
    fit(head, (Xf[old_idx], y[old_idx]), config=TrainConfig(epochs=config.head_epochs, batch_size=128, lr=config.lr / 3,
                                                            weight_decay=1e-4, seed=config.seed), progress=progress)
    m = members_of(old_idx)
    out["v1"] = (predict(head, Xf_eval).numpy(), predict(head, Xf[m]).numpy(), y[m].numpy(), predict(head, Xf).numpy())
    sizes["v1"], seconds["v1"] = len(old_idx), time.perf_counter() - t

    # fine-tuned MiniLM: texts as token ids padded to the longest (the model trims the padding of each batch)
    from workbench.privacy.transformer import TokenizedTexts

    tokens = TokenizedTexts(texts + list(eval_texts), [0] * (len(texts) + len(eval_texts)), max_len=config.max_len)
    all_ids = tokens.batch(torch.arange(len(tokens)))[0]
    ids, ids_eval = all_ids[: len(texts)], all_ids[len(texts):]

    def make(seed):
        return _finetuned_minilm(config, seed=seed, pad_id=tokens.pad_id)

    def scenario(lr):
        return UpdateScenario(old_fraction=1.0, new_fraction=1.0, old_epochs=config.finetune_epochs,
                              new_epochs=config.finetune_epochs, lr=lr, batch_size=config.batch_size)

    dp = DPConfig(target_epsilon=config.dp_epsilon, delta=config.delta)
    old_data, all_data = (ids[old_idx], y[old_idx]), (ids[all_idx], y[all_idx])
    focal = PCConfig(method="focal_distillation", alpha=1.0, beta=config.beta)
    plans = [  # (version, training rows, train, distillation source: its logits on every training tweet are kept)
        ("v2", old_idx, lambda: train_old_model(old_data, scenario=scenario(config.finetune_lr), seed=config.seed + 1,
                                                model_fn=make, progress=progress), True),
        ("v3_no_pc", all_idx, lambda: train_new_model(all_data, scenario=scenario(config.finetune_lr), pc=PCConfig(method="none"),
                                                      seed=config.seed + 2, model_fn=make, progress=progress), False),
        ("v3", all_idx, lambda: train_new_model(all_data, scenario=scenario(config.finetune_lr), seed=config.seed + 2, model_fn=make,
                                                pc=focal, old_logits=torch.as_tensor(out["v2"][3][all_idx]), progress=progress), False),
        ("v2_dp", old_idx, lambda: train_old_model(old_data, scenario=scenario(config.dp_lr), seed=config.seed + 1, model_fn=make,
                                                   dp=dp, progress=progress), True),
        ("v3_dp", all_idx, lambda: train_new_model(all_data, scenario=scenario(config.dp_lr), seed=config.seed + 2, model_fn=make,
                                                   dp=dp, pc=focal, old_logits=torch.as_tensor(out["v2_dp"][3][all_idx]),
                                                   progress=progress), False),
    ]
    for name, idx, train_fn, source in plans:
        t = time.perf_counter()
        model = train_fn()
        m = members_of(idx)
        every = predict(model, ids, batch_size=256).numpy() if source else None
        out[name] = (predict(model, ids_eval, batch_size=256).numpy(),
                     every[m] if source else predict(model, ids[m], batch_size=256).numpy(), y[m].numpy(), every)
        sizes[name], seconds[name] = len(idx), time.perf_counter() - t
    return out, sizes, seconds


@functools.lru_cache(maxsize=1)
def _trim_padding_class():
    from torch import nn

    class TrimPadding(nn.Module):
        """Wraps a :class:`~workbench.privacy.transformer.MiniLMClassifier`: drops the columns that are padding in
        every row of the batch (exact: the model masks padding), so fixed-width id tensors cost what dynamic padding
        costs."""

        def __init__(self, model, *, pad_id: int):
            super().__init__()
            self.model, self.pad_id = model, int(pad_id)

        def forward(self, ids):
            used = (ids != self.pad_id).any(0).nonzero()
            width = int(used.max()) + 1 if len(used) else 1
            return self.model(ids[:, :width])

    return TrimPadding


def _finetuned_minilm(config: "ChainConfig", *, seed: int, pad_id: int):
    """A fresh MiniLM classifier from the installed weights with its last ``trainable_layers`` blocks and head trainable."""
    from workbench.privacy.trainable import select_trainable
    from workbench.privacy.transformer import MiniLMClassifier

    model = MiniLMClassifier(n_classes=3, layers=config.encoder_layers, seed=seed)
    select_trainable(model, part="last_layers", last_layers=config.trainable_layers)
    return _trim_padding_class()(model, pad_id=pad_id)


def _cache_path(config: ChainConfig):
    from workbench.datasets._sources import cache_dir

    return cache_dir() / "scorecard" / f"chain-{config.cache_key()}.npz"


def run_chain(config: ChainConfig = ChainConfig(), *, cache: bool = True, progress: bool = False) -> UpdateChain:
    """Train the chain (or read its cached outputs) and return every version's outputs on the shared evaluation rows.

    The cache file is named by the config's :meth:`ChainConfig.cache_key` (every field and :data:`CACHE_VERSION`), so
    changing any setting trains anew. ``tests/scorecard/test_chain.py`` runs it on notebook 09's smoke settings
    (training takes seconds there, minutes at the defaults).

    Examples
    --------
    >>> ChainConfig(seed=1).cache_key() != ChainConfig(seed=2).cache_key(), len(ChainConfig().cache_key())
    (True, 16)
    """
    import torch

    from workbench.privacy.attacks import per_example_loss
    from workbench.fairness.classifier import positivity

    check(config, InstanceOf(ChainConfig), name="config", owner="run_chain")
    start = time.perf_counter()
    tweets, old_idx, all_idx, eval_idx, texts, labels, groups = _evaluation_rows(config)
    path = _cache_path(config)
    from_cache = cache and path.exists()
    if from_cache:
        with np.load(path, allow_pickle=False) as data:
            raw = {v: (data[f"{v}/eval"], data[f"{v}/members"], data[f"{v}/member_labels"]) for v in VERSIONS}
            meta = json.loads(str(data["meta"]))
        sizes, seconds = meta["sizes"], {v: 0.0 for v in VERSIONS}
    else:
        with torch.random.fork_rng():
            raw4, sizes, seconds = _train_versions(config, tweets, old_idx, all_idx, texts, progress)
        raw = {v: r[:3] for v, r in raw4.items()}
        if cache:
            path.parent.mkdir(parents=True, exist_ok=True)
            arrays = {f"{v}/{k}": a for v, r in raw.items() for k, a in zip(("eval", "members", "member_labels"), r)}
            tmp = path.with_name(path.name + ".tmp.npz")
            np.savez_compressed(tmp, meta=json.dumps({"sizes": sizes, "config": asdict(config)}), **arrays)
            tmp.replace(path)
    n_tweet_eval = len(eval_idx)
    outputs, rows = {}, []
    for v in VERSIONS:
        eval_logits, member_logits, member_labels = raw[v]
        probs = torch.softmax(torch.as_tensor(eval_logits), -1).numpy()
        nonmember_loss = per_example_loss(eval_logits[:n_tweet_eval], labels=labels[:n_tweet_eval])
        member_loss = per_example_loss(member_logits, labels=member_labels)
        outputs[v] = ModelOutputs(pred=eval_logits.argmax(1), score=positivity(probs), member_scores=-member_loss,
                                  nonmember_scores=-nonmember_loss)
        rows.append({"version": v, "trained_on": int(sizes[v]), "dp": v.endswith("_dp"),
                     "epsilon": config.dp_epsilon if v.endswith("_dp") else float("nan"),
                     "accuracy": float((outputs[v].pred == labels).mean()),
                     "tweet_accuracy": float((outputs[v].pred[:n_tweet_eval] == labels[:n_tweet_eval]).mean()),
                     "seconds": float(seconds[v])})
    info = pd.DataFrame(rows).set_index("version")
    return UpdateChain(outputs=outputs, labels=labels, groups=groups, texts=texts, info=info, config=config, from_cache=from_cache,
                       timings={"chain_seconds": time.perf_counter() - start})
