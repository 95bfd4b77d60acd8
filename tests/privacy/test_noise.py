"""The fast engine's Gaussian sampler: distribution, independence, tails, seeding, bad input."""
import math

import numpy as np
import pytest
import torch
from scipy import stats

from workbench.privacy.noise import GaussianNoise, NoisyGradients, box_muller

N = 1_000_001  # odd on purpose: the last pair is cut in half


@pytest.fixture(scope="module")
def draws():
    return GaussianNoise(seed=123).fill_(torch.empty(N), std=1.0).double().numpy()


def test_values_follow_the_standard_normal(draws):
    assert stats.kstest(draws, "norm").pvalue > 1e-3
    se = 1 / math.sqrt(N)
    assert abs(draws.mean()) < 5 * se
    assert abs(draws.std() - 1) < 5 * se
    assert abs(stats.skew(draws)) < 5 * math.sqrt(6 / N)
    assert abs(stats.kurtosis(draws)) < 5 * math.sqrt(24 / N)
    beyond3 = (np.abs(draws) > 3).mean()  # 0.27% for a normal
    assert abs(beyond3 - 2 * stats.norm.sf(3)) < 5 * math.sqrt(2 * stats.norm.sf(3) / N)


def test_values_are_uncorrelated(draws):
    """Box-Muller pairs (cos half, sin half) and neighbours: no linear dependence."""
    half = (N + 1) // 2
    first, second = draws[: N - half], draws[half:]
    limit = 5 / math.sqrt(N - half)
    assert abs(np.corrcoef(first, second)[0, 1]) < limit
    assert abs(np.corrcoef(draws[:-1], draws[1:])[0, 1]) < limit
    assert abs(np.corrcoef(first**2, second**2)[0, 1]) < limit  # independent, not merely uncorrelated
    assert stats.kstest(first**2 + second**2, stats.chi2(2).cdf).pvalue > 1e-3  # a pair's squared radius


def test_std_scales_and_float64_is_supported():
    z = GaussianNoise(seed=1).fill_(torch.empty(200_000, dtype=torch.float64), std=0.25)
    assert z.dtype == torch.float64
    assert abs(float(z.std()) - 0.25) < 0.25 * 5 / math.sqrt(2 * 200_000)
    assert torch.equal(GaussianNoise(seed=1).fill_(torch.empty(7), std=0.0), torch.zeros(7))


def test_tails_reach_beyond_torchs_and_extremes_map_exactly():
    words = np.array([0, 2**32 - 1, 0, 2**30], dtype=np.uint32)  # radii: smallest u1, u1 = 1; angles 0 and pi/2
    out = box_muller(words, std=2.0, out=np.empty(4, np.float32))
    np.testing.assert_allclose(out, [2 * math.sqrt(64 * math.log(2)), 0.0, 0.0, 0.0], atol=1e-5)
    out = box_muller(np.array([0, 2**30], dtype=np.uint32), std=1.0, out=np.empty(2, np.float64))
    np.testing.assert_allclose(out, [0.0, math.sqrt(64 * math.log(2))], atol=1e-12)  # angle pi/2: all in the sine


def test_same_seed_same_values_and_the_stream_moves_on():
    a, b = GaussianNoise(seed=5), GaussianNoise(seed=5)
    x1, y1 = a.fill_(torch.empty(1001), std=1.0).clone(), b.fill_(torch.empty(1001), std=1.0).clone()
    assert torch.equal(x1, y1)
    assert not torch.equal(a.fill_(torch.empty(1001), std=1.0), x1)  # the next call continues the stream
    assert not torch.equal(GaussianNoise(seed=6).fill_(torch.empty(1001), std=1.0), x1)
    assert not torch.equal(GaussianNoise(seed=None).fill_(torch.empty(1001), std=1.0), x1)


def test_fills_a_view_in_place_and_handles_tiny_sizes():
    buf = torch.zeros(10)
    GaussianNoise(seed=0).fill_(buf[2:5], std=1.0)
    assert (buf[2:5] != 0).all() and (buf[:2] == 0).all() and (buf[5:] == 0).all()
    assert GaussianNoise(seed=0).fill_(torch.empty(1), std=1.0).isfinite().all()
    assert GaussianNoise(seed=0).fill_(torch.empty(0), std=1.0).numel() == 0


@pytest.mark.parametrize(
    "call, words",
    [
        (lambda: GaussianNoise(seed=-1), "'seed'"),
        (lambda: GaussianNoise(seed=1.5), "'seed'"),
        (lambda: GaussianNoise(seed=0).fill_(torch.empty(4, dtype=torch.bfloat16), std=1.0), "'out'"),
        (lambda: GaussianNoise(seed=0).fill_(torch.empty(4, 4).T, std=1.0), "contiguous"),
        (lambda: GaussianNoise(seed=0).fill_(torch.empty(4), std=-1.0), "'std'"),
        (lambda: GaussianNoise(seed=0).fill_(torch.empty(4), std=float("nan")), "'std'"),
        (lambda: box_muller(np.zeros(3, np.uint32), std=1.0, out=np.empty(4, np.float32)), "'words'"),
    ],
)
def test_bad_input_names_the_parameter(call, words):
    with pytest.raises(ValueError, match=words):
        call()


def test_noisy_gradients_prefetched_equal_inline_and_hold_fresh_noise_each_step():
    params = [torch.zeros(50, 4), torch.zeros(3)]
    steps = {}
    for prefetch in (False, True):
        with NoisyGradients(params, std=0.5, seed=9, prefetch=prefetch) as grads:
            steps[prefetch] = [[v.clone() for v in grads.next()] for _ in range(4)]
    for a, b in zip(steps[False], steps[True]):
        assert all(torch.equal(x, y) for x, y in zip(a, b))
    assert not torch.equal(steps[True][0][0], steps[True][1][0])
    assert [tuple(v.shape) for v in steps[True][0]] == [(50, 4), (3,)]
    with NoisyGradients(params, std=0.0, seed=9, prefetch=True) as grads:
        assert not grads.prefetch and all((v == 0).all() for v in grads.next())


def test_noisy_gradients_surface_worker_errors_and_bad_params():
    grads = NoisyGradients([torch.zeros(4)], std=1.0, seed=0, prefetch=True)
    grads.close()
    with pytest.raises(RuntimeError, match="closed"):
        grads.next()
    with pytest.raises(ValueError, match="'params'"):
        NoisyGradients([torch.zeros(2), torch.zeros(2, dtype=torch.float64)], std=1.0, seed=0)
    with pytest.raises(ValueError, match="'params'"):
        NoisyGradients([], std=1.0, seed=0)
    with pytest.raises(ValueError, match="'prefetch'"):
        NoisyGradients([torch.zeros(2)], std=1.0, seed=0, prefetch="auto")
    broken = NoisyGradients([torch.zeros(4)], std=1.0, seed=0, prefetch=True)
    broken.next()
    broken._noise = None  # the worker's next draw fails: the training thread must see that error, not hang
    with pytest.raises(AttributeError):
        broken.next()
        broken.next()
    broken.close()
