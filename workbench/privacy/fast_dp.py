"""A fast DP-SGD engine: per-sample gradient clipping without per-sample gradients (ghost norms + book-keeping).

DP-SGD needs, for every sample ``n`` of a batch, the norm of its gradient ``||g_n||`` so that it can be
clipped to ``C``: ``sum_n g_n * min(1, C / ||g_n||)``. Opacus's "hooks" mode materialises every ``g_n``
(a batch-size copy of the model), its "ghost" mode computes the norms cheaply but then runs a *second*
backward pass on the re-weighted loss. This engine (in the spirit of eDP-SGD and of Bu et al.'s
book-keeping, "Differentially private optimization on large model at small cost", ICML 2023) needs a single
forward and a single backward pass that computes **only activation gradients**:

1. forward: hooks keep each layer's input ``a`` (N, T, d_in) and its output; one ``torch.autograd.grad`` call
   then returns the gradient ``b`` (N, T, d_out) of every layer output, and nothing else: autograd prunes
   the weight gradients, which are never computed;
2. per-sample squared norms, layer by layer, without forming ``g_n``:

   * ``nn.Linear`` on vectors: ``||b_n||^2 ||a_n||^2`` (+ ``||b_n||^2`` for the bias);
   * ``nn.Linear`` on sequences, or called several times per forward (the GRU's hidden projection, once per
     step; the calls are stacked along T): the Gram-matrix ("ghost") trick
     ``||sum_t b_t a_t^T||^2 = sum_{t,s} <a_t, a_s> <b_t, b_s>`` when ``T^2 <= d_in d_out``, else the
     per-sample gradient itself (book-keeping's hybrid rule); bias ``||sum_t b_t||^2``;
   * ``nn.Embedding`` (with any pooling after it): the sample's gradient has one non-zero row per distinct
     token ``v``, ``sum_{t: id_t = v} b_t``, so its squared norm is
     ``sum_t ||b_t||^2 + 2 sum_{s<t, id_s = id_t} <b_s, b_t>``: O(N T d), never a vocab x dim gradient. A
     compiled single-pass kernel computes it (:mod:`workbench.privacy._kernels`, Numba); without Numba, one
     sort of the batch's (sample, token) keys and ``index_add`` calls give the same rows in torch. The padding
     row gets no gradient, as in ``nn.Embedding``;
3. book-keeping: the clipped sum is one contraction per layer, ``W.grad += (c * b)^T a`` with
   ``c_n = min(1, C / (||g_n|| + 1e-6))`` (Opacus's clip factor), and a weighted scatter-add of the ``b_t``
   into the table's rows for embeddings. :func:`workbench.privacy.dp.train` first draws the Gaussian noise straight into the gradient
   buffers (:class:`workbench.privacy.noise.NoisyGradients`), so the engine accumulates onto it.

The recurrent layer is handled by unrolling: :class:`workbench.textmodels.RecurrentClassifier` builds its
GRU from two ``nn.Linear`` layers, so the GRU reduces to the Linear rules above.

Why not Opacus's extension points? Opacus lets one register per-layer *norm samplers*
(``register_norm_sampler``) for its ghost-clipping module, and we do follow the same per-layer formulas,
but that module always re-runs backward to form the clipped gradient (so it cannot reach ~1x cost), and it
refuses layers called more than once per forward ("Parameter tying is not supported with Ghost Clipping"),
which rules out the unrolled GRU's hidden projection (called once per time step); its per-parameter
``_norm_sample`` slot holds one norm per call, not the norm of the summed gradient. Book-keeping also needs
the activations and backprops after the norms are known, which the ``GradSampleModule`` API frees. We
therefore use our own hooks here, and reuse Opacus for everything else: the accountant
(:mod:`workbench.privacy.accounting`), Poisson sampling (``opacus.utils.uniform_sampler.UniformWithReplacementSampler``)
and the noise semantics of ``DPOptimizer`` (Gaussian noise with std ``sigma * C`` on the clipped sum, divided
by the expected batch size; drawn by our own faster sampler, :mod:`workbench.privacy.noise`).

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

__all__ = ["GhostClippingEngine", "UnsupportedLayerError", "SUPPORTED_LAYERS", "EMBEDDING_KERNELS", "check_model", "per_sample_grad_norms_reference"]

#: Accepted values of ``GhostClippingEngine(embedding_kernel=...)``: "auto" takes Numba's when it is installed.
EMBEDDING_KERNELS = ("auto", "numba", "torch")
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
    embedding_kernel : {"auto", "numba", "torch"}
        How embedding layers are handled: Numba's compiled kernels (``"auto"`` when Numba imports) or plain
        torch operations. Both give the same numbers (tested); the kernels are several times faster.

    Notes
    -----
    :meth:`clipped_grad` sets each trainable parameter's ``.grad`` to the **sum** of the clipped per-sample
    gradients (times ``scale``; no noise), or adds it to the existing ``.grad`` with ``accumulate=True``;
    :func:`workbench.privacy.dp.train` draws the noise straight into the gradient buffers and then accumulates
    the clipped sum onto it. Call :meth:`remove` to take the hooks off the model.
    """

    def __init__(self, model: nn.Module, *, max_grad_norm: float, embedding_kernel: str = "auto"):
        if not (isinstance(max_grad_norm, (int, float)) and not isinstance(max_grad_norm, bool) and max_grad_norm > 0):
            raise ValueError(f"The 'max_grad_norm' parameter of GhostClippingEngine must be > 0. Got {max_grad_norm!r} instead.")
        if embedding_kernel not in EMBEDDING_KERNELS:
            raise ValueError(f"The 'embedding_kernel' parameter of GhostClippingEngine must be one of {EMBEDDING_KERNELS}. "
                             f"Got {embedding_kernel!r} instead.")
        self._kernels = None
        if embedding_kernel in ("auto", "numba"):
            try:
                from . import _kernels

                self._kernels = _kernels
            except ImportError:
                if embedding_kernel == "numba":
                    raise
        #: "numba" (compiled single-pass kernels, :mod:`workbench.privacy._kernels`) or "torch" (sort + index_add)
        self.embedding_kernel = "numba" if self._kernels is not None else "torch"
        self.model = model
        self.max_grad_norm = float(max_grad_norm)
        self.layers = check_model(model)
        self.parameters = [p for _, m in self.layers for p in m.parameters(recurse=False) if p.requires_grad]
        self._calls: list[tuple[nn.Module, torch.Tensor, torch.Tensor]] = []
        self._active = False
        self._handles = [m.register_forward_hook(self._forward_hook) for _, m in self.layers]

    # -- hooks ---------------------------------------------------------------------------------------
    def _forward_hook(self, module, inputs, output):
        if not self._active:
            return None
        if not output.requires_grad:  # first layer: make its output a leaf so its gradient is still computed
            output = output.detach().requires_grad_(True)
        self._calls.append((module, inputs[0].detach(), output))
        return output

    def remove(self) -> None:
        """Take the engine's hooks off the model."""
        for h in self._handles:
            h.remove()
        self._handles = []

    # -- the pass ------------------------------------------------------------------------------------
    def _backward(self, x, y, loss_fn):
        """Forward, then one backward pass for the gradients of the layers' outputs only.

        Returns the mean loss and ``{module: [(input, output gradient), ...]}`` for every call of a layer whose
        output reached the loss. The output gradients come from one ``torch.autograd.grad`` call over all the
        outputs (no per-tensor Python hooks). Autograd computes only what those gradients need: no weight gradient
        of any layer (``torch.autograd.grad`` prunes the parameters' branches), and ``.grad`` is left alone.
        """
        self._calls = []
        self._active = True
        try:
            logits = self.model(x)
            loss = loss_fn(logits, y)
            # loss is a mean over the batch (as Opacus's loss_reduction="mean"): scale so that each sample's
            # backprop is the gradient of its own loss.
            calls = self._calls
            grads = torch.autograd.grad(loss * len(x), [out for _, _, out in calls], allow_unused=True) if calls else ()
        finally:
            self._active = False
            self._calls = []
        records: dict[nn.Module, list] = {}
        for (module, a, _), b in zip(calls, grads):
            if b is not None:  # None: this call's output did not reach the loss
                records.setdefault(module, []).append((a, b))
        return float(loss.detach()), records

    @staticmethod
    def _stacked(module, calls, n):
        """Inputs (N, T, d_in) (token ids (N, T) for embeddings) and output gradients (N, T, d_out) of all calls."""
        a_list, b_list = [], []
        for a, b in calls:
            if a.shape[0] != n or b.shape[0] != n:
                raise UnsupportedLayerError(
                    f"Layer {type(module).__name__} was called on a tensor whose first dimension ({a.shape[0]}) is not the "
                    f"batch size ({n}); the fast DP engine needs batch-first inputs."
                )
            a_list.append(a.reshape(n, -1) if isinstance(module, nn.Embedding) else a.reshape(n, -1, a.shape[-1]))
            b_list.append(b.reshape(n, -1, b.shape[-1]))
        if len(a_list) == 1:
            return a_list[0], b_list[0]
        if a_list[0].dim() == 3 and a_list[0].shape[1] == 1:  # one call per step (RNN): stack instead of cat
            return torch.stack([t[:, 0] for t in a_list], 1), torch.stack([t[:, 0] for t in b_list], 1)
        return torch.cat(a_list, 1), torch.cat(b_list, 1)

    def _layers(self, records, n):
        """``[(module, kind, data)]`` with what the norms and the book-keeping need, per layer that reached the loss.

        * Linear on vectors: ``("vector", (a (N, d_in), b (N, d_out)))``;
        * Linear on sequences / called several times: ``("sequence", (a (N, T, d_in), b (N, T, d_out)))``;
        * Embedding with the compiled kernels: ``("ids", (ids (N, T), b (N, T, d), padding id or -1))``, which
          :mod:`workbench.privacy._kernels` turn into norms and the clipped sum in one pass each;
        * Embedding in torch: ``("rows", (sample (U,), token (U,), rows (U, d)))``: the gradient of every distinct
          (sample, token) pair, ``sum_{t: id_t = token} b_t``, with the padding row zeroed; a sample's embedding
          gradient *is* its rows, so its squared norm is the sum of their squared norms and the clipped sum is one
          ``index_add``. This costs O(N T d) plus a sort of the N T ids, instead of the O(N T^2 d) of a Gram matrix
          over the sample's tokens.
        """
        out = []
        for _, module in self.layers:
            calls = records.get(module)
            if not calls:
                continue
            a, b = self._stacked(module, calls, n)
            if isinstance(module, nn.Embedding) and self._kernels is not None and b.device.type == "cpu" \
                    and b.dtype in (torch.float32, torch.float64):
                pad = -1 if module.padding_idx is None else module.padding_idx % module.num_embeddings
                out.append((module, "ids", (a.contiguous(), b.contiguous(), pad)))
            elif isinstance(module, nn.Embedding):
                vocab, dim = module.num_embeddings, b.shape[-1]
                keys = a + vocab * torch.arange(n, device=a.device).unsqueeze(1)
                if module.padding_idx is not None:  # the padding row gets no gradient: pool all padding in key -1
                    keys.masked_fill_(a == module.padding_idx, -1)
                unique, inverse = torch.unique(keys.reshape(-1), return_inverse=True)
                rows = b.new_zeros(len(unique), dim).index_add_(0, inverse, b.reshape(-1, dim))
                if len(unique) and bool(unique[0] < 0):  # sorted: the padding key comes first; drop it
                    unique, rows = unique[1:], rows[1:]
                sample, token = unique.div(vocab, rounding_mode="floor"), unique.remainder(vocab)
                out.append((module, "rows", (sample, token, rows)))
            elif a.shape[1] == 1:
                out.append((module, "vector", (a[:, 0].to(b.dtype), b[:, 0])))
            else:
                out.append((module, "sequence", (a.to(b.dtype), b)))
        return out

    def _sq_norms_of(self, module, kind, data, n) -> dict:
        """``{parameter: per-sample squared gradient norms (N,)}`` for one layer."""
        out = {}
        if kind == "ids":
            ids, b, pad = data
            if module.weight.requires_grad:
                sq = b.new_empty(n)
                self._kernels.embedding_sq_norms(ids.numpy(), b.detach().numpy(), pad, sq.numpy())
                out[module.weight] = sq
            return out
        if kind == "rows":
            sample, _, rows = data
            if module.weight.requires_grad:
                out[module.weight] = rows.new_zeros(n).index_add_(0, sample, rows.pow(2).sum(1))
            return out
        a, b = data
        if kind == "vector":  # ||b a^T||^2 = ||b||^2 ||a||^2
            bb = torch.linalg.vecdot(b, b)
            if module.weight.requires_grad:
                out[module.weight] = bb * torch.linalg.vecdot(a, a)
            if module.bias is not None and module.bias.requires_grad:
                out[module.bias] = bb
            return out
        if module.weight.requires_grad:
            t, d_in, d_out = a.shape[1], a.shape[2], b.shape[2]
            if t * t <= d_in * d_out:  # ghost norm: sum_{t,s} <a_t, a_s><b_t, b_s>
                gram = torch.bmm(a, a.transpose(1, 2)).mul_(torch.bmm(b, b.transpose(1, 2)))
                out[module.weight] = gram.sum((1, 2)).clamp_(min=0)
            else:  # short, wide layers: the per-sample gradient b_n^T a_n is the smaller object (book-keeping's rule)
                out[module.weight] = torch.bmm(b.transpose(1, 2), a).pow(2).sum((1, 2))
        if module.bias is not None and module.bias.requires_grad:
            out[module.bias] = b.sum(1).pow(2).sum(1)
        return out

    def _sq_norms(self, layers, n) -> dict:
        sq = {}
        for module, kind, data in layers:
            sq.update(self._sq_norms_of(module, kind, data, n))
        return sq

    def per_sample_norms(self, x, y, *, loss_fn: Callable | None = None, by_parameter: bool = False):
        """Per-sample gradient norms (N,) of the mean loss's summands, or a dict ``{parameter name: (N,)}``."""
        loss_fn = loss_fn or nn.functional.cross_entropy
        _, records = self._backward(x, y, loss_fn)
        sq = self._sq_norms(self._layers(records, len(x)), len(x))
        if by_parameter:
            names = {p: name for name, p in self.model.named_parameters()}
            return {names[p]: v.sqrt() for p, v in sq.items()}
        return _total_norms(sq, len(x))

    def clipped_grad(self, x, y, *, loss_fn: Callable | None = None, scale: float = 1.0, accumulate: bool = False) -> dict:
        """Put ``scale`` times the sum over the batch of the clipped per-sample gradients into every ``.grad``.

        Parameters
        ----------
        x, y : torch.Tensor
            A batch (batch-first) and its targets.
        loss_fn : callable, optional
            ``loss_fn(logits, y)``, a **mean** over the batch; cross-entropy by default.
        scale : float
            Multiplies the clipped sum (``1 / expected batch size`` in DP-SGD), at no extra cost.
        accumulate : bool
            Add to the existing ``.grad`` (e.g. the noise already drawn there) instead of replacing it.

        Returns
        -------
        dict
            ``{"loss": mean loss, "norms": per-sample norms before clipping (N,), "clip_factors": (N,)}``.
        """
        loss_fn = loss_fn or nn.functional.cross_entropy
        n = len(x)
        loss, records = self._backward(x, y, loss_fn)
        layers = self._layers(records, n)
        sq = self._sq_norms(layers, n)
        norms = _total_norms(sq, n)
        factors = (self.max_grad_norm / (norms + _CLIP_EPS)).clamp_(max=1.0)
        for p in self.parameters:
            if not accumulate or p.grad is None:
                p.grad = torch.zeros_like(p)
        weights, alpha = factors, float(scale)  # the scale rides along as alpha in the contractions below
        for module, kind, data in layers:  # book-keeping: one contraction per layer with the clip factors
            weight, bias = module.weight, getattr(module, "bias", None)
            if kind == "ids":
                ids, b, pad = data
                if weight.requires_grad:
                    grad = weight.grad
                    if not grad.is_contiguous() or grad.dtype != b.dtype:
                        raise UnsupportedLayerError(f"The gradient buffer of {type(module).__name__} must be contiguous and "
                                                    f"of the layer's dtype {b.dtype}.")
                    w = (weights * alpha).to(b.dtype)
                    self._kernels.embedding_accumulate(ids.numpy(), b.detach().numpy(), pad, w.numpy(), grad.detach().numpy())
                continue
            if kind == "rows":
                sample, token, rows = data
                if weight.requires_grad:
                    weight.grad.index_add_(0, token, rows * weights[sample].unsqueeze(1), alpha=alpha)
                continue
            a, b = data
            if weight.requires_grad:  # sum_n w_n b_n^T a_n (summed over the positions t of sequences)
                wb = b * (weights.view(n, 1) if kind == "vector" else weights.view(n, 1, 1))
                weight.grad.addmm_(wb.reshape(-1, wb.shape[-1]).T, a.reshape(-1, a.shape[-1]), alpha=alpha)
            if bias is not None and bias.requires_grad:  # sum_n w_n sum_t b_nt
                bias.grad.addmv_((b if kind == "vector" else b.sum(1)).T, weights, alpha=alpha)
        return {"loss": loss, "norms": norms, "clip_factors": factors}


def _total_norms(sq: dict, n: int) -> torch.Tensor:
    """Per-sample norms over all parameters from ``{parameter: squared norms (N,)}``."""
    return sum(sq.values()).sqrt() if sq else torch.zeros(n)


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
