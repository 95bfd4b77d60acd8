"""Selection strategies: the empirical distribution of selections matches each strategy's definition."""
import itertools

import numpy as np
import pytest
from scipy import stats

from workbench.federated.selection import (STRATEGIES, ActivitySelection, PowerOfChoiceSelection, first_draw_probabilities,
                                           make_strategy, select_clients)

SIZES = np.array([1, 4, 0, 10, 25, 3, 7, 0, 50])  # two empty devices
DRAWS = 20_000


def frequencies(strategy, k, *, sizes=SIZES, draws=DRAWS, seed=0, **kw):
    rng = np.random.default_rng(seed)
    counts = np.zeros(len(sizes))
    for _ in range(draws):
        sel = strategy.select(rng, sizes=sizes, k=k, **kw)
        assert len(set(sel.tolist())) == k, "no device twice in a round"
        counts[sel] += 1
    return counts


def chi_square_p(counts, probs):
    mask = probs > 0
    assert counts[~mask].sum() == 0, "a device with probability 0 was selected"
    return stats.chisquare(counts[mask], probs[mask] / probs[mask].sum() * counts.sum()).pvalue


def exact_inclusion(weights, k):
    """P(device in the selected set) under successive draws, by enumerating every ordered selection."""
    w = np.asarray(weights, dtype=float)
    idx = np.flatnonzero(w)
    out = np.zeros(len(w))
    for seq in itertools.permutations(idx, k):
        p, left = 1.0, w.sum()
        for i in seq:
            p *= w[i] / left
            left -= w[i]
        out[list(seq)] += p
    return out


@pytest.mark.parametrize("name,params,expected", [
    ("uniform", {}, (SIZES > 0).astype(float)),
    ("activity", {}, SIZES.astype(float)),
    ("tempered", {"t": 0.5}, np.sqrt(SIZES)),
    ("tempered", {"t": 0.0}, (SIZES > 0).astype(float)),
    ("tempered", {"t": 0.25}, SIZES ** 0.25),
])
def test_single_draw_matches_the_definition(name, params, expected):
    strategy = make_strategy(name, **params)
    counts = frequencies(strategy, 1)
    assert chi_square_p(counts, expected) > 1e-3
    np.testing.assert_allclose(first_draw_probabilities(strategy, SIZES), expected / expected.sum())


@pytest.mark.parametrize("name,params,weights", [
    ("activity", {}, SIZES.astype(float)),
    ("tempered", {"t": 0.5}, np.sqrt(SIZES)),
    ("uniform", {}, (SIZES > 0).astype(float)),
])
def test_inclusion_probabilities_for_k_3_match_exact_successive_sampling(name, params, weights):
    k = 3
    exact = exact_inclusion(weights, k)
    if name == "uniform":
        np.testing.assert_allclose(exact[SIZES > 0], k / np.count_nonzero(SIZES))
    freq = frequencies(make_strategy(name, **params), k) / DRAWS
    se = np.sqrt(exact * (1 - exact) / DRAWS)
    assert np.all(np.abs(freq - exact) <= 4.5 * se + 1e-12), (freq, exact)


def test_tempered_weights_equal_the_power_for_small_and_large_sizes():
    sizes = np.array([0, 1, 2, 4095, 4096, 10**6, 3 * 10**9])
    for t in (0.25, 0.5, 0.7, 1.0):
        np.testing.assert_allclose(make_strategy("tempered", t=t).weights(sizes), sizes.astype(float) ** t, rtol=1e-12)


def test_uniform_with_mostly_empty_devices_is_still_uniform():
    sizes = np.zeros(400, dtype=int)
    sizes[[3, 50, 120, 399]] = [1, 5, 2, 9]  # 1% of devices hold data: the rejection draws give up, fallback path
    counts = frequencies(make_strategy("uniform"), 2, sizes=sizes, draws=6000)
    assert set(np.flatnonzero(counts)) == {3, 50, 120, 399}
    assert chi_square_p(counts, (sizes > 0).astype(float)) > 1e-3


def test_concentrated_weights_use_the_fallback_and_stay_exact():
    sizes = np.array([10**7, 1, 1, 1, 1, 1])  # almost every with-replacement draw repeats device 0
    freq = frequencies(ActivitySelection(), 3, sizes=sizes, draws=6000) / 6000
    exact = exact_inclusion(sizes, 3)
    se = np.sqrt(np.clip(exact * (1 - exact), 0, None) / 6000)
    assert np.all(np.abs(freq - exact) <= 4.5 * se + 1e-9), (freq, exact)


def test_power_of_choice_keeps_the_highest_loss_candidates():
    losses = np.array([0.1, 5.0, 9.0, 0.3, 2.0, 7.0, 0.2, 8.0, 1.0])
    strategy = PowerOfChoiceSelection(d=7)  # all 7 devices holding data are candidates
    sel = strategy.select(np.random.default_rng(0), sizes=SIZES, k=3, loss_fn=lambda c: losses[c])
    assert sel.tolist() == [5, 1, 4]  # highest losses among devices with data (2 and 7 are empty)


def test_power_of_choice_candidates_are_drawn_by_activity():
    # With d = k = 1 the only candidate is kept: the selection is one activity draw.
    counts = frequencies(PowerOfChoiceSelection(d=1), 1, loss_fn=lambda c: np.zeros(len(c)))
    assert chi_square_p(counts, SIZES.astype(float)) > 1e-3


def test_power_of_choice_prefers_high_loss_devices_statistically():
    losses = np.arange(len(SIZES), dtype=float)  # device 8 has the highest loss and most data
    counts = frequencies(PowerOfChoiceSelection(d=4), 2, loss_fn=lambda c: losses[c], draws=3000)
    plain = frequencies(ActivitySelection(), 2, draws=3000)
    assert counts[8] > plain[8] and counts[0] < plain[0]


def test_round_robin_cycles_through_devices_with_data():
    strategy = make_strategy("round_robin")
    rng = np.random.default_rng(0)
    rounds = [strategy.select(rng, sizes=SIZES, k=3, round_idx=r).tolist() for r in range(7)]
    seen = np.concatenate(rounds)
    available = np.flatnonzero(SIZES)
    assert set(seen.tolist()) == set(available.tolist())
    counts = np.bincount(seen, minlength=len(SIZES))[available]
    assert counts.max() - counts.min() <= 1  # 21 slots over 7 devices: exactly 3 each
    assert rounds[0] == [0, 1, 3] and rounds[2] == [8, 0, 1]


def test_same_generator_state_gives_same_devices():
    for name in ("uniform", "activity", "tempered"):
        a = select_clients(name, np.random.default_rng(5), sizes=SIZES, k=4)
        b = select_clients(name, np.random.default_rng(5), sizes=SIZES, k=4)
        assert a.tolist() == b.tolist()


def test_large_population_is_fast_and_valid():
    sizes = np.random.default_rng(0).zipf(1.8, size=200_000).clip(max=5000)
    sizes[::3] = 0
    for name in ("uniform", "activity", "tempered", "round_robin"):
        sel = select_clients(name, np.random.default_rng(1), sizes=sizes, k=100, round_idx=3)
        assert len(np.unique(sel)) == 100 and np.all(sizes[sel] > 0)


@pytest.mark.parametrize("name", sorted(STRATEGIES))
def test_errors_are_clear(name):
    strategy = make_strategy(name)
    rng = np.random.default_rng(0)
    loss_fn = lambda c: np.zeros(len(c))  # noqa: E731
    with pytest.raises(ValueError, match="must be <= the number of devices holding data \\(7 of 9\\)"):
        strategy.select(rng, sizes=SIZES, k=8, loss_fn=loss_fn)
    with pytest.raises(ValueError, match="every device is empty"):
        strategy.select(rng, sizes=np.zeros(5, dtype=int), k=1, loss_fn=loss_fn)
    with pytest.raises(ValueError, match="'k' parameter"):
        strategy.select(rng, sizes=SIZES, k=0, loss_fn=loss_fn)
    with pytest.raises(ValueError, match="counts >= 0"):
        strategy.select(rng, sizes=np.array([3, -1]), k=1, loss_fn=loss_fn)
    with pytest.raises(TypeError, match="The .rng. parameter of .* must be an instance of Generator"):
        strategy.select(42, sizes=SIZES, k=1, loss_fn=loss_fn)


def test_registry_errors():
    with pytest.raises(ValueError, match=r"must be one of \['activity', 'power_of_choice', 'round_robin', 'tempered', 'uniform'\]"):
        make_strategy("greedy")
    with pytest.raises(ValueError, match="Bad parameters"):
        make_strategy("uniform", t=2)
    with pytest.raises(ValueError, match="needs 'loss_fn'"):
        make_strategy("power_of_choice").select(np.random.default_rng(0), sizes=SIZES, k=2)
    with pytest.raises(ValueError, match="must be >= k=3"):
        PowerOfChoiceSelection(d=2).select(np.random.default_rng(0), sizes=SIZES, k=3, loss_fn=lambda c: np.zeros(len(c)))


@pytest.mark.parametrize("name", ["tempered", "activity", "power_of_choice"])
def test_kept_work_buffers_never_leak_between_calls(name):
    """A strategy keeps its work arrays between calls (no fresh 8 MB per selection at 10^6 devices); a reused
    instance, across device counts, draws exactly what a fresh one does."""
    big, small = np.arange(1, 5001) % 97, (np.arange(300) % 13)
    losses = np.random.default_rng(3).random(5000)
    kept = make_strategy(name)
    for sizes in (big, small, big):
        lf = (lambda c: losses[c]) if kept.uses_losses else None
        a = kept.select(np.random.default_rng(7), sizes=sizes, k=10, loss_fn=lf)
        b = make_strategy(name).select(np.random.default_rng(7), sizes=sizes, k=10, loss_fn=lf)
        assert np.array_equal(a, b)


@pytest.mark.parametrize("n", [1, 255, 256, 257, 1000, 100_003])
def test_two_level_locate_equals_searchsorted_on_the_full_cumulative_sum(n):
    """Selection finds each draw's device from block sums and the drawn blocks only; it must be the device the
    full cumulative sum gives, zeros and a last partial block included."""
    from workbench.federated import selection

    rng = np.random.default_rng(n)
    w = rng.integers(0, 1000, size=n) * (rng.random(n) < 0.7)
    w[-1] += 1  # a non-zero total
    cdf = np.cumsum(w)
    blocks = np.cumsum(np.add.reduceat(w, np.arange(0, n, selection._BLOCK)))
    u = np.r_[0, cdf[-1] - 1, rng.integers(0, cdf[-1], size=2000)]
    assert np.array_equal(selection._locate(w, blocks, u), np.searchsorted(cdf, u, side="right"))


@pytest.fixture
def rejection_everywhere(monkeypatch):
    """Weighted strategies take the rejection path even for the 9 devices of SIZES (normally from 65,536 on)."""
    from workbench.federated import selection

    monkeypatch.setattr(selection, "_REJECTION_MIN_DEVICES", 1)


@pytest.mark.parametrize("name,params,weights", [
    ("activity", {}, SIZES.astype(float)),
    ("tempered", {"t": 0.5}, np.sqrt(SIZES)),
    ("tempered", {"t": 0.25}, SIZES ** 0.25),
    ("tempered", {"t": 0.0}, (SIZES > 0).astype(float)),
])
def test_rejection_draws_have_the_same_distribution(rejection_everywhere, name, params, weights):
    strategy = make_strategy(name, **params)
    assert chi_square_p(frequencies(strategy, 1), weights) > 1e-3
    exact = exact_inclusion(weights, 3)
    freq = frequencies(strategy, 3) / DRAWS
    se = np.sqrt(exact * (1 - exact) / DRAWS)
    assert np.all(np.abs(freq - exact) <= 4.5 * se + 1e-12), (freq, exact)


def test_rejection_that_runs_out_of_proposals_hands_over_and_stays_exact(rejection_everywhere, monkeypatch):
    """Concentrated weights: rejection finds device 0 quickly but rarely the others within its budget, so the
    cumulative-weights draws finish the selection, after the devices rejection already chose."""
    from workbench.federated import selection

    calls = {"handed_over": 0}
    original = selection._successive_draws

    def counting(*args, chosen=None, **kw):
        calls["handed_over"] += bool(chosen)
        return original(*args, chosen=chosen, **kw)

    monkeypatch.setattr(selection, "_successive_draws", counting)
    sizes = np.array([10**4] + [1] * 40 + [0] * 59)  # budget: 100 // 10 = 10 proposals
    freq = frequencies(ActivitySelection(), 2, sizes=sizes, draws=6000) / 6000
    assert calls["handed_over"] > 300  # rejection found device 0 first in about one round in ten (10 of 100 proposed)
    total = sizes.sum()
    p0 = 10**4 / total + 40 / total * 10**4 / (total - 1)  # device 0 first, or second after a light one
    assert abs(freq[0] - p0) <= 4.5 * np.sqrt(p0 * (1 - p0) / 6000)
    light = freq[1:41]  # two selected per round: the light devices take the other 2 - p0, equally
    assert light.sum() == pytest.approx(2 - freq[0]) and chi_square_p(light * 6000, np.ones(40)) > 1e-3


def test_large_population_takes_the_rejection_path_and_valid():
    """At 2^17 heavy-tailed devices tempered selection finds its 100 devices by rejection alone (no pass over the
    weights, so no work buffer); activity selection (max / mean weight about 250) needs the hand-over."""
    from workbench.federated import selection

    n = selection._REJECTION_MIN_DEVICES * 2
    sizes = np.random.default_rng(2).zipf(1.6, size=n).clip(max=10**4)
    sizes[np.random.default_rng(3).random(n) < 0.1] = 0
    for strategy in (ActivitySelection(), make_strategy("tempered"), make_strategy("tempered", t=0.3)):
        sel = strategy.select(np.random.default_rng(4), sizes=sizes, k=100)
        assert len(np.unique(sel)) == 100 and np.all(sizes[sel] > 0)
        assert hasattr(strategy, "_cdf") == (strategy.t == 1.0)


@pytest.mark.parametrize("n,density", [(9, 0.8), (300, 0.5), (1000, 0.02), (5000, 0.9), (70_001, 0.3), (2560, 0.004)])
def test_round_robin_equals_the_list_of_devices_holding_data(n, density):
    rng = np.random.default_rng(n)
    sizes = rng.integers(1, 50, size=n) * (rng.random(n) < density)
    sizes[rng.integers(0, n)] = 3  # at least one device holding data
    available = np.flatnonzero(sizes)
    strategy = make_strategy("round_robin")
    for k in sorted({1, min(7, available.size), available.size}):
        for r in range(0, 40, 3):
            start = r * k % available.size
            expected = available[(start + np.arange(k)) % available.size]
            assert strategy.select(rng, sizes=sizes, k=k, round_idx=r).tolist() == expected.tolist()
