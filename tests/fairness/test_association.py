"""WEAT / CEAT / SEAT: closed-form cases, an independent re-implementation, planted and null effects."""
import itertools
import math

import numpy as np
import pytest
from scipy.spatial.distance import cosine as cosine_distance

from workbench.fairness.association import (
    association_scores,
    ceat,
    ceat_effects,
    ceat_from_pools,
    ceat_loop,
    ceat_sample_indices,
    check_word_sets,
    weat,
    weat_effect_size,
)


# ---------------------------------------------------------------- an independent WEAT (wefe's formula, re-typed)
def _wefe_style_effect_size(X, Y, A, B):
    """Caliskan et al.'s d written word by word with scipy's cosine distance, as in wefe's WEAT."""
    def s(w):
        return np.mean([1 - cosine_distance(w, a) for a in A]) - np.mean([1 - cosine_distance(w, b) for b in B])

    sx = [s(x) for x in X]
    sy = [s(y) for y in Y]
    return (np.mean(sx) - np.mean(sy)) / np.std(sx + sy, ddof=1), sx, sy


def _angles(*degrees):
    return np.array([[math.cos(math.radians(t)), math.sin(math.radians(t))] for t in degrees])


def test_hand_computed_case():
    # unit vectors in the plane: A at 0 deg, B at 90 deg, so s(w at t) = cos t - sin t
    X, Y, A, B = _angles(10, 20), _angles(70, 80), _angles(0), _angles(90)
    s = [math.cos(math.radians(t)) - math.sin(math.radians(t)) for t in (10, 20, 70, 80)]
    mean_x, mean_y = (s[0] + s[1]) / 2, (s[2] + s[3]) / 2
    mu = sum(s) / 4
    sd = math.sqrt(sum((v - mu) ** 2 for v in s) / 3)
    assert weat_effect_size(X, Y, A, B) == pytest.approx((mean_x - mean_y) / sd, rel=1e-12)
    assert association_scores(X, A, B) == pytest.approx(s[:2], rel=1e-12)


@pytest.mark.parametrize("seed,sizes,dim", [(0, (5, 5, 4, 4), 10), (1, (8, 6, 7, 3), 50), (2, (25, 25, 25, 25), 300)])
def test_matches_independent_implementation(seed, sizes, dim):
    rng = np.random.default_rng(seed)
    X, Y, A, B = (rng.normal(size=(n, dim)) + 0.3 * i for i, n in enumerate(sizes))
    ref, sx, sy = _wefe_style_effect_size(X, Y, A, B)
    assert weat_effect_size(X, Y, A, B) == pytest.approx(ref, rel=1e-10)
    r = weat(X, Y, A, B, n_permutations=100)
    assert r.scores_x == pytest.approx(sx, rel=1e-10) and r.scores_y == pytest.approx(sy, rel=1e-10)
    assert r.statistic == pytest.approx(sum(sx) - sum(sy), rel=1e-10)


def test_invariants():
    rng = np.random.default_rng(3)
    X, Y, A, B = (rng.normal(size=(6, 8)) for _ in range(4))
    d = weat_effect_size(X, Y, A, B)
    assert weat_effect_size(Y, X, A, B) == pytest.approx(-d)
    assert weat_effect_size(X, Y, B, A) == pytest.approx(-d)
    assert weat_effect_size(3 * X, 0.5 * Y, 7 * A, B) == pytest.approx(d)  # cosine: scale-free
    assert abs(d) <= 2 * (12 - 1) / 12 * math.sqrt(12 / 11) + 1e-9  # |d| is bounded


def _brute_force_p(s, n_x, observed):
    n = len(s)
    stats = [sum(s[i] for i in c) - sum(s[i] for i in range(n) if i not in c) for c in itertools.combinations(range(n), n_x)]
    return sum(t >= observed - 1e-12 for t in stats) / len(stats)


def test_exact_permutation_p_value_matches_brute_force():
    rng = np.random.default_rng(4)
    X, Y, A, B = rng.normal(size=(5, 6)) + 0.2, rng.normal(size=(5, 6)), rng.normal(size=(4, 6)) + 0.2, rng.normal(size=(4, 6))
    r = weat(X, Y, A, B, n_permutations=10_000)
    assert r.exact and r.n_permutations == math.comb(10, 5)
    s = list(r.scores_x) + list(r.scores_y)
    assert r.p_value == pytest.approx(_brute_force_p(s, 5, r.statistic))
    assert r.p_value >= 1 / math.comb(10, 5)


def test_sampled_permutation_p_value_close_to_exact():
    rng = np.random.default_rng(5)
    X, Y, A, B = rng.normal(size=(8, 6)) + 0.1, rng.normal(size=(8, 6)), rng.normal(size=(8, 6)) + 0.1, rng.normal(size=(8, 6))
    exact = weat(X, Y, A, B, n_permutations=20_000)
    sampled = weat(X, Y, A, B, n_permutations=5_000, seed=1)
    assert exact.exact and not sampled.exact
    assert sampled.p_value == pytest.approx(exact.p_value, abs=0.02)
    assert sampled.p_value > 0
    assert weat(X, Y, A, B, n_permutations=5_000, seed=1).p_value == sampled.p_value  # same seed, same number


def test_clear_association_is_significant_and_null_is_not():
    X, Y, A, B = _angles(5, 10, 15, 20, 25, 30), _angles(60, 65, 70, 75, 80, 85), _angles(0, 3), _angles(87, 90)
    r = weat(X, Y, A, B)
    assert r.effect_size > 1.5 and r.p_value == pytest.approx(1 / math.comb(12, 6))
    assert weat(Y, X, A, B).p_value == 1.0


@pytest.mark.parametrize(
    "args,match",
    [
        ((np.empty((0, 3)), np.ones((2, 3)), np.ones((2, 3)), np.ones((2, 3))), "'X' .* must not be empty"),
        ((np.ones(3), np.ones((2, 3)), np.ones((2, 3)), np.ones((2, 3))), "2-D"),
        ((np.ones((2, 3)), np.ones((2, 4)), np.ones((2, 3)), np.ones((2, 3))), "same number of columns"),
        ((np.zeros((2, 3)), np.ones((2, 3)), np.ones((2, 3)), np.ones((2, 3))), "all-zero vector"),
        ((np.full((2, 3), np.nan), np.ones((2, 3)), np.ones((2, 3)), np.ones((2, 3))), "finite"),
    ],
)
def test_bad_vectors(args, match):
    with pytest.raises(ValueError, match=match):
        weat_effect_size(*args)


def test_constant_associations_give_nan_with_warning():
    X = Y = np.ones((2, 2))
    with pytest.warns(RuntimeWarning, match="std 0"):
        assert math.isnan(weat_effect_size(X, Y, [[1.0, 0.0]], [[0.0, 1.0]]))


def test_word_set_checks():
    with pytest.raises(ValueError, match="X and A .* overlap"):
        check_word_sets(["love"], ["ant"], ["Love"], ["hate"])
    with pytest.raises(ValueError, match="word set B .* must not be empty"):
        check_word_sets(["rose"], ["ant"], ["love"], [])
    with pytest.raises(TypeError, match="not one string"):
        check_word_sets("rose", ["ant"], ["love"], ["hate"])


# ---------------------------------------------------------------- CEAT on synthetic pools
def _planted(rng, m, *, sigma=0.2, n=20, k=50, dim=16):
    """X-word contexts have cosine ~ N(+m, sigma) with direction u, Y-words ~ N(-m, sigma); A ~ u, B ~ -u.

    Then s(w) ~= 2 cos(w, u) and the population effect size is 2m / sqrt(sigma^2 + m^2 * 2n / (2n - 1)).
    """
    u = np.eye(dim)[0]

    def target(sign):
        c = np.clip(rng.normal(sign * m, sigma, size=k), -0.95, 0.95)
        r = rng.normal(size=(k, dim))
        r[:, 0] = 0
        r /= np.linalg.norm(r, axis=1, keepdims=True)
        return c[:, None] * u + np.sqrt(1 - c[:, None] ** 2) * r

    def attribute(sign):
        return sign * u + 0.05 * rng.normal(size=(k, dim))

    truth = 2 * m / math.sqrt(sigma ** 2 + m ** 2 * 2 * n / (2 * n - 1))
    return [target(1) for _ in range(n)], [target(-1) for _ in range(n)], [attribute(1) for _ in range(n)], [attribute(-1) for _ in range(n)], truth


@pytest.mark.parametrize("variance", ["association", "cohen"])
def test_vectorised_ceat_equals_per_sample_loop(variance):
    rng = np.random.default_rng(6)
    pools = [[rng.normal(size=(rng.integers(1, 9), 12)) for _ in range(n)] for n in (5, 4, 6, 3)]
    idx = ceat_sample_indices([len(p) for ps in pools for p in ps], n_samples=300, seed=2)
    fast = ceat_effects(*pools, indices=idx, variance=variance, chunk_size=64)
    slow = ceat_loop(*pools, indices=idx, variance=variance)
    np.testing.assert_allclose(fast[0], slow[0], rtol=1e-10)
    np.testing.assert_allclose(fast[1], slow[1], rtol=1e-10)


def test_one_context_per_word_reduces_to_weat():
    rng = np.random.default_rng(7)
    X, Y, A, B = (rng.normal(size=(6, 10)) for _ in range(4))
    r = ceat_from_pools(*[[row[None] for row in M] for M in (X, Y, A, B)], n_samples=50)
    assert np.allclose(r.effects, weat_effect_size(X, Y, A, B))
    assert r.tau2 == 0 and r.effect_size == pytest.approx(weat_effect_size(X, Y, A, B))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_ceat_recovers_planted_effect(seed):
    X, Y, A, B, truth = _planted(np.random.default_rng(seed), 0.2)
    r = ceat_from_pools(X, Y, A, B, n_samples=500, seed=seed)
    assert truth == pytest.approx(1.405, abs=1e-3)
    assert r.effect_size == pytest.approx(truth, abs=0.1)
    assert r.p_value < 1e-6 and r.meta.ci_low > 1.0
    smaller = ceat_from_pools(*_planted(np.random.default_rng(seed), 0.05)[:4], n_samples=500, seed=seed)
    assert 0.1 < smaller.effect_size < r.effect_size
    assert r.effects.shape == (500,) and set(r.contexts_per_word.values()) == {50}


@pytest.mark.parametrize("variance", ["association", "cohen"])
def test_ceat_null_is_near_zero_and_not_significant(variance):
    effects, p_values = [], []
    for s in range(20):
        X, Y, A, B, truth = _planted(np.random.default_rng(100 + s), 0.0, k=500)
        assert truth == 0
        r = ceat_from_pools(X, Y, A, B, n_samples=100, seed=s, variance=variance)
        effects.append(r.effect_size)
        p_values.append(r.p_value)
    effects, p_values = np.array(effects), np.array(p_values)
    assert abs(effects.mean()) < 0.03 and np.abs(effects).max() < 0.15
    assert (p_values < 0.05).mean() <= 0.15  # a calibrated test rejects ~5% of true nulls
    assert np.median(p_values) > 0.2


def test_ceat_same_seed_same_numbers():
    X, Y, A, B, _ = _planted(np.random.default_rng(8), 0.1, n=5, k=10)
    r1 = ceat_from_pools(X, Y, A, B, n_samples=200, seed=3)
    r2 = ceat_from_pools(X, Y, A, B, n_samples=200, seed=3)
    assert np.array_equal(r1.effects, r2.effects) and r1.effect_size == r2.effect_size


def test_ceat_bad_input():
    X, Y, A, B, _ = _planted(np.random.default_rng(9), 0.1, n=3, k=4)
    with pytest.raises(ValueError, match="has no contexts"):
        ceat_from_pools([np.empty((0, 16))] + X[1:], Y, A, B, n_samples=10)
    with pytest.raises(ValueError, match="'n_samples'"):
        ceat_from_pools(X, Y, A, B, n_samples=1)
    with pytest.raises(ValueError, match="'variance'"):
        ceat_from_pools(X, Y, A, B, n_samples=10, variance="hedges")
    with pytest.raises(ValueError, match="same dimension"):
        ceat_from_pools([np.ones((2, 3))], Y, A, B, n_samples=10)


def test_ceat_word_level_api_with_pools():
    from workbench.datasets import WeatTest

    rng = np.random.default_rng(10)
    test = WeatTest("toy", ("rose", "tulip"), ("ant", "flea"), ("love", "joy"), ("hate", "pain"), set_names=("x", "y", "a", "b"))
    pools = {w: rng.normal(size=(4, 8)) for w in [*test.X, *test.Y, *test.A, *test.B]}
    r = ceat(test, pools=pools, n_samples=100)
    direct = ceat_from_pools(*[[pools[w] for w in ws] for ws in (test.X, test.Y, test.A, test.B)], n_samples=100)
    assert r.effect_size == direct.effect_size and r.test == "toy"
    assert r.contexts_per_word == {w: 4 for w in pools}
    del pools["flea"]
    with pytest.raises(ValueError, match="no contexts for \\['flea'\\]"):
        ceat(test, pools=pools, n_samples=100)
    bad = WeatTest("bad", ("rose",), ("rose",), ("love",), ("hate",), set_names=("x", "y", "a", "b"))
    with pytest.raises(ValueError, match="overlap"):
        ceat(bad, pools=pools)


# ---------------------------------------------------------------- real encoder (MiniLM): SEAT and static WEAT
def test_seat_and_static_weat_on_minilm_find_the_flower_insect_association():
    from workbench.datasets import encode_texts, load_weat_tests
    from workbench.fairness.association import seat, static_weat

    test = load_weat_tests(["C1"])["C1"]
    r = seat(test, templates=["This is {}."], n_permutations=2000)
    assert r.scores_x.shape == (len(test.X),) and r.scores_y.shape == (len(test.Y),)
    # flowers vs insects with pleasant vs unpleasant is the "universally accepted" association (Caliskan et al.)
    assert r.effect_size > 0.5 and r.p_value < 0.01
    # SEAT is WEAT on the sentence embeddings of the templated words
    mats = [encode_texts([f"This is {w}." for w in ws], progress=False) for ws in (test.X, test.Y, test.A, test.B)]
    assert r.effect_size == pytest.approx(weat_effect_size(*mats), rel=1e-6)
    s = static_weat(test, n_permutations=2000)
    assert s.effect_size > 0.5 and s.p_value < 0.01
    with pytest.raises(ValueError, match="'templates'"):
        seat(test, templates=["no placeholder"])


# ---------------------------------------------------------------- panel and figures (composition only)
def test_panel_and_figures_follow_the_results():
    import pandas as pd

    from workbench.plots.intrinsic import effect_heatmap, forest_figure, layer_figure
    from workbench.widgets.intrinsic import intrinsic_panel

    X, Y, A, B, _ = _planted(np.random.default_rng(11), 0.2, n=4, k=6)
    results = {(t, e, layer): ceat_from_pools(X, Y, A, B, n_samples=30, seed=layer, test=t, encoder=e, layer=layer)
               for t in ("C1", "C2") for e, layers in (("minilm", (0, 6)), ("smollm2", (0, 15, 30))) for layer in layers}
    panel = intrinsic_panel(results)
    test_dd, enc_dd, layer_dd = panel.children[0].children
    assert list(layer_dd.options) == [0, 6]
    enc_dd.value = "smollm2"
    assert list(layer_dd.options) == [0, 15, 30] and layer_dd.value == 30
    r = results[("C1", "minilm", 6)]
    fig = forest_figure(r, max_rows=10)
    assert list(fig.data[0].x) == list(r.effects[:10]) and fig.data[1].x[0] == pytest.approx(r.effect_size)
    table = pd.DataFrame([{**v.summary(), "n_layers": 6 if k[1] == "minilm" else 30} for k, v in results.items()])
    heat = effect_heatmap(table, encoder="smollm2")
    assert heat.data[0].z.shape == (2, 3)
    assert len(layer_figure(table).data) == 4
    with pytest.raises(ValueError, match="at least one"):
        intrinsic_panel({})
