"""FedAvg simulation: closed-form equivalences with centralized SGD, continual storage limits, DP-FedAvg."""
import numpy as np
import pytest
import torch
from torch import nn
from torch.nn.utils import parameters_to_vector

from workbench.federated.partition import Partition, dirichlet_partition, iid_partition
from workbench.federated.simulation import (ContinualSchedule, FedConfig, FederatedData, init_model as _init_model, aggregate,
                                            client_epsilon, run_fedavg, train_centralized)


def toy_data(n=240, n_clients=6, seed=0, alpha=None):
    g = torch.Generator().manual_seed(seed)
    X = torch.randn(n, 5, generator=g)
    y = (X[:, 0] - X[:, 1] > 0).long()
    part = (iid_partition(n, n_clients=n_clients, seed=seed) if alpha is None
            else dirichlet_partition(y.numpy(), n_clients=n_clients, alpha=alpha, seed=seed))
    train, test = part.split(0.25)
    return FederatedData(X, y, train=train, test=test, n_classes=2)


def model_fn():
    return nn.Sequential(nn.Linear(5, 8), nn.Tanh(), nn.Linear(8, 2))


def sgd_step(model, X, y, lr):
    loss = nn.functional.cross_entropy(model(X), y)
    grads = torch.autograd.grad(loss, list(model.parameters()))
    with torch.no_grad():
        for p, g in zip(model.parameters(), grads):
            p -= lr * g
    return model


def vec(model):
    return parameters_to_vector(model.parameters()).detach()


def test_one_client_one_full_batch_step_equals_centralized_sgd():
    data = toy_data(n_clients=1)
    cfg = FedConfig(rounds=1, clients_per_round=1, batch_size=10_000, client_lr=0.3, seed=4)
    fed = run_fedavg(data, model_fn=model_fn, config=cfg, progress=False)
    X, y = data.pooled_train()
    central = sgd_step(_init_model(model_fn, 4), X, y, 0.3)
    torch.testing.assert_close(vec(fed.model), vec(central), rtol=0, atol=1e-6)
    assert not torch.allclose(vec(central), vec(_init_model(model_fn, 4)))  # the step did move the weights


def test_all_clients_one_full_batch_step_is_centralized_sgd_on_pooled_data():
    # Sample-weighted FedAvg of one full-batch step per client = one full-batch step on the pooled data,
    # because sum_i n_i * grad(mean loss_i) / sum_i n_i = grad(mean pooled loss). Uneven sizes make the
    # weighting matter.
    data = toy_data(n=300, n_clients=5, alpha=0.3, seed=1)
    assert len(set(data.train.sizes.tolist())) > 1
    cfg = FedConfig(rounds=1, clients_per_round=5, batch_size=10_000, client_lr=0.5, seed=2)
    fed = run_fedavg(data, model_fn=model_fn, config=cfg, progress=False)
    X, y = data.pooled_train()
    central = sgd_step(_init_model(model_fn, 2), X, y, 0.5)
    torch.testing.assert_close(vec(fed.model), vec(central), rtol=0, atol=2e-6)


def test_server_learning_rate_scales_the_averaged_update():
    data = toy_data(n_clients=3)
    base = dict(rounds=1, clients_per_round=3, batch_size=10_000, client_lr=0.2, seed=0)
    w0 = vec(_init_model(model_fn, 0))
    full = vec(run_fedavg(data, model_fn=model_fn, config=FedConfig(**base), progress=False).model)
    half = vec(run_fedavg(data, model_fn=model_fn, config=FedConfig(**base, server_lr=0.5), progress=False).model)
    torch.testing.assert_close(half - w0, 0.5 * (full - w0), rtol=0, atol=1e-6)


def test_aggregate_weights_by_samples():
    deltas = torch.tensor([[1.0, 0.0], [0.0, 2.0], [3.0, 3.0]])
    out = aggregate(torch.ones(2), deltas, [1, 1, 2], server_lr=2.0)
    torch.testing.assert_close(out, torch.ones(2) + 2.0 * torch.tensor([7.0, 8.0]) / 4)


def test_dp_aggregate_clips_each_update_and_adds_noise_of_the_right_scale():
    deltas = torch.tensor([[3.0, 4.0], [0.3, 0.4], [0.0, 0.0]])
    noiseless = aggregate(torch.zeros(2), deltas, [100, 1, 1], dp_clip=1.0)
    # clipped: (0.6, 0.8), (0.3, 0.4), (0, 0); equal weights (sample counts must not leak)
    torch.testing.assert_close(noiseless, torch.tensor([0.3, 0.4]))
    g = torch.Generator().manual_seed(0)
    draws = torch.stack([aggregate(torch.zeros(2), deltas, [1, 1, 1], dp_clip=1.0, noise_multiplier=2.0, generator=g)
                         for _ in range(4000)])
    noise = draws - noiseless
    assert abs(float(noise.std()) / (2.0 * 1.0 / 3) - 1) < 0.05
    assert float(noise.mean().abs()) < 0.03


def test_dp_epsilon_matches_opacus_rdp_accountant():
    from opacus.accountants import RDPAccountant

    data = toy_data(n_clients=8)
    cfg = FedConfig(rounds=5, clients_per_round=2, dp_clip=1.0, dp_noise_multiplier=1.1, seed=0, batch_size=64)
    res = run_fedavg(data, model_fn=model_fn, config=cfg, progress=False)
    acc = RDPAccountant()
    acc.history = [(1.1, 2 / 8, 5)]
    assert res.epsilon == pytest.approx(acc.get_epsilon(delta=1e-5), rel=1e-9)
    assert res.final["epsilon"] == res.epsilon
    assert client_epsilon(noise_multiplier=1.1, sample_rate=0.25, rounds=5, delta=1e-5) == pytest.approx(res.epsilon)


def test_activity_epsilon_uses_a_valid_upper_bound_on_selection_probability():
    data = toy_data(n=300, n_clients=6, alpha=0.3, seed=1)
    cfg = FedConfig(rounds=4, clients_per_round=2, strategy="activity", dp_clip=1.0, dp_noise_multiplier=1.0, batch_size=64)
    res = run_fedavg(data, model_fn=model_fn, config=cfg, progress=False)
    uniform = run_fedavg(data, model_fn=model_fn, config=FedConfig(**{**cfg.__dict__, "strategy": "uniform"}), progress=False)
    assert res.epsilon >= uniform.epsilon  # heavy devices are picked more often than k/n
    assert any("upper bound" in n for n in res.notes)


def test_continual_schedule_respects_storage_and_keeps_newest():
    sizes = np.array([0, 1, 7, 50, 1000])
    s = ContinualSchedule(sizes, periods=4, storage_limit=20)
    prev = np.zeros_like(sizes)
    for p in range(4):
        start, stop = s.window(p)
        received = s.received(p)
        assert np.all(received >= prev) and np.all(received <= sizes)
        assert np.all(stop == received), "a device stores its newest samples"
        assert np.all(stop - start == np.minimum(received, 20)), "keep min(S, received): oldest deleted first"
        prev = received
    assert np.array_equal(s.received(3), sizes)
    assert s.window(3)[0][4] == 980  # of 1000 samples, only the newest 20 remain


def test_continual_run_never_trains_on_more_than_the_storage_limit():
    sizes = [40, 30, 20, 10, 5, 3]
    X = torch.randn(sum(sizes), 5)
    y = (X[:, 0] > 0).long()
    part = Partition.from_sizes(sizes)
    data = FederatedData(X, y, train=part, test=part, n_classes=2)
    cfg = FedConfig(rounds=8, clients_per_round=2, strategy="activity", periods=4, storage_limit=6, batch_size=4)
    res = run_fedavg(data, model_fn=model_fn, config=cfg, progress=False)
    sched = ContinualSchedule(np.array(sizes), periods=4, storage_limit=6)
    for row in res.history:
        stored = sched.stored(row["period"])
        assert row["n_selected_samples"] == stored[row["selected"]].sum() <= 2 * 6
    assert [r["period"] for r in res.history] == [0, 0, 1, 1, 2, 2, 3, 3]


def test_history_bytes_participation_and_determinism():
    data = toy_data(n_clients=6)
    cfg = FedConfig(rounds=4, clients_per_round=3, strategy="activity", batch_size=16, seed=9)
    a = run_fedavg(data, model_fn=model_fn, config=cfg, progress=False)
    b = run_fedavg(data, model_fn=model_fn, config=cfg, progress=False)
    assert [r["selected"] for r in a.history] == [r["selected"] for r in b.history]
    torch.testing.assert_close(vec(a.model), vec(b.model), rtol=0, atol=0)
    assert a.participation.sum() == 4 * 3
    per_round = 2 * 3 * a.n_parameters * 4
    assert [r["bytes_total"] for r in a.history] == [per_round * (i + 1) for i in range(4)]
    assert set(a.client_metrics.columns) >= {"client", "accuracy", "times_selected", "n_train"}
    c = run_fedavg(data, model_fn=model_fn, config=FedConfig(**{**cfg.__dict__, "seed": 10}), progress=False)
    assert [r["selected"] for r in a.history] != [r["selected"] for r in c.history]


def test_power_of_choice_pays_for_candidate_communication():
    data = toy_data(n_clients=6)
    cfg = FedConfig(rounds=1, clients_per_round=2, strategy="power_of_choice", strategy_params={"d": 4}, batch_size=16)
    res = run_fedavg(data, model_fn=model_fn, config=cfg, progress=False)
    P = res.n_parameters
    assert res.history[0]["bytes_down"] == (2 + 4) * P * 4 and res.history[0]["bytes_up"] == 2 * P * 4 + 4 * 4


def test_fedavg_learns_and_centralized_baseline_runs():
    data = toy_data(n=600, n_clients=10, alpha=0.5)
    res = run_fedavg(data, model_fn=model_fn, config=FedConfig(rounds=15, clients_per_round=5, client_lr=0.5, batch_size=16), progress=False)
    assert res.final["test_accuracy"] > 0.85
    model, hist = train_centralized(data, model_fn=model_fn, epochs=3, lr=0.5, batch_size=16, progress=False)
    assert hist[-1]["test_accuracy"] > 0.85 and hist[-1]["samples_seen"] == 3 * data.train.n_samples


def test_config_validation():
    with pytest.raises(ValueError, match=r"'strategy' parameter of FedConfig must be one of \('activity',"):
        FedConfig(strategy="best")
    with pytest.raises(ValueError, match=r"'server' parameter of FedConfig must be one of \('fedadagrad', 'fedadam'"):
        FedConfig(server="sgd")
    with pytest.raises(ValueError, match="'beta_1' parameter of FedAdamServer"):
        FedConfig(server="fedadam", server_params={"beta_1": 1.5})
    with pytest.raises(TypeError, match="'rounds' parameter of FedConfig must be an int >= 1. Got '3' instead"):
        FedConfig(rounds="3")
    cfg = FedConfig(rounds=np.int64(3), clients_per_round=np.int32(2), client_lr=np.float32(0.5))  # issue 12
    assert (cfg.rounds, cfg.clients_per_round, type(cfg.rounds)) == (3, 2, int)
    with pytest.raises(ValueError, match="needs 'dp_clip'"):
        FedConfig(dp_noise_multiplier=1.0)
    with pytest.raises(ValueError, match="'storage_limit'"):
        FedConfig(storage_limit=0)
    with pytest.raises(ValueError, match="'client_lr'"):
        FedConfig(client_lr=0)
