"""The one-run audit (Steinke, Nasr, Jagielski 2023): its p-value against the binomial it generalises, its
bound's properties (about 0 at chance, growing with correct guesses), and its soundness on mechanisms whose epsilon
is known exactly: randomized response and the Gaussian mechanism, simulated over many seeds."""
from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.stats import binom, norm

from workbench.privacy import audit as AU
from workbench.validation import InvalidParameterError


# ------------------------------------------------------------------------------------------- the p-value
def test_p_value_is_the_binomial_tail_without_delta():
    for eps in (0.0, 0.5, 2.0):
        q = math.exp(eps) / (1 + math.exp(eps))
        for v in (0, 10, 31, 40):
            assert AU.audit_p_value(v, r=40, m=100, epsilon=eps) == pytest.approx(binom.sf(v - 1, 40, q), rel=1e-12)


def test_p_value_delta_term_matches_its_definition():
    r, v, m, eps, delta = 30, 22, 200, 0.7, 1e-4
    q = 1 / (1 + math.exp(-eps))
    alpha = max(sum(binom.pmf(v - j, r, q) for j in range(1, i + 1)) / i for i in range(1, v + 1))
    expected = binom.sf(v - 1, r, q) + 2 * m * delta * alpha
    assert AU.audit_p_value(v, r=r, m=m, epsilon=eps, delta=delta) == pytest.approx(expected, rel=1e-10)
    # a delta large enough makes every outcome plausible
    assert AU.audit_p_value(v, r=r, m=m, epsilon=eps, delta=0.5) == 1.0


def test_p_value_falls_with_epsilon_and_rises_with_delta():
    ps = [AU.audit_p_value(80, r=100, m=500, epsilon=e) for e in np.linspace(0, 3, 13)]
    assert np.all(np.diff(ps) >= 0)
    assert AU.audit_p_value(80, r=100, m=500, epsilon=1.0, delta=1e-5) > AU.audit_p_value(80, r=100, m=500, epsilon=1.0)


# ------------------------------------------------------------------------------------------- the bound
def test_bound_is_zero_at_chance_and_grows_with_correct_guesses():
    bounds = [AU.epsilon_lower_bound(v, r=200, m=1000) for v in range(90, 201, 10)]
    assert bounds[0] == 0.0 and bounds[1] == 0.0          # 90 and 100 of 200: what coin flips give
    assert np.all(np.diff(bounds) >= 0) and bounds[-1] > bounds[3] > 0
    # the bound is where the p-value crosses 1 - confidence
    eps = AU.epsilon_lower_bound(170, r=200, m=1000, delta=1e-5)
    assert AU.audit_p_value(170, r=200, m=1000, epsilon=eps, delta=1e-5) < 0.05
    assert AU.audit_p_value(170, r=200, m=1000, epsilon=eps + 1e-4, delta=1e-5) >= 0.05


def test_bound_grows_with_confidence_lowered_and_with_more_canaries():
    assert AU.epsilon_lower_bound(170, r=200, m=1000, confidence=0.8) > AU.epsilon_lower_bound(170, r=200, m=1000)
    assert AU.max_auditable_epsilon(100) < AU.max_auditable_epsilon(1000) < AU.max_auditable_epsilon(10000)
    # a perfect audit with r guesses certifies exactly log(q / (1 - q)) where q**r = 0.05
    q = 0.05 ** (1 / 1000)
    assert AU.max_auditable_epsilon(1000) == pytest.approx(math.log(q / (1 - q)), abs=1e-5)


def test_count_correct_guesses_by_hand():
    scores = [5.0, 4.0, 3.0, 2.0, 1.0, 0.0]
    inc = [1, 0, 1, 0, 0, 1]
    assert AU.count_correct_guesses(scores, included=inc, k_plus=2, k_minus=2) == 1 + 1  # top {0, 1}; bottom {4, 5}
    assert AU.count_correct_guesses(scores, included=inc, k_plus=0, k_minus=3) == 2
    with pytest.raises(InvalidParameterError, match="'k_minus' parameter of count_correct_guesses"):
        AU.count_correct_guesses(scores, included=inc, k_plus=4, k_minus=3)


# ------------------------------------------------------------------------------------------- soundness
def _rr_scores(rng, included, epsilon):
    """Randomized response on each canary's bit: reports it truthfully with probability e^eps / (1 + e^eps).
    Each output depends on one bit only, so releasing all of them is epsilon-DP in each canary."""
    truthful = rng.random(len(included)) < 1 / (1 + math.exp(-epsilon))
    reported = np.where(truthful, included, ~included)
    return reported + 0.01 * rng.random(len(included))  # random tie-break among equal reports


def test_audit_never_exceeds_epsilon_of_randomized_response():
    m, epsilon, seeds = 1000, 1.0, 200
    bounds = []
    for seed in range(seeds):
        rng = np.random.default_rng(seed)
        included = rng.random(m) < 0.5
        bounds.append(AU.one_run_audit(_rr_scores(rng, included, epsilon), included=included).epsilon_lb)
    bounds = np.array(bounds)
    assert np.mean(bounds > epsilon) <= 0.05
    # and the audit is not vacuous: randomized response is the worst case it is tight for
    assert np.median(bounds) > 0.6 * epsilon


def test_audit_at_one_setting_fails_at_most_five_percent_of_the_time():
    # no Bonferroni slack: one fixed guess setting, the level the theorem is about
    m, epsilon, seeds = 400, 2.0, 300
    failures = 0
    for seed in range(seeds):
        rng = np.random.default_rng([seed, 1])
        included = rng.random(m) < 0.5
        res = AU.one_run_audit(_rr_scores(rng, included, epsilon), included=included, guesses=[(100, 100)])
        failures += res.epsilon_lb > epsilon
    assert failures / seeds <= 0.05


def _gaussian_delta(epsilon, sigma):
    """delta(eps) of the Gaussian mechanism with sensitivity 1 and noise sigma (Balle and Wang 2018), exact."""
    return norm.cdf(-epsilon * sigma + 1 / (2 * sigma)) - math.exp(epsilon) * norm.cdf(-epsilon * sigma - 1 / (2 * sigma))


def test_audit_never_exceeds_epsilon_of_gaussian_mechanism():
    m, sigma, epsilon, seeds = 1000, 1.0, 5.0, 100
    delta = _gaussian_delta(epsilon, sigma)
    assert 1e-7 < delta < 1e-5   # a realistic (eps, delta) pair
    bounds = []
    for seed in range(seeds):
        rng = np.random.default_rng([seed, 2])
        included = rng.random(m) < 0.5
        scores = included + rng.normal(0, sigma, m)  # each canary's bit through the Gaussian mechanism
        bounds.append(AU.one_run_audit(scores, included=included, delta=delta).epsilon_lb)
    bounds = np.array(bounds)
    assert np.mean(bounds > epsilon) <= 0.05
    assert np.median(bounds) > 0.5  # a leaky mechanism is visibly leaky


def test_audit_of_a_zero_epsilon_mechanism_is_zero_almost_always():
    m, seeds = 500, 200
    positive = 0
    for seed in range(seeds):
        rng = np.random.default_rng([seed, 3])
        included = rng.random(m) < 0.5
        positive += AU.one_run_audit(rng.normal(size=m), included=included).epsilon_lb > 0
    assert positive / seeds <= 0.05


# ------------------------------------------------------------------------------------------- validation
@pytest.mark.parametrize("kwargs, message", [
    (dict(v=5, r=4, m=10, epsilon=1.0), "'v' parameter of audit_p_value must be an int in \\[0, 4\\]"),
    (dict(v=1, r=11, m=10, epsilon=1.0), "'r' parameter of audit_p_value must be an int in \\[0, 10\\]"),
    (dict(v=1, r=2, m=10, epsilon=-1.0), "'epsilon' parameter of audit_p_value must be a float >= 0"),
    (dict(v=1, r=2, m=10, epsilon=1.0, delta=2.0), "'delta' parameter of audit_p_value must be a float in \\[0, 1\\]"),
])
def test_p_value_rejects_bad_input(kwargs, message):
    v = kwargs.pop("v")
    with pytest.raises(InvalidParameterError, match=message):
        AU.audit_p_value(v, **kwargs)


def test_one_run_audit_rejects_bad_input():
    with pytest.raises(InvalidParameterError, match="'confidence' parameter of one_run_audit must be a float in \\(0, 1\\)"):
        AU.one_run_audit([1.0, 0.0], included=[1, 0], confidence=1.0)
    with pytest.raises(ValueError, match="'guesses' parameter of one_run_audit"):
        AU.one_run_audit([1.0, 0.0], included=[1, 0], guesses=[(1,)])
    with pytest.raises(ValueError, match="'included' parameter of count_correct_guesses"):
        AU.one_run_audit([1.0, 0.0, 2.0], included=[1, 0])
    assert AU.epsilon_lower_bound(np.int64(10), r=np.int64(10), m=np.int64(10)) > 0  # numpy integers welcome
