"""Fine-tuning a pretrained transformer through :func:`workbench.privacy.dp.train`: MiniLM + a linear head, tweets as
token ids padded per batch.

:class:`MiniLMClassifier` is the installed all-MiniLM-L6-v2 (``workbench.datasets.load_encoder("minilm")``, a copy
of its weights, so the shared encoder is never changed) with a linear head on the mean of the unpadded token states.
It takes ONE input, a ``LongTensor (N, T)`` of token ids right-padded with the tokenizer's pad id, so every engine,
``evaluate`` and ``predict`` see an ordinary tensor model. Inside, it applies what Opacus needs to run on a
``BertModel`` at all (issue 10; the workbench's fast engine needs none of it):

* **eager attention** (``attention="eager"``): with PyTorch's fused ``sdpa`` attention Opacus's ghost clipping fails
  with "view size is not compatible with input tensor's size and stride";
* **per-sample position and token-type ids**: BERT's default ids are one ``(1, T)`` row shared by the batch, so
  Opacus's hooks see a batch of 1 for those embeddings ("stack expects each tensor to be equal size"); the
  wrapper passes ``(N, T)`` ids;
* **no pooler**: the unused pooler would leave "Per sample gradient is not initialized" in Opacus; it is not built.

:class:`TokenizedTexts` holds texts tokenized once (truncated to ``max_len``) and pads each batch only to its own
longest text (dynamic padding), through the ``batch(idx)`` protocol of :func:`workbench.training.train_loop`.

Examples
--------
>>> import torch
>>> data = TokenizedTexts(["a good day", "bad"], [1, 0], max_len=8)
>>> ids, y = data.batch(torch.tensor([0, 1]))
>>> tuple(ids.shape), y.tolist(), int((ids == data.pad_id).sum())     # [CLS] a good day [SEP] / [CLS] bad [SEP] + 2 pads
((2, 5), [1, 0], 2)
"""
from __future__ import annotations

import copy
from typing import Sequence

import torch
from torch import nn

from workbench.validation import Interval, Options, check

__all__ = ["MiniLMClassifier", "TokenizedTexts", "ATTENTIONS", "tweet_text_task"]

#: Accepted values of ``MiniLMClassifier(attention=...)``.
ATTENTIONS = ("eager", "sdpa")


def _encoder(name: str = "minilm"):
    from workbench.datasets import load_encoder

    return load_encoder(name)


class TokenizedTexts:
    """Texts as token ids of the encoder's tokenizer, with labels; ``batch(idx)`` pads to the batch's longest text.

    Parameters
    ----------
    texts : sequence of str
    labels : sequence of int
    max_len : int
        Tokens kept per text, special tokens included (longer texts are truncated).
    tokenizer : optional
        A Hugging Face tokenizer; default: MiniLM's.
    """

    def __init__(self, texts: Sequence[str], labels, *, max_len: int = 64, tokenizer=None):
        owner = "TokenizedTexts"
        self.max_len = check(max_len, Interval(int, 3, None), name="max_len", owner=owner)
        if isinstance(texts, str) or not all(isinstance(t, str) for t in texts):
            raise ValueError(f"The 'texts' parameter of {owner} must be a sequence of strings.")
        self.y = torch.as_tensor(list(labels) if not isinstance(labels, torch.Tensor) else labels, dtype=torch.long)
        if len(self.y) != len(texts):
            raise ValueError(f"The 'labels' parameter of {owner} must hold one label per text. Got {len(self.y)} labels "
                             f"for {len(texts)} texts.")
        tokenizer = tokenizer or _encoder().tokenizer
        self.pad_id = int(tokenizer.pad_token_id)
        self.ids = [torch.as_tensor(row, dtype=torch.long)
                    for row in tokenizer(list(texts), truncation=True, max_length=self.max_len)["input_ids"]]

    def __len__(self) -> int:
        return len(self.y)

    def batch(self, idx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(ids (len(idx), longest), labels)``: right-padded with ``pad_id`` to the longest text of this batch."""
        rows = [self.ids[i] for i in idx.tolist()]
        if not rows:
            return torch.full((0, 1), self.pad_id, dtype=torch.long), self.y[idx]
        return nn.utils.rnn.pad_sequence(rows, batch_first=True, padding_value=self.pad_id), self.y[idx]

    @property
    def lengths(self) -> torch.Tensor:
        """Tokens per text (special tokens included)."""
        return torch.tensor([len(r) for r in self.ids])


class MiniLMClassifier(nn.Module):
    """MiniLM (pretrained weights) -> masked mean of the token states -> dropout -> linear head.

    Parameters
    ----------
    n_classes : int
    layers : int, optional
        Keep only the first ``layers`` transformer blocks (default: all 6); fewer make tests and demos fast.
    attention : {"eager", "sdpa"}
        ``"eager"`` (default) runs under every engine; ``"sdpa"`` (PyTorch's fused kernel) only under the fast engine
        and without DP.
    dropout : float, optional
        Dropout inside MiniLM and before the head; default: MiniLM's own (0.1).
    seed : int
        Initialises the head.
    """

    def __init__(self, n_classes: int = 3, *, layers: int | None = None, attention: str = "eager", dropout: float | None = None,
                 seed: int = 0, encoder: str = "minilm"):
        super().__init__()
        owner = "MiniLMClassifier"
        n_classes = check(n_classes, Interval(int, 2, None), name="n_classes", owner=owner)
        attention = check(attention, Options(ATTENTIONS), name="attention", owner=owner)
        dropout = check(dropout, Interval(float, 0, 1, closed="left"), None, name="dropout", owner=owner)
        from transformers import BertModel

        enc = _encoder(encoder)
        config = copy.deepcopy(enc.model.config)
        layers = check(layers, Interval(int, 1, config.num_hidden_layers), None, name="layers", owner=owner)
        if layers is not None:
            config.num_hidden_layers = layers
        if dropout is not None:
            config.hidden_dropout_prob = config.attention_probs_dropout_prob = dropout
        config._attn_implementation = attention
        self.bert = BertModel(config, add_pooling_layer=False)
        missing, _ = self.bert.load_state_dict(enc.model.state_dict(), strict=False)  # the pooler's and dropped layers' keys
        if missing:
            raise RuntimeError(f"MiniLM weights missing for {missing[:3]}")
        self.pad_id = int(enc.tokenizer.pad_token_id)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)
        generator = torch.Generator().manual_seed(int(check(seed, Interval(int), name="seed", owner=owner)))
        self.head = nn.Linear(config.hidden_size, n_classes)
        with torch.no_grad():
            bound = config.hidden_size ** -0.5  # nn.Linear's default init, from the seed
            self.head.weight.uniform_(-bound, bound, generator=generator)
            self.head.bias.uniform_(-bound, bound, generator=generator)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        n, t = ids.shape
        mask = ids != self.pad_id
        # (N, T) position and token-type ids: Opacus's per-sample hooks need a batch dimension on every input
        positions = torch.arange(t, device=ids.device).repeat(n, 1)
        out = self.bert(input_ids=ids, attention_mask=mask.long(), position_ids=positions, token_type_ids=torch.zeros_like(ids))
        h, m = out.last_hidden_state, mask.unsqueeze(-1).to(out.last_hidden_state.dtype)
        return self.head(self.dropout((h * m).sum(1) / m.sum(1).clamp(min=1.0)))


def tweet_text_task(*, n: int | None = None, size: str = "small", max_len: int = 64, val_fraction: float = 0.2,
                    seed: int = 0) -> tuple[TokenizedTexts, TokenizedTexts]:
    """The tweet sentiment task (the same rows and split as :func:`workbench.privacy.data.load_tweet_task`) as
    MiniLM token ids: ``(train, val)`` :class:`TokenizedTexts`.

    Examples
    --------
    >>> train, val = tweet_text_task(n=50, max_len=16)
    >>> len(train), len(val), int(train.lengths.max()) <= 16
    (40, 10, True)
    """
    from .data import load_tweet_task

    task = load_tweet_task(size=size, n=n, features="tokens", max_len=8, max_vocab=3, val_fraction=val_fraction, seed=seed)
    return (TokenizedTexts(task.train_texts, task.train[1], max_len=max_len),
            TokenizedTexts(task.val_texts, task.val[1], max_len=max_len))
