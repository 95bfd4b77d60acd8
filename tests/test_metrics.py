"""workbench.metrics: weighted ROC curves (sample_weight) and the batched form over a matrix of weights."""
import numpy as np
import pytest

from workbench import metrics


def _data(n=60, seed=0, ties=True):
    rng = np.random.default_rng(seed)
    scores = rng.integers(0, 12, n) / 4.0 if ties else rng.normal(size=n)  # heavy ties when ``ties``
    labels = rng.random(n) < 0.4
    labels[:2] = [True, False]
    return scores, labels


@pytest.mark.parametrize("ties", [True, False])
def test_weighted_roc_curve_equals_the_curve_of_repeated_rows(ties):
    s, y = _data(ties=ties)
    rng = np.random.default_rng(1)
    for _ in range(20):
        w = rng.integers(0, 4, len(s))
        w[:2] = 1  # keep both classes
        fpr, tpr, thr = metrics.roc_curve(s, y, sample_weight=w)
        rep = np.repeat(np.arange(len(s)), w)
        fpr_r, tpr_r, thr_r = metrics.roc_curve(s[rep], y[rep])
        np.testing.assert_allclose(fpr, fpr_r, rtol=0, atol=1e-12)
        np.testing.assert_allclose(tpr, tpr_r, rtol=0, atol=1e-12)
        np.testing.assert_array_equal(thr, thr_r)
        assert metrics.curve_auc(fpr, tpr=tpr) == pytest.approx(metrics.roc_auc(s[rep], y[rep]), abs=1e-12)


def test_unit_weights_change_nothing():
    s, y = _data()
    plain = metrics.roc_curve(s, y)
    weighted = metrics.roc_curve(s, y, sample_weight=np.ones(len(s)))
    for a, b in zip(plain, weighted):
        np.testing.assert_array_equal(a, b)


def test_roc_curves_rows_equal_the_one_dimensional_function():
    s, y = _data(n=80)
    rng = np.random.default_rng(2)
    W = rng.integers(0, 3, size=(50, len(s))).astype(float)
    W[:, :2] = 1
    fpr, tpr, thr = metrics.roc_curves(s, y, sample_weight=W)
    assert fpr.shape == tpr.shape == (50, len(thr))
    aucs = metrics.curve_auc(fpr, tpr=tpr)
    for target in (0.0, 0.05, 0.3):
        tprs = metrics.tpr_at_fpr(fpr, tpr=tpr, target=target)
        for b in range(len(W)):
            f1, t1, _ = metrics.roc_curve(s, y, sample_weight=W[b])
            assert tprs[b] == metrics.tpr_at_fpr(f1, tpr=t1, target=target)
    for b in range(len(W)):
        rep = np.repeat(np.arange(len(s)), W[b].astype(int))
        assert aucs[b] == pytest.approx(metrics.roc_auc(s[rep], y[rep]), abs=1e-12)


def test_roc_curves_row_without_positive_weight_is_nan():
    s, y = np.array([0.9, 0.8, 0.1]), np.array([1, 0, 0])
    fpr, tpr, _ = metrics.roc_curves(s, y, sample_weight=[[1, 1, 1], [0, 2, 1]])
    aucs = metrics.curve_auc(fpr, tpr=tpr)
    assert aucs[0] == 1.0 and np.isnan(aucs[1])
    assert np.isnan(metrics.tpr_at_fpr(fpr, tpr=tpr, target=0.1)[1])


@pytest.mark.parametrize("weight, message", [
    ([1, -1, 1], "finite and >= 0"),
    ([1, 1], "one entry per score"),
    ([0, 1, 1], "both positives and negatives with positive weight"),
    ([[1, 1, 1]], "must be 1-D"),
])
def test_roc_curve_rejects_bad_weights(weight, message):
    with pytest.raises(ValueError, match=message):
        metrics.roc_curve([0.3, 0.2, 0.1], [1, 0, 0], sample_weight=weight)


def test_roc_curves_needs_a_matrix():
    with pytest.raises(ValueError, match=r"\(B, n\) matrix"):
        metrics.roc_curves([0.3, 0.2], [1, 0], sample_weight=[1, 1])
