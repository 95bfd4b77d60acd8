"""In-process FedAvg simulation: device selection, local SGD, sample-weighted averaging, continual data.

One round: the server picks ``clients_per_round`` devices with a selection strategy (see
:mod:`workbench.federated.selection`), each runs local SGD from the global weights on the samples it
currently stores, and the server moves the global weights by ``server_lr`` times the average update,
weighted by the devices' sample counts (McMahan et al. 2017). Optional DP-FedAvg (McMahan et al. 2018)
clips each device's update to norm ``dp_clip``, averages them with equal weights and adds Gaussian noise
of standard deviation ``dp_noise_multiplier * dp_clip / k``; the client-level epsilon comes from the RDP
accountant.

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

from .partition import Partition
from .selection import PowerOfChoiceSelection, RoundRobinSelection, SelectionStrategy, UniformSelection, make_strategy

__all__ = [
    "FederatedData",
    "FedConfig",
    "ContinualSchedule",
    "FedResult",
    "run_fedavg",
    "train_centralized",
    "local_update",
    "aggregate",
    "client_epsilon",
    "client_seed",
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
        if len(self.X) != len(self.y):
            raise ValueError(f"FederatedData needs as many labels as inputs. Got {len(self.X)} and {len(self.y)}.")
        if self.train.n_clients != self.test.n_clients:
            raise ValueError("The 'train' and 'test' partitions of FederatedData must have the same clients.")
        if self.task not in ("classification", "language_model"):
            raise ValueError(f"The 'task' parameter of FederatedData must be 'classification' or 'language_model'. Got {self.task!r} instead.")

    @property
    def n_clients(self) -> int:
        return self.train.n_clients

    def test_indices(self, max_samples: int | None = None, *, seed: int = 0) -> np.ndarray:
        ids = np.arange(self.test.n_samples) if self.test.indices is None else self.test.indices
        if max_samples is not None and len(ids) > max_samples:
            ids = np.sort(np.random.default_rng(seed).choice(ids, size=max_samples, replace=False))
        return ids

    def pooled_train(self) -> tuple[torch.Tensor, torch.Tensor]:
        ids = np.arange(self.train.n_samples) if self.train.indices is None else self.train.indices
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
    """Hyper-parameters of :func:`run_fedavg` (validated).

    Examples
    --------
    >>> FedConfig(clients_per_round=0)
    Traceback (most recent call last):
    ...
    ValueError: The 'clients_per_round' parameter of FedConfig must be an int >= 1. Got 0 instead.
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

    def __post_init__(self):
        for name in ("rounds", "clients_per_round", "local_epochs", "batch_size", "periods", "eval_every"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
                raise ValueError(f"The '{name}' parameter of FedConfig must be an int >= 1. Got {v!r} instead.")
        for name in ("max_local_steps", "storage_limit", "eval_max_samples"):
            v = getattr(self, name)
            if v is not None and (isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1):
                raise ValueError(f"The '{name}' parameter of FedConfig must be None or an int >= 1. Got {v!r} instead.")
        for name in ("client_lr", "server_lr"):
            v = getattr(self, name)
            if not (isinstance(v, (int, float)) and v > 0):
                raise ValueError(f"The '{name}' parameter of FedConfig must be > 0. Got {v!r} instead.")
        if self.dp_clip is not None and not self.dp_clip > 0:
            raise ValueError(f"The 'dp_clip' parameter of FedConfig must be None or > 0. Got {self.dp_clip!r} instead.")
        if not self.dp_noise_multiplier >= 0:
            raise ValueError(f"The 'dp_noise_multiplier' parameter of FedConfig must be >= 0. Got {self.dp_noise_multiplier!r} instead.")
        if self.dp_noise_multiplier > 0 and self.dp_clip is None:
            raise ValueError("The 'dp_noise_multiplier' parameter of FedConfig needs 'dp_clip' (DP-FedAvg clips client updates).")
        if not 0 < self.dp_delta < 1:
            raise ValueError(f"The 'dp_delta' parameter of FedConfig must be in (0, 1). Got {self.dp_delta!r} instead.")
        from .selection import STRATEGIES

        if not isinstance(self.strategy, SelectionStrategy) and self.strategy not in STRATEGIES:
            raise ValueError(f"The 'strategy' parameter of FedConfig must be one of {sorted(STRATEGIES)}. Got {self.strategy!r} instead.")
        make_strategy(self.strategy, **dict(self.strategy_params))  # validates the parameters

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
        if periods < 1:
            raise ValueError(f"The 'periods' parameter of ContinualSchedule must be >= 1. Got {periods!r} instead.")
        if storage_limit is not None and storage_limit < 1:
            raise ValueError(f"The 'storage_limit' parameter of ContinualSchedule must be None or >= 1. Got {storage_limit!r} instead.")
        self.periods = int(periods)
        self.storage_limit = storage_limit

    def received(self, period: int) -> np.ndarray:
        """Samples each device has generated by the end of ``period``."""
        if not 0 <= period < self.periods:
            raise ValueError(f"The 'period' parameter must be in [0, {self.periods}). Got {period!r} instead.")
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
                 max_steps: int | None = None, generator: torch.Generator | None = None) -> tuple[int, float]:
    """Plain minibatch SGD on ``(X, y)`` in place; returns ``(steps, mean training loss)``.

    With ``batch_size >= len(X)`` and one epoch this is one full-batch gradient step.
    """
    n = len(X)
    steps, total = 0, 0.0
    params = [p for p in model.parameters() if p.requires_grad]
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
                torch._foreach_add_(params, grads, alpha=-lr)
            steps += 1
            total += float(loss.detach())
    return steps, total / max(steps, 1)


def aggregate(global_vec: torch.Tensor, deltas: torch.Tensor, weights, *, server_lr: float = 1.0,
              dp_clip: float | None = None, noise_multiplier: float = 0.0,
              generator: torch.Generator | None = None) -> torch.Tensor:
    """New global weights from client updates ``deltas`` (one row per client, in a fixed order).

    FedAvg: ``w + server_lr * sum_i n_i delta_i / sum_i n_i``. DP-FedAvg (``dp_clip`` set): every delta
    clipped to norm ``dp_clip``, equal weights, plus N(0, (noise_multiplier * dp_clip / k)^2) noise.

    Examples
    --------
    >>> aggregate(torch.zeros(2), torch.tensor([[1., 0.], [0., 1.]]), [3, 1]).tolist()
    [0.75, 0.25]
    """
    deltas = torch.as_tensor(deltas, dtype=global_vec.dtype)
    if dp_clip is None:
        w = torch.as_tensor(np.asarray(weights, dtype=np.float64), dtype=global_vec.dtype)
        avg = (w[:, None] * deltas).sum(0) / w.sum()
    else:
        norms = deltas.norm(dim=1, keepdim=True)
        clipped = deltas * torch.clamp(dp_clip / (norms + 1e-12), max=1.0)
        k = len(deltas)
        avg = clipped.sum(0) / k
        if noise_multiplier > 0:
            avg = avg + torch.randn(avg.shape, generator=generator, dtype=avg.dtype) * (noise_multiplier * dp_clip / k)
    return global_vec + server_lr * avg


def _sampling_rate_bound(strategy: SelectionStrategy, sizes_per_period: list[np.ndarray], k: int) -> float:
    """Upper bound on any device's probability of being selected in a round."""
    q = 0.0
    for sizes in sizes_per_period:
        if isinstance(strategy, UniformSelection):
            q = max(q, k / np.count_nonzero(sizes))
        else:  # successive draws: P(i in S) <= w_i * sum_j 1 / (W - sum of the j largest weights)
            w = np.sort(np.asarray(strategy.weights(sizes), dtype=np.float64))[::-1]
            total, top = w.sum(), np.concatenate([[0.0], np.cumsum(w[: k - 1])])
            rest = total - top
            q = max(q, 1.0 if np.any(rest <= 0) else min(1.0, float(w[0] * np.sum(1.0 / rest))))
    return min(q, 1.0)


def client_epsilon(*, noise_multiplier: float, sample_rate: float, rounds: int, delta: float) -> float:
    """Client-level epsilon of DP-FedAvg: ``rounds`` subsampled Gaussian steps at ``sample_rate`` (RDP).

    Uses :func:`workbench.privacy.accounting.compute_epsilon` when available, else Opacus's RDP accountant.

    Examples
    --------
    >>> round(client_epsilon(noise_multiplier=1.0, sample_rate=0.01, rounds=100, delta=1e-5), 2)
    1.21
    """
    try:
        from workbench.privacy.accounting import compute_epsilon
    except ImportError:  # pragma: no cover - the privacy study is optional for this one
        from opacus.accountants import RDPAccountant

        acc = RDPAccountant()
        acc.history = [(float(noise_multiplier), float(sample_rate), int(rounds))]
        return float(acc.get_epsilon(delta=delta))
    return float(compute_epsilon(noise_multiplier=noise_multiplier, sample_rate=sample_rate, steps=rounds, delta=delta))


def _dp_epsilon(config: FedConfig, strategy: SelectionStrategy, schedule: ContinualSchedule, notes: list) -> float | None:
    if config.dp_clip is None or config.dp_noise_multiplier <= 0:
        return None
    sizes = [schedule.stored(p) for p in range(schedule.periods)]
    k = config.clients_per_round
    if isinstance(strategy, PowerOfChoiceSelection):
        notes.append("DP-FedAvg with power-of-choice: selection depends on private losses, so no epsilon is reported.")
        return None
    if isinstance(strategy, RoundRobinSelection):
        participations = max(math.ceil(config.rounds * k / np.count_nonzero(s)) for s in sizes)
        notes.append("Round-robin participation is deterministic: epsilon composes each device's participations without sampling amplification.")
        return client_epsilon(noise_multiplier=config.dp_noise_multiplier, sample_rate=1.0, rounds=participations, delta=config.dp_delta)
    q = _sampling_rate_bound(strategy, sizes, k)
    notes.append(f"Client-level epsilon uses the RDP accountant with sampling rate q={q:.4g} (an upper bound on any device's "
                 "selection probability); fixed-size selection is treated like Poisson sampling, the usual approximation.")
    return client_epsilon(noise_multiplier=config.dp_noise_multiplier, sample_rate=q, rounds=config.rounds, delta=config.dp_delta)


@torch.no_grad()
def _evaluate(model: nn.Module, X: torch.Tensor, y: torch.Tensor, *, batch_size: int = 2048) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-sample cross-entropy and correctness."""
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


def _init_model(model_fn: Callable[[], nn.Module], seed: int) -> nn.Module:
    state = torch.random.get_rng_state()
    torch.manual_seed(seed)
    try:
        return model_fn()
    finally:
        torch.random.set_rng_state(state)


def run_fedavg(data: FederatedData, *, model_fn: Callable[[], nn.Module], config: FedConfig = FedConfig(),
               progress: bool = True, callback: Callable[[dict], None] | None = None,
               threads: int | None = 1) -> FedResult:
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

    Returns
    -------
    FedResult
        ``history`` has one record per round: ``round``, ``period``, ``selected`` (device numbers),
        ``n_selected_samples``, ``bytes_down``, ``bytes_up``, ``bytes_total`` (cumulative), ``train_loss``
        (mean local loss), ``seconds`` and, on evaluated rounds, ``test_loss``, ``test_accuracy``
        (+ ``test_perplexity`` for language models). ``client_metrics`` holds each device's accuracy on
        its own test samples under the final model and how often it was selected.
    """
    with torch_threads(threads):
        return _run_fedavg(data, model_fn=model_fn, config=config, progress=progress, callback=callback)


def _run_fedavg(data, *, model_fn, config, progress, callback) -> FedResult:
    from tqdm.auto import tqdm

    t_start = time.perf_counter()
    strategy = make_strategy(config.strategy, **dict(config.strategy_params))
    model = _init_model(model_fn, config.seed)
    params = [p for p in model.parameters() if p.requires_grad]
    global_vec = parameters_to_vector(params).detach().clone()
    n_params = global_vec.numel()
    schedule = ContinualSchedule(data.train.sizes, periods=config.periods, storage_limit=config.storage_limit)
    notes: list[str] = []
    epsilon = _dp_epsilon(config, strategy, schedule, notes)
    rng = np.random.default_rng(config.seed)
    noise_gen = torch.Generator().manual_seed(client_seed(config.seed, -1, -1))
    test_ids = torch.as_tensor(data.test_indices(config.eval_max_samples, seed=config.seed))
    X_test, y_test = data.X[test_ids], data.y[test_ids]
    participation = np.zeros(data.n_clients, dtype=np.int64)
    history: list[dict] = []
    bytes_total = 0
    k = config.clients_per_round

    def device_data(i: int, start: np.ndarray, stop: np.ndarray):
        idx = torch.as_tensor(data.train.client(int(i), int(start[i]), int(stop[i])))
        return data.X[idx], data.y[idx]

    for r in tqdm(range(config.rounds), desc=f"FedAvg ({strategy.name})", unit="round", disable=not progress):
        t0 = time.perf_counter()
        period = schedule.period_of_round(r, config.rounds)
        start, stop = schedule.window(period)
        sizes = stop - start
        loss_fn = None
        n_candidates = 0
        if strategy.uses_losses:
            vector_to_parameters(global_vec.clone(), params)  # a copy: SGD updates params in place

            def loss_fn(candidates, _start=start, _stop=stop):
                out = []
                for c in candidates:
                    Xc, yc = device_data(c, _start, _stop)
                    out.append(float(_evaluate(model, Xc, yc)[0].mean()))
                return np.asarray(out)

            n_candidates = strategy.n_candidates(k, int(np.count_nonzero(sizes)))
        selected = strategy.select(rng, sizes=sizes, k=k, round_idx=r, loss_fn=loss_fn)
        participation[selected] += 1
        order = np.sort(selected)  # aggregate in a fixed order: results do not depend on draw order
        deltas = torch.empty((len(order), n_params), dtype=global_vec.dtype)
        weights = sizes[order].astype(np.float64)
        local_losses = []
        for j, c in enumerate(order):
            vector_to_parameters(global_vec.clone(), params)  # a copy: SGD updates params in place
            Xc, yc = device_data(c, start, stop)
            gen = torch.Generator().manual_seed(client_seed(config.seed, r, int(c)))
            _, loss = local_update(model, Xc, yc, epochs=config.local_epochs, batch_size=config.batch_size,
                                   lr=config.client_lr, max_steps=config.max_local_steps, generator=gen)
            local_losses.append(loss)
            deltas[j] = parameters_to_vector(params).detach() - global_vec
        global_vec = aggregate(global_vec, deltas, weights, server_lr=config.server_lr, dp_clip=config.dp_clip,
                               noise_multiplier=config.dp_noise_multiplier, generator=noise_gen)
        vector_to_parameters(global_vec.clone(), params)  # a copy: SGD updates params in place
        down = (len(selected) + n_candidates) * n_params * BYTES_PER_FLOAT
        up = len(selected) * n_params * BYTES_PER_FLOAT + n_candidates * BYTES_PER_FLOAT
        bytes_total += down + up
        row = {
            "round": r + 1, "period": period, "selected": selected.tolist(),
            "n_selected_samples": int(sizes[selected].sum()), "n_available": int(np.count_nonzero(sizes)),
            "bytes_down": down, "bytes_up": up, "bytes_total": bytes_total,
            "train_loss": float(np.average(local_losses, weights=weights)) if weights.sum() > 0 else float("nan"),
        }
        if (r + 1) % config.eval_every == 0 or r + 1 == config.rounds:
            row.update(_metrics(*_evaluate(model, X_test, y_test), data.task))
        row["seconds"] = time.perf_counter() - t0
        history.append(row)
        if callback is not None:
            callback(row)

    client_metrics = _client_metrics(model, data, participation)
    final = {k_: v for k_, v in history[-1].items() if k_.startswith("test_")}
    final.update({"bytes_total": bytes_total, "rounds": config.rounds,
                  "client_accuracy_mean": float(client_metrics["accuracy"].mean()),
                  "client_accuracy_p10": float(client_metrics["accuracy"].quantile(0.1)) if len(client_metrics) else float("nan"),
                  "participation_gini": _gini(participation)})
    if epsilon is not None:
        final["epsilon"] = epsilon
    return FedResult(model, history, participation, client_metrics, final, epsilon, config, n_params,
                     time.perf_counter() - t_start, notes)


def _client_metrics(model: nn.Module, data: FederatedData, participation: np.ndarray) -> pd.DataFrame:
    """Each device's loss/accuracy on its own test samples (devices without test samples are left out)."""
    ids = np.arange(data.test.n_samples) if data.test.indices is None else data.test.indices
    loss, correct = _evaluate(model, data.X[torch.as_tensor(ids)], data.y[torch.as_tensor(ids)])
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

    model = _init_model(model_fn, seed)
    X, y = data.pooled_train()
    test_ids = torch.as_tensor(data.test_indices(eval_max_samples, seed=seed))
    X_test, y_test = data.X[test_ids], data.y[test_ids]
    gen = torch.Generator().manual_seed(client_seed(seed, -2, -2))
    history = []
    for epoch in tqdm(range(1, epochs + 1), desc="centralized", unit="epoch", disable=not progress):
        t0 = time.perf_counter()
        _, loss = local_update(model, X, y, epochs=1, batch_size=batch_size, lr=lr, generator=gen)
        row = {"epoch": epoch, "samples_seen": epoch * len(X), "train_loss": loss}
        row.update(_metrics(*_evaluate(model, X_test, y_test), data.task))
        row["seconds"] = time.perf_counter() - t0
        history.append(row)
    return model, history
