"""Flower adapter: the same strategies inside Flower select the same clients and reach the same weights as the
in-process simulator, both with Flower's server loop in this process and with its Ray simulation engine."""
import functools

import flwr  # noqa: F401  (the test environment installs flwr[simulation]; see pyproject's test extra)
import numpy as np
import pytest
import torch
from torch import nn
from torch.nn.utils import parameters_to_vector

from workbench.federated.flower import SelectionFedAvg, run_flower_inprocess, run_flower_simulation
from workbench.federated.partition import dirichlet_partition
from workbench.federated.simulation import FedConfig, FederatedData, run_fedavg
from workbench.models import MLP


def small_data(n_clients=6):
    g = torch.Generator().manual_seed(0)
    X = torch.randn(300, 5, generator=g)
    y = (X[:, 0] + 0.5 * X[:, 1] > 0).long()
    train, test = dirichlet_partition(y.numpy(), n_clients=n_clients, alpha=0.5, seed=1).split(0.2)
    return FederatedData(X, y, train=train, test=test, n_classes=2)


def model_fn():
    return nn.Sequential(nn.Linear(5, 8), nn.ReLU(), nn.Linear(8, 2))


def simulate(data, cfg):
    res = run_fedavg(data, model_fn=model_fn, config=cfg, progress=False)
    return [r["selected"] for r in res.history], parameters_to_vector(res.model.parameters()).detach()


@pytest.mark.parametrize("strategy,params", [
    ("uniform", {}), ("activity", {}), ("tempered", {"t": 0.5}), ("power_of_choice", {"d": 4}), ("round_robin", {}),
])
def test_flower_server_loop_matches_simulator(strategy, params):
    data = small_data()
    cfg = FedConfig(rounds=3, clients_per_round=3, strategy=strategy, strategy_params=params, batch_size=16,
                    client_lr=0.2, server_lr=0.7, seed=3)
    selected, weights = simulate(data, cfg)
    flower = run_flower_inprocess(data, model_fn=model_fn, config=cfg)
    assert flower["selected"] == selected
    torch.testing.assert_close(flower["parameters"], weights, rtol=0, atol=1e-6)
    assert 0 < flower["seconds"] < flower["total_seconds"]  # fit alone, and the whole call (as run_fedavg is timed)


def test_flower_continual_windows_match_simulator():
    data = small_data()
    cfg = FedConfig(rounds=4, clients_per_round=2, strategy="activity", periods=2, storage_limit=15, batch_size=8, seed=1)
    selected, weights = simulate(data, cfg)
    flower = run_flower_inprocess(data, model_fn=model_fn, config=cfg)
    assert flower["selected"] == selected
    torch.testing.assert_close(flower["parameters"], weights, rtol=0, atol=1e-6)


def test_strategy_needs_sizes_and_known_names():
    with pytest.raises(ValueError, match="needs 'sizes'"):
        SelectionFedAvg("uniform", clients_per_round=2)
    with pytest.raises(ValueError, match="must be one of"):
        SelectionFedAvg("nearest", sizes=np.ones(3), clients_per_round=2)


@pytest.mark.slow
def test_flower_ray_simulation_engine_selects_the_same_clients():
    """Flower's simulation engine (Ray actors), 5 clients, 2 rounds, loss-based power-of-choice."""
    # Ray workers import the model builder by reference, so it must live in an installed package.
    ray_model_fn = functools.partial(MLP, in_features=5, out_features=2, hidden=(8,))
    data = small_data(n_clients=5)
    cfg = FedConfig(rounds=2, clients_per_round=2, strategy="power_of_choice", strategy_params={"d": 3},
                    batch_size=16, client_lr=0.2, seed=5)
    res = run_fedavg(data, model_fn=ray_model_fn, config=cfg, progress=False)
    selected, weights = [r["selected"] for r in res.history], parameters_to_vector(res.model.parameters()).detach()
    flower = run_flower_simulation(data, model_fn=ray_model_fn, config=cfg, num_cpus=2, start_attempts=3)
    assert flower["selected"] == selected
    torch.testing.assert_close(flower["parameters"], weights, rtol=0, atol=1e-6)
