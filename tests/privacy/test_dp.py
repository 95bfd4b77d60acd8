"""DP training: config validation, equivalence with plain training, engines agreeing, accounting, sweeps."""
import math

import pytest
import torch
from torch import nn

from workbench.models import MLP
from workbench.privacy.accounting import compute_epsilon
from workbench.privacy.dp import DPConfig, epsilon_sweep, privacy_schedule, train
from workbench.privacy.fast_dp import UnsupportedLayerError
from workbench.textmodels import BagOfEmbeddings, RecurrentClassifier
from workbench.training import TrainConfig, fit

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


def data(n=240, d=5, seed=0):
    g = torch.Generator().manual_seed(seed)
    X = torch.randn(n, d, generator=g)
    y = (X[:, 0] + 0.5 * X[:, 1] > 0).long()
    return X, y


def tokens(n=160, seed=0):
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(2, 30, (n, 8), generator=g)
    ids[n // 2 :, 5:] = 0
    return ids, (ids == 2).any(1).long()


def model(seed=0, d=5):
    torch.manual_seed(seed)
    return MLP(in_features=d, out_features=2, hidden=(8,))


@pytest.mark.parametrize(
    "kwargs, name",
    [
        (dict(target_epsilon=0), "target_epsilon"),
        (dict(target_epsilon=-1), "target_epsilon"),
        (dict(noise_multiplier=-0.5), "noise_multiplier"),
        (dict(target_epsilon=1, delta=0), "delta"),
        (dict(target_epsilon=1, delta=1), "delta"),
        (dict(target_epsilon=1, max_grad_norm=0), "max_grad_norm"),
        (dict(target_epsilon=1, max_grad_norm=-2), "max_grad_norm"),
        (dict(target_epsilon=1, engine="jax"), "engine"),
        (dict(target_epsilon=1, accountant="moments"), "accountant"),
        (dict(target_epsilon=1, noise_prefetch="yes"), "noise_prefetch"),
        (dict(target_epsilon=1, noise_prefetch=True, engine="opacus-hooks"), "noise_prefetch"),
        (dict(), "exactly one"),
        (dict(target_epsilon=1, noise_multiplier=1), "exactly one"),
    ],
)
def test_config_validation(kwargs, name):
    with pytest.raises(ValueError, match=name):
        DPConfig(**kwargs)


def test_no_dp_trains_exactly_like_fit():
    X, y = data()
    cfg = TrainConfig(epochs=2, batch_size=32, lr=0.05, seed=3)
    a, b = model(), model()
    fit(a, (X, y), config=cfg, progress=False)
    res = train(b, (X, y), config=cfg, dp=None, val=(X, y), progress=False)
    for p, q in zip(a.parameters(), b.parameters()):
        assert torch.equal(p, q)
    assert res.epsilon is None and res.noise_multiplier is None and set(res.metrics) == {"accuracy", "loss"}


@pytest.mark.parametrize("engine", ["fast", "opacus-hooks", "opacus-ghost"])
def test_engines_follow_the_same_trajectory_without_noise(engine):
    """Noise 0, fixed shuffled batches, SGD: every engine is deterministic clipped SGD with identical batches."""
    X, y = data()
    cfg = TrainConfig(epochs=2, batch_size=32, lr=0.1, optimizer="sgd", seed=1)
    dp = DPConfig(noise_multiplier=0.0, max_grad_norm=0.3, poisson_sampling=False, engine=engine)
    ref, other = model(), model()
    train(ref, (X, y), config=cfg, dp=DPConfig(noise_multiplier=0.0, max_grad_norm=0.3, poisson_sampling=False, engine="fast"),
          progress=False)
    res = train(other, (X, y), config=cfg, dp=dp, progress=False)
    for p, q in zip(ref.parameters(), other.parameters()):
        torch.testing.assert_close(p, q, atol=1e-5, rtol=1e-5)
    assert math.isinf(res.epsilon)


@pytest.mark.parametrize("engine", ["fast", "opacus-hooks"])
def test_same_seed_same_numbers(engine):
    X, y = tokens()
    cfg = TrainConfig(epochs=2, batch_size=32, lr=0.05, seed=7)
    dp = DPConfig(noise_multiplier=1.0, engine=engine)
    runs = []
    for _ in range(2):
        torch.manual_seed(0)
        m = BagOfEmbeddings(30, dim=8, n_classes=2)
        res = train(m, (X, y), config=cfg, dp=dp, progress=False)
        runs.append((torch.cat([p.detach().flatten() for p in m.parameters()]), res.history.to_records()))
    assert torch.equal(runs[0][0], runs[1][0])
    assert [r["train_loss"] for r in runs[0][1]] == [r["train_loss"] for r in runs[1][1]]


def test_target_epsilon_is_met_and_reported_by_the_accountant():
    X, y = data(n=500)
    cfg = TrainConfig(epochs=3, batch_size=50, lr=0.05)
    res = train(model(), (X, y), config=cfg, dp=DPConfig(target_epsilon=2.0, delta=1e-4), val=(X, y), progress=False)
    assert res.sample_rate == pytest.approx(0.1) and res.steps == 30
    assert 2.0 - 0.02 <= res.epsilon <= 2.0
    assert res.epsilon == pytest.approx(compute_epsilon(noise_multiplier=res.noise_multiplier, sample_rate=0.1, steps=30, delta=1e-4))
    eps = [row["epsilon"] for row in res.history.epochs]
    assert eps == sorted(eps) and eps[-1] == res.epsilon  # spent privacy grows per epoch


def test_dp_learns_but_noise_hurts():
    X, y = data(n=600)
    cfg = TrainConfig(epochs=3, batch_size=100, lr=0.2, optimizer="sgd", momentum=0.5)
    weak = train(model(), (X, y), config=cfg, dp=DPConfig(target_epsilon=20.0, delta=1e-4), val=(X, y), progress=False)
    strong = train(model(), (X, y), config=cfg, dp=DPConfig(noise_multiplier=50.0, delta=1e-4), val=(X, y), progress=False)
    assert weak.metrics["accuracy"] > 0.75  # chance is ~0.5
    assert strong.metrics["accuracy"] < weak.metrics["accuracy"]
    assert strong.epsilon < weak.epsilon


@pytest.mark.parametrize("engine", ["fast", "opacus-hooks"])
def test_noise_has_std_sigma_c_over_batch_on_every_parameter(engine):
    """With a loss of zero gradient, one SGD step (lr 1) moves every parameter by -N(0, (sigma C / B)^2) alone.

    Checked for the fast engine and, as the reference semantics, for Opacus; every coordinate, embedding
    rows the batch never used included, must get noise.
    """
    X, y = tokens(n=64)
    torch.manual_seed(0)
    m = BagOfEmbeddings(12_000, dim=16, n_classes=2)
    before = [p.detach().clone() for p in m.parameters()]
    sigma, clip, batch = 2.0, 0.5, 64
    train(m, (X, y), config=TrainConfig(epochs=1, batch_size=batch, lr=1.0, optimizer="sgd", seed=3),
          dp=DPConfig(noise_multiplier=sigma, max_grad_norm=clip, poisson_sampling=False, engine=engine),
          loss_fn=lambda logits, target, idx: (logits * 0).sum() / len(target), progress=False)
    moves = torch.cat([(b - p.detach()).flatten() for b, p in zip(before, m.parameters())]).double()
    expected = sigma * clip / batch
    assert (moves != 0).all()
    assert abs(float(moves.mean())) < 5 * expected / math.sqrt(len(moves))
    assert float(moves.std()) == pytest.approx(expected, rel=5 / math.sqrt(2 * len(moves)))


def test_noise_prefetch_changes_nothing_but_where_the_noise_is_drawn():
    X, y = tokens()
    cfg = TrainConfig(epochs=2, batch_size=32, lr=0.05, seed=4)
    runs = []
    for prefetch in (False, True):
        torch.manual_seed(0)
        m = BagOfEmbeddings(30, dim=8, n_classes=2)
        res = train(m, (X, y), config=cfg, dp=DPConfig(noise_multiplier=1.0, noise_prefetch=prefetch), progress=False)
        runs.append(torch.cat([p.detach().flatten() for p in m.parameters()]))
        assert all(row["cpu_seconds"] > 0 for row in res.history.epochs) and res.cpu_seconds_per_epoch > 0
    assert torch.equal(runs[0], runs[1])
    assert not [t for t in __import__("threading").enumerate() if t.name == "dp-noise"]  # the thread was stopped


def test_gru_trains_with_fast_engine():
    X, y = tokens()
    torch.manual_seed(0)
    m = RecurrentClassifier(30, dim=8, hidden=8, n_classes=2)
    res = train(m, (X, y), config=TrainConfig(epochs=1, batch_size=40), dp=DPConfig(noise_multiplier=1.0), val=(X, y), progress=False)
    assert res.engine == "fast" and math.isfinite(res.metrics["loss"]) and res.steps == 4


def test_unsupported_layers_rejected_with_clear_errors():
    X, y = data()
    bn = nn.Sequential(nn.Linear(5, 4), nn.BatchNorm1d(4), nn.Linear(4, 2))
    with pytest.raises(UnsupportedLayerError, match="BatchNorm1d"):
        train(bn, (X, y), config=TrainConfig(epochs=1), dp=DPConfig(noise_multiplier=1.0), progress=False)
    with pytest.raises(ValueError, match="BatchNorm"):
        train(bn, (X, y), config=TrainConfig(epochs=1), dp=DPConfig(noise_multiplier=1.0, engine="opacus-hooks"), progress=False)
    with pytest.raises(ValueError, match="'dp'"):
        train(model(), (X, y), dp={"noise_multiplier": 1.0}, progress=False)


def test_privacy_schedule_uses_opacus_sample_rate_convention():
    s = privacy_schedule(1000, config=TrainConfig(epochs=2, batch_size=300), dp=DPConfig(noise_multiplier=1.0))
    assert s["steps_per_epoch"] == 4 and s["sample_rate"] == 0.25 and s["steps"] == 8


def test_epsilon_sweep_records_and_resumes(tmp_path):
    X, y = data(n=200)
    calls = []

    def make():
        calls.append(1)
        return model()

    cfg = TrainConfig(epochs=1, batch_size=50, lr=0.05)
    first = epsilon_sweep(make, (X, y), epsilons=[1, 8], config=cfg, dp=DPConfig(target_epsilon=1, delta=1e-3), val=(X, y),
                          output_dir=tmp_path)
    assert len(calls) == 3 and not first["resumed"].any()
    assert first["epsilon"].iloc[1] <= 1 and first["epsilon"].iloc[2] <= 8 and first["epsilon"].isna().iloc[0]
    again = epsilon_sweep(make, (X, y), epsilons=[1, 8, 4], config=cfg, dp=DPConfig(target_epsilon=1, delta=1e-3), val=(X, y),
                          output_dir=tmp_path)
    assert len(calls) == 4 and again["resumed"].tolist() == [True, True, True, False]
    assert again["val_accuracy"].iloc[1] == first["val_accuracy"].iloc[1]
    assert (tmp_path / "eps=4" / "record.json").exists()


def test_panel_shows_schedule_and_trains_on_click():
    pytest.importorskip("ipywidgets")
    from workbench.widgets.privacy import dp_panel

    X, y = data(n=200)
    panel = dp_panel(model, (X, y), val=(X, y), config=TrainConfig(epochs=1, batch_size=50),
                     dp=DPConfig(target_epsilon=2.0, delta=1e-3))
    controls, info, out = panel.children
    eps_slider, clip_slider, button = controls.children
    assert "sigma" in info.value
    before = info.value
    eps_slider.value = 8.0  # more budget -> less noise, recomputed without training
    assert info.value != before
    button.click()
    assert list(panel.runs) == ["eps=8, C=1"] and len(panel.runs["eps=8, C=1"]) == 1 and not button.disabled


def test_figures_build_from_results():
    import pandas as pd

    from workbench.plots import privacy as plots

    df = pd.DataFrame({"model": ["m", "m"], "engine": ["fast", "opacus-hooks"], "slowdown": [1.1, float("nan")]})
    assert len(plots.overhead_figure(df).data) == 2
    grid = pd.DataFrame({"noise_multiplier": [1.0, 1.0, 2.0], "max_grad_norm": [0.1, 1.0, 1.0], "val_accuracy": [0.5, 0.6, 0.55]})
    assert len(plots.clip_norm_figure(grid).data) == 2
    fig = plots.grad_norm_histogram({"a": [0.5, 2.0]}, clip=1.0)
    assert len(fig.data) == 1 and len(fig.layout.shapes) == 1
    assert len(plots.epsilon_vs_noise_figure({"rdp": ([1, 2], [3.0, 1.0])}).data) == 1
