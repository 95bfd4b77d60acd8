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


def test_fused_path_is_taken_for_the_study_models():
    """CharMLP and the features MLP take the hand-written backward (no autograd), not the vmap fallback."""
    from workbench.federated.batched import FusedChain, supports_stacked
    from workbench.federated.tasks import CharMLP
    from workbench.models import MLP

    assert supports_stacked(CharMLP(vocab_size=5, context=3)) and supports_stacked(MLP(in_features=4, out_features=2))
    assert not supports_stacked(MLP(in_features=4, out_features=2, dropout=0.5))
    frozen = model_fn()
    frozen[0].bias.requires_grad_(False)
    assert not supports_stacked(frozen)  # the fused path trains every parameter
    data = uneven_data()
    sim = BatchedSimulator(data, model_fn=model_fn, config=FedConfig(rounds=1, clients_per_round=4, batch_size=8))
    sim.run_round(0)
    assert isinstance(sim._chain, FusedChain) and sim._chain.flat.shape == (4, sim.n_params)
    with pytest.raises(ValueError, match="'model' parameter of FusedChain"):
        FusedChain(nn.Sequential(nn.Linear(2, 2), nn.LayerNorm(2)), k=2)


@pytest.mark.parametrize("changes", [
    {"dp_clip": 0.5, "dp_noise_multiplier": 0.3, "strategy": "activity"},   # DP-FedAvg on the fused deltas
    {"max_local_steps": 6, "server": "fedprox", "server_params": {"proximal_mu": 0.1}, "strategy": "power_of_choice"},
])
def test_fused_relu_mlp_equals_per_device_loop(changes):
    from workbench.models import MLP

    def relu_mlp():  # Flatten, Linear, ReLU (in place after the Linear), Linear, ReLU, Linear
        return MLP(in_features=6, out_features=3, hidden=(12, 10))

    data = uneven_data()
    cfg = FedConfig(**{"rounds": 3, "clients_per_round": 4, "batch_size": 8, "client_lr": 0.3, "seed": 3, **changes})
    a, b = both(data, cfg, relu_mlp)
    assert [r["selected"] for r in a.history] == [r["selected"] for r in b.history]
    torch.testing.assert_close(parameters_to_vector(b.model.parameters()).detach(),
                               parameters_to_vector(a.model.parameters()).detach(), rtol=0, atol=2e-5)


def test_activation_chains_out_of_place():
    """ReLU after Tanh (the activation's input is another activation's output, so it may not be overwritten)."""
    def chain():
        return nn.Sequential(nn.Linear(6, 8), nn.Tanh(), nn.ReLU(), nn.Linear(8, 3))

    data = uneven_data()
    cfg = FedConfig(rounds=2, clients_per_round=5, batch_size=8, max_local_steps=5, client_lr=0.3, seed=4)
    a, b = both(data, cfg, chain)
    torch.testing.assert_close(parameters_to_vector(b.model.parameters()).detach(),
                               parameters_to_vector(a.model.parameters()).detach(), rtol=0, atol=2e-5)


@pytest.mark.parametrize("n, epochs, batch_size, max_steps", [(1, 1, 4, None), (7, 3, 3, None), (10, 2, 4, 4),
                                                              (9, 2, 3, 3), (5, 2, 8, None), (6, 1, 2, 10)])
def test_padded_schedule_is_minibatch_schedule(n, epochs, batch_size, max_steps):
    from workbench.federated.batched import minibatch_schedule, padded_schedule

    plain = minibatch_schedule(n, epochs=epochs, batch_size=batch_size, max_steps=max_steps,
                               generator=torch.Generator().manual_seed(n))
    padded = padded_schedule(n, epochs=epochs, batch_size=batch_size, max_steps=max_steps,
                             generator=torch.Generator().manual_seed(n))
    assert len(padded) == len(plain)
    assert [row[row >= 0].tolist() for row in padded] == [b.tolist() for b in plain]


def test_fused_chain_layout_round_trip_and_multi_step_train():
    """The chain's own layout (Linear weights stored [k, in, out], one buffer per parameter) loads from and lays
    out to parameters_to_vector's order exactly; a whole round's ``train`` (FedProx, a device idle for a step)
    equals per-device autograd SGD."""
    from workbench.federated.batched import FusedChain
    from workbench.federated.tasks import CharMLP

    torch.manual_seed(0)
    model = CharMLP(vocab_size=7, context=3, dim=2, hidden=5)
    vec = parameters_to_vector(model.parameters()).detach()
    chain = FusedChain(model, k=3)
    chain.load(vec)
    assert torch.equal(chain.flat, vec.expand(3, -1))
    steps, B, lr, mu = 4, 5, 0.3, 0.2
    x, t = torch.randint(0, 7, (steps, 3, B, 3)), torch.randint(0, 7, (steps, 3, B))
    weight = torch.full((steps, 3, B), 1 / B)
    weight[2, 1] = 0  # device 1 has run out of steps at step 2: no update, no proximal term
    totals = chain.train(x, t, weight, lr=lr, proximal_mu=mu, anchor=vec, active=weight.sum(2) > 0)
    for j in range(3):
        ref = CharMLP(vocab_size=7, context=3, dim=2, hidden=5)
        torch.nn.utils.vector_to_parameters(vec.clone(), ref.parameters())
        total = 0.0
        for s in range(steps):
            if weight[s, j].sum() == 0:
                continue
            loss = nn.functional.cross_entropy(ref(x[s, j]), t[s, j])
            total += float(loss.detach())
            grads = torch.autograd.grad(loss, list(ref.parameters()))
            with torch.no_grad():
                for p, g, a in zip(ref.parameters(), grads, torch.split(vec, [p.numel() for p in ref.parameters()])):
                    p -= lr * (g + mu * (p - a.view_as(p)))
        torch.testing.assert_close(chain.flat[j], parameters_to_vector(ref.parameters()).detach(), rtol=0, atol=2e-6)
        assert float(totals[j]) == pytest.approx(total, rel=1e-5)
