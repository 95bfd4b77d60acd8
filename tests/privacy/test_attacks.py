"""Membership inference: ROC metrics against scikit-learn and closed forms, LiRA on synthetic Gaussians with
a known optimum, real shadow-model attacks on an overfit MLP, and the (epsilon, delta)-DP region."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.stats import norm
from sklearn.metrics import roc_auc_score
from sklearn.metrics import roc_curve as sk_roc_curve

from workbench.privacy import attacks as A

pytestmark = pytest.mark.usefixtures("one_torch_thread")  # tiny models: one thread is fastest


# ------------------------------------------------------------------------------------------- ROC metrics
def test_auc_matches_sklearn_when_members_have_lower_loss():
    rng = np.random.default_rng(0)
    member = rng.random(2000) < 0.5
    losses = np.where(member, rng.exponential(0.5, 2000), rng.exponential(1.0, 2000)).round(2)  # rounding: ties
    r = A.loss_threshold_attack(losses, is_member=member)
    assert r.auc == pytest.approx(roc_auc_score(member, -losses), abs=1e-12)
    fpr, tpr, thr = sk_roc_curve(member, -losses, drop_intermediate=False)
    np.testing.assert_allclose(r.fpr, fpr)
    np.testing.assert_allclose(r.tpr, tpr)
    np.testing.assert_allclose(r.thresholds[1:], thr[1:])
    assert r.auc > 0.6  # members do have lower loss


def test_auc_closed_form_for_gaussian_scores():
    # member loss ~ N(0, 1), non-member ~ N(d, 1): AUC = Phi(d / sqrt(2))
    rng = np.random.default_rng(1)
    n, d = 20000, 1.0
    member = np.r_[np.ones(n, bool), np.zeros(n, bool)]
    losses = np.r_[rng.normal(0, 1, n), rng.normal(d, 1, n)]
    assert A.loss_threshold_attack(losses, is_member=member).auc == pytest.approx(norm.cdf(d / np.sqrt(2)), abs=0.01)


def test_tpr_at_low_fpr_on_hand_made_scores():
    nonmembers = np.arange(1000.0)                      # 0 .. 999
    members = np.r_[np.full(10, 2000.0), np.full(10, 995.5), np.full(80, -1.0)]
    scores = np.r_[members, nonmembers]
    member = np.r_[np.ones(100, bool), np.zeros(1000, bool)]
    r = A.evaluate_scores(scores, is_member=member)
    # FPR <= 0.1%: threshold just above 998 -> 1 non-member (999) and the 10 top members: TPR = 0.10
    assert r.tpr_at[0.001] == pytest.approx(0.10)
    # FPR <= 1%: 995.5 lets 4 non-members through (FPR 0.4%); the next members are below every non-member
    assert r.tpr_at[0.01] == pytest.approx(0.20)
    assert r.summary()["tpr_at_fpr_0.001"] == pytest.approx(0.10)
    assert r.summary()["tpr_at_fpr_0.01"] == pytest.approx(0.20)
    # zero FPR: only the 10 members above every non-member
    assert A.tpr_at_fpr(r.fpr, tpr=r.tpr, target=0.0) == pytest.approx(0.10)


def test_loss_and_confidence_transforms_match_direct_formulas():
    torch.manual_seed(0)
    logits = torch.randn(50, 4, dtype=torch.float64) * 3
    y = torch.randint(0, 4, (50,))
    loss = A.per_example_loss(logits, labels=y)
    np.testing.assert_allclose(loss, torch.nn.functional.cross_entropy(logits, y, reduction="none").numpy(), rtol=1e-10)
    p = torch.softmax(logits, 1)[torch.arange(50), y].numpy()
    np.testing.assert_allclose(A.logit_confidence(logits, labels=y), np.log(p / (1 - p)), rtol=1e-8, atol=1e-10)
    # stable where the naive formula overflows (p rounds to 1.0)
    phi = A.logit_confidence(np.array([[60.0, 0.0, 0.0]]), labels=np.array([0]))
    assert phi[0] == pytest.approx(60 - np.log(2))


# ------------------------------------------------------------------------------------------- LiRA
def _synthetic_phi(*, n=4000, k=16, seed=0, shift=1.0, noise=0.5):
    """phi_ij = difficulty_i + shift * in_ij + noise: the in/out Gaussians LiRA assumes, with known parameters."""
    rng = np.random.default_rng(seed)
    difficulty = rng.normal(0, 3, n)
    keep = A.random_halves(n, k=k, seed=seed)
    shadow_phi = difficulty + shift * keep + rng.normal(0, noise, (k, n))
    member = rng.random(n) < 0.5
    target_phi = difficulty + shift * member + rng.normal(0, noise, n)
    return target_phi, shadow_phi, keep, member


def test_lira_reaches_the_neyman_pearson_auc_on_gaussian_confidences():
    target_phi, shadow_phi, keep, member = _synthetic_phi()
    optimum = norm.cdf(1.0 / (0.5 * np.sqrt(2)))  # = 0.921: score phi - difficulty, classes 1/0.5 apart
    online = A.lira_attack(target_phi, shadow_phi=shadow_phi, shadow_in=keep, is_member=member, online=True)
    offline = A.lira_attack(target_phi, shadow_phi=shadow_phi, shadow_in=keep, is_member=member, online=False)
    per_example_var = A.lira_attack(target_phi, shadow_phi=shadow_phi, shadow_in=keep, is_member=member, online=True,
                                    fix_variance=False)
    global_threshold = A.evaluate_scores(target_phi, is_member=member)  # uncalibrated: difficulty swamps membership
    assert online.auc == pytest.approx(optimum, abs=0.02)
    assert offline.auc == pytest.approx(optimum, abs=0.03)
    assert per_example_var.auc == pytest.approx(optimum, abs=0.04)
    assert global_threshold.auc < 0.62
    assert online.tpr_at[0.01] > 5 * global_threshold.tpr_at[0.01] + 0.05


def test_lira_input_validation():
    target_phi, shadow_phi, keep, member = _synthetic_phi(n=20, k=4)
    with pytest.raises(ValueError, match="k >= 2"):
        A.lira_scores(target_phi, shadow_phi=shadow_phi[:1], shadow_in=keep[:1], online=True)
    with pytest.raises(ValueError, match="shape"):
        A.lira_scores(target_phi[:-1], shadow_phi=shadow_phi, shadow_in=keep)
    with pytest.raises(ValueError, match="is_member"):
        A.lira_attack(target_phi, shadow_phi=shadow_phi, shadow_in=keep, is_member=member[:-1])
    with pytest.raises(ValueError, match="both members and non-members"):
        A.evaluate_scores(target_phi, is_member=np.ones(20, bool))
    with pytest.raises(ValueError, match="did not train"):
        A.lira_scores(target_phi, shadow_phi=shadow_phi, shadow_in=np.ones_like(keep))
    with pytest.raises(ValueError, match="'k' parameter of random_halves"):
        A.random_halves(10, k=0)
    with pytest.raises(ValueError, match="names in"):
        A.run_attacks({"loss": target_phi, "phi": target_phi}, shadows=None, is_member=member, attacks=["nope"])
    with pytest.raises(ValueError, match="same length"):
        A.membership_inference(lambda X, y, seed: None, X=torch.zeros(10, 2), y=torch.zeros(9), k=2)
    with pytest.raises(ValueError, match="k >= 2"):
        A.membership_inference(lambda X, y, seed: None, X=torch.zeros(10, 2), y=torch.zeros(10), k=1)


def test_random_halves_are_balanced_and_seeded():
    keep = A.random_halves(101, k=6, seed=3)
    assert keep.shape == (6, 101) and (keep.sum(0) == 3).all()
    assert (A.random_halves(101, k=6, seed=3) == keep).all()
    assert not (A.random_halves(101, k=6, seed=4) == keep).all()


# ------------------------------------------------------------------------------------------- RMIA
def test_rmia_separable_by_construction_reaches_auc_one():
    # training lifts a member's confidence by 6 logits over what the reference models give it; non-members get
    # exactly the reference level (difficulties of spread 1, so probabilities do not saturate)
    rng = np.random.default_rng(1)
    n, k = 2000, 8
    difficulty = rng.normal(0, 1, n)
    keep = A.random_halves(n, k=k, seed=1)
    shadow_phi = difficulty + 6.0 * keep + rng.normal(0, 0.3, (k, n))
    member = rng.random(n) < 0.5
    target_phi = difficulty + 6.0 * member + rng.normal(0, 0.3, n)
    for online in (True, False):
        r = A.rmia_attack(target_phi, shadow_phi=shadow_phi, shadow_in=keep, is_member=member, online=online)
        assert r.auc > 0.99, (online, r.auc)
        assert r.tpr_at[0.01] > 0.9, (online, r.tpr_at)


def test_rmia_loses_what_saturated_probabilities_hide():
    # with difficulties of spread 3 many examples sit at p ~ 1 in and out: RMIA (probabilities) falls behind
    # LiRA (logit-scaled), the reason LiRA works on phi = log(p / (1 - p))
    target_phi, shadow_phi, keep, member = _synthetic_phi(n=2000, k=8, shift=6.0, noise=0.5, seed=1)
    rmia = A.rmia_attack(target_phi, shadow_phi=shadow_phi, shadow_in=keep, is_member=member)
    lira = A.lira_attack(target_phi, shadow_phi=shadow_phi, shadow_in=keep, is_member=member)
    assert lira.tpr_at[0.001] == 1.0 and rmia.tpr_at[0.001] < 0.9


def test_rmia_on_identical_distributions_is_chance():
    rng = np.random.default_rng(5)
    n, k = 4000, 8
    difficulty = rng.normal(0, 3, n)
    keep = A.random_halves(n, k=k, seed=5)
    shadow_phi = difficulty + rng.normal(0, 0.5, (k, n))      # training changes nothing: no member signal
    member = rng.random(n) < 0.5
    target_phi = difficulty + rng.normal(0, 0.5, n)
    for online in (True, False):
        r = A.rmia_attack(target_phi, shadow_phi=shadow_phi, shadow_in=keep, is_member=member, online=online)
        assert abs(r.auc - 0.5) < 0.03, (online, r.auc)      # standard error 0.009


def test_rmia_score_is_the_fraction_of_population_dominated():
    rng = np.random.default_rng(2)
    k, n = 4, 30
    shadow_phi, keep = rng.normal(size=(k, n)), A.random_halves(n, k=k, seed=2)
    target_phi = rng.normal(size=n)
    gamma = 1.5
    p_t = 1 / (1 + np.exp(-target_phi))
    p_ref = 1 / (1 + np.exp(-shadow_phi))
    p_x = (np.where(keep, p_ref, 0).sum(0) / keep.sum(0) + np.where(~keep, p_ref, 0).sum(0) / (~keep).sum(0)) / 2
    ratio = p_t / p_x
    brute = np.array([np.mean([ratio[i] / ratio[j] >= gamma for j in range(n) if j != i]) for i in range(n)])
    scores = A.rmia_scores(target_phi, shadow_phi=shadow_phi, shadow_in=keep, gamma=gamma)
    np.testing.assert_allclose(scores, brute)
    # offline: Pr(x) = ((1 + a) Pr_out(x) + 1 - a) / 2, population given as a mask
    a, pop = 0.4, np.arange(n) % 3 == 0
    p_x_off = ((1 + a) * np.where(~keep, p_ref, 0).sum(0) / (~keep).sum(0) + 1 - a) / 2
    r_off = p_t / p_x_off
    z = np.flatnonzero(pop)
    brute = np.array([np.mean([r_off[i] / r_off[j] >= 1.0 for j in z if j != i]) for i in range(n)])
    scores = A.rmia_scores(target_phi, shadow_phi=shadow_phi, shadow_in=keep, online=False, offline_a=a, population=pop)
    np.testing.assert_allclose(scores, brute)


def test_rmia_matches_lira_on_gaussian_confidences_and_validates_input():
    target_phi, shadow_phi, keep, member = _synthetic_phi(k=4)
    rmia = A.rmia_attack(target_phi, shadow_phi=shadow_phi, shadow_in=keep, is_member=member)
    lira = A.lira_attack(target_phi, shadow_phi=shadow_phi, shadow_in=keep, is_member=member)
    assert rmia.auc > 0.8 and abs(rmia.auc - lira.auc) < 0.1, (rmia.auc, lira.auc)
    with pytest.raises(ValueError, match="'gamma' parameter of rmia_scores must be a float > 0"):
        A.rmia_scores(target_phi, shadow_phi=shadow_phi, shadow_in=keep, gamma=0)
    with pytest.raises(ValueError, match="'offline_a' parameter of rmia_scores must be a float in \\[0, 1\\]"):
        A.rmia_scores(target_phi, shadow_phi=shadow_phi, shadow_in=keep, online=False, offline_a=2.0)
    with pytest.raises(ValueError, match="trained on each candidate"):
        A.rmia_scores(target_phi, shadow_phi=shadow_phi, shadow_in=np.zeros_like(keep))
    with pytest.raises(ValueError, match="'population' parameter of rmia_scores"):
        A.rmia_scores(target_phi, shadow_phi=shadow_phi, shadow_in=keep, population=[len(target_phi)])


# ------------------------------------------------------------------------------------------- real models


EPOCHS, BATCH = 40, 25


def _pool(n=200, d=20, seed=0):
    g = torch.Generator().manual_seed(seed)
    X = torch.randn(n, d, generator=g)
    y = (X[:, 0] > 0).long()
    flip = torch.rand(n, generator=g) < 0.3  # noisy labels: only memorisation fits them
    return X, torch.where(flip, 1 - y, y)


def _mlp():
    from workbench.models import MLP

    return MLP(in_features=20, hidden=(128,), out_features=2)


def _train_plain(X, y, *, seed):
    from workbench.training import TrainConfig, fit

    torch.manual_seed(seed)
    model = _mlp()
    fit(model, (X, y), config=TrainConfig(epochs=EPOCHS, batch_size=BATCH, lr=3e-3, seed=seed), progress=False)
    return model


@pytest.fixture(scope="module")
def plain_report():
    X, y = _pool()
    return A.membership_inference(_train_plain, X=X, y=y, k=8, seed=0)


def test_attacks_beat_random_guessing_on_an_overfit_model(plain_report):
    s = {name: r.auc for name, r in plain_report.results.items()}
    # noisy labels memorised: the loss attack is already strong, LiRA at least as good
    assert s["loss"] > 0.75
    assert s["lira-online"] > 0.75 and s["lira-offline"] > 0.7 and s["reference"] > 0.7
    assert s["rmia-online"] > 0.75 and s["rmia-offline"] > 0.7
    assert plain_report.results["lira-online"].tpr_at[0.01] > 0.05
    assert plain_report.is_member.sum() == 100
    assert plain_report.shadows.keep.sum(0).tolist() == [4] * 200


def test_dp_training_pushes_attacks_toward_chance_and_respects_the_bound(plain_report):
    from workbench.privacy.accounting import noise_for_epsilon
    from workbench.privacy.dp import DPConfig, train
    from workbench.training import TrainConfig

    eps_target, delta = 0.5, 1e-3
    # every model trains on 100 examples in batches of 25 for 40 epochs: q = 1/4, 160 steps; one noise search
    sigma = noise_for_epsilon(target_epsilon=eps_target, sample_rate=0.25, steps=4 * EPOCHS, delta=delta)

    def train_dp(X, y, *, seed):
        torch.manual_seed(seed)
        res = train(_mlp(), (X, y), config=TrainConfig(epochs=EPOCHS, batch_size=BATCH, lr=3e-3, seed=seed),
                    dp=DPConfig(noise_multiplier=sigma, delta=delta, max_grad_norm=1.0), progress=False)
        return res.model, {"epsilon": res.epsilon}

    X, y = _pool()
    report = A.membership_inference(train_dp, X=X, y=y, k=8, seed=0)
    assert report.target_info["epsilon"] == pytest.approx(eps_target, rel=0.05)
    # no attack can beat AUC 0.62 against a (0.5, 1e-3)-DP model; with 100 + 100 candidates the AUC's
    # standard error under the null is 0.04, so allow 0.15 (measured at this seed: 0.49-0.57)
    assert A.dp_auc_bound(epsilon=eps_target, delta=delta) == pytest.approx(0.623, abs=1e-3)
    for name, r in report.results.items():
        assert abs(r.auc - 0.5) < 0.15, (name, r.auc)
        assert abs(r.auc - 0.5) < abs(plain_report.results[name].auc - 0.5) - 0.15, name
        check = A.bound_violations(r, epsilon=eps_target, delta=delta)
        assert check["n_violations_ci"] == 0, (name, check)
        assert A.empirical_epsilon(r, delta=delta) <= eps_target
    # the non-DP model leaks far more than a 0.5-DP model could
    assert A.bound_violations(plain_report.results["lira-online"], epsilon=eps_target, delta=delta)["n_violations_ci"] > 0


# ------------------------------------------------------------------------------------------- DP region
def test_dp_bound_closed_forms():
    f = np.linspace(0, 1, 11)
    np.testing.assert_allclose(A.dp_tpr_bound(f, epsilon=0.0, delta=0.0), f)            # no advantage at all
    np.testing.assert_allclose(A.dp_tpr_bound(f, epsilon=0.0, delta=0.1), np.minimum(f + 0.1, 1))
    b = A.dp_tpr_bound(f, epsilon=np.log(3), delta=0.0)
    np.testing.assert_allclose(b, np.minimum(3 * f, 1 - (1 - f) / 3))                   # two lines meet at 1/4
    assert b[1] == pytest.approx(0.3) and b[9] == pytest.approx(1 - 0.1 / 3)
    with pytest.raises(ValueError, match="'delta' parameter of dp_tpr_bound"):
        A.dp_tpr_bound(f, epsilon=1.0, delta=1.5)


def test_randomized_response_sits_on_the_bound_and_empirical_epsilon_recovers_it():
    # eps-DP randomized response: a member answers 1 w.p. e^eps/(1+e^eps), a non-member w.p. 1/(1+e^eps)
    eps, n = 1.0, 200_000
    rng = np.random.default_rng(0)
    p = np.exp(eps) / (1 + np.exp(eps))
    member = np.r_[np.ones(n, bool), np.zeros(n, bool)]
    answer = np.where(member, rng.random(2 * n) < p, rng.random(2 * n) < 1 - p).astype(float)
    r = A.evaluate_scores(answer, is_member=member)
    point = r.fpr[1], r.tpr[1]
    assert point[1] == pytest.approx(A.dp_tpr_bound(point[0], epsilon=eps, delta=0.0), abs=0.005)
    assert A.empirical_epsilon(r, delta=0.0, confidence_interval=False) == pytest.approx(eps, abs=0.02)
    certified = A.empirical_epsilon(r, delta=0.0)
    assert 0.95 < certified <= eps
    assert A.bound_violations(r, epsilon=eps, delta=0.0)["n_violations_ci"] == 0
    # the same data claimed as 0.8-DP: a real violation, far beyond sampling error
    assert A.bound_violations(r, epsilon=0.8, delta=0.0)["n_violations_ci"] > 0
