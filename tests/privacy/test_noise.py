"""DP noise: the sampler's distribution, independence and seeding; gradient buffers; noise schedules; bad input."""
import math

import numpy as np
import pytest
import torch
from scipy import stats

from workbench.privacy.noise import GaussianNoise, NoisyGradients, noise_schedule

N = 1_000_001


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
    """Neighbours and the two halves of the buffer: no linear dependence, and independent, not merely uncorrelated."""
    half = N // 2
    first, second = draws[:half], draws[half : 2 * half]
    limit = 5 / math.sqrt(half)
    assert abs(np.corrcoef(first, second)[0, 1]) < limit
    assert abs(np.corrcoef(draws[:-1], draws[1:])[0, 1]) < limit
    assert abs(np.corrcoef(first**2, second**2)[0, 1]) < limit
    assert stats.kstest(first**2 + second**2, stats.chi2(2).cdf).pvalue > 1e-3


def test_noise_stream_is_apart_from_a_generator_seeded_with_the_run_seed():
    """The batches come from torch.Generator().manual_seed(seed): the noise must not replay that stream."""
    noise = GaussianNoise(seed=3).fill_(torch.empty(1000), std=1.0)
    assert not torch.equal(noise, torch.empty(1000).normal_(generator=torch.Generator().manual_seed(3)))


def test_std_scales_and_float64_is_supported():
    z = GaussianNoise(seed=1).fill_(torch.empty(200_000, dtype=torch.float64), std=0.25)
    assert z.dtype == torch.float64
    assert abs(float(z.std()) - 0.25) < 0.25 * 5 / math.sqrt(2 * 200_000)
    assert torch.equal(GaussianNoise(seed=1).fill_(torch.empty(7), std=0.0), torch.zeros(7))


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
        (lambda: GaussianNoise(seed=0).fill_(torch.empty(4), std=-1.0), "'std'"),
        (lambda: GaussianNoise(seed=0).fill_(torch.empty(4), std=float("nan")), "'std'"),
        (lambda: GaussianNoise(seed=0).fill_(torch.empty(4), std=float("inf")), "'std'"),
        (lambda: NoisyGradients([torch.zeros(2)], std=-1.0, seed=0), "'std'"),
        (lambda: noise_schedule("linear", epochs=0), "'epochs'"),
        (lambda: noise_schedule("linear", epochs=3, final=0), "'final'"),
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


def test_noisy_gradients_follow_a_per_step_std():
    """A callable std (a noise that changes by epoch) gives each step its own scale, prefetched or not."""
    stds = [1.0, 1.0, 0.01, 0.01]
    for prefetch in (False, True):
        with NoisyGradients([torch.zeros(20_000)], std=lambda k: stds[k], seed=4, prefetch=prefetch) as grads:
            got = [float(grads.next()[0].std()) for _ in stds]
        assert got == pytest.approx(stds, rel=0.05)


def test_noise_schedules():
    assert noise_schedule("constant", epochs=3) == (1.0, 1.0, 1.0)
    assert noise_schedule("linear", epochs=5, final=0.2) == pytest.approx((1.0, 0.8, 0.6, 0.4, 0.2))
    assert noise_schedule("exponential", epochs=3, final=0.25) == pytest.approx((1.0, 0.5, 0.25))
    assert noise_schedule("linear", epochs=1, final=0.5) == (1.0,)
