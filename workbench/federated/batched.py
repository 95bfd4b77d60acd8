"""Batched local updates: a round's selected devices train together, one vectorised SGD step for all of them.

:class:`BatchedSimulator` overrides :meth:`FedAvgSimulator.local_updates` only. The selected devices' copies
of the weights are stacked (``[k, ...]`` per parameter, buffers reused from round to round), and every local
step trains all ``k`` devices at once:

* models made of ``Embedding``, ``Flatten``, ``Linear``, ``ReLU``/``Tanh`` (the study's
  :class:`~workbench.federated.tasks.CharMLP` and :class:`~workbench.models.MLP`) take the *fused* path
  (:class:`FusedChain`): the forward pass is batched matrix products over the stacked weights, the backward
  pass of the cross-entropy is written out by hand (no autograd graph), and each weight gradient is added
  straight into the weights by ``baddbmm_`` (the SGD step fused with the gradient product, in place); a whole
  round's steps run in one call (:meth:`FusedChain.train`);
* any other model runs through ``torch.func.functional_call`` under ``torch.func.vmap`` with autograd, which
  is generic but, for these small models, no faster than the per-device loop.

The loss is each device's own mean loss, so each device's slice of the gradient is its own gradient. Devices
hold different amounts of data, so minibatches are padded to ``batch_size`` with a mask, and a device that has
run out of steps gets an all-zero mask (a zero step). Each device's minibatch order is drawn exactly as
:func:`~workbench.federated.simulation.local_update` draws it (the same seeded generator, the same permutation
per epoch), so the result equals the per-device loop up to float rounding (tests check this within 2e-5).

Examples
--------
>>> import torch
>>> from torch import nn
>>> from workbench.federated.partition import iid_partition
>>> from workbench.federated.simulation import FedConfig, FederatedData, run_fedavg
>>> X = torch.randn(120, 3); y = (X[:, 0] > 0).long()
>>> train, test = iid_partition(120, n_clients=6, seed=0).split(0.25)
>>> data = FederatedData(X, y, train=train, test=test, n_classes=2)
>>> cfg = FedConfig(rounds=3, clients_per_round=3, batch_size=8, max_local_steps=4)
>>> a = run_fedavg(data, model_fn=lambda: nn.Linear(3, 2), config=cfg, progress=False)
>>> b = run_fedavg(data, model_fn=lambda: nn.Linear(3, 2), config=cfg, progress=False, simulator=BatchedSimulator)
>>> bool(torch.allclose(a.model.weight, b.model.weight, atol=1e-6))
True
"""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

from .simulation import ClientUpdates, FedAvgSimulator, RoundPlan, client_seed

__all__ = ["BatchedSimulator", "FusedChain", "minibatch_schedule", "padded_schedule", "stacked_forward",
           "supports_stacked"]

_ACTIVATIONS = {nn.ReLU: torch.relu, nn.Tanh: torch.tanh}


def _leaves(model: nn.Module):
    """The model's computation as a list of (name prefix, leaf module), or None if it is not a plain chain."""
    from .tasks import CharMLP

    if isinstance(model, CharMLP):
        return [("embedding", model.embedding)] + [(f"net.{n}", m) for n, m in model.net.named_children()]
    if isinstance(model, nn.Linear):
        return [("", model)]
    if isinstance(model, nn.Sequential):
        return [(n, m) for n, m in model.named_children()]
    children = list(model.named_children())
    if len(children) == 1 and isinstance(children[0][1], nn.Sequential) and type(model).forward.__qualname__.endswith("MLP.forward"):
        return [(f"{children[0][0]}.{n}", m) for n, m in children[0][1].named_children()]
    return None


def _pname(prefix: str, name: str) -> str:
    return f"{prefix}.{name}" if prefix else name


def supports_stacked(model: nn.Module) -> bool:
    """Whether the fused path (:class:`FusedChain`, :func:`stacked_forward`) can run ``model``: a chain of
    Embedding / Flatten / Linear / ReLU / Tanh / Dropout(0) whose parameters all train.

    Examples
    --------
    >>> supports_stacked(nn.Sequential(nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 2))), supports_stacked(nn.GRU(2, 2))
    (True, False)
    """
    leaves = _leaves(model)
    ok = (nn.Embedding, nn.Flatten, nn.Linear, nn.ReLU, nn.Tanh)
    return (leaves is not None and len(leaves) > 0
            and all(isinstance(m, ok) or (isinstance(m, nn.Dropout) and m.p == 0) for _, m in leaves)
            and all(m.padding_idx is None and m.max_norm is None and not m.sparse and not m.scale_grad_by_freq
                    for _, m in leaves if isinstance(m, nn.Embedding))
            and all(m.start_dim == 1 and m.end_dim == -1 for _, m in leaves if isinstance(m, nn.Flatten))
            and all(p.requires_grad for p in model.parameters()))


def stacked_forward(model: nn.Module, params: dict, x: torch.Tensor) -> torch.Tensor:
    """Logits of ``k`` copies of ``model`` with stacked ``params`` (``name -> [k, ...]``) on ``x`` (``[k, B, ...]``).

    Examples
    --------
    >>> m = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 2))
    >>> p = {n: t.detach().unsqueeze(0).repeat(2, *[1] * t.dim()) for n, t in m.named_parameters()}
    >>> x = torch.randn(2, 5, 3)
    >>> torch.allclose(stacked_forward(m, p, x)[1], m(x[1]), atol=1e-6)
    True
    """
    h = x
    for name, m in _leaves(model):
        if isinstance(m, nn.Embedding):
            w = params[_pname(name, "weight")]  # [k, V, d]
            h = w[torch.arange(len(w)).view(-1, *([1] * (h.dim() - 1))), h]
        elif isinstance(m, nn.Flatten):
            h = h.reshape(h.shape[0], h.shape[1], -1)
        elif isinstance(m, nn.Linear):
            w = params[_pname(name, "weight")]
            out = torch.bmm(h, w.transpose(1, 2))
            h = out + params[_pname(name, "bias")].unsqueeze(1) if m.bias is not None else out
        elif isinstance(m, nn.Dropout):
            continue
        else:
            h = _ACTIVATIONS[type(m)](h)
    return h


class FusedChain:
    """``k`` stacked copies of a chain model (see :func:`supports_stacked`) trained by SGD together, without
    autograd: forward by batched matrix products, the cross-entropy's backward written out, and each weight
    gradient added into the weights in place (``baddbmm_``, ``index_add_``), so a local step is a handful of
    large kernels.

    Each parameter lives in its own contiguous ``[k, ...]`` buffer: an embedding table is one ``[k * V, d]``
    matrix that ``index_add_`` updates in place, and a Linear weight is stored transposed, ``[k, in, out]``,
    so the forward product reads a contiguous operand (on one CPU thread that is about 14% less time for
    the three products of notebook 03's 256 -> 128 layer than the ``[k, out, in]`` layout). :attr:`flat` lays
    the buffers out as one ``[k, n_parameters]`` tensor in ``model.parameters()`` order, as
    :func:`torch.nn.utils.parameters_to_vector` does, and :meth:`load` fills them from such a global vector.

    Examples
    --------
    >>> torch.manual_seed(0); m = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))
    <torch._C.Generator object at ...>
    >>> chain = FusedChain(m, k=2)
    >>> chain.load(torch.nn.utils.parameters_to_vector(m.parameters()).detach())
    >>> x, t = torch.randn(2, 5, 3), torch.randint(0, 2, (2, 5))
    >>> w = torch.full((2, 5), 1 / 5)  # each device's mean over its 5 samples
    >>> loss = chain.sgd_step(x, t, w, lr=0.1)
    >>> ref = nn.functional.cross_entropy(m(x[1]), t[1]); ref.backward()
    >>> bool(torch.allclose(loss[1], ref.detach())), bool(torch.allclose(chain.flat[1, :12].view(4, 3), m[0].weight - 0.1 * m[0].weight.grad, atol=1e-6))
    (True, True)
    """

    def __init__(self, model: nn.Module, *, k: int):
        if not supports_stacked(model):
            raise ValueError(f"The 'model' parameter of FusedChain must be a chain of Embedding/Flatten/Linear/ReLU/Tanh "
                             f"layers whose parameters all train. Got {type(model).__name__} instead.")
        self.k = int(k)
        dtype = next(model.parameters()).dtype
        # Linear weights are stored transposed ([k, in, out]); every other parameter as the model holds it.
        self.transposed = {_pname(name, "weight") for name, m in _leaves(model) if isinstance(m, nn.Linear)}
        self.params = {n: torch.empty((self.k, *(p.shape[::-1] if n in self.transposed else p.shape)), dtype=dtype)
                       for n, p in model.named_parameters()}
        self.n_params = int(sum(p.numel() for p in model.parameters()))
        self.layers = []  # (kind, weight buffer, bias buffer or None)
        for name, m in _leaves(model):
            if isinstance(m, nn.Embedding):
                self.layers.append(("embedding", self.params[_pname(name, "weight")], None))
            elif isinstance(m, nn.Linear):
                self.layers.append(("linear", self.params[_pname(name, "weight")],
                                    self.params[_pname(name, "bias")] if m.bias is not None else None))
            elif isinstance(m, nn.Flatten):
                self.layers.append(("flatten", None, None))
            elif isinstance(m, nn.ReLU):
                self.layers.append(("relu", None, None))
            elif isinstance(m, nn.Tanh):
                self.layers.append(("tanh", None, None))
        # Layers before the first one with parameters need no input gradient.
        self.first_trained = next(i for i, (kind, w, _) in enumerate(self.layers) if w is not None)
        # An activation right after a Linear may overwrite its input (the Linear's backward needs its input only).
        self.inplace = [i > 0 and self.layers[i - 1][0] == "linear" for i in range(len(self.layers))]

    @property
    def flat(self) -> torch.Tensor:
        """The ``k`` devices' weights as one ``[k, n_parameters]`` tensor (a copy, in ``parameters()`` order)."""
        return torch.cat([(p.transpose(1, 2) if n in self.transposed else p).reshape(self.k, -1)
                          for n, p in self.params.items()], dim=1)

    def _vector_views(self, vec: torch.Tensor) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """Each buffer with the matching slice of a ``[n_parameters]`` vector, viewed in the buffer's layout."""
        out, off = [], 0
        for n, p in self.params.items():
            size = p[0].numel()
            piece = vec[off : off + size]
            piece = piece.view(p.shape[2], p.shape[1]).t() if n in self.transposed else piece.view(p.shape[1:])
            out.append((p, piece))
            off += size
        return out

    def load(self, global_vec: torch.Tensor) -> None:
        """Every device starts from ``global_vec`` (copied into the reused buffers)."""
        for p, piece in self._vector_views(global_vec.to(next(iter(self.params.values())).dtype)):
            p.copy_(piece.expand_as(p))

    def _offsets(self, x: torch.Tensor) -> torch.Tensor:
        """Row offsets ``j * V`` that send device ``j``'s token ids to its block of the stacked embedding table."""
        V = next(w for kind, w, _ in self.layers if kind == "embedding").shape[1]
        return (torch.arange(self.k) * V).view(self.k, *([1] * (x.dim() - 1)))

    def sgd_step(self, x: torch.Tensor, target: torch.Tensor, weight: torch.Tensor, *, lr: float,
                 proximal_mu: float = 0.0, anchor: torch.Tensor | None = None,
                 active: torch.Tensor | None = None) -> torch.Tensor:
        """One SGD step of every device on its minibatch; returns each device's weighted loss ``[k]``.

        ``x``: ``[k, B, ...]`` inputs; ``target``: ``[k, B]`` classes; ``weight``: ``[k, B]`` per-sample loss
        weights (``mask / n_real`` gives each device the mean over its real samples; an all-zero row leaves a
        device unchanged). ``proximal_mu > 0`` adds FedProx's ``mu (w - anchor)`` (``anchor``: the round's
        start, a vector) to the gradient of the ``active`` devices.
        """
        return self.train(x.unsqueeze(0), target.unsqueeze(0), weight.unsqueeze(0), lr=lr, proximal_mu=proximal_mu,
                          anchor=anchor, active=None if active is None else active.unsqueeze(0))

    @torch.no_grad()
    def train(self, x: torch.Tensor, target: torch.Tensor, weight: torch.Tensor, *, lr: float,
              proximal_mu: float = 0.0, anchor: torch.Tensor | None = None,
              active: torch.Tensor | None = None) -> torch.Tensor:
        """``len(x)`` SGD steps of every device (the arguments of :meth:`sgd_step` with a leading step axis);
        returns each device's summed weighted loss ``[k]``.

        What does not change from step to step is prepared once for all steps: the embedding's row offsets,
        and the cross-entropy's ``onehot(target) * weight`` (so a step's output gradient is
        ``softmax * weight - onehot * weight``).

        Examples
        --------
        >>> torch.manual_seed(0); m = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 2))
        <torch._C.Generator object at ...>
        >>> a, b = FusedChain(m, k=2), FusedChain(m, k=2)
        >>> v = torch.nn.utils.parameters_to_vector(m.parameters()).detach(); a.load(v); b.load(v)
        >>> x, t, w = torch.randn(3, 2, 5, 3), torch.randint(0, 2, (3, 2, 5)), torch.full((3, 2, 5), 0.2)
        >>> total = a.train(x, t, w, lr=0.1)
        >>> steps = sum(b.sgd_step(x[s], t[s], w[s], lr=0.1) for s in range(3))
        >>> bool(torch.allclose(a.flat, b.flat, atol=1e-6)), bool(torch.allclose(total, steps, atol=1e-6))
        (True, True)
        """
        k, n_steps = self.k, len(x)
        if self.layers[0][0] == "embedding":  # the usual place: offset all steps' token ids at once
            x = x + self._offsets(x[0]).unsqueeze(0)
        w3 = weight.unsqueeze(-1)
        onehot_w = None
        totals = torch.zeros(k, dtype=weight.dtype)
        prox_pairs = []
        if proximal_mu > 0:
            prox_pairs = [(p, a.unsqueeze(0)) for p, a in self._vector_views(anchor)]
            scale = active.to(weight.dtype) * proximal_mu  # [steps, k]
        for s in range(n_steps):
            h = x[s]
            acts = [h]
            for i, (kind, w, b) in enumerate(self.layers):
                if kind == "embedding":
                    if i > 0:  # token ids that came through a Flatten: offset them here
                        h = h + self._offsets(h)
                        acts[i] = h
                    h = nn.functional.embedding(h, w.view(-1, w.shape[-1]))
                elif kind == "linear":
                    h = torch.bmm(h, w) if b is None else torch.baddbmm(b.unsqueeze(1), h, w)  # w: [k, in, out]
                elif kind == "flatten":
                    h = h.reshape(k, h.shape[1], -1)
                elif self.inplace[i]:  # after a Linear: its backward needs its input, not its output
                    h = torch.relu_(h) if kind == "relu" else torch.tanh_(h)
                else:
                    h = torch.relu(h) if kind == "relu" else torch.tanh(h)
                acts.append(h)
            if onehot_w is None:  # now the number of classes is known
                onehot_w = torch.zeros((*target.shape, h.shape[-1]), dtype=h.dtype)
                onehot_w.scatter_(-1, target.unsqueeze(-1), w3.to(h.dtype))
            logp = torch.log_softmax(h, dim=-1)
            totals.sub_(torch.mul(logp, onehot_w[s]).sum((1, 2)))
            g = logp.exp_().mul_(w3[s]).sub_(onehot_w[s])  # d(weighted loss)/d(logits), reusing the buffer
            if prox_pairs:
                sc = scale[s].view(k, 1)
                prox = [(p - a).mul_(sc.view(k, *([1] * (p.dim() - 1)))) for p, a in prox_pairs]
            for i in range(len(self.layers) - 1, self.first_trained - 1, -1):
                kind, w, b = self.layers[i]
                inp, out = acts[i], acts[i + 1]
                if kind == "linear":
                    g_in = torch.bmm(g, w.transpose(1, 2)) if i > self.first_trained else None
                    w.baddbmm_(inp.transpose(1, 2), g, alpha=-lr)
                    if b is not None:
                        b.sub_(g.sum(1), alpha=lr)
                    g = g_in
                elif kind == "embedding":
                    # the gradient summed first, then one SGD step: autograd's order, so the same rounding as
                    # the per-device loop (index_add_'s own alpha would take a slow serial path anyway)
                    table = w.view(-1, w.shape[-1])
                    grad = torch.zeros_like(table).index_add_(0, inp.reshape(-1), g.reshape(-1, w.shape[-1]))
                    table.sub_(grad, alpha=lr)
                elif kind == "flatten":
                    g = g.reshape(inp.shape)
                elif kind == "relu":
                    g = torch.ops.aten.threshold_backward(g, out, 0)  # autograd's own ReLU backward kernel
                else:
                    g = torch.ops.aten.tanh_backward(g, out)
            if prox_pairs:
                for (p, _), d in zip(prox_pairs, prox):
                    p.sub_(d, alpha=lr)
        return totals


def minibatch_schedule(n: int, *, epochs: int, batch_size: int, max_steps: int | None,
                       generator: torch.Generator) -> list[torch.Tensor]:
    """The minibatches (index tensors) :func:`~workbench.federated.simulation.local_update` visits, in order,
    drawing from ``generator`` exactly as it does.

    Examples
    --------
    >>> [b.tolist() for b in minibatch_schedule(3, epochs=2, batch_size=4, max_steps=None, generator=torch.Generator())]
    [[0, 1, 2], [0, 1, 2]]
    """
    out: list[torch.Tensor] = []
    for _ in range(epochs):
        order = torch.randperm(n, generator=generator) if batch_size < n else torch.arange(n)
        for start in range(0, n, batch_size):
            if max_steps is not None and len(out) >= max_steps:
                return out
            out.append(order[start : start + batch_size])
    return out


def padded_schedule(n: int, *, epochs: int, batch_size: int, max_steps: int | None,
                    generator: torch.Generator) -> torch.Tensor:
    """:func:`minibatch_schedule` as one ``[steps, batch_size]`` tensor, short minibatches padded with -1.

    Examples
    --------
    >>> padded_schedule(5, epochs=1, batch_size=2, max_steps=None, generator=torch.Generator().manual_seed(0)).shape
    torch.Size([3, 2])
    >>> padded_schedule(3, epochs=2, batch_size=4, max_steps=None, generator=torch.Generator()).tolist()
    [[0, 1, 2, -1], [0, 1, 2, -1]]
    """
    per_epoch = -(-n // batch_size)
    rows = []
    for _ in range(epochs):
        if max_steps is not None and len(rows) * per_epoch >= max_steps:
            break
        order = torch.randperm(n, generator=generator) if batch_size < n else torch.arange(n)
        padded = torch.full((per_epoch * batch_size,), -1, dtype=torch.long)
        padded[:n] = order
        rows.append(padded.view(per_epoch, batch_size))
    out = torch.cat(rows) if rows else torch.zeros((0, batch_size), dtype=torch.long)
    return out if max_steps is None else out[:max_steps]


class BatchedSimulator(FedAvgSimulator):
    """:class:`FedAvgSimulator` whose local updates of a round run as one vectorised pass per step."""

    _chain: FusedChain | None = None

    def round_batches(self, plan: RoundPlan) -> tuple[torch.Tensor, torch.Tensor]:
        """Global sample ids ``[steps, k, batch_size]`` of every device's minibatches this round, and their mask
        (1 for a real sample, 0 for padding; a device out of steps has an all-zero row)."""
        cfg = self.config
        scheds, owns = [], []
        for c in plan.clients:
            gen = torch.Generator().manual_seed(client_seed(cfg.seed, plan.round_idx, int(c)))
            scheds.append(padded_schedule(int(plan.sizes[c]), epochs=cfg.local_epochs, batch_size=cfg.batch_size,
                                          max_steps=cfg.max_local_steps, generator=gen))
            owns.append(torch.as_tensor(self.data.train.client(int(c), int(plan.start[c]), int(plan.stop[c]))))
        steps = max((len(s) for s in scheds), default=0)
        pos = torch.full((steps, len(scheds), cfg.batch_size), -1, dtype=torch.long)
        ids = torch.zeros_like(pos)
        for j, (s, own) in enumerate(zip(scheds, owns)):
            pos[: len(s), j] = s
            if len(own):
                ids[: len(s), j] = own[s.clamp(min=0)]
        return ids, (pos >= 0)

    def local_updates(self, plan: RoundPlan) -> ClientUpdates:
        cfg = self.config
        clients = plan.clients
        k = len(clients)
        ids, mask = self.round_batches(plan)
        mask = mask.to(self.global_vec.dtype)
        weight = mask / mask.sum(2, keepdim=True).clamp(min=1.0)  # each device's mean over its real samples
        counts = (mask.sum(2) > 0).sum(0).numpy()
        mu = float(plan.settings.get("proximal_mu", 0.0))
        if supports_stacked(self.model):
            if self._chain is None or self._chain.k != k:
                self._chain = FusedChain(self.model, k=k)
            chain = self._chain
            chain.load(self.global_vec)
            totals = chain.train(self.data.X[ids], self.data.y[ids], weight, lr=cfg.client_lr, proximal_mu=mu,
                                 anchor=self.global_vec, active=mask.sum(2) > 0)
            deltas = chain.flat.sub_(self.global_vec)  # flat is a fresh copy: no second [k, n_params] buffer
        else:
            deltas, totals = self._vmap_updates(ids, weight, mu)
        losses = (totals.numpy() / np.maximum(counts, 1)).tolist()
        return ClientUpdates(clients, deltas, plan.sizes[clients].astype(np.float64), losses)

    def _vmap_updates(self, ids: torch.Tensor, weight: torch.Tensor, mu: float) -> tuple[torch.Tensor, torch.Tensor]:
        """The generic path: ``torch.func.vmap`` of ``grad`` of the model's ``functional_call`` over the devices."""
        from torch.func import functional_call, grad, vmap
        from torch.nn.utils import parameters_to_vector

        model, k = self.model, ids.shape[1]
        self.set_global()
        model.train()
        names = [n for n, p in model.named_parameters() if p.requires_grad]
        start = {n: p.detach() for n, p in model.named_parameters() if p.requires_grad}
        params = {n: p.unsqueeze(0).repeat(k, *([1] * p.dim())).clone() for n, p in start.items()}

        def loss_fn(p, x, t, w):
            ce = nn.functional.cross_entropy(functional_call(model, p, (x,)), t, reduction="none")
            loss = (ce * w).sum()
            return loss, loss.detach()

        grad_and_loss = vmap(grad(loss_fn, has_aux=True))
        totals = torch.zeros(k, dtype=self.global_vec.dtype)
        active_all = weight.sum(2) > 0
        lr = self.config.client_lr
        for s in range(len(ids)):
            grads, losses = grad_and_loss(params, self.data.X[ids[s]], self.data.y[ids[s]], weight[s])
            totals += losses
            active = active_all[s]
            with torch.no_grad():
                for n in names:
                    g = grads[n]
                    if mu > 0:
                        g = g + mu * (params[n] - start[n].unsqueeze(0))
                    params[n] = params[n] - lr * g * active.to(g.dtype).view((k,) + (1,) * (g.dim() - 1))
        vec = torch.stack([parameters_to_vector([params[n][j] for n in names]) for j in range(k)])
        return (vec - self.global_vec).to(self.global_vec.dtype), totals
