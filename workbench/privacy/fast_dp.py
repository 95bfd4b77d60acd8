"""A fast DP-SGD engine: per-sample gradient clipping without per-sample gradients (ghost norms + book-keeping).

DP-SGD needs, for every sample ``n`` of a batch, the norm of its gradient ``||g_n||`` so that it can be
clipped to ``C``: ``sum_n g_n * min(1, C / ||g_n||)``. Opacus's "hooks" mode materialises every ``g_n``
(a batch-size copy of the model), its "ghost" mode computes the norms cheaply but then runs a *second*
backward pass on the re-weighted loss. This engine (in the spirit of eDP-SGD and of Bu et al.'s
book-keeping, "Differentially private optimization on large model at small cost", ICML 2023) needs a single
forward and a single backward pass that computes **only activation gradients**:

1. forward: hooks keep each layer's input ``a`` (N, T, d_in) and the gradient ``b`` (N, T, d_out) of its
   output arrives through a tensor hook; the layer's own weight gradients are *not* computed by autograd
   (its parameters are switched to ``requires_grad=False`` for the pass);
2. per-sample squared norms, layer by layer, without forming ``g_n``:

   * ``nn.Linear`` on vectors: ``||b_n||^2 ||a_n||^2`` (+ ``||b_n||^2`` for the bias);
   * ``nn.Linear`` on sequences, or called several times per forward (the GRU's hidden projection, once per
     step; the calls are stacked along T): the Gram-matrix ("ghost") trick
     ``||sum_t b_t a_t^T||^2 = sum_{t,s} <a_t, a_s> <b_t, b_s>``; bias ``||sum_t b_t||^2``;
   * ``nn.Embedding`` (with any pooling after it): ``sum_{i,j} [id_i == id_j] <b_i, b_j>`` over the
     sample's non-padding tokens, never forming the vocab x dim gradient;
3. book-keeping: the clipped sum is one contraction per layer, ``W.grad = (c * b)^T a`` with
   ``c_n = min(1, C / (||g_n|| + 1e-6))`` (Opacus's clip factor), and an ``index_add`` for embeddings.

The recurrent layer is handled by unrolling: :class:`workbench.textmodels.RecurrentClassifier` builds its
GRU from two ``nn.Linear`` layers, so the GRU reduces to the Linear rules above.

Why not Opacus's extension points? Opacus lets one register per-layer *norm samplers*
(``register_norm_sampler``) for its ghost-clipping module, and we do follow the same per-layer formulas,
but that module always re-runs backward to form the clipped gradient (so it cannot reach ~1x cost), and it
refuses layers called more than once per forward ("Parameter tying is not supported with Ghost Clipping"),
which rules out the unrolled GRU's hidden projection (called once per time step); its per-parameter
``_norm_sample`` slot holds one norm per call, not the norm of the summed gradient. Book-keeping also needs the activations and backprops after the norms are known, which the
``GradSampleModule`` API frees. We therefore use our own hooks here, and reuse Opacus for everything
else: the accountant (:mod:`workbench.privacy.accounting`), Poisson sampling
(``opacus.utils.uniform_sampler.UniformWithReplacementSampler``) and the noise semantics of
``DPOptimizer`` (Gaussian noise with std ``sigma * C`` on the clipped sum, divided by the expected batch size).

Examples
--------
>>> import torch
>>> from torch import nn
>>> model = nn.Sequential(nn.Linear(3, 2))
>>> engine = GhostClippingEngine(model, max_grad_norm=1.0)
>>> x, y = torch.randn(4, 3), torch.tensor([0, 1, 0, 1])
>>> out = engine.clipped_grad(x, y)
>>> bool((out["norms"] > 0).all()), tuple(model[0].weight.grad.shape)
(True, (2, 3))
>>> engine.remove()
"""
from __future__ import annotations

from typing import Callable

import torch
from torch import nn

__all__ = ["GhostClippingEngine", "UnsupportedLayerError", "SUPPORTED_LAYERS", "check_model", "per_sample_grad_norms_reference"]

#: Layers with trainable parameters the engine can clip.
SUPPORTED_LAYERS = (nn.Linear, nn.Embedding)
_CLIP_EPS = 1e-6  # as opacus.optimizers.optimizer.DPOptimizer.clip_and_accumulate


class UnsupportedLayerError(ValueError):
    """A model holds a trainable layer the fast DP engine cannot clip."""


def check_model(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """Validate ``model`` for the engine and return its ``(name, layer)`` pairs with trainable parameters.

    Raises
    ------
    UnsupportedLayerError
        Naming the first BatchNorm layer (mixes samples, so per-sample clipping is undefined) or the first
        trainable layer that is not ``nn.Linear`` / ``nn.Embedding``, and what to do about it.
    """
    layers = []
    for name, module in model.named_modules():
        label = name or type(model).__name__
        if isinstance(module, nn.modules.batchnorm._BatchNorm):
            raise UnsupportedLayerError(
                f"Layer '{label}' ({type(module).__name__}) mixes the samples of a batch, so DP-SGD cannot clip per-sample "
                "gradients. Replace it with nn.GroupNorm or nn.LayerNorm (opacus.validators.ModuleValidator.fix does this)."
            )
        own = [p for p in module.parameters(recurse=False) if p.requires_grad]
        if not own:
            continue
        if isinstance(module, (nn.RNNBase,)):
            raise UnsupportedLayerError(
                f"Layer '{label}' ({type(module).__name__}) is a fused recurrent layer the fast DP engine cannot clip. Use "
                "workbench.textmodels.RecurrentClassifier (a GRU unrolled into nn.Linear layers), or engine='opacus-hooks' "
                "with opacus.layers.DPGRU/DPLSTM."
            )
        if not isinstance(module, SUPPORTED_LAYERS):
            raise UnsupportedLayerError(
                f"Layer '{label}' ({type(module).__name__}) has trainable parameters the fast DP engine cannot clip (it handles "
                f"{', '.join(t.__name__ for t in SUPPORTED_LAYERS)}). Freeze it (requires_grad=False), or use engine='opacus-hooks'."
            )
        if isinstance(module, nn.Embedding) and (module.sparse or module.max_norm is not None):
            raise UnsupportedLayerError(
                f"Layer '{label}' (Embedding) uses sparse=True or max_norm, which the fast DP engine does not support. "
                "Use a dense embedding without max_norm, or engine='opacus-hooks'."
            )
        layers.append((label, module))
    owners: dict[int, str] = {}
    for label, module in layers:
        for p in module.parameters(recurse=False):
            if id(p) in owners:
                raise UnsupportedLayerError(
                    f"Layers '{owners[id(p)]}' and '{label}' share a parameter (weight tying); the fast DP engine computes "
                    "norms layer by layer and would miss the cross term. Untie the weights or use engine='opacus-hooks'."
                )
            owners[id(p)] = label
    if not layers:
        raise UnsupportedLayerError(f"Model {type(model).__name__} has no trainable parameters to train with DP-SGD.")
    return layers


class GhostClippingEngine:
    """Per-sample clipping for a model made of ``nn.Linear`` / ``nn.Embedding`` layers in one backward pass.

    Parameters
    ----------
    model : torch.nn.Module
        Its trainable layers must be ``nn.Linear`` or ``nn.Embedding`` (see :func:`check_model`).
    max_grad_norm : float
        The clipping norm ``C``.

    Notes
    -----
    :meth:`clipped_grad` sets each trainable parameter's ``.grad`` to the **sum** of the clipped per-sample
    gradients (no noise, no averaging); :func:`workbench.privacy.dp.train` adds the noise. Call
    :meth:`remove` to take the hooks off the model.
    """

    def __init__(self, model: nn.Module, *, max_grad_norm: float):
        if not (isinstance(max_grad_norm, (int, float)) and max_grad_norm > 0):
            raise ValueError(f"The 'max_grad_norm' parameter of GhostClippingEngine must be > 0. Got {max_grad_norm!r} instead.")
        self.model = model
        self.max_grad_norm = float(max_grad_norm)
        self.layers = check_model(model)
        self._params = [p for _, m in self.layers for p in m.parameters(recurse=False) if p.requires_grad]
        self._records: dict[nn.Module, list[dict]] = {}
        self._active = False
        self._handles = [m.register_forward_hook(self._forward_hook) for _, m in self.layers]

    # -- hooks ---------------------------------------------------------------------------------------
    def _forward_hook(self, module, inputs, output):
        if not self._active:
            return None
        if not output.requires_grad:  # first layer: make its output a leaf so its gradient is still computed
            output = output.detach().requires_grad_(True)
        rec = {"a": inputs[0].detach(), "b": None}
        self._records.setdefault(module, []).append(rec)

        def keep(grad, rec=rec):
            rec["b"] = grad.detach() if rec["b"] is None else rec["b"] + grad.detach()

        output.register_hook(keep)
        return output

    def remove(self) -> None:
        """Take the engine's hooks off the model."""
        for h in self._handles:
            h.remove()
        self._handles = []

    # -- the pass ------------------------------------------------------------------------------------
    def _backward(self, x, y, loss_fn):
        saved = [p.requires_grad for p in self._params]
        self._records = {}
        self._active = True
        try:
            for p in self._params:
                p.requires_grad_(False)
            logits = self.model(x)
            loss = loss_fn(logits, y)
            # loss is a mean over the batch (as Opacus's loss_reduction="mean"): scale so that each sample's
            # backprop is the gradient of its own loss.
            (loss * len(x)).backward()
        finally:
            self._active = False
            for p, flag in zip(self._params, saved):
                p.requires_grad_(flag)
        return float(loss.detach())

    def _stacked(self, module, n):
        """Inputs (N, T, d_in) and output gradients (N, T, d_out) of all calls of ``module`` (None if unused)."""
        a_list, b_list = [], []
        for rec in self._records.get(module, []):
            if rec["b"] is None:
                continue  # this call's output did not reach the loss
            a, b = rec["a"], rec["b"]
            if a.shape[0] != n or b.shape[0] != n:
                raise UnsupportedLayerError(
                    f"Layer {type(module).__name__} was called on a tensor whose first dimension ({a.shape[0]}) is not the "
                    f"batch size ({n}); the fast DP engine needs batch-first inputs."
                )
            if isinstance(module, nn.Embedding):
                a_list.append(a.reshape(n, -1))
            else:
                a_list.append(a.reshape(n, -1, a.shape[-1]))
            b_list.append(b.reshape(n, -1, b.shape[-1]))
        if not a_list:
            return None, None
        if len(a_list) == 1:
            return a_list[0], b_list[0]
        if a_list[0].dim() == 3 and a_list[0].shape[1] == 1:  # one call per step (RNN): stack instead of cat
            return torch.stack([t[:, 0] for t in a_list], 1), torch.stack([t[:, 0] for t in b_list], 1)
        return torch.cat(a_list, 1), torch.cat(b_list, 1)

    def _collect(self, n):
        """``[(module, a, b)]`` for every layer whose output reached the loss."""
        out = []
        for _, module in self.layers:
            a, b = self._stacked(module, n)
            if a is not None:
                out.append((module, a if isinstance(module, nn.Embedding) else a.to(b.dtype), b))
        self._records = {}
        return out

    @staticmethod
    def _linear_sq_norms(module: nn.Linear, a, b):
        out = {}
        if a.shape[1] == 1:  # vectors: ||b a^T||^2 = ||b||^2 ||a||^2
            bb = b[:, 0].pow(2).sum(1)
            if module.weight.requires_grad:
                out[module.weight] = bb * a[:, 0].pow(2).sum(1)
            if module.bias is not None and module.bias.requires_grad:
                out[module.bias] = bb
            return out
        if module.weight.requires_grad:  # ghost norm: sum_{t,s} <a_t, a_s><b_t, b_s>
            out[module.weight] = (torch.bmm(a, a.transpose(1, 2)) * torch.bmm(b, b.transpose(1, 2))).sum((1, 2)).clamp(min=0)
        if module.bias is not None and module.bias.requires_grad:
            out[module.bias] = b.sum(1).pow(2).sum(1)
        return out

    @staticmethod
    def _embedding_sq_norms(module: nn.Embedding, ids, b):
        same = ids.unsqueeze(2) == ids.unsqueeze(1)
        if module.padding_idx is not None:  # the padding row gets no gradient
            same &= (ids != module.padding_idx).unsqueeze(2)
        same = same.to(b.dtype)
        return {module.weight: (torch.bmm(b, b.transpose(1, 2)) * same).sum((1, 2)).clamp(min=0)}

    def _sq_norms(self, collected):
        sq = {}
        for module, a, b in collected:
            if isinstance(module, nn.Embedding):
                if module.weight.requires_grad:
                    sq.update(self._embedding_sq_norms(module, a, b))
            else:
                sq.update(self._linear_sq_norms(module, a, b))
        return sq

    def per_sample_norms(self, x, y, *, loss_fn: Callable | None = None, by_parameter: bool = False):
        """Per-sample gradient norms (N,) of the mean loss's summands, or a dict ``{parameter name: (N,)}``."""
        loss_fn = loss_fn or nn.functional.cross_entropy
        self._backward(x, y, loss_fn)
        sq = self._sq_norms(self._collect(len(x)))
        if by_parameter:
            names = {p: name for name, p in self.model.named_parameters()}
            return {names[p]: v.sqrt() for p, v in sq.items()}
        return torch.stack(list(sq.values())).sum(0).sqrt() if sq else torch.zeros(len(x))

    def clipped_grad(self, x, y, *, loss_fn: Callable | None = None) -> dict:
        """Set every trainable parameter's ``.grad`` to the sum over the batch of its clipped per-sample gradients.

        Returns ``{"loss": mean loss, "norms": per-sample norms before clipping (N,), "clip_factors": (N,)}``.
        """
        loss_fn = loss_fn or nn.functional.cross_entropy
        n = len(x)
        loss = self._backward(x, y, loss_fn)
        collected = self._collect(n)
        sq = self._sq_norms(collected)
        norms = torch.stack(list(sq.values())).sum(0).sqrt() if sq else torch.zeros(n)
        factors = (self.max_grad_norm / (norms + _CLIP_EPS)).clamp(max=1.0)
        for p in self._params:
            p.grad = None
        for module, a, b in collected:
            cb = b * factors.to(b.dtype).view(n, 1, 1)
            if isinstance(module, nn.Embedding):
                if module.weight.requires_grad:
                    grad = torch.zeros_like(module.weight)
                    grad.index_add_(0, a.reshape(-1), cb.reshape(-1, cb.shape[-1]))
                    if module.padding_idx is not None:
                        grad[module.padding_idx] = 0
                    module.weight.grad = grad
            else:
                if module.weight.requires_grad:
                    module.weight.grad = cb.reshape(-1, cb.shape[-1]).T @ a.reshape(-1, a.shape[-1])
                if module.bias is not None and module.bias.requires_grad:
                    module.bias.grad = cb.sum((0, 1))
        for p in self._params:  # layers whose output did not reach the loss contribute nothing
            if p.grad is None:
                p.grad = torch.zeros_like(p)
        return {"loss": loss, "norms": norms.detach(), "clip_factors": factors.detach()}


def per_sample_grad_norms_reference(model: nn.Module, x, y, *, loss_fn: Callable | None = None) -> torch.Tensor:
    """Per-sample gradient norms by brute force: one backward pass per sample (materialised gradients).

    An independent implementation used to test the engine; slow, for small batches only.
    """
    loss_fn = loss_fn or nn.functional.cross_entropy
    params = [p for p in model.parameters() if p.requires_grad]
    norms = []
    for i in range(len(x)):
        grads = torch.autograd.grad(loss_fn(model(x[i : i + 1]), y[i : i + 1]), params, allow_unused=True)
        norms.append(torch.sqrt(sum((g.pow(2).sum() for g in grads if g is not None), torch.tensor(0.0))))
    return torch.stack(norms)
