"""Flower adapter: the workbench's device-selection and server strategies as a Flower ``Strategy``.

:class:`SelectionFedAvg` is a ``flwr.server.strategy.FedAvg`` whose ``configure_fit`` picks the round's
clients with a strategy from :mod:`workbench.federated.selection` (seeded like the in-process simulator) and
sends them the server strategy's round settings (FedProx's ``proximal_mu``), and whose ``aggregate_fit``
combines the updates with :func:`~workbench.federated.strategies.combine_updates` (sample-weighted, or
clipped and noised for DP-FedAvg) and takes the server step of a
:mod:`workbench.federated.strategies` strategy (FedAvg, FedProx, FedAdam, FedYogi, FedAdagrad): the same
public pieces the in-process simulator's round is made of.
Loss-based power-of-choice asks its candidates for their loss with Flower ``evaluate`` calls inside
``configure_fit``, which is the extra communication that strategy costs in a deployment.

:func:`run_flower_simulation` runs a :class:`~workbench.federated.simulation.FederatedData` workload on
Flower's simulation runtime (``flwr.simulation.run_simulation`` with a ``ServerApp`` and a ``ClientApp``,
Ray backend), with clients that do exactly the simulator's local update, so both
must select the same clients and end with the same weights for the same seed (tests check this).
:class:`LocalClientProxy` runs a Flower client in this process (for fast tests of the strategy with
Flower's own server loop, no Ray).

Flower is an optional dependency: ``pip install "flwr[simulation]"``.
"""
from __future__ import annotations

import logging
import time
from typing import Callable

import numpy as np
import torch
from torch import nn
from torch.nn.utils import parameters_to_vector, vector_to_parameters

from .selection import SelectionStrategy, make_strategy
from .strategies import ServerStrategy, combine_updates, make_server_strategy
from .simulation import (ContinualSchedule, FedConfig, FederatedData, evaluate_samples, init_model, client_seed,
                         local_update, torch_threads)

try:
    import flwr
    from flwr.client import NumPyClient
    from flwr.common import EvaluateIns, FitIns, GetPropertiesIns, ndarrays_to_parameters, parameters_to_ndarrays
    from flwr.server.client_proxy import ClientProxy
    from flwr.server.strategy import FedAvg as _FedAvg

    HAVE_FLWR = True
except ImportError:  # pragma: no cover - exercised only without the optional extra
    flwr = None
    HAVE_FLWR = False
    _FedAvg = NumPyClient = ClientProxy = object

__all__ = ["HAVE_FLWR", "SelectionFedAvg", "WorkbenchClient", "LocalClientProxy", "strategy_for", "run_flower_simulation",
           "run_flower_inprocess", "model_to_ndarrays"]

_INSTALL = 'Flower is not installed: pip install "flwr[simulation]" (Flower 1.x with Ray).'


def _require_flwr():
    if not HAVE_FLWR:
        raise ImportError(_INSTALL)


def model_to_ndarrays(model: nn.Module) -> list[np.ndarray]:
    """The trainable parameters in ``model.parameters()`` order (what the simulator flattens)."""
    return [p.detach().cpu().numpy().copy() for p in model.parameters() if p.requires_grad]


def _flatten(arrays: list[np.ndarray]) -> torch.Tensor:
    return torch.as_tensor(np.concatenate([np.asarray(a, dtype=np.float32).ravel() for a in arrays]))


def _unflatten(vec: torch.Tensor, like: list[np.ndarray]) -> list[np.ndarray]:
    out, pos = [], 0
    flat = vec.detach().cpu().numpy()
    for a in like:
        out.append(flat[pos : pos + a.size].reshape(a.shape).astype(np.float32, copy=True))
        pos += a.size
    return out


def _device_index(proxy) -> int:
    """The device number of a Flower client proxy (its partition id in Flower's simulation engine)."""
    for attr in ("partition_id", "device_index"):
        value = getattr(proxy, attr, None)
        if value is not None:
            return int(value)
    raise ValueError(
        f"Cannot tell which device client proxy {proxy.cid!r} is: it has no 'partition_id'. "
        "Give SelectionFedAvg a 'cid_to_index' mapping."
    )


class SelectionFedAvg(_FedAvg):
    """FedAvg whose client selection is a workbench selection strategy.

    Parameters
    ----------
    strategy : str or SelectionStrategy
        A name in :data:`~workbench.federated.selection.STRATEGIES` (with ``strategy_params``) or an instance.
    sizes : array of int
        Samples each device holds (index = Flower partition id). ``sizes_fn(round_idx)`` overrides it
        per round (continual setting).
    clients_per_round : int
    seed : int
        Seeds the selection generator exactly like :func:`~workbench.federated.simulation.run_fedavg`.
    server_lr : float
        Server learning rate of ``fedavg`` / ``fedprox``.
    server, server_params : str or ServerStrategy, mapping
        The server step (:data:`~workbench.federated.strategies.SERVER_STRATEGIES`), e.g. ``"fedadam"``.
    dp_clip, dp_noise_multiplier : float
        DP-FedAvg: clip every update to norm ``dp_clip``, average with equal weights, add Gaussian noise (drawn
        from a generator seeded like the simulator's).
    cid_to_index : mapping, optional
        Client id -> device number, for client proxies without a ``partition_id``. Without either, the strategy
        asks each client once for its ``partition_id`` property (Flower's ``get_properties``), which is how
        it finds the devices under Flower's ServerApp runtime.
    **kwargs
        Passed to ``flwr.server.strategy.FedAvg`` (e.g. ``initial_parameters``, ``evaluate_fn``).
    """

    def __init__(self, strategy="uniform", *, sizes=None, clients_per_round: int, seed: int = 0, server_lr: float = 1.0,
                 strategy_params: dict | None = None, sizes_fn: Callable[[int], np.ndarray] | None = None,
                 windows_fn: Callable[[int], tuple[np.ndarray, np.ndarray]] | None = None,
                 cid_to_index: dict | None = None, server: str | ServerStrategy = "fedavg",
                 server_params: dict | None = None, dp_clip: float | None = None, dp_noise_multiplier: float = 0.0,
                 **kwargs):
        _require_flwr()
        kwargs.setdefault("fraction_evaluate", 0.0)
        kwargs.setdefault("min_evaluate_clients", 0)
        kwargs.setdefault("min_fit_clients", clients_per_round)
        kwargs.setdefault("min_available_clients", clients_per_round)
        super().__init__(**kwargs)
        if sizes is None and sizes_fn is None and windows_fn is None:
            raise ValueError("SelectionFedAvg needs 'sizes', 'sizes_fn' or 'windows_fn' (samples per device).")
        self.selection: SelectionStrategy = make_strategy(strategy, **(strategy_params or {}))
        self.k = int(clients_per_round)
        self.rng = np.random.default_rng(seed)
        self.server_lr = float(server_lr)
        params = dict(server_params or {})
        if server in ("fedavg", "fedprox"):
            params.setdefault("server_lr", self.server_lr)
        self.server: ServerStrategy = make_server_strategy(server, **params)
        self.dp_clip = dp_clip
        self.dp_noise_multiplier = float(dp_noise_multiplier)
        self.noise_gen = torch.Generator().manual_seed(client_seed(seed, -1, -1))
        self._sizes = None if sizes is None else np.asarray(sizes, dtype=np.int64)
        self.sizes_fn = sizes_fn
        self.windows_fn = windows_fn
        self.cid_to_index = dict(cid_to_index or {})
        #: Selected device numbers per round (draw order), like the simulator's history["selected"].
        self.selected: list[list[int]] = []
        self.n_candidates: list[int] = []
        self._current: list[np.ndarray] | None = None

    def __repr__(self) -> str:
        return f"SelectionFedAvg({self.selection!r}, clients_per_round={self.k})"

    def _index(self, proxy) -> int:
        if proxy.cid not in self.cid_to_index:
            try:
                self.cid_to_index[proxy.cid] = _device_index(proxy)
            except ValueError:
                res = proxy.get_properties(GetPropertiesIns({}), timeout=None, group_id=None)
                if "partition_id" not in res.properties:
                    raise
                self.cid_to_index[proxy.cid] = int(res.properties["partition_id"])
        return int(self.cid_to_index[proxy.cid])

    def _round_sizes(self, round_idx: int) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
        if self.windows_fn is not None:
            start, stop = self.windows_fn(round_idx)
            return stop - start, start, stop
        sizes = self.sizes_fn(round_idx) if self.sizes_fn is not None else self._sizes
        return np.asarray(sizes, dtype=np.int64), None, None

    def configure_fit(self, server_round, parameters, client_manager):
        round_idx = server_round - 1
        self._current = parameters_to_ndarrays(parameters)
        client_manager.wait_for(self.min_available_clients)
        proxies = {self._index(p): p for p in client_manager.all().values()}
        sizes, start, stop = self._round_sizes(round_idx)
        available = np.zeros_like(sizes)
        connected = np.fromiter((i for i in proxies if 0 <= i < len(sizes)), dtype=np.int64)
        available[connected] = sizes[connected]  # devices not connected cannot be selected

        settings = self.server.configure_round(round_idx)

        def config_for(i: int, purpose: str) -> dict:
            cfg = {"round": round_idx, "purpose": purpose, **(settings if purpose == "train" else {})}
            if start is not None:
                cfg.update({"start": int(start[i]), "stop": int(stop[i])})
            return cfg

        loss_fn = None
        if self.selection.uses_losses:
            def loss_fn(candidates):
                losses = []
                for i in candidates:
                    res = proxies[int(i)].evaluate(EvaluateIns(parameters, config_for(int(i), "selection")),
                                                   timeout=None, group_id=server_round)
                    losses.append(float(res.loss))
                return np.asarray(losses)

        chosen = self.selection.select(self.rng, sizes=available, k=self.k, round_idx=round_idx, loss_fn=loss_fn)
        self.selected.append(chosen.tolist())
        self.n_candidates.append(self.selection.n_candidates(self.k, int(np.count_nonzero(available)))
                                 if self.selection.uses_losses else 0)
        return [(proxies[int(i)], FitIns(parameters, config_for(int(i), "train"))) for i in chosen]

    def aggregate_fit(self, server_round, results, failures):
        if not results or (failures and not self.accept_failures):
            return None, {}
        results = sorted(results, key=lambda r: self._index(r[0]))  # same order as the simulator
        current = self._current
        global_vec = _flatten(current)
        deltas = torch.stack([_flatten(parameters_to_ndarrays(res.parameters)) - global_vec for _, res in results])
        weights = [res.num_examples for _, res in results]
        update = combine_updates(deltas, weights, dp_clip=self.dp_clip, noise_multiplier=self.dp_noise_multiplier,
                                 generator=self.noise_gen)
        new_vec = self.server.apply(global_vec, update, round_idx=server_round - 1)
        losses = [float(res.metrics.get("loss", float("nan"))) for _, res in results]
        return ndarrays_to_parameters(_unflatten(new_vec, current)), {"train_loss": float(np.average(losses, weights=weights))}


class WorkbenchClient(NumPyClient):
    """A Flower client running the simulator's local update on one device's samples."""

    def __init__(self, data: FederatedData, index: int, *, model_fn: Callable[[], nn.Module], config: FedConfig):
        self.data, self.index, self.config = data, int(index), config
        self.model = model_fn()
        self.params = [p for p in self.model.parameters() if p.requires_grad]

    def _set(self, parameters):
        vector_to_parameters(_flatten(parameters), self.params)

    def _samples(self, cfg: dict, *, test: bool = False):
        part = self.data.test if test else self.data.train
        if test:
            ids = part.client(self.index)
        else:
            ids = part.client(self.index, int(cfg.get("start", 0)), int(cfg["stop"]) if "stop" in cfg else None)
        idx = torch.as_tensor(ids)
        return self.data.X[idx], self.data.y[idx]

    def get_parameters(self, config):
        return model_to_ndarrays(self.model)

    def get_properties(self, config):
        return {"partition_id": self.index}

    def fit(self, parameters, config):
        with torch_threads(1):
            self._set(parameters)
            X, y = self._samples(config)
            gen = torch.Generator().manual_seed(client_seed(self.config.seed, int(config["round"]), self.index))
            _, loss = local_update(self.model, X, y, epochs=self.config.local_epochs, batch_size=self.config.batch_size,
                                   lr=self.config.client_lr, max_steps=self.config.max_local_steps, generator=gen,
                                   proximal_mu=float(config.get("proximal_mu", 0.0)))
            return model_to_ndarrays(self.model), len(X), {"loss": float(loss)}

    def evaluate(self, parameters, config):
        with torch_threads(1):
            self._set(parameters)
            X, y = self._samples(config, test=config.get("purpose") != "selection")
            loss, correct = evaluate_samples(self.model, X, y)
            n = len(X)
            return (float(loss.mean()) if n else 0.0), n, {"accuracy": float(correct.float().mean()) if n else 0.0}


class LocalClientProxy(ClientProxy):
    """A Flower ``ClientProxy`` that calls a Flower ``Client`` in this process (no network, no Ray)."""

    def __init__(self, client, *, partition_id: int):
        _require_flwr()
        super().__init__(cid=str(partition_id))
        self.client = client.to_client() if hasattr(client, "to_client") else client
        self.partition_id = int(partition_id)

    def get_properties(self, ins, timeout, group_id):
        return self.client.get_properties(ins)

    def get_parameters(self, ins, timeout, group_id):
        return self.client.get_parameters(ins)

    def fit(self, ins, timeout, group_id):
        return self.client.fit(ins)

    def evaluate(self, ins, timeout, group_id):
        return self.client.evaluate(ins)

    def reconnect(self, ins, timeout, group_id):
        from flwr.common import DisconnectRes

        return DisconnectRes(reason="")


def strategy_for(data: FederatedData, model: nn.Module, config: FedConfig, *, cls: type | None = None) -> SelectionFedAvg:
    """The :class:`SelectionFedAvg` (or subclass ``cls``) that runs ``config`` on ``data`` from ``model``'s weights
    (continual windows included)."""
    _require_flwr()
    schedule = ContinualSchedule(data.train.sizes, periods=config.periods, storage_limit=config.storage_limit)
    return (cls or SelectionFedAvg)(
        config.strategy, strategy_params=dict(config.strategy_params), clients_per_round=config.clients_per_round,
        seed=config.seed, server_lr=config.server_lr, server=config.make_server(),
        dp_clip=config.dp_clip, dp_noise_multiplier=config.dp_noise_multiplier,
        windows_fn=lambda r: schedule.window(schedule.period_of_round(r, config.rounds)),
        initial_parameters=ndarrays_to_parameters(model_to_ndarrays(model)),
    )


def _result(selected, parameters, model: nn.Module, data: FederatedData, config: FedConfig, seconds: float) -> dict:
    params = [p for p in model.parameters() if p.requires_grad]
    vector_to_parameters(_flatten(parameters), params)
    ids = torch.as_tensor(data.test_indices(config.eval_max_samples, seed=config.seed))
    loss, correct = evaluate_samples(model, data.X[ids], data.y[ids])
    return {"selected": selected, "parameters": parameters_to_vector(params).detach().clone(), "model": model,
            "test_loss": float(loss.mean()), "test_accuracy": float(correct.float().mean()),
            "seconds": seconds, "rounds_per_second": config.rounds / seconds}


def run_flower_inprocess(data: FederatedData, *, model_fn: Callable[[], nn.Module], config: FedConfig,
                         strategy=None) -> dict:
    """Run the workload with Flower's server loop and :class:`LocalClientProxy` clients (no Ray).

    ``strategy`` replaces the default :func:`strategy_for` with any Flower strategy (e.g. Flower's own
    ``FedAdam``, to compare server optimizers); it should send each client ``{"round": server_round - 1}``
    (``on_fit_config_fn``) so the clients seed their minibatches like the simulator.

    Returns ``selected`` (device numbers per round; ``None`` for a foreign strategy), the final flattened
    ``parameters``, test metrics and timing: ``seconds`` (``server.fit`` alone) and ``total_seconds`` (the whole
    call: clients built, rounds, final test metrics, as a :func:`run_fedavg` call is timed).
    """
    t_call = time.perf_counter()
    _require_flwr()
    from flwr.server import Server
    from flwr.server.client_manager import SimpleClientManager

    model = init_model(model_fn, config.seed)
    manager = SimpleClientManager()
    for i in range(data.n_clients):
        manager.register(LocalClientProxy(WorkbenchClient(data, i, model_fn=model_fn, config=config), partition_id=i))
    strategy = strategy if strategy is not None else strategy_for(data, model, config)
    server = Server(client_manager=manager, strategy=strategy)
    server.set_max_workers(1)
    t0 = time.perf_counter()
    with _quiet_flower():
        server.fit(num_rounds=config.rounds, timeout=None)
    seconds = time.perf_counter() - t0
    out = _result(getattr(strategy, "selected", None), parameters_to_ndarrays(server.parameters), model, data, config, seconds)
    out["total_seconds"] = time.perf_counter() - t_call
    return out


def _is_startup_timeout(exc: BaseException | None) -> bool:
    while exc is not None:
        if "timed out during startup" in str(exc):
            return True
        exc = exc.__cause__ or exc.__context__
    return False


class _quiet_flower:
    def __enter__(self):
        self.logger = logging.getLogger("flwr")
        self.level = self.logger.level
        self.logger.setLevel(logging.WARNING)

    def __exit__(self, *exc):
        self.logger.setLevel(self.level)


def run_flower_simulation(data: FederatedData, *, model_fn: Callable[[], nn.Module], config: FedConfig,
                          num_cpus: int = 2, cpus_per_client: float = 1.0, start_attempts: int = 2) -> dict:
    """Run the workload on Flower's simulation runtime: a ``ServerApp`` and a ``ClientApp`` through
    ``flwr.simulation.run_simulation`` (Ray backend), Flower's current API.

    Each virtual client is a :class:`WorkbenchClient`; selection and aggregation are :class:`SelectionFedAvg`
    (it finds each supernode's device through the client's ``partition_id`` property). ``start_attempts``
    retries Ray's start-up, which can time out on a busy machine. Ray workers import ``model_fn`` by
    reference: use a function or ``functools.partial`` from an installed package (e.g.
    :func:`~workbench.federated.tasks.make_model_fn`), not one defined in a test or notebook.

    Returns ``selected``, the final flattened ``parameters``, test metrics, ``seconds`` (rounds only,
    start-up excluded), ``rounds_per_second`` and ``startup_seconds``.
    """
    _require_flwr()
    import ray
    from flwr.client import ClientApp
    from flwr.common import Context
    from flwr.server import ServerApp, ServerAppComponents, ServerConfig
    from flwr.simulation import run_simulation

    model = init_model(model_fn, config.seed)
    final: dict = {}
    timing = {"first_round_start": None}
    made: list[SelectionFedAvg] = []

    class _Recording(SelectionFedAvg):
        def configure_fit(self, server_round, parameters, client_manager):
            if timing["first_round_start"] is None:
                timing["first_round_start"] = time.perf_counter()
            return super().configure_fit(server_round, parameters, client_manager)

        def aggregate_fit(self, server_round, results, failures):
            out = super().aggregate_fit(server_round, results, failures)
            final["parameters"] = out[0]
            return out

    def server_fn(context: Context):
        strategy = strategy_for(data, model, config, cls=_Recording)
        made.append(strategy)
        return ServerAppComponents(strategy=strategy, config=ServerConfig(num_rounds=config.rounds))

    def client_fn(context: Context):
        index = int(context.node_config["partition-id"])
        return WorkbenchClient(data, index, model_fn=model_fn, config=config).to_client()

    backend = {"client_resources": {"num_cpus": cpus_per_client, "num_gpus": 0.0},
               "init_args": {"num_cpus": num_cpus, "include_dashboard": False, "ignore_reinit_error": True,
                             "log_to_driver": False, "configure_logging": False}}
    t0 = time.perf_counter()
    last_error = None
    for _ in range(max(1, start_attempts)):
        made.clear()
        final.clear()
        try:
            with _quiet_flower():
                run_simulation(server_app=ServerApp(server_fn=server_fn), client_app=ClientApp(client_fn=client_fn),
                               num_supernodes=data.n_clients, backend_config=backend)
            last_error = None
            if made and len(made[-1].selected) == config.rounds:
                break
        except Exception as exc:  # Ray start-up timeouts surface as a bare Exception, wrapped by Flower
            last_error = exc
            if ray.is_initialized():
                ray.shutdown()
            if not _is_startup_timeout(exc):
                raise
    if last_error is not None:
        raise RuntimeError(f"Flower's simulation runtime could not start Ray: {last_error}") from last_error
    end = time.perf_counter()
    strategy = made[-1] if made else None
    if strategy is None or "parameters" not in final or len(strategy.selected) != config.rounds:
        done = 0 if strategy is None else len(strategy.selected)
        raise RuntimeError(f"Flower's simulation did not finish its {config.rounds} rounds (completed {done}).")
    first = timing["first_round_start"] or t0
    out = _result(strategy.selected, parameters_to_ndarrays(final["parameters"]), model, data, config, end - first)
    out["startup_seconds"] = first - t0
    return out
