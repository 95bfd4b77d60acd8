"""DerSimonian-Laird random-effects meta-analysis: agreement with statsmodels and closed-form cases."""
import numpy as np
import pytest
from scipy import stats

from workbench.fairness.meta import random_effects

combine_effects = pytest.importorskip("statsmodels.stats.meta_analysis").combine_effects


@pytest.mark.parametrize("seed,k", [(0, 5), (1, 30), (2, 400), (3, 2)])
def test_agrees_with_statsmodels_dl(seed, k):
    rng = np.random.default_rng(seed)
    effects = rng.normal(0.4, 0.5, size=k)
    variances = rng.uniform(0.01, 0.05, size=k)  # heterogeneous: Q > k - 1, so tau^2 > 0
    ours = random_effects(effects, variances, alternative="two-sided")
    ref = combine_effects(effects, variances, method_re="dl", use_t=False)
    assert ref.tau2 > 0
    assert ours.effect == pytest.approx(ref.mean_effect_re, rel=1e-10, abs=1e-12)
    assert ours.se == pytest.approx(ref.sd_eff_w_re, rel=1e-10)
    assert ours.fixed_effect == pytest.approx(ref.mean_effect_fe, rel=1e-10, abs=1e-12)
    assert ours.fixed_se == pytest.approx(ref.sd_eff_w_fe, rel=1e-10)
    assert ours.q == pytest.approx(ref.q, rel=1e-10)
    assert ours.tau2 == pytest.approx(ref.tau2, rel=1e-10, abs=1e-14)
    assert ours.i2 == pytest.approx(ref.i2, rel=1e-10, abs=1e-14)
    summary = ref.summary_frame(alpha=0.05)
    assert ours.ci_low == pytest.approx(summary.loc["random effect", "ci_low"], rel=1e-9)
    assert ours.ci_high == pytest.approx(summary.loc["random effect", "ci_upp"], rel=1e-9)
    assert ours.p_value == pytest.approx(2 * stats.norm.sf(abs(ref.mean_effect_re / ref.sd_eff_w_re)), rel=1e-9)


def test_truncates_negative_tau2_where_statsmodels_does_not():
    # Q < k - 1: DerSimonian-Laird (and the CEAT reference code) set tau^2 = 0. statsmodels 0.15's
    # method_re="dl" returns the untruncated (q - df) / c < 0 instead; our result is the fixed-effect one.
    effects, variances = np.array([0.1, 0.5, 0.3]), np.array([0.1, 0.2, 0.1])
    ours = random_effects(effects, variances)
    ref = combine_effects(effects, variances, method_re="dl", use_t=False)
    assert ref.q == pytest.approx(ours.q) and ours.q < ours.df
    assert ref.tau2 == pytest.approx((ours.q - ours.df) / ref.c) and ref.tau2 < 0
    assert ours.tau2 == 0.0 and ours.i2 == 0.0
    assert ours.effect == pytest.approx(ref.mean_effect_fe) and ours.se == pytest.approx(ref.sd_eff_w_fe)


def test_heterogeneous_effects_have_positive_tau2_and_wider_se():
    effects = np.array([0.0, 1.0, 2.0, 3.0])
    variances = np.full(4, 0.01)
    r = random_effects(effects, variances)
    assert r.tau2 > 1.0 and r.se > r.fixed_se
    # equal variances: the random-effects mean is the plain mean
    assert r.effect == pytest.approx(1.5)
    # closed form: Q = sum w (e - mean)^2 = 100 * 5 = 500, c = 400 - 4e4/400 = 300, tau2 = (500 - 3) / 300
    assert r.q == pytest.approx(500.0)
    assert r.tau2 == pytest.approx(497 / 300)
    assert r.i2 == pytest.approx(497 / 500)
    assert r.se == pytest.approx(np.sqrt((0.01 + 497 / 300) / 4))


def test_one_sided_p_values():
    r = random_effects([0.3, 0.5, 0.4], [0.02, 0.03, 0.02])
    assert r.p_value == pytest.approx(stats.norm.sf(r.effect / r.se))
    assert random_effects([0.3, 0.5, 0.4], [0.02, 0.03, 0.02], alternative="less").p_value == pytest.approx(1 - r.p_value)
    two = random_effects([0.3, 0.5, 0.4], [0.02, 0.03, 0.02], alternative="two-sided").p_value
    assert two == pytest.approx(2 * r.p_value)


def test_no_heterogeneity_gives_fixed_effect():
    r = random_effects([1.0, 1.0], [0.5, 0.25])
    assert r.tau2 == 0.0 and r.q == 0.0 and np.isnan(r.i2)
    assert r.effect == pytest.approx(1.0) and r.se == pytest.approx(np.sqrt(1 / (2 + 4)))
    assert r.weights.sum() == pytest.approx(1.0)


@pytest.mark.parametrize(
    "effects,variances,match",
    [
        ([], [], "must not be empty"),
        ([1.0, 2.0], [0.1], "same length"),
        ([1.0, np.nan], [0.1, 0.1], "finite"),
        ([1.0, 2.0], [0.1, 0.0], "> 0"),
    ],
)
def test_bad_input(effects, variances, match):
    with pytest.raises(ValueError, match=match):
        random_effects(effects, variances)


def test_bad_alternative():
    with pytest.raises(ValueError, match="'alternative'"):
        random_effects([1.0], [1.0], alternative="bigger")
