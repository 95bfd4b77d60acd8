"""Fine-tuning only the top of MiniLM, cheaply: run the frozen lower blocks ONCE over a set of texts, keep their hidden
states, and train the top block(s) + head on those cached states.

A :class:`~workbench.privacy.transformer.MiniLMClassifier` fine-tuned with ``part="last_layers"`` changes only its
last ``k`` blocks and its head; everything below them (embeddings, the first blocks) is a fixed function of the
tokens. :func:`cache_hidden_states` evaluates that function once and packs, per text, the hidden states ``(T, D)``
and the attention mask as one float tensor ``(T, D + 1)`` (the last channel is 1 on real tokens), so every engine of
:func:`workbench.privacy.dp.train` (DP or not), ``predict`` and the shadow loop see an ordinary ``(N, T, D + 1)``
tensor. :class:`TopModel` is the top: the last ``k`` blocks (copies of the pretrained ones), the masked mean, dropout
and the head. Many models of the same recipe (shadow models, DP and non-DP variants) then cost one pass of the
lower blocks in total instead of one per model and epoch.

The frozen blocks run in eval mode (no dropout) when cached; that is the only difference from fine-tuning the whole
classifier, and with ``dropout=0`` the two give the same logits after training
(``tests/privacy/test_minilm_top.py``).

:func:`forward_embeddings` runs the whole classifier (frozen bottom, then a :class:`TopModel`) from *word
embeddings* instead of token ids: what model inversion needs to feed soft mixtures of tokens
(:mod:`~.transformer_canary`).

Examples
--------
>>> import torch
>>> from workbench.privacy.transformer import MiniLMClassifier, TokenizedTexts
>>> model = MiniLMClassifier(2, layers=2, seed=0).eval()
>>> texts = TokenizedTexts(["a good day", "bad"], [1, 0], max_len=8)
>>> packed = cache_hidden_states(model, texts, top_layers=1)
>>> tuple(packed.shape)                                  # 2 texts, 5 tokens, 384 states + the mask channel
(2, 5, 385)
>>> top = TopModel.from_classifier(model, top_layers=1).eval()
>>> ids, _ = texts.batch(torch.arange(2))
>>> bool(torch.allclose(top(packed), model(ids), atol=1e-5))   # same logits as the full classifier
True
"""
from __future__ import annotations

import copy

import torch
from torch import nn

from workbench.validation import InstanceOf, Interval, check

__all__ = ["TopModel", "cache_hidden_states", "forward_embeddings", "bottom_states"]


def _classifier(model, owner: str):
    from ..transformer import MiniLMClassifier

    return check(model, InstanceOf(MiniLMClassifier), name="model", owner=owner)


def _top_layers(model, top_layers, owner: str) -> int:
    n = len(model.bert.encoder.layer)
    return check(top_layers, Interval(int, 1, n), name="top_layers", owner=owner)


def _mask4(config, hidden: torch.Tensor, mask: torch.Tensor):
    """The additive attention mask BERT builds from a ``(N, T)`` 0/1 mask (``None`` when nothing is padded)."""
    from transformers.masking_utils import create_bidirectional_mask

    return create_bidirectional_mask(config=config, inputs_embeds=hidden, attention_mask=mask.long())


def bottom_states(model, embeddings: torch.Tensor, mask: torch.Tensor, *, top_layers: int) -> torch.Tensor:
    """Hidden states after the blocks below the top ``top_layers`` of ``model``'s MiniLM, from the embedding layer's
    output ``(N, T, D)`` and the 0/1 ``mask`` ``(N, T)`` (differentiable; the caller chooses eval mode and no_grad)."""
    layers = model.bert.encoder.layer
    mask4 = _mask4(model.bert.config, embeddings, mask)
    h = embeddings
    for layer in layers[: len(layers) - top_layers]:
        h = layer(h, mask4)
    return h


@torch.no_grad()
def cache_hidden_states(model, texts, *, top_layers: int = 1, batch_size: int = 64) -> torch.Tensor:
    """Run ``model``'s embeddings and its blocks below the top ``top_layers`` over ``texts`` once, in eval mode.

    Parameters
    ----------
    model : MiniLMClassifier
    texts : TokenizedTexts
        Token ids; all texts are right-padded to the longest one.
    top_layers : int
        Blocks left for :class:`TopModel` to train (1 to the model's number of blocks).
    batch_size : int

    Returns
    -------
    torch.Tensor
        ``(N, T, D + 1)`` float: the hidden states, then the attention mask (1.0 on real tokens, 0.0 on padding).
    """
    owner = "cache_hidden_states"
    model = _classifier(model, owner)
    top_layers = _top_layers(model, top_layers, owner)
    batch_size = check(batch_size, Interval(int, 1, None), name="batch_size", owner=owner)
    if not (hasattr(texts, "ids") and hasattr(texts, "pad_id")):
        raise ValueError(f"The 'texts' parameter of {owner} must be a TokenizedTexts. Got {type(texts).__name__} instead.")
    ids = nn.utils.rnn.pad_sequence(list(texts.ids), batch_first=True, padding_value=texts.pad_id)
    was = model.training
    model.eval()
    try:
        parts = []
        for start in range(0, len(ids), batch_size):
            chunk = ids[start : start + batch_size]
            n, t = chunk.shape
            emb = model.bert.embeddings(input_ids=chunk, position_ids=torch.arange(t).repeat(n, 1),
                                        token_type_ids=torch.zeros_like(chunk))
            mask = chunk != texts.pad_id
            h = bottom_states(model, emb, mask, top_layers=top_layers)
            parts.append(torch.cat([h, mask.unsqueeze(-1).to(h.dtype)], dim=-1))
    finally:
        model.train(was)
    return torch.cat(parts)


class TopModel(nn.Module):
    """The top ``k`` blocks of a MiniLM classifier + masked mean + dropout + head, on cached hidden states.

    Input: the ``(N, T, D + 1)`` packed tensor of :func:`cache_hidden_states`. Every parameter is trainable (the
    classifier's ``part="last_layers"`` with ``last_layers=k``).

    Build it with :meth:`from_classifier`.
    """

    def __init__(self, layers: nn.ModuleList, head: nn.Linear, *, dropout: float, config):
        super().__init__()
        self.layers = layers
        self.head = head
        self.dropout = nn.Dropout(dropout)
        self.config = config

    @classmethod
    def from_classifier(cls, model, *, top_layers: int = 1, new_head: bool = False) -> "TopModel":
        """Copies of ``model``'s last ``top_layers`` blocks and of its head (``new_head=True``: a head freshly drawn from
        torch's global generator, as for a new model of the same recipe, e.g. a shadow model seeded by
        ``torch.manual_seed``)."""
        owner = "TopModel.from_classifier"
        model = _classifier(model, owner)
        top_layers = _top_layers(model, top_layers, owner)
        layers = nn.ModuleList(copy.deepcopy(list(model.bert.encoder.layer)[-top_layers:]))
        head = copy.deepcopy(model.head)
        if new_head:
            head.reset_parameters()
        top = cls(layers, head, dropout=model.dropout.p, config=model.bert.config)
        for p in top.parameters():
            p.requires_grad_(True)
        return top

    def forward(self, packed: torch.Tensor) -> torch.Tensor:
        h, mask = packed[..., :-1], packed[..., -1]
        mask4 = _mask4(self.config, h, mask > 0.5)
        for layer in self.layers:
            h = layer(h, mask4)
        m = mask.unsqueeze(-1).to(h.dtype)
        return self.head(self.dropout((h * m).sum(1) / m.sum(1).clamp(min=1.0)))


def forward_embeddings(model, top: TopModel, word_embeddings: torch.Tensor) -> torch.Tensor:
    """Logits of the classifier made of ``model``'s frozen bottom and ``top``, fed word embeddings ``(N, T, D)``
    (no padding) instead of token ids: BERT's embedding layer adds the position and token-type embeddings and
    normalises, then the bottom blocks, then ``top``. Differentiable in ``word_embeddings``; call it in eval mode.

    ``forward_embeddings(model, top, model.bert.embeddings.word_embeddings(ids))`` equals ``top`` on the cached
    states of ``ids``.
    """
    n, t, _ = word_embeddings.shape
    emb = model.bert.embeddings(inputs_embeds=word_embeddings, position_ids=torch.arange(t).repeat(n, 1),
                                token_type_ids=torch.zeros(n, t, dtype=torch.long))
    mask = torch.ones(n, t, dtype=torch.bool)
    h = bottom_states(model, emb, mask, top_layers=len(top.layers))
    return top(torch.cat([h, torch.ones(n, t, 1, dtype=h.dtype)], dim=-1))
