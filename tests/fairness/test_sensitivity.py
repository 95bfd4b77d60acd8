"""Prediction sensitivity: closed-form Jacobian of a softmax-linear model, finite differences for an MLP,
invariants (zero when the classifier ignores the protected features, scale invariance of the weights),
and the link to counterfactual gaps on a planted example."""
import numpy as np
import pytest
import torch
from torch import nn

from workbench.fairness.sensitivity import (
    accumulated_prediction_sensitivity,
    compare_with_counterfactual,
    feature_weights,
    fit_protected_model,
    linear_feature_weights,
    prediction_jacobian,
    prediction_sensitivity,
)
from workbench.models import MLP


def _linear(W, b):
    m = nn.Linear(W.shape[1], W.shape[0])
    with torch.no_grad():
        m.weight.copy_(torch.as_tensor(W, dtype=torch.float32))
        m.bias.copy_(torch.as_tensor(b, dtype=torch.float32))
    return m


def test_jacobian_of_softmax_linear_is_closed_form():
    rng = np.random.default_rng(0)
    W, b = rng.normal(size=(3, 5)), rng.normal(size=3)
    X = rng.normal(size=(7, 5)).astype(np.float32)
    jac = prediction_jacobian(_linear(W, b), X)
    for x, J in zip(X.astype(float), jac):
        z = W @ x + b
        p = np.exp(z - z.max()); p /= p.sum()
        expected = (np.diag(p) - np.outer(p, p)) @ W
        np.testing.assert_allclose(J, expected, atol=1e-5)


def test_jacobian_matches_finite_differences_for_an_mlp():
    torch.manual_seed(0)
    model = MLP(in_features=4, hidden=(16,), out_features=3).double()
    X = torch.randn(5, 4, dtype=torch.float64)
    jac = prediction_jacobian(model.float(), X.float())
    model = model.double()
    eps = 1e-6
    for n in range(len(X)):
        for i in range(4):
            d = torch.zeros(4, dtype=torch.float64); d[i] = eps
            with torch.no_grad():
                fd = (torch.softmax(model(X[n:n+1] + d), -1) - torch.softmax(model(X[n:n+1] - d), -1)) / (2 * eps)
            np.testing.assert_allclose(jac[n, :, i], fd[0].numpy(), atol=2e-4)


def test_ps_formula_and_batching():
    rng = np.random.default_rng(1)
    clf = _linear(rng.normal(size=(3, 6)), rng.normal(size=3))
    X = rng.normal(size=(50, 6))
    w = rng.normal(size=6)
    v = np.abs(w) / np.abs(w).sum()
    jac = prediction_jacobian(clf, X)
    expected = np.array([np.ones(3) @ np.abs(J) @ v for J in jac])
    np.testing.assert_allclose(prediction_sensitivity(clf, X, protected=w), expected, rtol=1e-6)
    np.testing.assert_allclose(prediction_sensitivity(clf, X, protected=w, batch_size=7), expected, rtol=1e-6)
    res = accumulated_prediction_sensitivity(clf, X, protected=w)
    assert res.aps == pytest.approx(expected.mean())
    # weights are scale invariant: multiplying the protected model's weights changes nothing
    np.testing.assert_allclose(prediction_sensitivity(clf, X, protected=-10 * w), expected, rtol=1e-6)


def test_zero_when_classifier_ignores_protected_features():
    rng = np.random.default_rng(2)
    W = rng.normal(size=(3, 6)); W[:, 3:] = 0.0           # classifier reads features 0-2 only
    protected = np.r_[np.zeros(3), rng.normal(size=3)]    # group lives in features 3-5 only
    X = rng.normal(size=(20, 6))
    assert accumulated_prediction_sensitivity(_linear(W, np.zeros(3)), X, protected=protected).aps == pytest.approx(0.0, abs=1e-9)


def test_more_reliance_on_the_group_direction_means_more_sensitivity():
    rng = np.random.default_rng(3)
    X = rng.normal(size=(300, 4))
    gender = np.where(X[:, 3] + 0.1 * rng.normal(size=300) > 0, "f", "m")
    g = fit_protected_model(X, gender)
    v = linear_feature_weights(g)
    assert v.argmax() == 3 and v.sum() == pytest.approx(1.0)
    base = np.array([[2.0, 0.0, 0.0, 0.0], [-2.0, 0.0, 0.0, 0.0]])
    apss = []
    for leak in (0.0, 0.5, 1.0, 2.0):
        W = base.copy(); W[0, 3], W[1, 3] = leak, -leak
        apss.append(accumulated_prediction_sensitivity(_linear(W, [0, 0]), X, protected=g).aps)
    assert all(a < b for a, b in zip(apss, apss[1:]))


def test_torch_protected_model_weights_per_example():
    rng = np.random.default_rng(4)
    w = rng.normal(size=5)
    lin = _linear(w[None, :], [0.3])
    X = rng.normal(size=(8, 5))
    v = feature_weights(lin, X)
    assert v.shape == (8, 5)
    np.testing.assert_allclose(v, np.tile(linear_feature_weights(w), (8, 1)), rtol=1e-5)
    two = _linear(np.stack([np.zeros(5), w]), [0.0, 0.0])   # two-logit form gives the same weights
    np.testing.assert_allclose(feature_weights(two, X), v, rtol=1e-5)
    clf = _linear(rng.normal(size=(3, 5)), np.zeros(3))
    np.testing.assert_allclose(prediction_sensitivity(clf, X, protected=lin), prediction_sensitivity(clf, X, protected=w), rtol=1e-5)


def test_sensitivity_tracks_counterfactual_gap_on_a_planted_case():
    # features: 0-2 content, 3 = gender; the counterfactual flips feature 3 between +-0.05. A non-linear
    # classifier relies on feature 3 differently per example; to first order the counterfactual gap is
    # 2 * 0.05 * PS(x) at the midpoint x3 = 0, so the two must rank examples (almost) identically.
    rng = np.random.default_rng(5)
    X = rng.normal(size=(200, 4)); X[:, 3] = rng.choice([-0.05, 0.05], size=200)
    X_cf = X.copy(); X_cf[:, 3] *= -1
    torch.manual_seed(0)
    clf = MLP(in_features=4, hidden=(32,), out_features=3)
    with torch.no_grad():
        p = torch.softmax(clf(torch.tensor(X, dtype=torch.float32)), -1).numpy()
        q = torch.softmax(clf(torch.tensor(X_cf, dtype=torch.float32)), -1).numpy()
    gap = np.abs(p - q).sum(1)
    X_mid = X.copy(); X_mid[:, 3] = 0.0
    ps = prediction_sensitivity(clf, X_mid, protected=np.array([0.0, 0.0, 0.0, 1.0]))
    corr = compare_with_counterfactual(ps, gap)
    assert corr["n"] == 200 and corr["spearman_rho"] > 0.95 and corr["spearman_p"] < 1e-6
    # first-order agreement in size too (ReLU kinks between the two points make single examples differ)
    assert np.median(gap / (2 * 0.05 * ps)) == pytest.approx(1.0, abs=0.1)


def test_bad_input():
    clf = _linear(np.ones((2, 3)), np.zeros(2))
    with pytest.raises(ValueError, match="2-D"):
        prediction_sensitivity(clf, np.zeros(3), protected=np.ones(3))
    with pytest.raises(ValueError, match="3 features"):
        prediction_sensitivity(clf, np.zeros((2, 3)), protected=np.ones(4))
    with pytest.raises(ValueError, match="all zero"):
        linear_feature_weights(np.zeros(3))
    with pytest.raises(ValueError, match="exactly two groups"):
        fit_protected_model(np.zeros((3, 2)), ["a", "b", "c"])
    with pytest.raises(ValueError, match="one counterfactual gap per sensitivity"):
        compare_with_counterfactual([1, 2, 3], [1, 2])
    assert np.isnan(compare_with_counterfactual([1, 1, 1], [1, 2, 3])["pearson_r"])


def test_encode_layers_matches_encode_texts(tmp_path, monkeypatch):
    # the features prediction sensitivity is computed on: one pass for several layers must give the
    # numbers encode_texts gives layer by layer, and fill the same cache entries
    monkeypatch.setenv("WORKBENCH_CACHE", str(tmp_path))
    from workbench.datasets import encode_texts
    from workbench.fairness.classifier import encode_layers

    texts = ["She feels angry.", "My brother made me feel happy today!", "ok"]
    feats = encode_layers(texts, layers=[0, 3, -1], progress=False)
    for layer, arr in feats.items():
        ref = encode_texts(texts, layer=layer, cache=False, progress=False)
        np.testing.assert_allclose(arr, ref, atol=1e-5)
        assert (encode_texts(texts, layer=layer, progress=False) == arr).all()  # served from the cache
    assert len(list((tmp_path / "features" / "minilm").glob("*.npy"))) == 3
