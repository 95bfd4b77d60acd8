"""One clipping rule per layer type: per-sample squared gradient norms and the clipped (book-keeping) sum.

The fast DP engine (:class:`workbench.privacy.fast_dp.GhostClippingEngine`) never forms per-sample gradients of
the whole model. For every layer with trainable parameters it records, during one forward and one backward
pass, the layer's input ``a`` and the gradient ``b`` of the loss with respect to the layer's output (per
sample), and hands them to the **rule registered for the layer's type** (in the way Opacus registers one
norm sampler per module type). A rule is three small functions:

``prepare(layer, calls, ctx) -> data``
    Turn the layer's recorded calls ``[(a, b), ...]`` (one per call of the layer in the forward pass, batch
    first; inputs shared across the batch, of batch size 1, are already broadcast to ``ctx.n``) into what the
    two other functions need.
``sq_norms(layer, data, ctx) -> {parameter: (N,) tensor}``
    The squared norm of each sample's gradient, for each trainable parameter of the layer (frozen ones,
    ``requires_grad=False``, are left out).
``accumulate(layer, data, weights, ctx) -> None``
    Add ``sum_n weights[p][n] * g_n(p)`` into ``p.grad`` for each trainable parameter ``p``: the clipped sum,
    with the clip factors (and the engine's ``scale``) in ``weights``.

Registered here (:data:`RULES`):

* ``nn.Linear`` on vectors ``(N, d_in)``: ``||g_n(W)||^2 = ||b_n||^2 ||a_n||^2``, bias ``||b_n||^2``; on
  sequences ``(N, T, d_in)``, or called several times per forward (the calls are stacked along ``T``): the
  Gram-matrix ("ghost") identity ``||sum_t b_t a_t^T||^2 = sum_{t,s} <a_t, a_s> <b_t, b_s>`` when
  ``T^2 <= d_in d_out``, else the per-sample gradient ``b_n^T a_n`` itself (book-keeping's hybrid rule,
  whichever object is smaller); bias ``||sum_t b_t||^2``. Layers fed the same input (attention's query, key and
  value) share one input Gram matrix. The clipped sum is one matrix product ``(w * b)^T a``.
* ``nn.Embedding``: a sample's gradient has one row per distinct token, ``sum_{t: id_t = v} b_t``, so its squared
  norm is ``sum_t ||b_t||^2 + 2 sum_{s<t, id_s = id_t} <b_s, b_t>``, never a vocabulary-sized object; Numba
  kernels (:mod:`workbench.privacy._kernels`) or one sort plus ``index_add`` in torch. Ids shared across the batch
  (a transformer's position ids of shape ``(1, T)``) work: the engine broadcasts the layer's output to the batch
  so that each sample's output gradient is recorded. The padding row gets no gradient, as in ``nn.Embedding``.
* ``nn.LayerNorm`` (and ``nn.RMSNorm``) with an elementwise affine: with ``x_hat`` the normalised input,
  ``g_n(gamma) = sum_t b_t * x_hat_t`` and ``g_n(beta) = sum_t b_t``, formed per sample (``(N, d)``, small).

Anything else with trainable parameters raises :class:`UnsupportedLayerError` naming the layer's path and the
supported types; :func:`register_rule` adds a rule for a layer type of your own.

Examples
--------
A rule for a layer that scales its input elementwise, ``y = x * s`` (so ``g_n(s) = sum_t b_t * x_t``):

>>> import torch
>>> from torch import nn
>>> class Scale(nn.Module):
...     def __init__(self, d):
...         super().__init__()
...         self.s = nn.Parameter(torch.ones(d))
...     def forward(self, x):
...         return x * self.s
>>> def prepare(layer, calls, ctx):
...     a, b = stack_calls(calls, ctx)
...     return (b * a).sum(1)                        # per-sample gradients of s, (N, d): small
>>> rule = ClippingRule(prepare=prepare,
...                     sq_norms=lambda layer, g, ctx: {layer.s: g.pow(2).sum(1)},
...                     accumulate=lambda layer, g, w, ctx: layer.s.grad.add_(w[layer.s] @ g))
>>> register_rule(Scale, rule)
>>> from workbench.privacy.fast_dp import GhostClippingEngine
>>> model = nn.Sequential(Scale(3), nn.Linear(3, 2))
>>> engine = GhostClippingEngine(model, max_grad_norm=1.0)
>>> out = engine.clipped_grad(torch.randn(4, 3), torch.tensor([0, 1, 1, 0]))
>>> tuple(model[0].s.grad.shape), bool((out["norms"] > 0).all())
((3,), True)
>>> engine.remove(); unregister_rule(Scale)
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import torch
from torch import nn

__all__ = [
    "ClippingRule",
    "RuleContext",
    "RULES",
    "UnsupportedLayerError",
    "register_rule",
    "unregister_rule",
    "rule_for",
    "supported_layer_types",
    "stack_calls",
]


class UnsupportedLayerError(ValueError):
    """A model holds a trainable layer the fast DP engine cannot clip."""


@dataclass(frozen=True)
class ClippingRule:
    """The three functions that clip one layer type (see the module's docstring for their contracts)."""

    prepare: Callable
    sq_norms: Callable
    accumulate: Callable


@dataclass
class RuleContext:
    """What a rule may need besides the layer's calls: the batch size ``n``, the engine's embedding kernels
    (:mod:`workbench.privacy._kernels`, or ``None`` for the torch path) and a per-step ``cache`` (e.g. input Gram
    matrices shared by layers fed the same tensor)."""

    n: int
    kernels: object = None
    cache: dict = field(default_factory=dict)


#: ``{layer type: ClippingRule}``; a layer takes the rule of the most specific registered type it is an instance of.
RULES: dict[type, ClippingRule] = {}


def register_rule(layer_type: type, rule: ClippingRule) -> None:
    """Register (or replace) the clipping rule of ``layer_type`` (a ``torch.nn.Module`` subclass)."""
    if not (isinstance(layer_type, type) and issubclass(layer_type, nn.Module)):
        raise UnsupportedLayerError(f"The 'layer_type' parameter of register_rule must be a torch.nn.Module subclass. "
                                    f"Got {layer_type!r} instead.")
    if not isinstance(rule, ClippingRule):
        raise UnsupportedLayerError(f"The 'rule' parameter of register_rule must be a ClippingRule. Got {rule!r} instead.")
    RULES[layer_type] = rule


def unregister_rule(layer_type: type) -> None:
    """Remove the rule registered for ``layer_type`` (no error if there is none)."""
    RULES.pop(layer_type, None)


def supported_layer_types() -> tuple[type, ...]:
    """The layer types that have a rule, in registration order."""
    return tuple(RULES)


def rule_for(layer: nn.Module) -> ClippingRule | None:
    """The rule for ``layer``: its own type's, else the nearest registered base class's (method resolution order)."""
    for cls in type(layer).__mro__:
        if cls in RULES:
            return RULES[cls]
    return None


# -- shared helpers ------------------------------------------------------------------------------------------
def _trainable(p) -> bool:
    return p is not None and p.requires_grad


def stack_calls(calls, ctx: RuleContext, *, keep_last: int = 1):
    """Stack a layer's calls into ``a`` (N, T, ...) and ``b`` (N, T, d_out): batch first, every call's positions
    concatenated along ``T``; ``keep_last`` trailing dimensions of the input are kept (1 for a feature vector,
    0 for token ids, giving ``(N, T)``)."""
    n = ctx.n
    a_list, b_list = [], []
    for a, b in calls:
        if a.shape[0] == 1 and n > 1:  # an input shared by the whole batch (position ids): the same for every sample
            a = a.expand(n, *a.shape[1:])
        if a.shape[0] != n or b.shape[0] != n:
            raise UnsupportedLayerError(
                f"A layer was called on a tensor whose first dimension ({a.shape[0]}) is neither the batch size ({n}) nor 1; "
                "the fast DP engine needs batch-first inputs."
            )
        tail = tuple(a.shape[a.dim() - keep_last:]) if keep_last else ()
        a_list.append(a.reshape(n, -1, *tail))
        b_list.append(b.reshape(n, -1, b.shape[-1]))
    if len(a_list) == 1:
        return a_list[0], b_list[0]
    return torch.cat(a_list, 1), torch.cat(b_list, 1)


def _gram(x, ctx: RuleContext):
    """``x x^T`` per sample (N, T, T), cached by storage so layers fed the same tensor compute it once."""
    key = (x.data_ptr(), tuple(x.shape), tuple(x.stride()), x.dtype)
    g = ctx.cache.get(key)
    if g is None:
        g = ctx.cache[key] = torch.bmm(x, x.transpose(1, 2))
    return g


# -- nn.Linear -----------------------------------------------------------------------------------------------
def _linear_prepare(layer, calls, ctx):
    a, b = stack_calls(calls, ctx)
    if not _trainable(layer.weight):  # bias only (BiTFiT): the input is not needed, do not keep it
        a = None
    if b.shape[1] == 1:
        return "vector", None if a is None else a[:, 0].to(b.dtype), b[:, 0]
    return "sequence", None if a is None else a.to(b.dtype), b


def _linear_sq_norms(layer, data, ctx):
    kind, a, b = data
    out = {}
    if kind == "vector":  # ||b a^T||^2 = ||b||^2 ||a||^2
        bb = torch.linalg.vecdot(b, b)
        if _trainable(layer.weight):
            out[layer.weight] = bb * torch.linalg.vecdot(a, a)
        if _trainable(layer.bias):
            out[layer.bias] = bb
        return out
    if _trainable(layer.weight):
        t, d_in, d_out = a.shape[1], a.shape[2], b.shape[2]
        if t * t <= d_in * d_out:  # ghost norm: sum_{t,s} <a_t, a_s><b_t, b_s>
            gram = torch.bmm(b, b.transpose(1, 2)).mul_(_gram(a, ctx))
            out[layer.weight] = gram.sum((1, 2)).clamp_(min=0)
        else:  # short, wide layers: the per-sample gradient b_n^T a_n is the smaller object
            out[layer.weight] = torch.bmm(b.transpose(1, 2), a).pow(2).sum((1, 2))
    if _trainable(layer.bias):
        out[layer.bias] = b.sum(1).pow(2).sum(1)
    return out


def _linear_accumulate(layer, data, weights, ctx):
    kind, a, b = data
    n = ctx.n
    if _trainable(layer.weight):  # sum_n w_n b_n^T a_n (summed over the positions t of sequences)
        w = weights[layer.weight]
        w = w.view(n, 1) if kind == "vector" else w.view(n, 1, 1)
        wa, wb = (a * w, b) if a.shape[-1] < b.shape[-1] else (a, b * w)  # weight the narrower one (a copy of it)
        layer.weight.grad.addmm_(wb.reshape(-1, wb.shape[-1]).T, wa.reshape(-1, wa.shape[-1]))
    if _trainable(layer.bias):  # sum_n w_n sum_t b_nt
        layer.bias.grad.addmv_((b if kind == "vector" else b.sum(1)).T, weights[layer.bias])


# -- nn.Embedding --------------------------------------------------------------------------------------------
def _embedding_prepare(layer, calls, ctx):
    if layer.sparse or layer.max_norm is not None:
        raise UnsupportedLayerError(f"{type(layer).__name__} uses sparse=True or max_norm, which the fast DP engine does not "
                                    "support. Use a dense embedding without max_norm, or engine='opacus-hooks'.")
    ids, b = stack_calls(calls, ctx, keep_last=0)
    n = ctx.n
    if ctx.kernels is not None and b.device.type == "cpu" and b.dtype in (torch.float32, torch.float64):
        pad = -1 if layer.padding_idx is None else layer.padding_idx % layer.num_embeddings
        return "ids", ids.contiguous(), b.detach().contiguous(), pad
    # torch: the gradient of every distinct (sample, token) pair, sum_{t: id_t = token} b_t, with the padding row
    # zeroed. A sample's embedding gradient *is* its rows: its squared norm is the sum of theirs, and the clipped sum
    # is one index_add. O(N T d) plus a sort of the N T ids.
    vocab, dim = layer.num_embeddings, b.shape[-1]
    keys = ids + vocab * torch.arange(n, device=ids.device).unsqueeze(1)
    if layer.padding_idx is not None:  # the padding row gets no gradient: pool all padding in key -1
        keys = keys.masked_fill(ids == layer.padding_idx % vocab, -1)
    unique, inverse = torch.unique(keys.reshape(-1), return_inverse=True)
    rows = b.new_zeros(len(unique), dim).index_add_(0, inverse, b.reshape(-1, dim))
    if len(unique) and bool(unique[0] < 0):  # sorted: the padding key comes first; drop it
        unique, rows = unique[1:], rows[1:]
    return "rows", unique.div(vocab, rounding_mode="floor"), unique.remainder(vocab), rows


def _embedding_sq_norms(layer, data, ctx):
    if not _trainable(layer.weight):
        return {}
    if data[0] == "ids":
        _, ids, b, pad = data
        sq = b.new_empty(ctx.n)
        ctx.kernels.embedding_sq_norms(ids.numpy(), b.numpy(), pad, sq.numpy())
        return {layer.weight: sq}
    _, sample, _, rows = data
    return {layer.weight: rows.new_zeros(ctx.n).index_add_(0, sample, rows.pow(2).sum(1))}


def _embedding_accumulate(layer, data, weights, ctx):
    if not _trainable(layer.weight):
        return
    w = weights[layer.weight]
    if data[0] == "ids":
        _, ids, b, pad = data
        grad = layer.weight.grad
        if not grad.is_contiguous() or grad.dtype != b.dtype:
            raise UnsupportedLayerError(f"The gradient buffer of {type(layer).__name__} must be contiguous and of the layer's "
                                        f"dtype {b.dtype}.")
        ctx.kernels.embedding_accumulate(ids.numpy(), b.numpy(), pad, w.to(b.dtype).contiguous().numpy(), grad.detach().numpy())
        return
    _, sample, token, rows = data
    layer.weight.grad.index_add_(0, token, rows * w[sample].unsqueeze(1))


# -- nn.LayerNorm / nn.RMSNorm (elementwise affine) ----------------------------------------------------------
def _norm_prepare(layer, calls, ctx):
    k = len(layer.normalized_shape)
    x, b = stack_calls(calls, ctx, keep_last=k)
    x = x.to(b.dtype)
    if isinstance(layer, nn.LayerNorm):
        x_hat = nn.functional.layer_norm(x, layer.normalized_shape, None, None, layer.eps)
    else:
        x_hat = nn.functional.rms_norm(x, layer.normalized_shape, None, layer.eps)
    b = b.reshape(ctx.n, x.shape[1], -1)  # (N, T, prod(normalized_shape))
    weight = getattr(layer, "weight", None)
    bias = getattr(layer, "bias", None)
    g_w = (b * x_hat.reshape(b.shape)).sum(1) if _trainable(weight) else None  # 3x faster than einsum here
    g_b = b.sum(1) if _trainable(bias) else None
    return g_w, g_b


def _norm_sq_norms(layer, data, ctx):
    g_w, g_b = data
    out = {}
    if g_w is not None:
        out[layer.weight] = g_w.pow(2).sum(1)
    if g_b is not None:
        out[layer.bias] = g_b.pow(2).sum(1)
    return out


def _norm_accumulate(layer, data, weights, ctx):
    g_w, g_b = data
    if g_w is not None:
        layer.weight.grad.view(-1).addmv_(g_w.T, weights[layer.weight])
    if g_b is not None:
        layer.bias.grad.view(-1).addmv_(g_b.T, weights[layer.bias])


register_rule(nn.Linear, ClippingRule(_linear_prepare, _linear_sq_norms, _linear_accumulate))
register_rule(nn.Embedding, ClippingRule(_embedding_prepare, _embedding_sq_norms, _embedding_accumulate))
register_rule(nn.LayerNorm, ClippingRule(_norm_prepare, _norm_sq_norms, _norm_accumulate))
if hasattr(nn, "RMSNorm"):
    register_rule(nn.RMSNorm, ClippingRule(_norm_prepare, _norm_sq_norms, _norm_accumulate))
