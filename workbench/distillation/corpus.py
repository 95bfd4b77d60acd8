"""Distillation text: the corpus cut into short passages of about ``seq_len`` tokens, split into training and
held-out documents, and tokenised into fixed-length rows.

Passages are cut on tokens (so their length is known) and decoded back to text, because counterfactual
augmentation works on text: a swapped passage is tokenised again and may come out a token longer or shorter,
which the padding absorbs.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

__all__ = ["Passages", "make_passages", "tokenize_passages"]


@dataclass
class Passages:
    """Training and held-out passages (text) cut from disjoint documents."""

    train: list
    heldout: list


def make_passages(corpus: pd.DataFrame, tokenizer, *, seq_len: int, heldout_share: float = 0.1, seed: int = 0) -> Passages:
    """Cut every document of ``corpus`` (a :func:`workbench.datasets.load_corpus` frame) into passages of
    ``seq_len - 4`` tokens (the last, shorter piece of a document is kept when it has at least ``seq_len // 2``
    tokens), after putting a ``heldout_share`` of the documents (drawn with ``seed``) aside for perplexity.

    Passages keep the order of the documents; the training passages are shuffled later, by the study's seed.
    """
    from workbench.validation import Interval, check

    check(seq_len, Interval(int, 8, None), name="seq_len", owner="make_passages")
    check(heldout_share, Interval(float, 0, 1, closed="neither"), name="heldout_share", owner="make_passages")
    rng = np.random.default_rng(seed)
    n = len(corpus)
    heldout_docs = set(rng.choice(n, max(1, int(round(heldout_share * n))), replace=False).tolist()) if n > 1 else set()
    piece = seq_len - 4
    train, heldout = [], []
    for i, text in enumerate(corpus["text"].tolist()):
        ids = tokenizer.encode(text, add_special_tokens=False)
        for start in range(0, len(ids), piece):
            chunk = ids[start:start + piece]
            if len(chunk) >= min(piece, max(seq_len // 2, 1)):
                (heldout if i in heldout_docs else train).append(tokenizer.decode(chunk).strip())
    return Passages(train=train, heldout=heldout)


def tokenize_passages(texts, tokenizer, *, seq_len: int):
    """``(input_ids, attention_mask)``: int64 tensors of shape (len(texts), seq_len), right-padded, truncated."""
    enc = tokenizer(list(texts), padding="max_length", truncation=True, max_length=seq_len, return_tensors="pt",
                    add_special_tokens=False)
    return enc["input_ids"], enc["attention_mask"]
