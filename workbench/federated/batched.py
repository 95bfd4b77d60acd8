"""Batched local updates: a round's selected devices train together, one vectorised SGD step for all of them.

:class:`BatchedSimulator` overrides :meth:`FedAvgSimulator.local_updates` only. It stacks one copy of the global
weights per selected device (leading dimension ``k``), and at every local step evaluates all devices'
minibatches in one autograd graph: models made of ``Embedding``, ``Flatten``, ``Linear``, ``ReLU``/``Tanh``
(the study's :class:`~workbench.federated.tasks.CharMLP` and :class:`~workbench.models.MLP`) run as batched
matrix products (:func:`stacked_forward`); any other model runs through ``torch.func.functional_call`` under
``torch.func.vmap``, which is generic but, for these small models, no faster than the per-device loop.
The loss is the sum of the devices' own mean losses, so each device's slice of the gradient is its own
gradient. Devices hold
different amounts of data, so minibatches are padded to ``batch_size`` with a mask, and a device that has run
out of steps gets an all-zero mask (a zero step). Each device's minibatch order is drawn exactly as
:func:`~workbench.federated.simulation.local_update` draws it (the same seeded generator, the same permutation
per epoch), so the result equals the per-device loop up to float rounding (tests check this).

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
from torch.nn.utils import parameters_to_vector

from .simulation import ClientUpdates, FedAvgSimulator, RoundPlan, client_seed

__all__ = ["BatchedSimulator", "minibatch_schedule", "stacked_forward", "supports_stacked"]

_ACTIVATIONS = {nn.ReLU: torch.relu, nn.Tanh: torch.tanh}


def _leaves(model: nn.Module):
    """The model's computation as a list of (name prefix, leaf module), or None if it is not a plain chain."""
    from .tasks import CharMLP

    if isinstance(model, CharMLP):
        return [("embedding", model.embedding)] + [(f"net.{n}", m) for n, m in model.net.named_children()]
    if isinstance(model, nn.Sequential):
        return [(n, m) for n, m in model.named_children()]
    children = list(model.named_children())
    if len(children) == 1 and isinstance(children[0][1], nn.Sequential) and type(model).forward.__qualname__.endswith("MLP.forward"):
        return [(f"{children[0][0]}.{n}", m) for n, m in children[0][1].named_children()]
    return None


def supports_stacked(model: nn.Module) -> bool:
    """Whether :func:`stacked_forward` can run ``model`` (a chain of Embedding/Flatten/Linear/ReLU/Tanh/Dropout(0)).

    Examples
    --------
    >>> supports_stacked(nn.Sequential(nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 2))), supports_stacked(nn.GRU(2, 2))
    (True, False)
    """
    leaves = _leaves(model)
    ok = (nn.Embedding, nn.Flatten, nn.Linear, nn.ReLU, nn.Tanh)
    return leaves is not None and all(isinstance(m, ok) or (isinstance(m, nn.Dropout) and m.p == 0) for _, m in leaves) \
        and all(m.padding_idx is None and m.max_norm is None for _, m in leaves if isinstance(m, nn.Embedding))


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
            w = params[f"{name}.weight"]  # [k, V, d]
            h = w[torch.arange(len(w)).view(-1, *([1] * (h.dim() - 1))), h]
        elif isinstance(m, nn.Flatten):
            h = h.reshape(h.shape[0], h.shape[1], -1)
        elif isinstance(m, nn.Linear):
            w = params[f"{name}.weight"]
            out = torch.bmm(h, w.transpose(1, 2))
            h = out + params[f"{name}.bias"].unsqueeze(1) if m.bias is not None else out
        elif isinstance(m, nn.Dropout):
            continue
        else:
            h = _ACTIVATIONS[type(m)](h)
    return h


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


class BatchedSimulator(FedAvgSimulator):
    """:class:`FedAvgSimulator` whose local updates of a round run as one vectorised pass per step."""

    def local_updates(self, plan: RoundPlan) -> ClientUpdates:
        from torch.func import functional_call, grad, vmap

        cfg = self.config
        clients = plan.clients
        k = len(clients)
        schedules = []
        for c in clients:
            gen = torch.Generator().manual_seed(client_seed(cfg.seed, plan.round_idx, int(c)))
            schedules.append(minibatch_schedule(int(plan.sizes[c]), epochs=cfg.local_epochs, batch_size=cfg.batch_size,
                                                max_steps=cfg.max_local_steps, generator=gen))
        steps = max((len(s) for s in schedules), default=0)
        self.set_global()
        names = [n for n, p in self.model.named_parameters() if p.requires_grad]
        start = {n: p.detach() for n, p in self.model.named_parameters() if p.requires_grad}
        params = {n: p.unsqueeze(0).repeat(k, *([1] * p.dim())).clone() for n, p in start.items()}
        mu = float(plan.settings.get("proximal_mu", 0.0))
        B = cfg.batch_size
        model = self.model
        model.train()
        stacked = supports_stacked(model)
        if not stacked:
            def loss_fn(p, x, t, m):
                logits = functional_call(model, p, (x,))
                ce = nn.functional.cross_entropy(logits, t, reduction="none")
                loss = (ce * m).sum() / m.sum().clamp(min=1.0)
                return loss, loss.detach()

            grad_and_loss = vmap(grad(loss_fn, has_aux=True), in_dims=(0, 0, 0, 0))
        # Padded global sample ids per (step, device) and their masks, gathered once per round.
        pooled = [self.data.train.client(int(c), int(plan.start[c]), int(plan.stop[c])) for c in clients]
        ids = torch.zeros((steps, k, B), dtype=torch.long)
        mask = torch.zeros((steps, k, B))
        for j, (sched, own) in enumerate(zip(schedules, pooled)):
            own = torch.as_tensor(own)
            for s_, idx in enumerate(sched):
                ids[s_, j, : len(idx)] = own[idx]
                mask[s_, j, : len(idx)] = 1.0
        active_all = mask.sum(2) > 0  # [steps, k]
        totals = np.zeros(k)
        counts = np.array([len(s_) for s_ in schedules])
        lr = cfg.client_lr
        X, Y = self.data.X, self.data.y
        for s in range(steps):
            xb, tb, mb, active = X[ids[s]], Y[ids[s]], mask[s], active_all[s]
            if stacked:
                leaves = {n: params[n].requires_grad_(True) for n in names}
                logits = stacked_forward(model, leaves, xb)
                ce = nn.functional.cross_entropy(logits.reshape(k * B, -1), tb.reshape(-1), reduction="none").view(k, B)
                per_device = (ce * mb).sum(1) / mb.sum(1).clamp(min=1.0)
                g_list = torch.autograd.grad(per_device.sum(), [leaves[n] for n in names])
                grads = dict(zip(names, g_list))
                losses = per_device.detach()
            else:
                grads, losses = grad_and_loss(params, xb, tb, mb)
            totals += np.where(active.numpy(), losses.numpy(), 0.0)
            with torch.no_grad():
                for n in names:
                    g = grads[n]
                    if mu > 0:
                        g = g + mu * (params[n] - start[n].unsqueeze(0))
                    shape = (k,) + (1,) * (g.dim() - 1)
                    params[n] = params[n].detach() - lr * g * active.to(g.dtype).view(shape)
        vec = torch.stack([parameters_to_vector([params[n][j] for n in names]) for j in range(k)])
        deltas = (vec - self.global_vec).to(self.global_vec.dtype)
        losses = (totals / np.maximum(counts, 1)).tolist()
        return ClientUpdates(clients, deltas, plan.sizes[clients].astype(np.float64), losses)
