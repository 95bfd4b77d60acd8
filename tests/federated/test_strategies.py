"""Server strategies: FedProx, FedAdam, FedYogi and FedAdagrad of the simulator against Flower's own strategies on
the same clients and seeds, and the federated round as overridable steps."""
import numpy as np
import pytest
import torch
from torch import nn
from torch.nn.utils import parameters_to_vector

from workbench.federated.partition import dirichlet_partition
from workbench.federated.simulation import (ClientUpdates, FedAvgSimulator, FedConfig, FederatedData, init_model,
                                            run_fedavg)
from workbench.federated.strategies import SERVER_STRATEGIES, combine_updates, make_server_strategy


def small_data(n_clients=5):
    g = torch.Generator().manual_seed(0)
    X = torch.randn(250, 5, generator=g)
    y = (X[:, 0] + 0.5 * X[:, 1] > 0).long()
    train, test = dirichlet_partition(y.numpy(), n_clients=n_clients, alpha=0.5, seed=1, min_partition_size=10).split(0.2)
    return FederatedData(X, y, train=train, test=test, n_classes=2)


def model_fn():
    return nn.Sequential(nn.Linear(5, 8), nn.ReLU(), nn.Linear(8, 2))


def vec(model):
    return parameters_to_vector(model.parameters()).detach()


FLOWER = {  # our name and parameters -> Flower's class and the same parameters
    "fedprox": ({"proximal_mu": 0.5}, "FedProx", {"proximal_mu": 0.5}),
    "fedadam": ({"eta": 0.05}, "FedAdam", {"eta": 0.05}),
    "fedyogi": ({"eta": 0.05, "tau": 1e-2}, "FedYogi", {"eta": 0.05, "tau": 1e-2}),
    "fedadagrad": ({}, "FedAdagrad", {}),
}


@pytest.mark.parametrize("server", sorted(FLOWER))
def test_server_strategy_matches_flowers_own(server):
    """Every client trains every round (so Flower's random client sampling picks the same set); Flower's strategy
    aggregates with its own code, our simulator with ours; the local updates are the same seeded SGD."""
    flwr = pytest.importorskip("flwr")
    from flwr.common import ndarrays_to_parameters

    from workbench.federated.flower import model_to_ndarrays, run_flower_inprocess

    ours, flower_name, flower_params = FLOWER[server]
    data = small_data()
    cfg = FedConfig(rounds=4, clients_per_round=data.n_clients, server=server, server_params=ours, batch_size=16,
                    client_lr=0.2, max_local_steps=4, seed=3)
    sim = run_fedavg(data, model_fn=model_fn, config=cfg, progress=False)
    flower_cls = getattr(flwr.server.strategy, flower_name)
    strategy = flower_cls(fraction_fit=1.0, fraction_evaluate=0.0, min_fit_clients=data.n_clients,
                          min_available_clients=data.n_clients, on_fit_config_fn=lambda r: {"round": r - 1},
                          initial_parameters=ndarrays_to_parameters(model_to_ndarrays(init_model(model_fn, cfg.seed))),
                          **flower_params)
    flower = run_flower_inprocess(data, model_fn=model_fn, config=cfg, strategy=strategy)
    start = vec(init_model(model_fn, cfg.seed))
    assert (vec(sim.model) - start).abs().max() > 1e-3  # training moved the weights
    torch.testing.assert_close(flower["parameters"], vec(sim.model), rtol=0, atol=2e-5)


def test_server_strategies_differ_and_fedprox_pulls_towards_the_global_model():
    data = small_data()
    base = dict(rounds=3, clients_per_round=3, batch_size=8, client_lr=0.3, max_local_steps=6, seed=0)
    finals = {s: vec(run_fedavg(data, model_fn=model_fn, config=FedConfig(server=s, **base), progress=False).model)
              for s in ("fedavg", "fedadam", "fedyogi")}
    assert not torch.allclose(finals["fedavg"], finals["fedadam"]) and not torch.allclose(finals["fedadam"], finals["fedyogi"])
    # proximal_mu = 0 is exactly FedAvg; a large mu keeps the local models (and so the average) near the start
    prox0 = vec(run_fedavg(data, model_fn=model_fn, config=FedConfig(server="fedprox", server_params={"proximal_mu": 0.0}, **base), progress=False).model)
    torch.testing.assert_close(prox0, finals["fedavg"], rtol=0, atol=0)
    start = vec(init_model(model_fn, 0))
    prox = vec(run_fedavg(data, model_fn=model_fn, config=FedConfig(server="fedprox", server_params={"proximal_mu": 5.0}, **base), progress=False).model)
    assert (prox - start).norm() < 0.8 * (finals["fedavg"] - start).norm()


def test_flower_adapter_runs_server_strategies_like_the_simulator():
    pytest.importorskip("flwr")
    from workbench.federated.flower import run_flower_inprocess

    data = small_data()
    for server, params in [("fedadam", {"eta": 0.05}), ("fedprox", {"proximal_mu": 0.3})]:
        cfg = FedConfig(rounds=3, clients_per_round=2, strategy="activity", server=server, server_params=params,
                        batch_size=16, client_lr=0.2, seed=2)
        sim = run_fedavg(data, model_fn=model_fn, config=cfg, progress=False)
        flower = run_flower_inprocess(data, model_fn=model_fn, config=cfg)
        assert flower["selected"] == [r["selected"] for r in sim.history]
        torch.testing.assert_close(flower["parameters"], vec(sim.model), rtol=0, atol=1e-6)


def test_dp_fedavg_through_the_flower_adapter_matches_the_simulator():
    pytest.importorskip("flwr")
    from workbench.federated.flower import run_flower_inprocess

    data = small_data()
    cfg = FedConfig(rounds=3, clients_per_round=2, strategy="uniform", dp_clip=0.5, dp_noise_multiplier=1.0,
                    batch_size=16, client_lr=0.2, seed=4)
    sim = run_fedavg(data, model_fn=model_fn, config=cfg, progress=False)
    flower = run_flower_inprocess(data, model_fn=model_fn, config=cfg)
    assert flower["selected"] == [r["selected"] for r in sim.history]
    torch.testing.assert_close(flower["parameters"], vec(sim.model), rtol=0, atol=1e-6)


def test_round_steps_can_be_overridden():
    """A subclass replaces one step (here: the aggregation drops the update of the largest device)."""
    calls = []

    class DropLargest(FedAvgSimulator):
        def aggregate(self, plan, updates):
            keep = updates.weights < updates.weights.max()
            calls.append((plan.round_idx, int(keep.sum())))
            return super().aggregate(plan, ClientUpdates(updates.clients[keep], updates.deltas[keep],
                                                         updates.weights[keep], updates.losses))

    data = small_data()
    cfg = FedConfig(rounds=2, clients_per_round=3, batch_size=16, seed=1)
    plain = run_fedavg(data, model_fn=model_fn, config=cfg, progress=False)
    custom = run_fedavg(data, model_fn=model_fn, config=cfg, progress=False, simulator=DropLargest)
    assert calls == [(0, 2), (1, 2)]
    assert [r["selected"] for r in custom.history] == [r["selected"] for r in plain.history]
    assert not torch.allclose(vec(custom.model), vec(plain.model))


def test_combine_updates_and_registry_errors():
    d = torch.tensor([[3.0, 4.0], [1.0, 0.0]])
    torch.testing.assert_close(combine_updates(d, [1, 3]), torch.tensor([1.5, 1.0]))
    torch.testing.assert_close(combine_updates(d, [1, 3], dp_clip=1.0), torch.tensor([0.8, 0.4]))
    with pytest.raises(ValueError, match="must be one of"):
        make_server_strategy("adam")
    with pytest.raises(ValueError, match="'eta' parameter of FedYogiServer must be a float > 0"):
        make_server_strategy("fedyogi", eta=-1)
    with pytest.raises(ValueError, match="Bad parameters"):
        make_server_strategy("fedavg", momentum=0.9)
    assert set(SERVER_STRATEGIES) == {"fedavg", "fedprox", "fedadam", "fedyogi", "fedadagrad"}


def test_a_server_instance_in_the_config_is_copied_per_run():
    from workbench.federated.strategies import FedAdamServer

    data = small_data()
    cfg = FedConfig(rounds=2, clients_per_round=2, server=FedAdamServer(eta=0.05), batch_size=16, seed=0)
    a = run_fedavg(data, model_fn=model_fn, config=cfg, progress=False)
    b = run_fedavg(data, model_fn=model_fn, config=cfg, progress=False)
    torch.testing.assert_close(vec(a.model), vec(b.model), rtol=0, atol=0)  # the second run does not inherit Adam's moments
    assert cfg.server.m is None
