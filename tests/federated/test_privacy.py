"""Per-client accounting of DP-FedAvg: equal rates give Opacus's epsilon; heavier sampling costs more privacy; the
inclusion bounds hold against simulated selections."""
import numpy as np
import pytest

from workbench.federated.privacy import client_epsilon, inclusion_probabilities, per_client_epsilon, worst_case_epsilon
from workbench.federated.selection import make_strategy


def test_equal_rates_give_opacus_epsilon():
    from opacus.accountants import RDPAccountant

    for sigma, q, rounds in [(1.0, 0.05, 100), (2.0, 1.0, 10)]:
        acc = RDPAccountant()
        for _ in range(rounds):
            acc.step(noise_multiplier=sigma, sample_rate=q)  # Opacus merges the repeated steps into one entry
        expected = acc.get_epsilon(delta=1e-5)
        eps = per_client_epsilon(noise_multiplier=sigma, sample_rates=np.full(4, q), rounds=rounds, delta=1e-5)
        np.testing.assert_allclose(eps, expected, rtol=1e-9)
        assert client_epsilon(noise_multiplier=sigma, sample_rate=q, rounds=rounds, delta=1e-5) == pytest.approx(expected, rel=1e-9)


def test_rates_per_period_compose_like_opacus_history():
    from opacus.accountants import RDPAccountant

    acc = RDPAccountant()
    acc.history = [(1.1, 0.02, 20), (1.1, 0.1, 30)]
    eps = per_client_epsilon(noise_multiplier=1.1, sample_rates=[[0.02, 0.0], [0.1, 0.0]], rounds=[20, 30], delta=1e-6)
    assert eps[0] == pytest.approx(acc.get_epsilon(delta=1e-6), rel=1e-9) and eps[1] == 0.0


def test_heavier_sampling_costs_more_and_activity_charges_heavy_devices():
    sizes = np.array([1000, 300, 100, 30, 10, 3, 1, 0, 50, 5] * 5)
    qu = inclusion_probabilities("uniform", sizes, k=5)
    qa = inclusion_probabilities("activity", sizes, k=5)
    eu = per_client_epsilon(noise_multiplier=1.0, sample_rates=qu, rounds=100, delta=1e-5)
    ea = per_client_epsilon(noise_multiplier=1.0, sample_rates=qa, rounds=100, delta=1e-5)
    held = sizes > 0
    assert np.allclose(eu[held], eu[held][0]) and eu[sizes == 0].max() == 0  # uniform: everybody pays the same
    order = np.argsort(sizes[held])
    assert np.all(np.diff(ea[held][order]) >= -1e-12)  # activity: epsilon grows with activity
    assert ea.max() > 2 * eu.max() and ea[sizes == 1].max() < eu[held].min()


@pytest.mark.parametrize("name,params", [("activity", {}), ("tempered", {"t": 0.5}), ("uniform", {})])
def test_inclusion_bounds_hold_against_simulated_selection(name, params):
    sizes = np.array([400, 200, 100, 50, 20, 10, 5, 1, 0, 3])
    strategy = make_strategy(name, **params)
    rng = np.random.default_rng(0)
    n = 4000
    counts = np.zeros(len(sizes))
    for _ in range(n):
        counts[strategy.select(rng, sizes=sizes, k=3)] += 1
    bound = inclusion_probabilities(strategy, sizes, k=3)
    assert np.all(counts / n <= bound + 3 * np.sqrt(bound * (1 - bound) / n) + 1e-9)
    if name == "uniform":
        np.testing.assert_allclose(counts[sizes > 0] / n, 3 / 9, atol=0.03)


def test_worst_case_and_errors():
    sizes = [np.array([5, 5, 5, 5])]
    eps, note = worst_case_epsilon(make_strategy("uniform"), sizes, k=2, rounds=10, noise_multiplier=1.0, delta=1e-5)
    assert eps == pytest.approx(client_epsilon(noise_multiplier=1.0, sample_rate=0.5, rounds=10, delta=1e-5)) and "q=0.5" in note
    assert worst_case_epsilon(make_strategy("power_of_choice"), sizes, k=2, rounds=10, noise_multiplier=1.0, delta=1e-5)[0] is None
    with pytest.raises(ValueError, match="deterministic"):
        inclusion_probabilities("round_robin", [1, 2], k=1)
    with pytest.raises(ValueError, match="'noise_multiplier' parameter of per_client_epsilon must be a float > 0"):
        per_client_epsilon(noise_multiplier=0, sample_rates=[0.1], rounds=1, delta=1e-5)
    with pytest.raises(ValueError, match="'sample_rates' parameter of per_client_epsilon must hold probabilities"):
        per_client_epsilon(noise_multiplier=1, sample_rates=[1.5], rounds=1, delta=1e-5)


def test_interpolated_epsilons_are_within_one_percent_of_exact():
    rates = np.concatenate([[0.0], np.geomspace(0.002, 0.6, 40)])
    rng = np.random.default_rng(0)
    rates = np.concatenate([rates, rng.uniform(0.002, 0.6, size=10)])
    fast = per_client_epsilon(noise_multiplier=0.8, sample_rates=rates, rounds=40, delta=1e-5, max_exact=16)
    check = np.r_[0, 7, 23, 40, 41, 45]  # a few, exactly (each costs ~0.4 s)
    exact = per_client_epsilon(noise_multiplier=0.8, sample_rates=rates[check], rounds=40, delta=1e-5, max_exact=None)
    assert fast[0] == 0.0
    np.testing.assert_allclose(fast[check], exact, rtol=0.01)
