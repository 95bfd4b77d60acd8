"""In-process FedAvg simulation: device selection, local SGD, sample-weighted averaging, continual data.

One round: the server picks ``clients_per_round`` devices with a selection strategy (see
:mod:`workbench.federated.selection`), each runs local SGD from the global weights on the samples it
currently stores, and the server moves the global weights by ``server_lr`` times the average update,
weighted by the devices' sample counts (McMahan et al. 2017). Optional DP-FedAvg (McMahan et al. 2018)
clips each device's update to norm ``dp_clip``, averages them with equal weights and adds Gaussian noise
of standard deviation ``dp_noise_multiplier * dp_clip / k``; the client-level epsilon comes from the RDP
accountant.

A round is three overridable steps of :class:`FedAvgSimulator`, as in Flower's ``Strategy``:
:meth:`~FedAvgSimulator.configure_round` (which devices train, on which of their samples, with which
settings), :meth:`~FedAvgSimulator.local_updates` (each selected device trains from the global weights) and
:meth:`~FedAvgSimulator.aggregate` (the server combines the updates and takes a step with its server
strategy: FedAvg, FedProx, FedAdam, FedYogi, see :mod:`workbench.federated.strategies`).
:func:`run_fedavg` runs them for ``config.rounds`` rounds; subclass the simulator to change one step.

Continual setting (``periods > 1``): each device's samples arrive in time order, spread evenly over
``periods`` periods; rounds are spread evenly over the periods; a device keeps at most ``storage_limit``
samples, deleting its oldest first (:class:`ContinualSchedule`). ``periods=1`` with no limit is the
static setting where every sample exists from the start.

Examples
--------
>>> import torch
>>> from workbench.federated.partition import iid_partition
>>> X = torch.randn(200, 4); y = (X[:, 0] > 0).long()
>>> train, test = iid_partition(200, n_clients=10, seed=0).split(0.25)
>>> data = FederatedData(X, y, train=train, test=test, n_classes=2)
>>> res = run_fedavg(data, model_fn=lambda: torch.nn.Linear(4, 2),
...                  config=FedConfig(rounds=20, clients_per_round=5, client_lr=0.5), progress=False)
>>> res.final["test_accuracy"] > 0.8, len(res.history), res.history[0]["selected"] != res.history[1]["selected"]
(True, 20, True)
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

import numpy as np
import pandas as pd
import torch
from torch import nn
from torch.nn.utils import parameters_to_vector, vector_to_parameters

from workbench.training import torch_threads  # re-exported: the federated models run on one thread
from workbench.validation import Boolean, InstanceOf, Interval, Options, check, check_fields

from .partition import Partition
from .privacy import client_epsilon, worst_case_epsilon
from .selection import STRATEGIES, SelectionStrategy, make_strategy
from .strategies import SERVER_STRATEGIES, ServerStrategy, combine_updates, make_server_strategy

__all__ = [
    "FederatedData",
    "FedConfig",
    "ContinualSchedule",
    "FedResult",
    "RoundPlan",
    "ClientUpdates",
    "FedAvgSimulator",
    "run_fedavg",
    "train_centralized",
    "local_update",
    "aggregate",
    "client_epsilon",
    "client_seed",
    "evaluate_samples",
    "init_model",
    "torch_threads",
]

BYTES_PER_FLOAT = 4


@dataclass(frozen=True, eq=False)
class FederatedData:
    """Pooled tensors plus train/test partitions into them (one client = one device).

    ``task`` is ``"classification"`` or ``"language_model"`` (the latter also reports perplexity).
    """

    X: torch.Tensor
    y: torch.Tensor
    train: Partition
    test: Partition
    n_classes: int
    task: str = "classification"
    name: str = "data"
    info: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self):
        check_fields(self, X=InstanceOf(torch.Tensor), y=InstanceOf(torch.Tensor), train=InstanceOf(Partition),
                     test=InstanceOf(Partition), n_classes=Interval(int, 1, None),
                     task=Options({"classification", "language_model"}), name=InstanceOf(str))
        if len(self.X) != len(self.y):
            raise ValueError(f"FederatedData needs as many labels as inputs. Got {len(self.X)} and {len(self.y)}.")
        if self.train.n_clients != self.test.n_clients:
            raise ValueError("The 'train' and 'test' partitions of FederatedData must have the same clients.")

    @property
    def n_clients(self) -> int:
        return self.train.n_clients

    def test_indices(self, max_samples: int | None = None, *, seed: int = 0) -> np.ndarray:
        ids = self.test.sample_ids()
        if max_samples is not None and len(ids) > max_samples:
            ids = np.sort(np.random.default_rng(seed).choice(ids, size=max_samples, replace=False))
        return ids

    def pooled_train(self) -> tuple[torch.Tensor, torch.Tensor]:
        ids = self.train.sample_ids()
        idx = torch.as_tensor(ids)
        return self.X[idx], self.y[idx]

    def summary(self) -> pd.DataFrame:
        """Per-client train/test sizes and train label counts."""
        df = self.train.summary(self.y.numpy() if self.task == "classification" else None,
                                n_classes=self.n_classes if self.task == "classification" else None)
        df.insert(3, "n_test", self.test.sizes)
        return df


@dataclass(frozen=True)
class FedConfig:
    """Hyper-parameters of :func:`run_fedavg` (validated; NumPy scalars accepted).

    ``strategy`` / ``strategy_params`` choose the devices (:mod:`~workbench.federated.selection`);
    ``server`` / ``server_params`` the server step (:mod:`~workbench.federated.strategies`; ``server_lr`` is
    the step of ``fedavg`` and ``fedprox``, the adaptive ones take ``eta`` in ``server_params``).

    Examples
    --------
    >>> FedConfig(clients_per_round=0)
    Traceback (most recent call last):
    ...
    workbench.validation.InvalidParameterError: The 'clients_per_round' parameter of FedConfig must be an int >= 1. Got 0 instead.
    >>> FedConfig(rounds=np.int64(3), server="fedadam").rounds
    3
    """

    rounds: int = 20
    clients_per_round: int = 10
    strategy: str = "uniform"
    strategy_params: Mapping[str, Any] = field(default_factory=dict)
    local_epochs: int = 1
    max_local_steps: int | None = None
    batch_size: int = 32
    client_lr: float = 0.1
    server_lr: float = 1.0
    periods: int = 1
    storage_limit: int | None = None
    dp_clip: float | None = None
    dp_noise_multiplier: float = 0.0
    dp_delta: float = 1e-5
    eval_every: int = 1
    eval_max_samples: int | None = 4000
    seed: int = 0
    server: str = "fedavg"
    server_params: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self):
        count = Interval(int, 1, None)
        positive = Interval(float, 0, None, closed="neither")
        check_fields(self, rounds=count, clients_per_round=count, local_epochs=count, batch_size=count, periods=count,
                     eval_every=count, max_local_steps=(count, None), storage_limit=(count, None),
                     eval_max_samples=(count, None), client_lr=positive, server_lr=positive, dp_clip=(positive, None),
                     dp_noise_multiplier=Interval(float, 0, None), dp_delta=Interval(float, 0, 1, closed="neither"),
                     seed=Interval(int, None, None), strategy=(Options(set(STRATEGIES)), InstanceOf(SelectionStrategy)),
                     strategy_params=InstanceOf(Mapping), server=(Options(set(SERVER_STRATEGIES)), InstanceOf(ServerStrategy)),
                     server_params=InstanceOf(Mapping))
        if self.dp_noise_multiplier > 0 and self.dp_clip is None:
            raise ValueError("The 'dp_noise_multiplier' parameter of FedConfig needs 'dp_clip' (DP-FedAvg clips client updates).")
        make_strategy(self.strategy, **dict(self.strategy_params))  # validates the parameters
        self.make_server()  # validates the parameters

    def make_server(self) -> ServerStrategy:
        """A fresh server strategy (its optimizer state starts empty; an instance given as ``server`` is copied, so
        two runs of one config never share optimizer state)."""
        if isinstance(self.server, ServerStrategy):
            import copy

            return copy.deepcopy(self.server)
        params = dict(self.server_params)
        if self.server in ("fedavg", "fedprox"):
            params.setdefault("server_lr", self.server_lr)
        return make_server_strategy(self.server, **params)

    @property
    def continual(self) -> bool:
        return self.periods > 1 or self.storage_limit is not None


class ContinualSchedule:
    """Which of its samples each device stores in each period.

    Device ``i`` with ``n_i`` samples (in time order) has received the first ``ceil((p + 1) n_i / P)`` of
    them by the end of period ``p`` (0-based, ``P`` periods) and keeps the newest ``min(S, received)``.
    Positions are relative to the device's own sample list.

    Examples
    --------
    >>> s = ContinualSchedule([10, 3], periods=2, storage_limit=4)
    >>> s.window(0)
    (array([1, 0]), array([5, 2]))
    >>> s.window(1)
    (array([6, 0]), array([10,  3]))
    """

    def __init__(self, sizes, *, periods: int = 1, storage_limit: int | None = None):
        self.sizes = np.asarray(sizes, dtype=np.int64)
        self.periods = check(periods, Interval(int, 1, None), name="periods", owner="ContinualSchedule")
        self.storage_limit = check(storage_limit, Interval(int, 1, None), None, name="storage_limit", owner="ContinualSchedule")

    def received(self, period: int) -> np.ndarray:
        """Samples each device has generated by the end of ``period``."""
        period = check(period, Interval(int, 0, self.periods - 1), name="period", owner="ContinualSchedule.received")
        return -((-(period + 1) * self.sizes) // self.periods)  # ceil division in integers

    def window(self, period: int) -> tuple[np.ndarray, np.ndarray]:
        """``(start, stop)`` of the samples each device stores during ``period``."""
        stop = self.received(period)
        keep = stop if self.storage_limit is None else np.minimum(stop, self.storage_limit)
        return stop - keep, stop

    def stored(self, period: int) -> np.ndarray:
        start, stop = self.window(period)
        return stop - start

    def period_of_round(self, round_idx: int, rounds: int) -> int:
        """Rounds ``0..rounds-1`` spread evenly over the periods."""
        return min(self.periods - 1, (round_idx * self.periods) // rounds)

    def rounds_per_period(self, rounds: int) -> np.ndarray:
        """How many of ``rounds`` rounds fall in each period (int64 array of length ``periods``)."""
        return np.bincount([self.period_of_round(r, rounds) for r in range(rounds)], minlength=self.periods)


@dataclass
class FedResult:
    """What :func:`run_fedavg` returns."""

    model: nn.Module
    history: list[dict]
    participation: np.ndarray
    client_metrics: pd.DataFrame
    final: dict
    epsilon: float | None
    config: FedConfig
    n_parameters: int
    seconds: float
    notes: list[str] = field(default_factory=list)

    def to_frame(self) -> pd.DataFrame:
        """Per-round history without the list of selected devices."""
        return pd.DataFrame([{k: v for k, v in row.items() if k != "selected"} for row in self.history])


def client_seed(seed: int, round_idx: int, client: int) -> int:
    """Seed of a device's minibatch order in a round: independent of the order devices are processed."""
    entropy = [int(v) % 2**32 for v in (seed, round_idx, client)]  # negatives tag internal streams
    return int(np.random.SeedSequence(entropy).generate_state(1, dtype=np.uint64)[0] % (2**63))


def local_update(model: nn.Module, X: torch.Tensor, y: torch.Tensor, *, epochs: int, batch_size: int, lr: float,
                 max_steps: int | None = None, generator: torch.Generator | None = None,
                 proximal_mu: float = 0.0) -> tuple[int, float]:
    """Plain minibatch SGD on ``(X, y)`` in place; returns ``(steps, mean training loss)``.

    With ``batch_size >= len(X)`` and one epoch this is one full-batch gradient step. ``proximal_mu > 0``
    adds FedProx's ``proximal_mu / 2 * ||w - w_start||^2`` to the loss (``w_start``: the weights on entry);
    the reported loss leaves it out.

    This is a loop of its own rather than :func:`workbench.training.fit`: a device's update must be a pure
    function of (weights, samples, seed) that the Flower client and the batched simulator reproduce to the
    last bit (no per-run History, progress bar, optimizer object or validation pass per device and round).

    Examples
    --------
    >>> model = nn.Linear(2, 2); X = torch.randn(8, 2); y = torch.zeros(8, dtype=torch.long)
    >>> local_update(model, X, y, epochs=2, batch_size=4, lr=0.1, generator=torch.Generator().manual_seed(0))[0]
    4
    """
    n = len(X)
    steps, total = 0, 0.0
    params = [p for p in model.parameters() if p.requires_grad]
    anchor = [p.detach().clone() for p in params] if proximal_mu > 0 else None
    model.train()
    for _ in range(epochs):
        order = torch.randperm(n, generator=generator) if batch_size < n else torch.arange(n)
        for start in range(0, n, batch_size):
            if max_steps is not None and steps >= max_steps:
                return steps, total / max(steps, 1)
            idx = order[start : start + batch_size]
            loss = nn.functional.cross_entropy(model(X[idx]), y[idx])
            grads = torch.autograd.grad(loss, params)
            with torch.no_grad():
                if anchor is not None:
                    grads = [g + proximal_mu * (p - a) for g, p, a in zip(grads, params, anchor)]
                torch._foreach_add_(params, grads, alpha=-lr)
            steps += 1
            total += float(loss.detach())
    return steps, total / max(steps, 1)


def aggregate(global_vec: torch.Tensor, deltas: torch.Tensor, weights, *, server_lr: float = 1.0,
              dp_clip: float | None = None, noise_multiplier: float = 0.0,
              generator: torch.Generator | None = None) -> torch.Tensor:
    """New global weights from client updates ``deltas`` with FedAvg's server step (``server_lr``).

    :func:`~workbench.federated.strategies.combine_updates` then ``w + server_lr * update``; other server
    steps: :mod:`workbench.federated.strategies`.

    Examples
    --------
    >>> aggregate(torch.zeros(2), torch.tensor([[1., 0.], [0., 1.]]), [3, 1]).tolist()
    [0.75, 0.25]
    """
    deltas = torch.as_tensor(deltas, dtype=global_vec.dtype)
    update = combine_updates(deltas, weights, dp_clip=dp_clip, noise_multiplier=noise_multiplier, generator=generator)
    return global_vec + server_lr * update


@torch.no_grad()
def evaluate_samples(model: nn.Module, X: torch.Tensor, y: torch.Tensor, *, batch_size: int = 2048) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-sample cross-entropy and correctness of ``model`` on ``(X, y)`` (leaves the model in train mode).

    Examples
    --------
    >>> loss, ok = evaluate_samples(nn.Linear(2, 2), torch.zeros(3, 2), torch.zeros(3, dtype=torch.long))
    >>> loss.shape, ok.dtype
    (torch.Size([3]), torch.bool)
    """
    model.eval()
    losses, correct = [], []
    for i in range(0, len(X), batch_size):
        logits = model(X[i : i + batch_size])
        losses.append(nn.functional.cross_entropy(logits, y[i : i + batch_size], reduction="none"))
        correct.append(logits.argmax(1) == y[i : i + batch_size])
    model.train()
    if not losses:
        return torch.zeros(0), torch.zeros(0, dtype=torch.bool)
    return torch.cat(losses), torch.cat(correct)


def _metrics(loss: torch.Tensor, correct: torch.Tensor, task: str, prefix: str = "test_") -> dict:
    out = {f"{prefix}loss": float(loss.mean()), f"{prefix}accuracy": float(correct.float().mean())}
    if task == "language_model":
        out[f"{prefix}perplexity"] = float(math.exp(min(out[f"{prefix}loss"], 50.0)))
    return out


def init_model(model_fn: Callable[[], nn.Module], seed: int) -> nn.Module:
    """``model_fn()`` under ``torch.manual_seed(seed)``, leaving the global torch generator as it was.

    Examples
    --------
    >>> a, b = init_model(lambda: nn.Linear(2, 2), 3), init_model(lambda: nn.Linear(2, 2), 3)
    >>> torch.equal(a.weight, b.weight)
    True
    """
    state = torch.random.get_rng_state()
    torch.manual_seed(seed)
    try:
        return model_fn()
    finally:
        torch.random.set_rng_state(state)


@dataclass
class RoundPlan:
    """What :meth:`FedAvgSimulator.configure_round` decided for one round.

    ``start``/``stop``: each device's stored samples (positions in its own list) this round; ``selected``:
    the devices in draw order; ``settings``: what the server strategy sends every selected device (e.g.
    ``proximal_mu``); ``n_candidates``: devices asked for their loss (power-of-choice).
    """

    round_idx: int
    period: int
    start: np.ndarray
    stop: np.ndarray
    selected: np.ndarray
    settings: dict
    n_candidates: int = 0

    @property
    def sizes(self) -> np.ndarray:
        return self.stop - self.start

    @property
    def clients(self) -> np.ndarray:
        """Selected devices in a fixed (sorted) order: results do not depend on the draw order."""
        return np.sort(self.selected)


@dataclass
class ClientUpdates:
    """What :meth:`FedAvgSimulator.local_updates` returns: one row of ``deltas`` per device of ``clients``."""

    clients: np.ndarray
    deltas: torch.Tensor
    weights: np.ndarray
    losses: list[float]


class FedAvgSimulator:
    """One federated training run as overridable steps (the shape of Flower's ``Strategy``).

    ``configure_round`` -> ``local_updates`` -> ``aggregate`` per round (:meth:`run_round`), then
    :meth:`result`. The state (``global_vec``, the selection generator ``rng``, ``participation``, the
    server strategy's optimizer state) lives on the instance, so a subclass can change one step, e.g. train
    the selected devices together or add a defence to the aggregation.

    Examples
    --------
    >>> from workbench.federated.partition import iid_partition
    >>> X = torch.randn(60, 3); y = (X[:, 0] > 0).long()
    >>> train, test = iid_partition(60, n_clients=4, seed=0).split(0.25)
    >>> sim = FedAvgSimulator(FederatedData(X, y, train=train, test=test, n_classes=2),
    ...                       model_fn=lambda: nn.Linear(3, 2), config=FedConfig(rounds=2, clients_per_round=2))
    >>> plan = sim.configure_round(0)
    >>> len(plan.selected), sim.local_updates(plan).deltas.shape
    (2, torch.Size([2, 8]))
    """

    def __init__(self, data: FederatedData, *, model_fn: Callable[[], nn.Module], config: FedConfig = FedConfig()):
        self.data = check(data, InstanceOf(FederatedData), name="data", owner="FedAvgSimulator")
        self.config = check(config, InstanceOf(FedConfig), name="config", owner="FedAvgSimulator")
        self.selection = make_strategy(config.strategy, **dict(config.strategy_params))
        self.server = config.make_server()
        self.model = init_model(model_fn, config.seed)
        self.params = [p for p in self.model.parameters() if p.requires_grad]
        self.global_vec = parameters_to_vector(self.params).detach().clone()
        self.n_params = self.global_vec.numel()
        self.schedule = ContinualSchedule(data.train.sizes, periods=config.periods, storage_limit=config.storage_limit)
        self.notes: list[str] = []
        self.epsilon = self._epsilon()
        self.rng = np.random.default_rng(config.seed)
        self.noise_gen = torch.Generator().manual_seed(client_seed(config.seed, -1, -1))
        test_ids = torch.as_tensor(data.test_indices(config.eval_max_samples, seed=config.seed))
        self.X_test, self.y_test = data.X[test_ids], data.y[test_ids]
        self.participation = np.zeros(data.n_clients, dtype=np.int64)
        self.history: list[dict] = []
        self.bytes_total = 0

    def _epsilon(self) -> float | None:
        cfg = self.config
        if cfg.dp_clip is None or cfg.dp_noise_multiplier <= 0:
            return None
        sizes = [self.schedule.stored(p) for p in range(self.schedule.periods)]
        eps, note = worst_case_epsilon(self.selection, sizes, k=cfg.clients_per_round, rounds=cfg.rounds,
                                       noise_multiplier=cfg.dp_noise_multiplier, delta=cfg.dp_delta)
        self.notes.append(note)
        return eps

    def set_global(self) -> None:
        """Load (a copy of) the global weights into the model (local SGD updates the model in place)."""
        vector_to_parameters(self.global_vec.clone(), self.params)

    def client_data(self, client: int, plan: RoundPlan) -> tuple[torch.Tensor, torch.Tensor]:
        """The samples ``client`` stores during ``plan``'s round."""
        c = int(client)
        idx = torch.as_tensor(self.data.train.client(c, int(plan.start[c]), int(plan.stop[c])))
        return self.data.X[idx], self.data.y[idx]

    def configure_round(self, round_idx: int) -> RoundPlan:
        """Pick the round's devices with the selection strategy (asking candidates for losses if it needs them)."""
        cfg = self.config
        period = self.schedule.period_of_round(round_idx, cfg.rounds)
        start, stop = self.schedule.window(period)
        plan = RoundPlan(round_idx, period, start, stop, np.zeros(0, dtype=np.int64), self.server.configure_round(round_idx))
        loss_fn = None
        if self.selection.uses_losses:
            self.set_global()

            def loss_fn(candidates):
                return np.asarray([float(evaluate_samples(self.model, *self.client_data(c, plan))[0].mean()) for c in candidates])

            plan.n_candidates = self.selection.n_candidates(cfg.clients_per_round, int(np.count_nonzero(plan.sizes)))
        plan.selected = self.selection.select(self.rng, sizes=plan.sizes, k=cfg.clients_per_round, round_idx=round_idx,
                                              loss_fn=loss_fn)
        return plan

    def local_updates(self, plan: RoundPlan) -> ClientUpdates:
        """Every selected device runs :func:`local_update` from the global weights, seeded by (seed, round, device)."""
        cfg = self.config
        clients = plan.clients
        deltas = torch.empty((len(clients), self.n_params), dtype=self.global_vec.dtype)
        losses = []
        for j, c in enumerate(clients):
            self.set_global()
            Xc, yc = self.client_data(c, plan)
            gen = torch.Generator().manual_seed(client_seed(cfg.seed, plan.round_idx, int(c)))
            _, loss = local_update(self.model, Xc, yc, epochs=cfg.local_epochs, batch_size=cfg.batch_size,
                                   lr=cfg.client_lr, max_steps=cfg.max_local_steps, generator=gen,
                                   proximal_mu=float(plan.settings.get("proximal_mu", 0.0)))
            losses.append(loss)
            deltas[j] = parameters_to_vector(self.params).detach() - self.global_vec
        return ClientUpdates(clients, deltas, plan.sizes[clients].astype(np.float64), losses)

    def aggregate(self, plan: RoundPlan, updates: ClientUpdates) -> torch.Tensor:
        """Combine the updates (sample-weighted, or clipped and noised for DP-FedAvg) and take the server step."""
        cfg = self.config
        update = combine_updates(updates.deltas, updates.weights, dp_clip=cfg.dp_clip,
                                 noise_multiplier=cfg.dp_noise_multiplier, generator=self.noise_gen)
        return self.server.apply(self.global_vec, update, round_idx=plan.round_idx)

    def evaluate(self) -> dict:
        """Test metrics of the current global model (``test_loss``, ``test_accuracy``, ``test_perplexity``)."""
        return _metrics(*evaluate_samples(self.model, self.X_test, self.y_test), self.data.task)

    def run_round(self, round_idx: int) -> dict:
        """One round: configure, train, aggregate, account bytes; returns the round's history row."""
        t0 = time.perf_counter()
        plan = self.configure_round(round_idx)
        self.participation[plan.selected] += 1
        updates = self.local_updates(plan)
        self.global_vec = self.aggregate(plan, updates)
        self.set_global()
        k, n_params, n_cand = len(plan.selected), self.n_params, plan.n_candidates
        down = (k + n_cand) * n_params * BYTES_PER_FLOAT
        up = k * n_params * BYTES_PER_FLOAT + n_cand * BYTES_PER_FLOAT
        self.bytes_total += down + up
        w = updates.weights
        row = {
            "round": round_idx + 1, "period": plan.period, "selected": plan.selected.tolist(),
            "n_selected_samples": int(plan.sizes[plan.selected].sum()), "n_available": int(np.count_nonzero(plan.sizes)),
            "bytes_down": down, "bytes_up": up, "bytes_total": self.bytes_total,
            "train_loss": float(np.average(updates.losses, weights=w)) if w.sum() > 0 else float("nan"),
        }
        if (round_idx + 1) % self.config.eval_every == 0 or round_idx + 1 == self.config.rounds:
            row.update(self.evaluate())
        row["seconds"] = time.perf_counter() - t0
        self.history.append(row)
        return row

    def result(self, seconds: float) -> FedResult:
        """The run's :class:`FedResult` (final metrics, per-device metrics, participation)."""
        cfg = self.config
        client_metrics = _client_metrics(self.model, self.data, self.participation)
        final = {k_: v for k_, v in self.history[-1].items() if k_.startswith("test_")}
        final.update({"bytes_total": self.bytes_total, "rounds": cfg.rounds,
                      "client_accuracy_mean": float(client_metrics["accuracy"].mean()),
                      "client_accuracy_p10": float(client_metrics["accuracy"].quantile(0.1)) if len(client_metrics) else float("nan"),
                      "participation_gini": _gini(self.participation)})
        if self.epsilon is not None:
            final["epsilon"] = self.epsilon
        return FedResult(self.model, self.history, self.participation, client_metrics, final, self.epsilon, cfg,
                         self.n_params, seconds, self.notes)

    def run(self, *, progress: bool = True, callback: Callable[[dict], None] | None = None) -> FedResult:
        """All ``config.rounds`` rounds (with a progress bar), then :meth:`result`."""
        from tqdm.auto import tqdm

        t_start = time.perf_counter()
        for r in tqdm(range(self.config.rounds), desc=f"FedAvg ({self.selection.name})", unit="round", disable=not progress):
            row = self.run_round(r)
            if callback is not None:
                callback(row)
        return self.result(time.perf_counter() - t_start)


def run_fedavg(data: FederatedData, *, model_fn: Callable[[], nn.Module], config: FedConfig = FedConfig(),
               progress: bool = True, callback: Callable[[dict], None] | None = None,
               threads: int | None = 1, simulator: type[FedAvgSimulator] | None = None) -> FedResult:
    """Simulate federated training with device selection and return per-round results.

    Parameters
    ----------
    data : FederatedData
    model_fn : callable
        Builds the model; called once, under ``torch.manual_seed(config.seed)``.
    config : FedConfig
    progress : bool
        Progress bar over rounds.
    callback : callable, optional
        Called with each round's record (e.g. to update a live figure).
    threads : int or None
        Torch threads while simulating (1 is fastest for these small models; None: leave as is).
    simulator : FedAvgSimulator subclass, optional
        Runs the rounds (default :class:`FedAvgSimulator`).

    Returns
    -------
    FedResult
        ``history`` has one record per round: ``round``, ``period``, ``selected`` (device numbers),
        ``n_selected_samples``, ``bytes_down``, ``bytes_up``, ``bytes_total`` (cumulative), ``train_loss``
        (mean local loss), ``seconds`` and, on evaluated rounds, ``test_loss``, ``test_accuracy``
        (+ ``test_perplexity`` for language models). ``client_metrics`` holds each device's accuracy on
        its own test samples under the final model and how often it was selected.
    """
    check(progress, Boolean(), name="progress", owner="run_fedavg")
    with torch_threads(threads):
        return (simulator or FedAvgSimulator)(data, model_fn=model_fn, config=config).run(progress=progress, callback=callback)


def _client_metrics(model: nn.Module, data: FederatedData, participation: np.ndarray) -> pd.DataFrame:
    """Each device's loss/accuracy on its own test samples (devices without test samples are left out)."""
    ids = data.test.sample_ids()
    loss, correct = evaluate_samples(model, data.X[torch.as_tensor(ids)], data.y[torch.as_tensor(ids)])
    owner = np.repeat(np.arange(data.n_clients), data.test.sizes)
    n_test = data.test.sizes
    has = n_test > 0
    sum_loss = np.bincount(owner, weights=loss.numpy(), minlength=data.n_clients)
    sum_ok = np.bincount(owner, weights=correct.numpy().astype(np.float64), minlength=data.n_clients)
    df = pd.DataFrame({
        "client": np.arange(data.n_clients),
        "name": data.train.names if data.train.names is not None else np.arange(data.n_clients).astype(str),
        "n_train": data.train.sizes, "n_test": n_test, "times_selected": participation,
        "loss": np.where(has, sum_loss / np.maximum(n_test, 1), np.nan),
        "accuracy": np.where(has, sum_ok / np.maximum(n_test, 1), np.nan),
    })
    return df[has].reset_index(drop=True)


def _gini(x: np.ndarray) -> float:
    """Gini coefficient of participation counts (0 = everyone equally often, 1 = one device only)."""
    x = np.sort(np.asarray(x, dtype=np.float64))
    if x.sum() == 0:
        return 0.0
    n = len(x)
    return float((2 * np.arange(1, n + 1) - n - 1) @ x / (n * x.sum()))


def train_centralized(data: FederatedData, *, model_fn: Callable[[], nn.Module], epochs: int = 5, batch_size: int = 32,
                      lr: float = 0.1, seed: int = 0, eval_max_samples: int | None = 4000,
                      progress: bool = True, threads: int | None = 1) -> tuple[nn.Module, list[dict]]:
    """Centralized baseline: the same model and SGD on all devices' training data pooled.

    Returns the model and one record per epoch (``epoch``, ``samples_seen``, ``train_loss``, ``test_*``).
    """
    with torch_threads(threads):
        return _train_centralized(data, model_fn=model_fn, epochs=epochs, batch_size=batch_size, lr=lr, seed=seed,
                                  eval_max_samples=eval_max_samples, progress=progress)


def _train_centralized(data, *, model_fn, epochs, batch_size, lr, seed, eval_max_samples, progress):
    from tqdm.auto import tqdm

    model = init_model(model_fn, seed)
    X, y = data.pooled_train()
    test_ids = torch.as_tensor(data.test_indices(eval_max_samples, seed=seed))
    X_test, y_test = data.X[test_ids], data.y[test_ids]
    gen = torch.Generator().manual_seed(client_seed(seed, -2, -2))
    history = []
    for epoch in tqdm(range(1, epochs + 1), desc="centralized", unit="epoch", disable=not progress):
        t0 = time.perf_counter()
        _, loss = local_update(model, X, y, epochs=1, batch_size=batch_size, lr=lr, generator=gen)
        row = {"epoch": epoch, "samples_seen": epoch * len(X), "train_loss": loss}
        row.update(_metrics(*evaluate_samples(model, X_test, y_test), data.task))
        row["seconds"] = time.perf_counter() - t0
        history.append(row)
    return model, history
