"""One training loop for every engine; a noise multiplier that changes by epoch, applied and accounted exactly."""
import math

import numpy as np
import pytest
import torch

from workbench.models import MLP
from workbench.privacy.accounting import compose_epsilon, compute_epsilon
from workbench.privacy.dp import DPConfig, privacy_schedule, train
from workbench.privacy.noise import noise_schedule
from workbench.textmodels import BagOfEmbeddings
from workbench.training import GradientStep, TrainConfig, fit, train_loop

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


def data(n=200, d=4):
    g = torch.Generator().manual_seed(0)
    X = torch.randn(n, d, generator=g)
    return X, (X[:, 0] > 0).long()


def test_train_config_is_validated_declaratively():
    assert TrainConfig(epochs=np.int64(3), batch_size=np.int32(8), lr=np.float32(0.5)).epochs == 3
    assert type(TrainConfig(epochs=np.int64(3)).epochs) is int
    for kwargs, name in [(dict(lr=float("inf")), "'lr'"), (dict(lr="0.1"), "'lr'"), (dict(lr=float("nan")), "'lr'"),
                         (dict(epochs=2.0), "'epochs'"), (dict(batch_size=True), "'batch_size'"),
                         (dict(optimizer="rmsprop"), "'optimizer'"), (dict(momentum=1.0), "'momentum'"),
                         (dict(weight_decay=-1), "'weight_decay'")]:
        with pytest.raises(ValueError, match=f"{name} parameter of TrainConfig"):
            TrainConfig(**kwargs)
    with pytest.raises(TypeError, match="'lr' parameter of TrainConfig must be a float > 0. Got '0.1' instead."):
        TrainConfig(lr="0.1")


def test_dp_config_accepts_numpy_scalars_and_names_bad_schedules():
    cfg = DPConfig(noise_multiplier=np.float64(1.5), delta=np.float32(1e-5), noise_schedule=[np.float64(1.0), 0.5])
    assert type(cfg.noise_multiplier) is float and cfg.noise_schedule == (1.0, 0.5)
    for bad in [(), (1.0, 0.0), (1.0, -2), "decay", (1.0, float("inf"))]:
        with pytest.raises(ValueError, match="'noise_schedule' parameter of DPConfig"):
            DPConfig(noise_multiplier=1.0, noise_schedule=bad)
    with pytest.raises(ValueError, match="one factor per epoch \\(3\\)"):
        privacy_schedule(100, config=TrainConfig(epochs=3), dp=DPConfig(noise_multiplier=1.0, noise_schedule=(1.0, 0.5)))


def test_fit_is_the_loop_with_the_plain_hook():
    X, y = data()
    cfg = TrainConfig(epochs=2, batch_size=32, lr=0.1, seed=5)
    torch.manual_seed(0)
    a = MLP(in_features=4, out_features=2, hidden=(8,))
    torch.manual_seed(0)
    b = MLP(in_features=4, out_features=2, hidden=(8,))
    history = fit(a, (X, y), config=cfg, val=(X, y), progress=False)
    history_b, steps = train_loop(b, (X, y), config=cfg, step=GradientStep(), val=(X, y), progress=False)
    assert steps == 2 * math.ceil(200 / 32)
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))
    assert [r["train_loss"] for r in history.epochs] == [r["train_loss"] for r in history_b.epochs]


def test_the_loop_closes_its_hook_when_training_fails():
    closed = []

    class Failing(GradientStep):
        def gradients(self, inputs, targets, idx, loss_fn):
            raise RuntimeError("boom")

        def close(self):
            closed.append(True)

    with pytest.raises(RuntimeError, match="boom"):
        train_loop(MLP(in_features=4, out_features=2), data(), config=TrainConfig(epochs=1), step=Failing(), progress=False)
    assert closed == [True]


def test_bad_train_data_is_named():
    with pytest.raises(ValueError, match="'train' parameter of train must be a pair"):
        train(MLP(in_features=4, out_features=2), "tweets", progress=False)
    with pytest.raises(ValueError, match="as many labels as inputs"):
        train(MLP(in_features=4, out_features=2), (torch.zeros(3, 4), [0, 1]), progress=False)
    with pytest.raises(ValueError, match="'dp' parameter of train"):
        train(MLP(in_features=4, out_features=2), data(), dp={"noise_multiplier": 1.0}, progress=False)


@pytest.mark.parametrize("engine", ["fast", "opacus-hooks"])
def test_each_epoch_gets_its_own_noise_and_epsilon_composes_the_epochs(engine):
    """A zero-gradient loss (lr 1, SGD, one full batch per epoch): the parameters move by the two epochs' noise
    alone, of variance (C / B)^2 (sigma_1^2 + sigma_2^2); the per-epoch epsilon composes the epochs run so far.
    (Opacus ghost clipping wraps its own criterion, so this loss cannot be given to it; it shares OpacusStep's
    per-epoch noise setting with hooks.)"""
    X, y = torch.randint(2, 30, (64, 6)), torch.randint(0, 2, (64,))
    torch.manual_seed(0)
    m = BagOfEmbeddings(4000, dim=16, n_classes=2)
    before = torch.cat([p.detach().flatten() for p in m.parameters()]).clone()
    sigma, factors, clip, batch = 2.0, (1.0, 0.25), 0.5, 64
    dp = DPConfig(noise_multiplier=sigma, max_grad_norm=clip, poisson_sampling=False, engine=engine, noise_schedule=factors)
    res = train(m, (X, y), config=TrainConfig(epochs=2, batch_size=batch, lr=1.0, optimizer="sgd", seed=3), dp=dp,
                loss_fn=lambda logits, target, idx: (logits * 0).sum() / len(target), progress=False)
    moves = (torch.cat([p.detach().flatten() for p in m.parameters()]) - before).double()
    expected = clip / batch * sigma * math.sqrt(sum(f * f for f in factors))
    assert float(moves.std()) == pytest.approx(expected, rel=5 / math.sqrt(2 * len(moves)))
    constant = clip / batch * sigma * math.sqrt(2)  # what a constant noise would give: clearly different
    assert abs(float(moves.std()) - constant) > 0.1 * constant
    eps = [row["epsilon"] for row in res.history.epochs]
    assert eps[0] == compute_epsilon(noise_multiplier=sigma, sample_rate=1.0, steps=1, delta=1e-5)
    assert eps[1] == compose_epsilon([(sigma, 1.0, 1), (sigma * 0.25, 1.0, 1)], delta=1e-5)
    assert res.epsilon == eps[1] > eps[0]


def test_target_epsilon_with_a_decaying_schedule_is_met_exactly():
    X, y = data(n=400)
    cfg = TrainConfig(epochs=3, batch_size=40, lr=0.05)
    factors = noise_schedule("linear", epochs=3, final=0.5)
    res = train(MLP(in_features=4, out_features=2), (X, y), config=cfg,
                dp=DPConfig(target_epsilon=4.0, delta=1e-4, noise_schedule=factors), progress=False)
    assert 4.0 - 0.02 <= res.epsilon <= 4.0
    sched = privacy_schedule(400, config=cfg, dp=DPConfig(target_epsilon=4.0, delta=1e-4, noise_schedule=factors))
    assert sched["noise_multipliers"] == pytest.approx([res.noise_multiplier * f for f in factors])
    constant = privacy_schedule(400, config=cfg, dp=DPConfig(target_epsilon=4.0, delta=1e-4))
    # a decaying noise starts above the constant one and ends below it, for the same budget
    assert sched["noise_multipliers"][0] > constant["noise_multiplier"] > sched["noise_multipliers"][-1]


def test_constant_schedule_is_the_old_epsilon():
    cfg = TrainConfig(epochs=3, batch_size=50)
    a = privacy_schedule(1000, config=cfg, dp=DPConfig(noise_multiplier=1.1))
    b = privacy_schedule(1000, config=cfg, dp=DPConfig(noise_multiplier=1.1, noise_schedule=(1.0, 1.0, 1.0)))
    assert a["epsilon"] == b["epsilon"] == compute_epsilon(noise_multiplier=1.1, sample_rate=0.05, steps=60, delta=1e-5)


def test_per_layer_clipping_reaches_the_engine_and_changes_the_update():
    """Noise 0, one full batch, SGD: flat and per-layer clipping give different updates, per-layer equals the engine's own
    group-wise clipped sum."""
    from workbench.privacy.fast_dp import GhostClippingEngine

    X, y = data(n=32)
    results = {}
    for clipping in ("flat", "per_layer"):
        torch.manual_seed(0)
        m = MLP(in_features=4, out_features=2, hidden=(8,))
        torch.manual_seed(0)
        ref = MLP(in_features=4, out_features=2, hidden=(8,))
        train(m, (X, y), config=TrainConfig(epochs=1, batch_size=32, lr=1.0, optimizer="sgd"),
              dp=DPConfig(noise_multiplier=0.0, max_grad_norm=0.1, poisson_sampling=False, clipping=clipping), progress=False)
        engine = GhostClippingEngine(ref, max_grad_norm=0.1, clipping=clipping)
        engine.clipped_grad(X, y, scale=1.0 / 32)
        engine.remove()
        for p, q in zip(m.parameters(), ref.parameters()):
            assert torch.allclose(p.detach(), q.detach() - q.grad, atol=1e-6)
        results[clipping] = torch.cat([p.detach().flatten() for p in m.parameters()])
    assert not torch.allclose(results["flat"], results["per_layer"])
    with pytest.raises(ValueError, match="'clipping' parameter of DPConfig needs engine='fast'"):
        DPConfig(noise_multiplier=1.0, clipping="per_layer", engine="opacus-hooks")
    with pytest.raises(ValueError, match="'clipping' parameter of DPConfig"):
        DPConfig(noise_multiplier=1.0, clipping="per_block")
