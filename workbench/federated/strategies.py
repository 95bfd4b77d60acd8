"""Server strategies: how the server turns the round's client updates into new global weights.

A round's client updates are first combined into one *pseudo-gradient* (:func:`combine_updates`: the
sample-weighted mean of the clients' weight changes, or, for DP-FedAvg, the mean of the clipped changes plus
Gaussian noise). A server strategy then (optionally) tells the clients how to train (:meth:`configure_round`,
e.g. FedProx's proximal term) and applies the pseudo-gradient to the global weights (:meth:`apply`):

=============  ===============================================================================================
name           server step (``d`` = combined update, ``w`` = global weights)
=============  ===============================================================================================
``fedavg``     ``w + server_lr * d`` (McMahan et al. 2017; ``server_lr = 1`` is plain averaging)
``fedprox``    the same, and every client adds ``proximal_mu / 2 * ||w_local - w||^2`` to its local loss
               (Li et al. 2020)
``fedadam``    Adam on ``-d``: ``m = b1 m + (1 - b1) d``, ``v = b2 v + (1 - b2) d^2``,
               ``w + eta_t m / (sqrt(v) + tau)`` (Reddi et al. 2021, "Adaptive federated optimization")
``fedyogi``    the same with Yogi's second moment ``v = v - (1 - b2) d^2 sign(v - d^2)`` and no bias correction
``fedadagrad`` ``v = v + d^2``, ``w + eta m / (sqrt(v) + tau)`` with ``m = b1 m + (1 - b1) d`` (``b1 = 0``)
=============  ===============================================================================================

The adaptive strategies follow Flower's implementations (``flwr.server.strategy.FedAdam``, ``FedYogi``,
``FedAdagrad``) exactly, including their defaults and FedAdam's bias-corrected step
``eta_t = eta * sqrt(1 - b2^(t + 1)) / (1 - b1^(t + 1))`` with ``t`` the 1-based round (Flower's exponent);
the tests run both on the same clients and compare the weights. Unlike Reddi et al., ``v`` starts at 0 (as
in Flower), not at ``tau^2``.

Examples
--------
>>> import torch
>>> server = make_server_strategy("fedadam", eta=0.1)
>>> w = server.apply(torch.zeros(2), torch.tensor([1.0, -2.0]), round_idx=0)
>>> [round(x, 4) for x in w.tolist()]  # Adam's first step moves every weight by about eta_t, whatever |d|
[0.0742, -0.0742]
>>> make_server_strategy("fedprox", proximal_mu=0.1).configure_round(0)
{'proximal_mu': 0.1}
"""
from __future__ import annotations

import math
from typing import Callable, ClassVar

import numpy as np
import torch

from workbench.registry import make_registered
from workbench.validation import Interval, check

__all__ = ["ServerStrategy", "FedAvgServer", "FedProxServer", "FedAdamServer", "FedYogiServer", "FedAdagradServer",
           "SERVER_STRATEGIES", "make_server_strategy", "combine_updates"]

_POSITIVE = Interval(float, 0, None, closed="neither")
_UNIT = Interval(float, 0, 1, closed="left")


def combine_updates(deltas: torch.Tensor, weights, *, dp_clip: float | None = None, noise_multiplier: float = 0.0,
                    generator: torch.Generator | None = None) -> torch.Tensor:
    """The round's pseudo-gradient from client updates ``deltas`` (one row per client, in a fixed order).

    FedAvg: ``sum_i n_i delta_i / sum_i n_i`` with ``weights = n_i``. DP-FedAvg (``dp_clip`` set, McMahan
    et al. 2018): every delta clipped to norm ``dp_clip``, equal weights, plus N(0, (noise_multiplier *
    dp_clip / k)^2) noise drawn from ``generator``.

    Examples
    --------
    >>> combine_updates(torch.tensor([[1., 0.], [0., 1.]]), [3, 1]).tolist()
    [0.75, 0.25]
    >>> combine_updates(torch.tensor([[3., 4.], [0., 0.]]), [1, 1], dp_clip=1.0).tolist()  # clipped to norm 1
    [0.30000001192092896, 0.4000000059604645]
    """
    deltas = torch.as_tensor(deltas)
    if deltas.ndim != 2 or len(deltas) == 0:
        raise ValueError(f"The 'deltas' parameter of combine_updates must be a non-empty 2-D tensor (clients x weights). Got shape {tuple(deltas.shape)}.")
    if dp_clip is None:
        w = torch.as_tensor(np.asarray(weights, dtype=np.float64), dtype=deltas.dtype)
        return (w[:, None] * deltas).sum(0) / w.sum()
    norms = deltas.norm(dim=1, keepdim=True)
    clipped = deltas * torch.clamp(dp_clip / (norms + 1e-12), max=1.0)
    k = len(deltas)
    avg = clipped.sum(0) / k
    if noise_multiplier > 0:
        avg = avg + torch.randn(avg.shape, generator=generator, dtype=avg.dtype) * (noise_multiplier * dp_clip / k)
    return avg


class ServerStrategy:
    """Base class: ``configure_round`` (settings sent to the round's clients) and ``apply`` (the server step).

    Subclasses keep their optimizer state on the instance; build a fresh one per training run
    (:func:`make_server_strategy`).
    """

    name: ClassVar[str] = ""

    def configure_round(self, round_idx: int) -> dict:
        """Settings every selected client receives with the global weights (none by default)."""
        return {}

    def apply(self, global_vec: torch.Tensor, update: torch.Tensor, *, round_idx: int) -> torch.Tensor:
        """New global weights from the current ones and the round's combined update."""
        raise NotImplementedError

    def params(self) -> dict:
        return {}

    def __repr__(self) -> str:
        return f"{type(self).__name__}({', '.join(f'{k}={v!r}' for k, v in self.params().items())})"


class FedAvgServer(ServerStrategy):
    """``w + server_lr * d``."""

    name = "fedavg"

    def __init__(self, *, server_lr: float = 1.0):
        self.server_lr = check(server_lr, _POSITIVE, name="server_lr", owner=type(self).__name__)

    def params(self):
        return {"server_lr": self.server_lr}

    def apply(self, global_vec, update, *, round_idx):
        return global_vec + self.server_lr * update


class FedProxServer(FedAvgServer):
    """FedAvg on the server; clients minimise ``loss + proximal_mu / 2 * ||w_local - w_global||^2``."""

    name = "fedprox"

    def __init__(self, *, proximal_mu: float = 0.01, server_lr: float = 1.0):
        super().__init__(server_lr=server_lr)
        self.proximal_mu = check(proximal_mu, Interval(float, 0, None), name="proximal_mu", owner=type(self).__name__)

    def params(self):
        return {"proximal_mu": self.proximal_mu, "server_lr": self.server_lr}

    def configure_round(self, round_idx):
        return {"proximal_mu": self.proximal_mu}


class _AdaptiveServer(ServerStrategy):
    """Shared state of FedAdam / FedYogi / FedAdagrad: first and second moments of the updates."""

    defaults: ClassVar[dict] = {}

    def __init__(self, *, eta: float | None = None, beta_1: float | None = None, beta_2: float | None = None,
                 tau: float | None = None):
        owner = type(self).__name__
        d = self.defaults
        self.eta = check(d["eta"] if eta is None else eta, _POSITIVE, name="eta", owner=owner)
        self.beta_1 = check(d["beta_1"] if beta_1 is None else beta_1, _UNIT, name="beta_1", owner=owner)
        self.beta_2 = check(d["beta_2"] if beta_2 is None else beta_2, _UNIT, name="beta_2", owner=owner)
        self.tau = check(d["tau"] if tau is None else tau, _POSITIVE, name="tau", owner=owner)
        self.m: torch.Tensor | None = None
        self.v: torch.Tensor | None = None

    def params(self):
        return {"eta": self.eta, "beta_1": self.beta_1, "beta_2": self.beta_2, "tau": self.tau}

    def _second_moment(self, update: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def _step_size(self, round_idx: int) -> float:
        return self.eta

    def apply(self, global_vec, update, *, round_idx):
        if self.m is None:
            self.m = torch.zeros_like(update)
            self.v = torch.zeros_like(update)
        self.m = self.beta_1 * self.m + (1 - self.beta_1) * update
        self.v = self._second_moment(update)
        return global_vec + self._step_size(round_idx) * self.m / (torch.sqrt(self.v) + self.tau)


class FedAdamServer(_AdaptiveServer):
    """Adam on the server (Flower's ``FedAdam``: eta 0.1, beta_1 0.9, beta_2 0.99, tau 1e-9)."""

    name = "fedadam"
    defaults = {"eta": 1e-1, "beta_1": 0.9, "beta_2": 0.99, "tau": 1e-9}

    def _second_moment(self, update):
        return self.beta_2 * self.v + (1 - self.beta_2) * update * update

    def _step_size(self, round_idx):
        t = round_idx + 2.0  # Flower's exponent: server_round + 1 with server_round = round_idx + 1
        return self.eta * math.sqrt(1 - self.beta_2**t) / (1 - self.beta_1**t)


class FedYogiServer(_AdaptiveServer):
    """Yogi on the server (Flower's ``FedYogi``: eta 0.01, beta_1 0.9, beta_2 0.99, tau 1e-3)."""

    name = "fedyogi"
    defaults = {"eta": 1e-2, "beta_1": 0.9, "beta_2": 0.99, "tau": 1e-3}

    def _second_moment(self, update):
        sq = update * update
        return self.v - (1.0 - self.beta_2) * sq * torch.sign(self.v - sq)


class FedAdagradServer(_AdaptiveServer):
    """Adagrad on the server (Flower's ``FedAdagrad``: eta 0.1, tau 1e-9, no momentum)."""

    name = "fedadagrad"
    defaults = {"eta": 1e-1, "beta_1": 0.0, "beta_2": 0.0, "tau": 1e-9}

    def _second_moment(self, update):
        return self.v + update * update


#: Server strategy name -> class. Build one with :func:`make_server_strategy`.
SERVER_STRATEGIES: dict[str, Callable[..., ServerStrategy]] = {
    "fedavg": FedAvgServer,
    "fedprox": FedProxServer,
    "fedadam": FedAdamServer,
    "fedyogi": FedYogiServer,
    "fedadagrad": FedAdagradServer,
}


def make_server_strategy(name: str | ServerStrategy, **params) -> ServerStrategy:
    """Build a registered server strategy by name with its keyword parameters (a fresh optimizer state).

    Examples
    --------
    >>> make_server_strategy("fedyogi")
    FedYogiServer(eta=0.01, beta_1=0.9, beta_2=0.99, tau=0.001)
    >>> make_server_strategy("sgd")
    Traceback (most recent call last):
    ...
    ValueError: The 'name' parameter of make_server_strategy must be one of ['fedadagrad', 'fedadam', 'fedavg', 'fedprox', 'fedyogi']. Got 'sgd' instead.
    """
    return make_registered(SERVER_STRATEGIES, name, params, owner="make_server_strategy", kind="server strategy", base=ServerStrategy)
