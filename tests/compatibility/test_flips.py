"""Flip metrics: identities on hand-made and random cases, and a brute-force reference implementation."""
import numpy as np
import pytest

from workbench.compatibility import flips


def _random_case(seed, n=500, k=5):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, k, n)
    old = np.where(rng.random(n) < 0.7, y, rng.integers(0, k, n))
    new = np.where(rng.random(n) < 0.8, y, rng.integers(0, k, n))
    return y, old, new


@pytest.mark.parametrize("seed", range(5))
def test_error_difference_identity(seed):
    y, old, new = _random_case(seed)
    s = flips.flip_summary(y, old, new)
    # every sample is in exactly one cell: ER_new = ER_old - PFR + NFR
    assert s["pfr"] - s["nfr"] == pytest.approx(s["error_old"] - s["error_new"], abs=1e-12)
    # flips are changed predictions, so NFR + PFR cannot exceed the disagreement rate
    assert s["nfr"] + s["pfr"] <= s["changed"] + 1e-12
    # NFR <= min(ER_new, 1 - ER_old); NFI in [0, 1]
    assert s["nfr"] <= min(s["error_new"], 1 - s["error_old"]) + 1e-12
    assert 0 <= s["nfi"] <= 1


def test_binary_flips_equal_disagreement():
    # with two classes every changed prediction is a flip one way or the other
    y, old, new = _random_case(3, k=2)
    s = flips.flip_summary(y, old, new)
    assert s["nfr"] + s["pfr"] == pytest.approx(s["changed"])


def test_no_flips_when_predictions_identical():
    y, old, _ = _random_case(1)
    s = flips.flip_summary(y, old, old.copy())
    assert s["nfr"] == 0.0 and s["pfr"] == 0.0 and s["changed"] == 0.0
    assert s["error_old"] == s["error_new"]
    assert flips.negative_flip_matrix(y, old, old).sum() == 0
    assert flips.flipped_examples(y, old, old).empty


def test_hand_made_case():
    y = [0, 0, 1, 1, 2, 2, 2, 1]
    old = [0, 0, 1, 0, 2, 1, 2, 1]   # wrong on rows 3, 5
    new = [0, 1, 1, 1, 2, 2, 0, 2]   # wrong on rows 1, 6, 7
    s = flips.flip_summary(y, old, new)
    assert s["n_negative"] == 3 and s["n_positive"] == 2          # negative: 1, 6, 7; positive: 3, 5
    assert s["nfr"] == 3 / 8 and s["pfr"] == 2 / 8
    assert s["nfi"] == 1.0                                       # every new error is a regression
    assert s["relative_nfr"] == pytest.approx((3 / 8) / ((6 / 8) * (3 / 8)))
    table = flips.per_class_flips(y, old, new, classes=["a", "b", "c"])
    assert table["n_negative"].tolist() == [1, 1, 1]
    assert table["nfr"].tolist() == pytest.approx([1 / 2, 1 / 3, 1 / 3])
    assert table["share_of_negative_flips"].sum() == pytest.approx(1.0)
    m = flips.negative_flip_matrix(y, old, new)
    assert m[0, 1] == 1 and m[2, 0] == 1 and m[1, 2] == 1 and m.sum() == 3
    ex = flips.flipped_examples(y, old, new, kind="positive")
    assert ex["index"].tolist() == [3, 5]


@pytest.mark.parametrize("seed", range(3))
def test_against_brute_force_loop(seed):
    y, old, new = _random_case(seed, n=200, k=4)
    groups = np.random.default_rng(seed).integers(0, 3, len(y))
    table = flips.per_group_flips(y, old, new, groups)
    for g in range(3):
        rows = [i for i in range(len(y)) if groups[i] == g]
        neg = sum(1 for i in rows if old[i] == y[i] and new[i] != y[i])
        pos = sum(1 for i in rows if old[i] != y[i] and new[i] == y[i])
        assert table.loc[g, "n_negative"] == neg and table.loc[g, "n_positive"] == pos
        assert table.loc[g, "nfr"] == pytest.approx(neg / len(rows))
    assert table["n_negative"].sum() == flips.flip_summary(y, old, new)["n_negative"]
    # per-class table with all classes requested
    t = flips.per_class_flips(y, old, new, n_classes=6)
    assert len(t) == 6 and t.loc[5, "n"] == 0


def test_bad_inputs():
    with pytest.raises(ValueError, match="same length"):
        flips.flip_summary([0, 1], [0], [0, 1])
    with pytest.raises(ValueError, match="'kind'"):
        flips.flipped_examples([0], [0], [0], kind="regressions")
    with pytest.raises(ValueError, match="integer class ids"):
        flips.flip_summary([0.5], [0], [0])
