"""A fast DP-SGD engine: per-sample gradient clipping without per-sample gradients (ghost norms + book-keeping).

DP-SGD needs, for every sample ``n`` of a batch, the norm of its gradient ``||g_n||`` so that it can be
clipped to ``C``: ``sum_n g_n * min(1, C / ||g_n||)``. Opacus's "hooks" mode materialises every ``g_n``
(a batch-size copy of the model), its "ghost" mode computes the norms cheaply but then runs a *second*
backward pass on the re-weighted loss. This engine (in the spirit of eDP-SGD and of Bu et al.'s
book-keeping, "Differentially private optimization on large model at small cost", ICML 2023) needs a single
forward and a single backward pass that computes **only activation gradients**:

1. forward: hooks keep each trainable layer's input ``a`` and the autograd edge of its output (not the output
   itself, which the model frees as usual); one ``torch.autograd.grad`` call then returns the gradient ``b`` of
   every layer output, and nothing else: autograd prunes the weight gradients, which are never computed;
2. per-sample squared norms, layer by layer, without forming ``g_n``, by the **rule registered for the layer's
   type** (:mod:`workbench.privacy.clipping_rules`: ``nn.Linear`` on vectors and sequences with the Gram-matrix
   "ghost" identity or the per-sample gradient, whichever is smaller; ``nn.Embedding``, including position ids
   shared by the whole batch; ``nn.LayerNorm`` / ``nn.RMSNorm``; your own with
   :func:`~workbench.privacy.clipping_rules.register_rule`);
3. book-keeping: the clipped sum is one contraction per layer, ``W.grad += (c * b)^T a`` with
   ``c_n = min(1, C / (||g_n|| + 1e-6))`` (Opacus's clip factor); each layer's records are freed as soon as its
   contraction is done. :func:`workbench.privacy.dp.train` first draws the Gaussian noise straight into the
   gradient buffers (:class:`workbench.privacy.noise.NoisyGradients`), so the engine accumulates onto it.

**Memory.** Book-keeping holds every layer's input ``a`` and output gradient ``b`` until the clip factors are
known. The inputs are activations that autograd saves anyway, but it would free them during the backward pass;
the output gradients are extra. On MiniLM at batch 128 x 32 tokens (float32) autograd saves 659 MB of
activations and the engine keeps 408 MB of output gradients (324 MB for the Linear layers, 78 MB for the
LayerNorms, 18 MB for the embeddings): the step's peak is 1.2x that of a non-private step. ``max_physical_batch_size``
bounds it: the batch is processed in slices, with the same result, since each sample is clipped on its own.
``"auto"`` measures, once, the activations autograd saves and the output gradients the engine keeps per element of
the model's input (one forward pass of a few samples, no backward), and slices a batch whose output gradients
reach :data:`AUTO_SLICE_MIN_BYTES` into ``k = ceil((S + R) / S)`` equal slices (``S`` activations, ``R`` output
gradients of the whole batch): then a slice's activations plus the gradients it keeps stay within the
activations a non-private pass holds for the whole batch (MiniLM at batch 128: two slices of 64).

This works on a pretrained transformer as it is loaded (``workbench.datasets.load_encoder("minilm").model``, a
``transformers`` ``BertModel``), with sdpa or eager attention, with or without its pooler (an unused pooler gets a
zero gradient), on padded batches with an attention mask, and without any change to the model. The recurrent
layer of :class:`workbench.textmodels.RecurrentClassifier` is unrolled into ``nn.Linear`` layers, called once per
step; the calls are stacked along ``T``.

**Group-wise clipping** (``clipping="per_layer"``, eDP-SGD's knob; "per-layer clipping" in McMahan et al. 2018):
the trainable parameters are split into groups ``k = 1..G`` and each sample's gradient is clipped group by group,
``g_{n,k} * min(1, C_k / (||g_{n,k}|| + 1e-6))``, with budgets ``C_k`` such that ``sum_k C_k^2 = C^2``: by default
``C_k = C / sqrt(G)``, or ``C_k = C sqrt(s_k / sum_j s_j)`` for given shares ``s_k``. Each clipped per-sample
gradient then still has norm at most ``C``, so the noise ``sigma C`` gives the same guarantee as flat clipping.

Why not Opacus's extension points? Opacus lets one register per-layer *norm samplers*
(``register_norm_sampler``) for its ghost-clipping module, and we do follow the same per-layer formulas,
but that module always re-runs backward to form the clipped gradient (so it cannot reach ~1x cost), and it
refuses layers called more than once per forward ("Parameter tying is not supported with Ghost Clipping"),
which rules out the unrolled GRU's hidden projection; on the ``BertModel`` above it fails out of the box (sdpa
attention, position ids shared by the batch, an unused pooler). We therefore use our own hooks here, and reuse
Opacus for everything else: the accountant (:mod:`workbench.privacy.accounting`), Poisson sampling and the noise
semantics of ``DPOptimizer`` (Gaussian noise with std ``sigma * C`` on the clipped sum, divided by the expected
batch size).

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

Per-layer clipping, two groups, each with budget ``1 / sqrt(2)``:

>>> model = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 2))
>>> engine = GhostClippingEngine(model, max_grad_norm=1.0, clipping="per_layer")
>>> engine.groups, [round(c, 4) for c in engine.group_max_norms]
(('0', '2'), [0.7071, 0.7071])
>>> tuple(engine.clipped_grad(x, y)["clip_factors"].shape)
(4, 2)
>>> engine.remove()
"""
from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Callable

import torch
from torch import nn
from torch.autograd.graph import get_gradient_edge

from ..validation import Callable as CallableC, InstanceOf, Interval, Options, check
from .clipping_rules import RuleContext, UnsupportedLayerError, rule_for, supported_layer_types

__all__ = [
    "GhostClippingEngine",
    "UnsupportedLayerError",
    "SUPPORTED_LAYERS",
    "EMBEDDING_KERNELS",
    "CLIPPING_MODES",
    "check_model",
    "per_sample_grad_norms_reference",
    "AUTO_SLICE_MIN_BYTES",
    "AUTO_PROBE_SAMPLES",
]

#: Accepted values of ``GhostClippingEngine(embedding_kernel=...)``: "auto" takes Numba's when it is installed.
EMBEDDING_KERNELS = ("auto", "numba", "torch")
#: Layers with a clipping rule when this module was imported (the live list: ``clipping_rules.supported_layer_types()``).
SUPPORTED_LAYERS = supported_layer_types()
_CLIP_EPS = 1e-6  # as opacus.optimizers.optimizer.DPOptimizer.clip_and_accumulate
#: ``max_physical_batch_size="auto"`` leaves a batch whole when the output gradients it keeps take less than this.
AUTO_SLICE_MIN_BYTES = 160 * 2**20
#: Samples in the one forward pass that measures a model's memory per input element for ``"auto"``.
AUTO_PROBE_SAMPLES = 8

#: ``GhostClippingEngine(clipping=...)``: how parameters are grouped, ``(parameter name, layer path) -> group label``.
#: A callable ``parameter name -> label`` is accepted too.
CLIPPING_MODES: dict[str, Callable[[str, str], str]] = {
    "flat": lambda param, layer: "all",          # one group: classic DP-SGD
    "per_layer": lambda param, layer: layer,     # one group per layer (module) with trainable parameters
    "per_parameter": lambda param, layer: param,  # one group per parameter tensor
}


def _label(name: str, model: nn.Module) -> str:
    return name or type(model).__name__


def check_model(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """Validate ``model`` for the engine and return its ``(path, layer)`` pairs that hold trainable parameters.

    Raises
    ------
    UnsupportedLayerError
        Naming the first BatchNorm layer (mixes samples, so per-sample clipping is undefined), the first fused
        recurrent layer, the first trainable layer of a type without a clipping rule (listing the supported types),
        or two layers sharing a parameter, and what to do about it.

    Examples
    --------
    >>> from torch import nn
    >>> [path for path, _ in check_model(nn.Sequential(nn.Linear(2, 2), nn.ReLU(), nn.LayerNorm(2)))]
    ['0', '2']
    """
    layers = []
    for name, module in model.named_modules():
        label = _label(name, model)
        if isinstance(module, nn.modules.batchnorm._BatchNorm):
            raise UnsupportedLayerError(
                f"Layer '{label}' ({type(module).__name__}) mixes the samples of a batch, so DP-SGD cannot clip per-sample "
                "gradients. Replace it with nn.GroupNorm or nn.LayerNorm (opacus.validators.ModuleValidator.fix does this)."
            )
        own = [p for p in module.parameters(recurse=False) if p.requires_grad]
        if not own:
            continue
        if isinstance(module, nn.RNNBase):
            raise UnsupportedLayerError(
                f"Layer '{label}' ({type(module).__name__}) is a fused recurrent layer the fast DP engine cannot clip. Use "
                "workbench.textmodels.RecurrentClassifier (a GRU unrolled into nn.Linear layers), or engine='opacus-hooks' "
                "with opacus.layers.DPGRU/DPLSTM."
            )
        if rule_for(module) is None:
            supported = ", ".join(t.__name__ for t in supported_layer_types())
            raise UnsupportedLayerError(
                f"Layer '{label}' ({type(module).__name__}) has trainable parameters the fast DP engine cannot clip (it has "
                f"rules for {supported}). Freeze it (requires_grad=False), register a rule for it "
                "(workbench.privacy.clipping_rules.register_rule), or use engine='opacus-hooks'."
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


def _batch_size(x) -> int:
    """The batch size of a model input: a tensor, a mapping of tensors (``model(**x)``) or a tuple (``model(*x)``)."""
    if isinstance(x, torch.Tensor):
        return x.shape[0]
    values = list(x.values()) if isinstance(x, Mapping) else list(x) if isinstance(x, (list, tuple)) else []
    if isinstance(x, Mapping) and isinstance(x.get("input_ids"), torch.Tensor):
        return x["input_ids"].shape[0]
    for v in values:
        if isinstance(v, torch.Tensor) and v.dim() > 0:
            return v.shape[0]
    raise UnsupportedLayerError(f"Cannot tell the batch size of the model input {type(x).__name__}: pass a tensor, a mapping "
                                "of tensors (called as model(**x)) or a tuple of tensors (model(*x)).")


def _forward(model, x):
    if isinstance(x, Mapping):
        return model(**x)
    if isinstance(x, (list, tuple)):
        return model(*x)
    return model(x)


class GhostClippingEngine:
    """Per-sample clipping in one backward pass, for models whose trainable layers all have a clipping rule.

    Parameters
    ----------
    model : torch.nn.Module
        Its trainable layers (``requires_grad=True`` parameters) must have a rule in
        :data:`workbench.privacy.clipping_rules.RULES` (see :func:`check_model`): ``nn.Linear``, ``nn.Embedding``,
        ``nn.LayerNorm``, ``nn.RMSNorm`` or a type you registered. Choose what to train
        (:func:`workbench.privacy.trainable.select_trainable`) *before* building the engine.
    max_grad_norm : float
        The clipping norm ``C`` (the bound on each sample's whole clipped gradient).
    embedding_kernel : {"auto", "numba", "torch"}
        How embedding layers are handled: Numba's compiled kernels (``"auto"`` when Numba imports) or plain
        torch operations. Both give the same numbers (tested); the kernels are several times faster.
    clipping : {"flat", "per_layer", "per_parameter"} or callable
        Flat clipping (one norm per sample), or group-wise clipping with one group per layer, per parameter
        tensor, or per label of a callable ``parameter name -> label`` (e.g. ``lambda name: name.split(".")[2]``
        groups a BERT's encoder layers). See the module's docstring for the definition.
    group_budget : mapping, optional
        Group-wise clipping only: ``{group label: share > 0}`` for every group; group ``k`` gets
        ``C_k = C sqrt(s_k / sum_j s_j)``. By default every group gets ``C / sqrt(G)``. Either way
        ``sum_k C_k^2 = C^2``.
    max_physical_batch_size : int, "auto" or None
        Process a batch in slices of at most this many samples (forward, backward, norms and clipped sum per slice,
        summed into ``.grad``): the same result, since each sample is clipped on its own, with the peak memory of a
        smaller batch (book-keeping holds every layer's output gradient until the clip factors are known). The loss
        must then be a mean of per-sample terms. ``"auto"``: slices only where the output gradients would take at
        least :data:`AUTO_SLICE_MIN_BYTES`, as many as keep a slice's memory within the activations of a non-private
        pass over the whole batch (see the module's docstring). ``None`` (default): the whole batch at once.

    Attributes
    ----------
    layers : list of (str, nn.Module)
        The hooked layers and their paths.
    parameters : list of torch.nn.Parameter
        The trainable parameters the engine writes ``.grad`` for.
    groups : tuple of str
        The group labels (``("all",)`` for flat clipping).
    group_max_norms : tuple of float
        ``C_k`` per group.
    last_slice_size : int or None
        The samples per forward/backward pass in the last call (the batch size unless it was sliced).
    footprint : tuple of float or None
        ``max_physical_batch_size="auto"`` only, once measured: bytes per element of the model's input of the
        activations autograd saves and of the output gradients the engine keeps.

    Notes
    -----
    :meth:`clipped_grad` sets each trainable parameter's ``.grad`` to the **sum** of the clipped per-sample
    gradients (times ``scale``; no noise), or adds it to the existing ``.grad`` with ``accumulate=True``;
    :func:`workbench.privacy.dp.train` draws the noise straight into the gradient buffers and then accumulates
    the clipped sum onto it. The model input ``x`` may be a tensor (``model(x)``), a mapping (``model(**x)``, e.g. a
    tokenizer's ``input_ids`` and ``attention_mask``) or a tuple (``model(*x)``). The input of a hooked layer must
    not be modified in place after the layer ran (e.g. by ``x += ...`` or ``nn.ReLU(inplace=True)`` on it): the engine
    checks and raises; in-place changes of a layer's *output* are fine. The engine keeps each layer's input and
    output gradient, never its output. Call
    :meth:`remove` to take the hooks off the model.
    """

    def __init__(self, model: nn.Module, *, max_grad_norm: float, embedding_kernel: str = "auto",
                 clipping: str | Callable = "flat", group_budget: Mapping | None = None,
                 max_physical_batch_size: int | None = None):
        owner = "GhostClippingEngine"
        check(model, InstanceOf(nn.Module), name="model", owner=owner)
        self.max_grad_norm = check(max_grad_norm, Interval(float, 0, None, closed="neither"), name="max_grad_norm", owner=owner)
        embedding_kernel = check(embedding_kernel, Options(EMBEDDING_KERNELS), name="embedding_kernel", owner=owner)
        clipping = check(clipping, Options(tuple(CLIPPING_MODES)), CallableC(), name="clipping", owner=owner)
        check(group_budget, InstanceOf(Mapping), None, name="group_budget", owner=owner)
        #: the most samples one forward/backward pass holds (None: the whole batch at once)
        self.max_physical_batch_size = check(max_physical_batch_size, Interval(int, 1, None), Options(("auto",)), None,
                                             name="max_physical_batch_size", owner=owner)
        self.last_slice_size: int | None = None
        self.footprint: tuple[float, float] | None = None
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
        self.layers = check_model(model)
        self.parameters = [p for _, m in self.layers for p in m.parameters(recurse=False) if p.requires_grad]
        self.clipping = clipping
        self._setup_groups(clipping, group_budget)
        self._calls: list = []
        self._active = False
        self._n = 0
        self._grad_bytes = 0
        self._paths = {m: path for path, m in self.layers}
        self._handles = [m.register_forward_hook(self._forward_hook) for _, m in self.layers]

    def _setup_groups(self, clipping, group_budget):
        names = {}
        for name, p in self.model.named_parameters():
            names.setdefault(p, name)
        label_of = CLIPPING_MODES[clipping] if isinstance(clipping, str) else (lambda param, layer: clipping(param))
        labels = {}
        for path, m in self.layers:
            for p in m.parameters(recurse=False):
                if p.requires_grad:
                    labels[p] = str(label_of(names[p], path))
        self.groups = tuple(dict.fromkeys(labels.values()))
        index = {g: k for k, g in enumerate(self.groups)}
        self._group_of = {p: index[g] for p, g in labels.items()}
        if group_budget is None:
            shares = [1.0] * len(self.groups)
        else:
            if clipping == "flat":
                raise UnsupportedLayerError("The 'group_budget' parameter of GhostClippingEngine needs group-wise clipping "
                                            "(clipping='per_layer', 'per_parameter' or a callable). Got clipping='flat'.")
            missing = [g for g in self.groups if g not in group_budget]
            extra = [g for g in group_budget if g not in index]
            if missing or extra:
                raise UnsupportedLayerError(f"The 'group_budget' parameter of GhostClippingEngine must give a share for "
                                            f"exactly the groups {list(self.groups)}. Missing {missing}, unknown {extra}.")
            shares = [check(group_budget[g], Interval(float, 0, None, closed="neither"), name=f"group_budget[{g!r}]",
                            owner="GhostClippingEngine") for g in self.groups]
        total = sum(shares)
        self.group_max_norms = tuple(self.max_grad_norm * math.sqrt(s / total) for s in shares)

    # -- hooks ---------------------------------------------------------------------------------------
    def _forward_hook(self, module, inputs, output):
        if not self._active:
            return None
        path = self._paths.get(module, type(module).__name__)
        if not inputs or not isinstance(inputs[0], torch.Tensor) or not isinstance(output, torch.Tensor):
            raise UnsupportedLayerError(f"Layer '{path}' must be called with a tensor as first positional argument and return "
                                        "a tensor for the fast DP engine.")
        n = self._n
        if output.dim() and output.shape[0] == 1 and n > 1 and inputs[0].shape[0] == 1:
            # an input shared by the whole batch (BERT's position ids (1, T)): broadcast the output here so that the
            # backward pass yields each sample's own output gradient. Same values; the model is unchanged.
            output = output.expand(n, *output.shape[1:])
        if not output.requires_grad:  # make its output a leaf so that its gradient is still computed
            output = output.detach().requires_grad_(True)
        self._grad_bytes += output.numel() * output.element_size()  # what its output gradient will take
        a = inputs[0].detach()
        # Keep the output's gradient edge, not the output: the model frees the output whenever it would without the
        # engine, and the edge still names the gradient of the layer's own result if the model later changes the
        # output in place (nn.ReLU(inplace=True)).
        self._calls.append((module, a, a._version, get_gradient_edge(output)))
        return output

    def remove(self) -> None:
        """Take the engine's hooks off the model."""
        for h in self._handles:
            h.remove()
        self._handles = []

    # -- the pass ------------------------------------------------------------------------------------
    def _backward(self, x, y, loss_fn):
        """Forward, then one backward pass for the gradients of the layers' outputs only.

        Returns the mean loss, the batch size and ``{module: [(input, output gradient), ...]}`` for every call of a
        layer whose output reached the loss. Autograd computes only what those gradients need: no weight gradient of
        any layer, and ``.grad`` is left alone.
        """
        n = _batch_size(x)
        self._calls, self._n, self._active = [], n, True
        try:
            logits = _forward(self.model, x)
            loss = loss_fn(logits, y)
            calls = self._calls
            for module, a, a_version, _ in calls:
                if a._version != a_version:
                    raise UnsupportedLayerError(
                        f"The input of layer '{self._paths[module]}' was modified in place after the layer ran (e.g. by "
                        "'+=' or an in-place activation), so the engine's record of it is stale. Use the out-of-place form."
                    )
            # loss is a mean over the batch (as Opacus's loss_reduction="mean"): scale so that each sample's
            # backprop is the gradient of its own loss.
            grads = torch.autograd.grad(loss * n, [c[3] for c in calls], allow_unused=True) if calls else ()
        finally:
            self._active = False
            self._calls = []
        records: dict[nn.Module, list] = {}
        for (module, a, _, _), b in zip(calls, grads):
            if b is not None:  # None: this call's output did not reach the loss (an unused pooler)
                records.setdefault(module, []).append((a, b))
        return float(loss.detach()), n, records

    def _prepared(self, records, n):
        """``[(module, rule, data, {parameter: squared norms (N,)})]`` for every layer that reached the loss."""
        ctx = RuleContext(n=n, kernels=self._kernels)
        out = []
        for _, module in self.layers:
            calls = records.pop(module, None)
            if not calls:
                continue
            rule = rule_for(module)
            data = rule.prepare(module, calls, ctx)
            del calls
            out.append((module, rule, data, rule.sq_norms(module, data, ctx)))
        ctx.cache.clear()
        return ctx, out

    def _group_sq(self, layers, n, dtype):
        sq = torch.zeros(n, len(self.groups), dtype=dtype)
        for _, _, _, norms in layers:
            for p, v in norms.items():
                sq[:, self._group_of[p]] += v.to(dtype)
        return sq

    def per_sample_norms(self, x, y, *, loss_fn: Callable | None = None, by_parameter: bool = False):
        """Per-sample gradient norms (N,) of the mean loss's summands, or a dict ``{parameter name: (N,)}``."""
        loss_fn = loss_fn or nn.functional.cross_entropy
        names = {}
        for name, p in self.model.named_parameters():
            names.setdefault(p, name)
        parts = []
        for xp, yp in self._parts(x, y):
            _, n, records = self._backward(xp, yp, loss_fn)
            _, layers = self._prepared(records, n)
            if by_parameter:
                parts.append({names[p]: v.sqrt() for *_, norms in layers for p, v in norms.items()})
            else:
                parts.append(self._group_sq(layers, n, self.parameters[0].dtype).sum(1).sqrt())
        if len(parts) == 1:
            return parts[0]
        if by_parameter:
            return {k: torch.cat([p[k] for p in parts]) for k in parts[0]}
        return torch.cat(parts)

    def clipped_grad(self, x, y, *, loss_fn: Callable | None = None, scale: float = 1.0, accumulate: bool = False,
                     before_write: Callable | None = None) -> dict:
        """Put ``scale`` times the sum over the batch of the clipped per-sample gradients into every ``.grad``.

        Parameters
        ----------
        x : torch.Tensor, mapping or tuple
            A batch (batch-first): a tensor, a mapping of tensors (``model(**x)``) or a tuple (``model(*x)``).
        y : torch.Tensor
            Its targets.
        loss_fn : callable, optional
            ``loss_fn(model output, y)``, a **mean** over the batch; cross-entropy by default.
        scale : float
            Multiplies the clipped sum (``1 / expected batch size`` in DP-SGD), at no extra cost.
        accumulate : bool
            Add to the existing ``.grad`` (e.g. the noise already drawn there) instead of replacing it.
        before_write : callable, optional
            Called once, with no argument, just before the first write into a ``.grad`` (after the forward and
            backward passes and the norms): e.g. :meth:`workbench.privacy.noise.NoisyGradients.wait`, so that noise
            drawn into the gradient buffers on another core overlaps the step.

        Returns
        -------
        dict
            ``{"loss": mean loss, "norms": per-sample norms before clipping (N,), "clip_factors": (N,)}`` for flat
            clipping; with group-wise clipping ``"clip_factors"`` is (N, G) and ``"group_norms"`` (N, G) is added.
        """
        loss_fn = loss_fn or nn.functional.cross_entropy
        scale = check(scale, Interval(float, None, None), name="scale", owner="GhostClippingEngine.clipped_grad")
        check(before_write, CallableC(), None, name="before_write", owner="GhostClippingEngine.clipped_grad")
        parts = [self._clip_part(xp, yp, loss_fn, scale, accumulate or k > 0, before_write if k == 0 else None)
                 for k, (xp, yp) in enumerate(self._parts(x, y))]
        sizes = [p["norms"].shape[0] for p in parts]
        out = {"loss": sum(p["loss"] * m for p, m in zip(parts, sizes)) / max(sum(sizes), 1)}
        for key in parts[0]:
            if key != "loss":
                out[key] = parts[0][key] if len(parts) == 1 else torch.cat([p[key] for p in parts])
        return out

    def _parts(self, x, y):
        """The batch, or its slices of at most ``max_physical_batch_size`` samples (exact: clipping is per sample)."""
        n = _batch_size(x)
        size = self.last_slice_size = self._slice_size(x, n)
        if n <= size:
            return [(x, y)]
        return [(_take(x, slice(i, i + size), n), _take(y, slice(i, i + size), n)) for i in range(0, n, size)]

    def _slice_size(self, x, n: int) -> int:
        size = self.max_physical_batch_size
        if size is None or n == 0:
            return max(n, 1)
        if size != "auto":
            return size
        if self.footprint is None:
            self.footprint = self._measure_footprint(x, n)
        per_saved, per_grad = self.footprint
        elements = _input_elements(x, n)
        if per_grad * elements < AUTO_SLICE_MIN_BYTES or per_saved <= 0:
            return n
        slices = math.ceil((per_saved + per_grad) / per_saved)
        return math.ceil(n / slices)

    def _measure_footprint(self, x, n: int) -> tuple[float, float]:
        """Bytes per input element of the activations autograd saves and of the output gradients the engine keeps.

        One forward pass (no backward) of the first :data:`AUTO_PROBE_SAMPLES` samples with the engine's hooks on,
        counting the storages autograd saves (parameters and buffers left out); the global random state is restored
        after it, so dropout draws the same masks as without the probe.
        """
        m = min(n, AUTO_PROBE_SAMPLES)
        probe = _take(x, slice(0, m), n)
        own = {t.untyped_storage().data_ptr() for t in (*self.model.parameters(), *self.model.buffers())}
        saved: dict[int, int] = {}

        def pack(t):
            storage = t.untyped_storage()
            if storage.data_ptr() not in own:
                saved[storage.data_ptr()] = storage.nbytes()
            return t

        self._calls, self._n, self._active, self._grad_bytes = [], m, True, 0
        try:
            with torch.random.fork_rng(devices=[]), torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
                out = _forward(self.model, probe)
            del out
        finally:
            self._active, self._calls = False, []
        elements = max(_input_elements(probe, m), 1)
        return sum(saved.values()) / elements, self._grad_bytes / elements

    def _clip_part(self, x, y, loss_fn, scale, accumulate, before_write=None) -> dict:
        loss, n, records = self._backward(x, y, loss_fn)
        ctx, layers = self._prepared(records, n)
        dtype = self.parameters[0].dtype
        group_sq = self._group_sq(layers, n, dtype)
        group_norms = group_sq.sqrt()
        bounds = torch.tensor(self.group_max_norms, dtype=dtype)
        factors = (bounds / (group_norms + _CLIP_EPS)).clamp_(max=1.0)
        weights_by_group = (factors * scale).T.contiguous()  # (G, N): the scale rides along in the contractions
        fresh = set()
        if before_write is not None:
            before_write()

        def ready(p):  # a zero (or, with accumulate, the existing) gradient buffer, made only when its layer needs it
            if (not accumulate or p.grad is None) and p not in fresh:
                p.grad = torch.zeros_like(p)
                fresh.add(p)

        while layers:  # book-keeping: one contraction per layer; free each layer's records once it is done
            module, rule, data, norms = layers.pop(0)
            for p in module.parameters(recurse=False):
                if p.requires_grad:
                    ready(p)
            weights = {p: weights_by_group[self._group_of[p]] for p in norms}
            rule.accumulate(module, data, weights, ctx)
            del data, norms
        for p in self.parameters:  # layers that did not reach the loss (an unused pooler): zero gradient
            ready(p)
        out = {"loss": loss, "norms": group_sq.sum(1).sqrt(), "clip_factors": factors[:, 0]}
        if self.clipping != "flat":
            out["clip_factors"], out["group_norms"] = factors, group_norms
        return out


def _take(x, rows: slice, n: int):
    """Rows ``rows`` of every batch-first tensor in ``x`` (a tensor, mapping or tuple); anything else as it is."""
    if isinstance(x, torch.Tensor):
        return x[rows] if x.dim() and x.shape[0] == n else x
    if isinstance(x, Mapping):
        return {k: _take(v, rows, n) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return type(x)(_take(v, rows, n) for v in x)
    return x


def _input_elements(x, n: int) -> int:
    """Elements of the batch-first tensors in a model input (a tensor, mapping or tuple): what memory scales with."""
    if isinstance(x, torch.Tensor):
        return x.numel() if x.dim() and x.shape[0] == n else 0
    values = x.values() if isinstance(x, Mapping) else x if isinstance(x, (list, tuple)) else ()
    total = sum(_input_elements(v, n) for v in values)
    return total or n


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
