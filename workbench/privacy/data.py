"""The tweet sentiment task as tensors, for the two model families of the DP studies.

``features="tokens"``: token ids for the from-scratch models of :mod:`workbench.textmodels` (no encoder).
``features="minilm"``: frozen all-MiniLM-L6-v2 sentence features (mean pooled, cached on disk by
:func:`workbench.datasets.encode_texts`) for a classifier head.

Examples
--------
>>> task = load_tweet_task(n=300, features="tokens", max_len=16)
>>> task.train[0].shape[1], task.n_classes, len(task.train[0]) + len(task.val[0])
(16, 3, 300)
>>> type(make_task_model("bag", task)).__name__
'BagOfEmbeddings'
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

__all__ = ["TweetTask", "load_tweet_task", "make_task_model", "MODEL_FAMILIES", "FEATURES"]

FEATURES = ("tokens", "minilm")
#: Model names accepted by :func:`make_task_model` and the features each needs.
MODEL_FAMILIES = {"bag": "tokens", "gru": "tokens", "linear": "minilm", "mlp": "minilm"}


@dataclass
class TweetTask:
    """Train/validation tensors of the tweet task and what built them."""

    train: tuple[torch.Tensor, torch.Tensor]
    val: tuple[torch.Tensor, torch.Tensor]
    features: str
    n_classes: int
    vocab: object = None  # workbench.textmodels.Vocabulary for token features
    train_texts: list | None = None
    val_texts: list | None = None

    @property
    def n_train(self) -> int:
        return len(self.train[1])


def load_tweet_task(*, size: str = "small", n: int | None = None, features: str = "tokens", max_len: int = 48,
                    max_vocab: int = 20000, val_fraction: float = 0.2, seed: int = 0, progress: bool | None = False) -> TweetTask:
    """Load tweets (:func:`workbench.datasets.load_tweets`), split them and turn them into tensors.

    Parameters
    ----------
    size, n : see :func:`workbench.datasets.load_tweets`.
    features : {"tokens", "minilm"}
    max_len, max_vocab : int
        Token features: tokens kept per tweet; vocabulary size (built on the training split only).
    val_fraction : float
        Share of rows held out for validation, in (0, 1).
    seed : int
        Seeds the subsample and the split.
    """
    from workbench.datasets import load_tweets

    if features not in FEATURES:
        raise ValueError(f"The 'features' parameter of load_tweet_task must be one of {FEATURES}. Got {features!r} instead.")
    if not 0 < val_fraction < 1:
        raise ValueError(f"The 'val_fraction' parameter of load_tweet_task must be in (0, 1). Got {val_fraction!r} instead.")
    df = load_tweets(size=size, n=n, seed=seed)
    texts = df["text"].tolist()
    labels = torch.tensor(df["label_id"].to_numpy(copy=True), dtype=torch.long)
    order = np.random.default_rng(seed).permutation(len(df))
    n_val = max(1, int(round(val_fraction * len(df))))
    val_idx, train_idx = order[:n_val], order[n_val:]
    train_texts = [texts[i] for i in train_idx]
    val_texts = [texts[i] for i in val_idx]
    vocab = None
    if features == "tokens":
        from workbench.textmodels import Vocabulary

        vocab = Vocabulary.build(train_texts, max_size=max_vocab)
        x_train, x_val = vocab.encode(train_texts, max_len=max_len), vocab.encode(val_texts, max_len=max_len)
    else:
        from workbench.datasets import encode_texts

        feats = torch.as_tensor(encode_texts(texts, progress=progress))
        x_train, x_val = feats[torch.as_tensor(train_idx)], feats[torch.as_tensor(val_idx)]
    return TweetTask(train=(x_train, labels[torch.as_tensor(train_idx)]), val=(x_val, labels[torch.as_tensor(val_idx)]),
                     features=features, n_classes=3, vocab=vocab, train_texts=train_texts, val_texts=val_texts)


def make_task_model(name: str, task: TweetTask, *, dim: int = 64, hidden: int = 64, dropout: float = 0.0, seed: int = 0) -> nn.Module:
    """A default model of family ``name`` for ``task``, initialised from ``seed``.

    ``"bag"``: :class:`~workbench.textmodels.BagOfEmbeddings`; ``"gru"``: :class:`~workbench.textmodels.RecurrentClassifier`;
    ``"linear"``: a linear head on MiniLM features; ``"mlp"``: one hidden layer of ``hidden`` units on MiniLM features.
    """
    if name not in MODEL_FAMILIES:
        raise ValueError(f"The 'name' parameter of make_task_model must be one of {sorted(MODEL_FAMILIES)}. Got {name!r} instead.")
    if MODEL_FAMILIES[name] != task.features:
        raise ValueError(f"Model {name!r} needs features={MODEL_FAMILIES[name]!r}; the task was built with features={task.features!r}.")
    torch.manual_seed(seed)
    if name == "bag":
        from workbench.textmodels import BagOfEmbeddings

        return BagOfEmbeddings(len(task.vocab), dim=dim, n_classes=task.n_classes, dropout=dropout)
    if name == "gru":
        from workbench.textmodels import RecurrentClassifier

        return RecurrentClassifier(len(task.vocab), dim=dim, hidden=hidden, n_classes=task.n_classes, dropout=dropout)
    from workbench.models import MLP

    return MLP(in_features=task.train[0].shape[1], out_features=task.n_classes,
               hidden=() if name == "linear" else (hidden,), dropout=dropout)
