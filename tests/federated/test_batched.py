"""Batched local updates equal the per-device loop within float tolerance (uneven device sizes, partial last
minibatches, devices that run out of steps, several epochs, FedProx, the continual windows, the Shakespeare model)."""
import pytest
import torch
from torch import nn
from torch.nn.utils import parameters_to_vector

from workbench.federated.batched import BatchedSimulator
from workbench.federated.partition import dirichlet_partition
from workbench.federated.simulation import FedConfig, FederatedData, run_fedavg


def uneven_data():
    g = torch.Generator().manual_seed(0)
    X = torch.randn(400, 6, generator=g)
    y = (X[:, 0] - X[:, 2] > 0).long() + (X[:, 1] > 1).long()
    train, test = dirichlet_partition(y.numpy(), n_clients=8, alpha=0.3, seed=2).split(0.2)
    assert train.sizes.min() < 8 < train.sizes.max()  # some devices hold less than one minibatch
    return FederatedData(X, y, train=train, test=test, n_classes=3)


def model_fn():
    return nn.Sequential(nn.Linear(6, 16), nn.Tanh(), nn.Linear(16, 3))


def both(data, cfg, mf=model_fn):
    a = run_fedavg(data, model_fn=mf, config=cfg, progress=False)
    b = run_fedavg(data, model_fn=mf, config=cfg, progress=False, simulator=BatchedSimulator)
    return a, b


@pytest.mark.parametrize("changes", [
    {},                                                     # uncapped local epochs: devices take different step counts
    {"max_local_steps": 3, "local_epochs": 2},
    {"local_epochs": 3, "server": "fedprox", "server_params": {"proximal_mu": 0.5}},
    {"periods": 3, "storage_limit": 12, "strategy": "activity", "server": "fedadam"},
])
def test_batched_equals_per_device_loop(changes):
    data = uneven_data()
    cfg = FedConfig(**{"rounds": 4, "clients_per_round": 5, "batch_size": 8, "client_lr": 0.3, "seed": 1, **changes})
    a, b = both(data, cfg)
    assert [r["selected"] for r in a.history] == [r["selected"] for r in b.history]
    va, vb = parameters_to_vector(a.model.parameters()).detach(), parameters_to_vector(b.model.parameters()).detach()
    torch.testing.assert_close(vb, va, rtol=0, atol=2e-5)
    assert [round(r["train_loss"], 4) for r in a.history] == [round(r["train_loss"], 4) for r in b.history]


def test_batched_shakespeare_model():
    from workbench.federated.tasks import make_model_fn, shakespeare_task

    data = shakespeare_task(size="tiny", context=8, stride=32)
    cfg = FedConfig(rounds=3, clients_per_round=6, batch_size=16, max_local_steps=5, client_lr=0.5, strategy="activity")
    a, b = both(data, cfg, make_model_fn(data, hidden=32, dim=8))
    torch.testing.assert_close(parameters_to_vector(b.model.parameters()).detach(),
                               parameters_to_vector(a.model.parameters()).detach(), rtol=0, atol=2e-5)
    assert a.final["test_perplexity"] == pytest.approx(b.final["test_perplexity"], rel=1e-4)


def test_other_models_take_the_vmap_path_and_agree():
    from workbench.federated.batched import supports_stacked

    def norm_model():
        return nn.Sequential(nn.Linear(6, 8), nn.LayerNorm(8), nn.Tanh(), nn.Linear(8, 3))

    assert not supports_stacked(norm_model()) and supports_stacked(model_fn())
    data = uneven_data()
    cfg = FedConfig(rounds=2, clients_per_round=3, batch_size=8, max_local_steps=4, client_lr=0.3, seed=5)
    a, b = both(data, cfg, norm_model)
    torch.testing.assert_close(parameters_to_vector(b.model.parameters()).detach(),
                               parameters_to_vector(a.model.parameters()).detach(), rtol=0, atol=2e-5)
