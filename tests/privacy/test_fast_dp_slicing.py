"""The fast engine's memory bound: ``max_physical_batch_size="auto"`` (slices large batches, exactly) and its footprint probe.

Each sliced result is compared with the whole-batch engine and with per-sample clipping computed by a loop over single
samples through plain autograd (an implementation that shares nothing with the engine), in float64.
"""
import math

import pytest
import torch
from torch import nn

from workbench.privacy import fast_dp
from workbench.privacy.dp import DPConfig, train
from workbench.training import TrainConfig
from workbench.validation import InvalidParameterError


class SeqModel(nn.Module):
    """Token ids (N, T) -> embedding -> LayerNorm -> Linear on the sequence -> tanh -> mean -> head (N, 3)."""

    def __init__(self, dropout=0.0):
        super().__init__()
        self.emb, self.norm, self.mix = nn.Embedding(20, 8, padding_idx=0), nn.LayerNorm(8), nn.Linear(8, 8)
        self.drop, self.head = nn.Dropout(dropout), nn.Linear(8, 3)

    def forward(self, ids):
        h = torch.tanh(self.mix(self.norm(self.emb(ids))))
        return self.head(self.drop(h.mean(1)))


def data(n=10, t=6, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 20, (n, t), generator=g), torch.randint(0, 3, (n,), generator=g)


def model(seed=0, dropout=0.0):
    torch.manual_seed(seed)
    return SeqModel(dropout).double().train()


def clip_reference(model, x, y, max_grad_norm):
    """Sum over samples of each sample's gradient clipped to ``max_grad_norm`` (Opacus's factor), by a loop."""
    named = dict(model.named_parameters())
    total = {n: torch.zeros_like(p) for n, p in named.items()}
    for i in range(len(y)):
        grads = torch.autograd.grad(nn.functional.cross_entropy(model(x[i : i + 1]), y[i : i + 1]), list(named.values()))
        norm = torch.sqrt(sum(g.pow(2).sum() for g in grads))
        factor = min(1.0, max_grad_norm / (float(norm) + 1e-6))
        for n, g in zip(named, grads):
            total[n] += factor * g
    return total


def clipped(m, x, y, **engine_kwargs):
    engine = fast_dp.GhostClippingEngine(m, max_grad_norm=0.5, **engine_kwargs)
    try:
        out = engine.clipped_grad(x, y)
        return engine, out, {n: p.grad.clone() for n, p in m.named_parameters()}
    finally:
        engine.remove()
        m.zero_grad(set_to_none=True)


def test_auto_slices_a_large_batch_and_stays_exact(monkeypatch):
    monkeypatch.setattr(fast_dp, "AUTO_SLICE_MIN_BYTES", 0)  # every batch counts as large
    m = model()
    x, y = data()
    engine, out, grads = clipped(m, x, y, max_physical_batch_size="auto")
    _, whole_out, whole = clipped(m, x, y, max_physical_batch_size=None)
    assert 1 <= engine.last_slice_size < len(y)  # it did slice
    torch.testing.assert_close(out["norms"], whole_out["norms"], rtol=1e-10, atol=0)
    torch.testing.assert_close(out["clip_factors"], whole_out["clip_factors"], rtol=1e-10, atol=0)
    expected = clip_reference(m, x, y, 0.5)
    for n, g in grads.items():
        torch.testing.assert_close(g, whole[n], rtol=1e-10, atol=1e-14, msg=n)
        torch.testing.assert_close(g, expected[n], rtol=1e-6, atol=1e-12, msg=n)


def test_auto_slice_size_follows_the_measured_footprint(monkeypatch):
    """k = ceil((S + R) / S) equal slices, S and R the batch's saved activations and kept output gradients."""
    monkeypatch.setattr(fast_dp, "AUTO_SLICE_MIN_BYTES", 0)
    m = model()
    x, y = data(n=12, t=5)
    engine, _, _ = clipped(m, x, y, max_physical_batch_size="auto")
    per_saved, per_grad = engine.footprint
    # the output gradients the engine keeps, counted by hand: embedding, LayerNorm and mixing layer (N, T, 8) each,
    # the head (N, 3), float64; per element of the (N, T) input
    assert per_grad == pytest.approx((3 * 12 * 5 * 8 + 12 * 3) * 8 / (12 * 5))
    assert per_saved > 0
    assert engine.last_slice_size == math.ceil(12 / math.ceil((per_saved + per_grad) / per_saved))


def test_the_footprint_matches_what_a_step_keeps():
    """The probe's output-gradient bytes (8 samples) scale to the output gradients a real backward pass returns."""
    m = model()
    x, y = data(n=16, t=7)
    engine = fast_dp.GhostClippingEngine(m, max_grad_norm=1.0, max_physical_batch_size="auto")
    try:
        engine.clipped_grad(x, y)
        _, _, records = engine._backward(x, y, nn.functional.cross_entropy)
    finally:
        engine.remove()
    kept = sum(b.numel() * b.element_size() for calls in records.values() for _, b in calls)
    assert engine.footprint[1] * x.numel() == pytest.approx(kept)


def test_auto_leaves_small_batches_whole_and_bit_identical():
    """Below AUTO_SLICE_MIN_BYTES nothing changes, and the probe draws no random numbers (dropout masks unchanged)."""
    x, y = data()
    results = []
    for size in ("auto", None):
        m = model(dropout=0.3)
        torch.manual_seed(5)
        engine, out, grads = clipped(m, x, y, max_physical_batch_size=size)
        results.append((engine.last_slice_size, out, grads, torch.rand(1)))
    (size_auto, out_auto, g_auto, after_auto), (size_none, out_none, g_none, after_none) = results
    assert size_auto == size_none == len(y)
    assert torch.equal(out_auto["norms"], out_none["norms"]) and torch.equal(after_auto, after_none)
    for n in g_auto:
        assert torch.equal(g_auto[n], g_none[n]), n


def test_dp_train_hands_each_slice_its_own_row_numbers():
    """A loss that looks up per-sample weights by ``idx`` trains identically with and without slicing."""
    x, y = data(n=24, t=5, seed=3)
    weights = torch.linspace(0.5, 1.5, len(y), dtype=torch.float64)
    seen = []

    def loss_fn(logits, target, idx):
        seen.append(len(idx))
        assert len(idx) == len(target) == len(logits)
        return (nn.functional.cross_entropy(logits, target, reduction="none") * weights[idx]).mean()

    finals = []
    for size in (3, None):
        m = model(seed=1)
        train(m, (x, y), config=TrainConfig(epochs=1, batch_size=8, lr=0.5, optimizer="sgd", seed=0),
              dp=DPConfig(noise_multiplier=0.0, max_grad_norm=0.5, poisson_sampling=False, max_physical_batch_size=size),
              loss_fn=loss_fn, progress=False)
        finals.append({n: p.detach().clone() for n, p in m.named_parameters()})
    assert 3 in seen and 8 in seen  # both runs happened, sliced and whole
    for n in finals[0]:
        torch.testing.assert_close(finals[0][n], finals[1][n], rtol=1e-9, atol=1e-12, msg=n)


@pytest.mark.parametrize("value", ["big", 0, 2.5])
def test_max_physical_batch_size_is_validated(value):
    with pytest.raises(InvalidParameterError, match="'max_physical_batch_size' parameter of GhostClippingEngine"):
        fast_dp.GhostClippingEngine(model(), max_grad_norm=1.0, max_physical_batch_size=value)
    with pytest.raises(InvalidParameterError, match="'max_physical_batch_size' parameter of DPConfig"):
        DPConfig(noise_multiplier=1.0, max_physical_batch_size=value)


def test_a_fixed_slice_size_needs_the_fast_engine():
    with pytest.raises(ValueError, match="needs engine='fast'"):
        DPConfig(noise_multiplier=1.0, engine="opacus-hooks", max_physical_batch_size=16)
    assert DPConfig(noise_multiplier=1.0, engine="opacus-hooks").max_physical_batch_size == "auto"
