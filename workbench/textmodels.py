"""From-scratch text models: a tokenizer, a vocabulary and two DP-compatible token classifiers.

The models follow the small NLU models of the eDP-SGD paper (an embedding layer, a pooling or recurrent
encoder and a linear head). They are built only from ``nn.Embedding`` and ``nn.Linear`` layers, so
Opacus (hooks and ghost clipping) and the workbench's fast DP engine (:mod:`workbench.privacy.fast_dp`)
can clip their per-sample gradients. The GRU is unrolled over time with two ``nn.Linear`` layers
(input and hidden projections, PyTorch's gate layout), which is what makes per-sample clipping possible.

Every model exposes ``embed(ids) -> (N, L, D)`` and ``classify(embedded, mask) -> logits`` with
``forward(ids) == classify(embed(ids), ids != 0)``, so model inversion can feed soft embeddings.

Examples
--------
>>> vocab = Vocabulary.build(["a good day", "a bad day"])
>>> ids = vocab.encode(["a good day"], max_len=5)
>>> ids.tolist()
[[2, 5, 3, 0, 0]]
>>> vocab.decode(ids[0])
['a', 'good', 'day']
>>> BagOfEmbeddings(len(vocab), dim=8)(ids).shape
torch.Size([1, 3])
"""
from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Iterable, Sequence

import torch
from torch import nn

from workbench.validation import Interval, check

__all__ = ["tokenize", "Vocabulary", "BagOfEmbeddings", "RecurrentClassifier", "PAD", "UNK"]

PAD, UNK = "<pad>", "<unk>"
_TOKEN = re.compile(r"[a-z]+(?:'[a-z]+)?|\d+|[^\sa-z\d]")


def tokenize(text: str) -> list[str]:
    """Lowercase ``text`` and split it into words, digit runs and single punctuation marks.

    Examples
    --------
    >>> tokenize("Don't PANIC: call 555-0199!")
    ["don't", 'panic', ':', 'call', '555', '-', '0199', '!']
    """
    return _TOKEN.findall(str(text).lower())


@dataclass
class Vocabulary:
    """Token <-> id mapping; id 0 is ``<pad>``, id 1 is ``<unk>``, then tokens by decreasing frequency."""

    id_to_token: list[str] = field(default_factory=lambda: [PAD, UNK])
    token_to_id: dict[str, int] = field(default_factory=dict)

    def __post_init__(self):
        if self.id_to_token[:2] != [PAD, UNK]:
            raise ValueError(f"The 'id_to_token' parameter of Vocabulary must start with {[PAD, UNK]}. Got {self.id_to_token[:2]} instead.")
        if not self.token_to_id:
            self.token_to_id = {tok: i for i, tok in enumerate(self.id_to_token)}

    @classmethod
    def build(cls, texts: Iterable[str], *, max_size: int = 20000, min_freq: int = 1) -> "Vocabulary":
        """Vocabulary of the ``max_size`` most frequent tokens (ids included) seen at least ``min_freq`` times.

        Ties in frequency are broken alphabetically, so the same texts always give the same ids.
        """
        max_size = check(max_size, Interval(int, 3, None), name="max_size", owner="Vocabulary.build")
        min_freq = check(min_freq, Interval(int, 1, None), name="min_freq", owner="Vocabulary.build")
        if isinstance(texts, str):
            raise ValueError("The 'texts' parameter of Vocabulary.build must be a sequence of strings, not one string.")
        counts = Counter(tok for text in texts for tok in tokenize(text))
        ranked = sorted((t for t, c in counts.items() if c >= min_freq and t not in (PAD, UNK)), key=lambda t: (-counts[t], t))
        return cls(id_to_token=[PAD, UNK] + ranked[: max_size - 2])

    def __len__(self) -> int:
        return len(self.id_to_token)

    def encode(self, texts: Sequence[str], *, max_len: int = 48) -> torch.Tensor:
        """Token ids of ``texts`` as a ``LongTensor (N, max_len)``: truncated, right-padded with 0, unknown -> 1."""
        max_len = check(max_len, Interval(int, 1, None), name="max_len", owner="Vocabulary.encode")
        if isinstance(texts, str):
            texts = [texts]
        out = torch.zeros(len(texts), max_len, dtype=torch.long)
        unk = self.token_to_id[UNK]
        for row, text in enumerate(texts):
            ids = [self.token_to_id.get(tok, unk) for tok in tokenize(text)[:max_len]]
            if ids:
                out[row, : len(ids)] = torch.tensor(ids, dtype=torch.long)
        return out

    def decode(self, ids) -> list[str]:
        """Tokens of one id sequence, padding dropped."""
        ids = ids.tolist() if hasattr(ids, "tolist") else list(ids)
        return [self.id_to_token[i] for i in ids if i != 0]


def _sizes(owner: str, **values) -> list[int]:
    return [check(value, Interval(int, 1, None), name=name, owner=owner) for name, value in values.items()]


class BagOfEmbeddings(nn.Module):
    """Embedding -> masked mean over the tokens -> dropout -> linear head.

    Examples
    --------
    >>> m = BagOfEmbeddings(10, dim=4, n_classes=2)
    >>> ids = torch.tensor([[2, 3, 0], [4, 0, 0]])
    >>> torch.allclose(m(ids), m.classify(m.embed(ids), ids != 0))
    True
    """

    def __init__(self, vocab_size: int, *, dim: int = 64, n_classes: int = 3, dropout: float = 0.0):
        super().__init__()
        vocab_size, dim, n_classes = _sizes("BagOfEmbeddings", vocab_size=vocab_size, dim=dim, n_classes=n_classes)
        self.embedding = nn.Embedding(vocab_size, dim, padding_idx=0)
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(dim, n_classes)

    def embed(self, ids: torch.Tensor) -> torch.Tensor:
        return self.embedding(ids)

    def classify(self, embedded: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        m = mask.to(embedded.dtype).unsqueeze(-1)
        pooled = (embedded * m).sum(1) / m.sum(1).clamp(min=1.0)
        return self.head(self.dropout(pooled))

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return self.classify(self.embed(ids), ids != 0)


class RecurrentClassifier(nn.Module):
    """Embedding -> GRU (unrolled, padding-aware) -> last hidden state -> dropout -> linear head.

    The GRU follows ``torch.nn.GRU``'s equations and gate order (reset, update, new) with the input
    projection ``input_proj`` applied to the whole sequence at once and the hidden projection
    ``hidden_proj`` applied once per time step; padded steps (mask False) leave the state unchanged.

    Examples
    --------
    >>> m = RecurrentClassifier(10, dim=4, hidden=5, n_classes=2)
    >>> ids = torch.tensor([[2, 3, 0], [4, 0, 0]])
    >>> m(ids).shape, torch.allclose(m(ids), m.classify(m.embed(ids), ids != 0))
    (torch.Size([2, 2]), True)
    """

    def __init__(self, vocab_size: int, *, dim: int = 64, hidden: int = 64, n_classes: int = 3, dropout: float = 0.0):
        super().__init__()
        vocab_size, dim, hidden, n_classes = _sizes("RecurrentClassifier", vocab_size=vocab_size, dim=dim, hidden=hidden,
                                                    n_classes=n_classes)
        self.hidden = hidden
        self.embedding = nn.Embedding(vocab_size, dim, padding_idx=0)
        self.input_proj = nn.Linear(dim, 3 * hidden)
        self.hidden_proj = nn.Linear(hidden, 3 * hidden)
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(hidden, n_classes)
        bound = hidden ** -0.5  # torch.nn.GRU's initialisation
        for p in (*self.input_proj.parameters(), *self.hidden_proj.parameters()):
            nn.init.uniform_(p, -bound, bound)

    def embed(self, ids: torch.Tensor) -> torch.Tensor:
        return self.embedding(ids)

    def classify(self, embedded: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        n, length, _ = embedded.shape
        gi_all = self.input_proj(embedded)  # (N, L, 3H)
        h = embedded.new_zeros(n, self.hidden)
        steps = int(mask.any(0).nonzero().max()) + 1 if mask.any() else 0  # skip all-padding tail columns
        for t in range(steps):
            gi = gi_all[:, t]
            gh = self.hidden_proj(h)
            i_r, i_z, i_n = gi.chunk(3, dim=1)
            h_r, h_z, h_n = gh.chunk(3, dim=1)
            r = torch.sigmoid(i_r + h_r)
            z = torch.sigmoid(i_z + h_z)
            new = torch.tanh(i_n + r * h_n)
            h_next = (1 - z) * new + z * h
            h = torch.where(mask[:, t : t + 1], h_next, h)
        return self.head(self.dropout(h))

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return self.classify(self.embed(ids), ids != 0)
