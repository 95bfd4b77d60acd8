"""Noise drawn in place (one gradient buffer, filled on another core while the step runs): same values, half the memory."""
import pytest
import torch
from torch import nn

from workbench.privacy import dp as dp_module
from workbench.privacy.dp import DPConfig, train
from workbench.privacy.noise import NoisyGradients
from workbench.training import TrainConfig


def draws(steps=4, **kwargs):
    params = [torch.zeros(50, 7), torch.zeros(7)]
    out, pointers = [], set()
    with NoisyGradients(params, std=lambda k: 0.5 + k, seed=3, **kwargs) as grads:
        for _ in range(steps):
            views = grads.next()
            grads.wait()
            out.append([v.clone() for v in views])
            pointers.add(views[0].data_ptr())
    return out, pointers


def test_in_place_prefetch_draws_the_same_noise_into_one_buffer():
    plain, _ = draws(prefetch=False)
    two, two_ptrs = draws(prefetch=True)
    one, one_ptrs = draws(prefetch=True, in_place=True)
    for a, b, c in zip(plain, two, one):
        for x, y, z in zip(a, b, c):
            assert torch.equal(x, y) and torch.equal(x, z)
    assert len(two_ptrs) == 2 and len(one_ptrs) == 1  # two buffers in turn vs the same one every step
    assert float(one[3][0].std()) == pytest.approx(3.5, rel=0.15)  # step k drawn with std(k)


def test_wait_is_immediate_without_in_place_and_close_stops_the_thread():
    grads = NoisyGradients([torch.zeros(4)], std=1.0, seed=0, prefetch=True, in_place=True)
    grads.next()
    grads.close()  # while a draw may be in flight
    assert grads._thread is None
    with NoisyGradients([torch.zeros(4)], std=1.0, seed=0) as plain:
        plain.next()
        plain.wait()  # nothing pending: returns at once


def _train(prefetch, in_place_min, monkeypatch, **dp_kwargs):
    monkeypatch.setattr(dp_module, "PREFETCH_IN_PLACE_MIN_BYTES", in_place_min)
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(12, 16), nn.Tanh(), nn.Linear(16, 3))
    g = torch.Generator().manual_seed(1)
    x, y = torch.randn(96, 12, generator=g), torch.randint(0, 3, (96,), generator=g)
    res = train(model, (x, y), config=TrainConfig(epochs=1, batch_size=16, lr=0.3, optimizer="sgd", seed=4),
                dp=DPConfig(noise_multiplier=1.3, max_grad_norm=0.7, noise_prefetch=prefetch, **dp_kwargs), progress=False)
    return res, [p.detach().clone() for p in model.parameters()]


def test_dp_train_gives_the_same_model_with_noise_drawn_in_place(monkeypatch):
    """The fast engine waits for the in-place noise before adding the clipped sum: bit-identical training."""
    ref, ref_params = _train(False, 2**62, monkeypatch)
    for in_place_min in (2**62, 0):  # two buffers, then one buffer drawn in place
        res, params = _train(True, in_place_min, monkeypatch)
        assert all(torch.equal(a, b) for a, b in zip(params, ref_params)), in_place_min
        assert res.history.final["train_loss"] == ref.history.final["train_loss"]


def test_an_empty_poisson_batch_still_gets_its_noise(monkeypatch):
    """An empty batch leaves the pure noise in .grad (the engine is not called, so the step itself waits)."""
    monkeypatch.setattr(dp_module, "PREFETCH_IN_PLACE_MIN_BYTES", 0)
    model = nn.Linear(3, 2).double()
    dp = DPConfig(noise_multiplier=1.0, noise_prefetch=True)
    schedule = {"sample_rate": 0.1, "steps_per_epoch": 1, "noise_multipliers": [1.0], "noise_multiplier": 1.0}
    step = dp_module.FastDPStep(dp, schedule)
    step.start(model, n=20, config=TrainConfig(epochs=1, batch_size=2, seed=0), generator=torch.Generator().manual_seed(0))
    try:
        assert step.grads.in_place
        empty = torch.zeros(0, dtype=torch.long)
        assert step.gradients(torch.zeros(0, 3, dtype=torch.float64), empty, empty, None) is None
        got = [p.grad.clone() for p in step.params]
    finally:
        step.close()
    with NoisyGradients([torch.zeros(2, 3, dtype=torch.float64), torch.zeros(2, dtype=torch.float64)],
                        std=1.0 / 2, seed=0) as expected:  # std = sigma * C / expected batch (0.1 * 20)
        for a, b in zip(got, expected.next()):
            assert torch.equal(a, b)
