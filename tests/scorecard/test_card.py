"""The scorecard's measures against hand computations, the bootstrap's determinism and coverage, the table's shape."""
from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from workbench.compatibility import flips
from workbench.fairness import groups as fg
from workbench.scorecard import COLUMNS, ModelOutputs, ScorecardConfig, cumulative_flips, scorecard
from workbench.scorecard.bootstrap import percentile_interval, ratio_estimates, resample_indices, resample_weights
from workbench.validation import InvalidParameterError

# 8 rows, 3 classes; two groups by hand
Y = np.array([0, 0, 1, 1, 2, 2, 2, 0])
OLD = np.array([0, 1, 1, 1, 2, 0, 2, 0])  # right on 0, 2, 3, 4, 6, 7 -> 6/8
NEW = np.array([0, 0, 1, 2, 2, 2, 0, 1])  # right on 0, 1, 2, 4, 5 -> 5/8
GENDER = np.array(["female", "female", "female", "female", "male", "male", "male", ""])
OLD_SCORE = np.array([0.1, 0.6, 0.5, 0.4, 0.9, 0.3, 0.8, 0.2])
NEW_SCORE = np.array([0.2, 0.1, 0.5, 0.7, 0.9, 0.6, 0.4, 0.7])


def _card(**kw):
    cfg = ScorecardConfig(n_boot=200, seed=0, positive_class=2, negative_class=0)
    return scorecard(ModelOutputs(pred=OLD, score=OLD_SCORE), ModelOutputs(pred=NEW, score=NEW_SCORE), labels=Y,
                     groups={"gender": GENDER}, classes=["neg", "neu", "pos"], config=cfg, **kw)


def _row(card, measure, group="all", slice_="all"):
    rows = card[(card.measure == measure) & (card.group == group) & (card.slice == slice_)]
    assert len(rows) == 1, (measure, group, slice_)
    return rows.iloc[0]


def test_accuracy_and_flips_by_hand():
    card = _card()
    assert list(card.columns) == COLUMNS
    acc = _row(card, "accuracy")
    assert (acc.old, acc.new, acc.change) == pytest.approx((6 / 8, 5 / 8, -1 / 8))
    # negative flips: rows 3 (1 -> 2), 6 (2 -> 0), 7 (0 -> 1); positive flips: rows 1, 5
    assert _row(card, "nfr").new == pytest.approx(3 / 8)
    assert _row(card, "pfr").new == pytest.approx(2 / 8)
    assert _row(card, "nfi").new == pytest.approx(3 / 3)  # new wrong on 3, 6, 7: all negative flips
    assert np.isnan(_row(card, "nfr").old) and np.isnan(_row(card, "nfr").change)
    # per class: class 0 rows 0, 1, 7 -> one negative flip (7) of 3; class 2 rows 4, 5, 6 -> one (6) of 3
    assert _row(card, "nfr", "class", "neg").new == pytest.approx(1 / 3)
    assert _row(card, "nfr", "class", "pos").new == pytest.approx(1 / 3)
    assert _row(card, "pfr", "class", "pos").new == pytest.approx(1 / 3)
    # per group: female rows 0-3 -> flip at 3 (1/4); male rows 4-6 -> flip at 6 (1/3); row 7 has no gender
    assert _row(card, "nfr", "gender", "female").new == pytest.approx(1 / 4)
    assert _row(card, "nfr", "gender", "male").new == pytest.approx(1 / 3)
    assert _row(card, "accuracy", "gender", "male").old == pytest.approx(2 / 3)
    assert set(card[(card.group == "gender") & (card.dimension != "fairness")].slice) == {"female", "male"}
    assert _row(card, "nfr", "gender", "female").n == 4


def test_flips_agree_with_compatibility_module():
    card = _card()
    s = flips.flip_summary(Y, OLD, NEW)
    assert _row(card, "nfr").new == pytest.approx(s["nfr"])
    assert _row(card, "pfr").new == pytest.approx(s["pfr"])
    assert _row(card, "nfi").new == pytest.approx(s["nfi"])
    per = flips.per_class_flips(Y, OLD, NEW, classes=["neg", "neu", "pos"])
    for cls, name in enumerate(["neg", "neu", "pos"]):
        assert _row(card, "nfr", "class", name).new == pytest.approx(per.loc[cls, "nfr"])


def test_fairness_gaps_by_hand_and_against_group_metrics():
    card = _card()
    # mean score by gender (threshold 0.5): old female (0.1+0.6+0.5+0.4)/4 = 0.4, male (0.9+0.3+0.8)/3 = 2/3
    g = _row(card, "mean_score_gap", "gender")
    assert g.old == pytest.approx(2 / 3 - 0.4)
    # new female (0.2+0.1+0.5+0.7)/4 = 0.375, male (0.9+0.6+0.4)/3 = 19/30
    assert g.new == pytest.approx(19 / 30 - 0.375)
    assert g.change == pytest.approx(g.new - g.old)
    # positive rate (score >= 0.5): old female 2/4, male 2/3
    assert _row(card, "positive_rate_gap", "gender").old == pytest.approx(2 / 3 - 1 / 2)
    # FPR among label 0 (negatives): female rows 0, 1 -> old predicts positive on row 1 only: 1/2; male has no
    # negatives -> undefined -> gap undefined
    assert np.isnan(_row(card, "fpr_gap", "gender").old)
    # FNR among label 2 (positives): only male rows 4, 5, 6: female undefined -> NaN
    assert np.isnan(_row(card, "fnr_gap", "gender").new)
    # the same gaps as the fairness module's group metrics (rows with a gender only)
    has = GENDER != ""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = fg.fairness_gaps(OLD_SCORE[has], (Y[has] == 2).astype(int), GENDER[has])
    assert g.old == pytest.approx(ref["mean_score_gap"])
    assert _row(card, "positive_rate_gap", "gender").old == pytest.approx(ref["positive_rate_gap"])


def test_privacy_rows_by_hand():
    old = ModelOutputs(pred=OLD, member_scores=[0.9, 0.8, 0.3], nonmember_scores=[0.85, 0.1, 0.0, 0.2])
    new = ModelOutputs(pred=NEW, member_scores=[0.9, 0.8, 0.7], nonmember_scores=[0.1, 0.2])
    card = scorecard(old, new, labels=Y, config=ScorecardConfig(n_boot=50, fpr_target=0.2))
    auc = _row(card, "mia_auc")
    # old: pairs (member > non-member) = 0.9: 4, 0.8: 3, 0.3: 3 -> 10 of 12
    assert auc.old == pytest.approx(10 / 12)
    assert auc.new == pytest.approx(1.0)
    tpr = _row(card, "mia_tpr_at_fpr_0.2")
    assert tpr.old == pytest.approx(1 / 3) and tpr.new == pytest.approx(1.0)
    assert auc.n == 5
    assert auc.old_low <= auc.old <= auc.old_high


def test_cumulative_flips_by_hand():
    y = np.ones(5, int)
    preds = {"v1": [1, 1, 1, 0, 0], "v2": [0, 1, 1, 1, 0], "v3": [1, 0, 1, 1, 0]}
    t = cumulative_flips(y, preds)
    # v1 -> v2: row 0 regresses (1/5); v2 -> v3: row 1 regresses (1/5); v1 -> v3 directly: row 1 only (row 0 came back)
    assert t.loc["v3", "step_nfr"] == pytest.approx(0.2)
    assert t.loc["v3", "sum_step_nfr"] == pytest.approx(0.4)
    assert t.loc["v3", "cumulative_nfr"] == pytest.approx(0.2)
    # ever regressed by v3: row 0 (right v1, wrong v2) and row 1 (right v1/v2, wrong v3)
    assert t.loc["v3", "ever_regressed"] == pytest.approx(0.4)
    assert t.loc["v2", "accuracy"] == pytest.approx(0.6)


def test_same_seed_same_intervals_other_seed_other_intervals():
    a, b = _card(), _card()
    pd.testing.assert_frame_equal(a, b)
    other = scorecard(ModelOutputs(pred=OLD, score=OLD_SCORE), ModelOutputs(pred=NEW, score=NEW_SCORE), labels=Y,
                      groups={"gender": GENDER}, config=ScorecardConfig(n_boot=200, seed=1, positive_class=2, negative_class=0))
    assert not np.allclose(a["change_low"].fillna(9).to_numpy(), other["change_low"].fillna(9).to_numpy())
    pd.testing.assert_series_equal(a["new"], other["new"])  # point estimates do not depend on the seed


def test_resample_weights_match_indices_and_are_seeded():
    W = resample_weights(7, n_boot=20, seed=3)
    idx = resample_indices(7, n_boot=20, seed=3)
    assert (W == np.stack([np.bincount(r, minlength=7) for r in idx])).all()
    assert (W.sum(1) == 7).all()
    assert not (resample_weights(7, n_boot=20, seed=4) == W).all()


def test_ratio_estimates_equal_resampled_means():
    rng = np.random.default_rng(0)
    x = rng.random(30)
    mask = rng.random(30) < 0.5
    idx = resample_indices(30, n_boot=25, seed=0)
    W = resample_weights(30, n_boot=25, seed=0)
    est = ratio_estimates(np.c_[x, x * mask], np.c_[np.ones(30), mask.astype(float)], weights=W)
    direct = [x[r].mean() for r in idx]
    direct_masked = [x[r][mask[r]].mean() if mask[r].any() else np.nan for r in idx]
    np.testing.assert_allclose(est[:, 0], direct)
    np.testing.assert_allclose(est[:, 1], direct_masked)


def test_percentile_interval_known_quantiles_and_all_nan():
    low, high = percentile_interval(np.c_[np.arange(1001.0), np.full(1001, np.nan)], confidence=0.9)
    assert low[0] == pytest.approx(50.0) and high[0] == pytest.approx(950.0)
    assert np.isnan(low[1]) and np.isnan(high[1])


def test_bootstrap_interval_covers_a_known_proportion_about_95_percent():
    """Coverage on a case with a known answer: the accuracy of a model that is right with probability 0.7 on
    400 rows. Over 300 independent data sets the 95% percentile interval should contain 0.7 about 95% of the
    time (binomial sd of the coverage at 300 trials: 1.3%)."""
    rng = np.random.default_rng(123)
    n, trials, p = 400, 300, 0.7
    W = resample_weights(n, n_boot=400, seed=0)
    hits = 0
    for _ in range(trials):
        right = (rng.random(n) < p).astype(float)
        boot = ratio_estimates(right[:, None], np.ones((n, 1)), weights=W)
        low, high = percentile_interval(boot)
        hits += bool(low[0] <= p <= high[0])
    assert 0.91 <= hits / trials <= 0.985


def test_change_interval_covers_a_known_difference():
    """Paired change: old right with probability 0.7, new with 0.75 (independent errors); true change +0.05."""
    rng = np.random.default_rng(7)
    n, trials, hits = 500, 60, 0
    for t in range(trials):
        y = rng.integers(0, 3, n)
        old = np.where(rng.random(n) < 0.7, y, (y + 1) % 3)
        new = np.where(rng.random(n) < 0.75, y, (y + 2) % 3)
        card = scorecard(ModelOutputs(pred=old), ModelOutputs(pred=new), labels=y, config=ScorecardConfig(n_boot=200, seed=t))
        r = _row(card, "accuracy")
        hits += bool(r.change_low <= 0.05 <= r.change_high)
    assert hits / trials >= 0.85  # 95% nominal; 60 trials: sd 2.8%


def test_bad_input_is_named():
    with pytest.raises(InvalidParameterError, match="'n_boot' parameter of ScorecardConfig"):
        ScorecardConfig(n_boot=0)
    with pytest.raises(InvalidParameterError, match="both 'positive_class' and 'negative_class'"):
        ScorecardConfig(positive_class=2)
    with pytest.raises(InvalidParameterError, match="one entry per label"):
        scorecard(ModelOutputs(pred=OLD[:3]), ModelOutputs(pred=NEW), labels=Y)
    with pytest.raises(InvalidParameterError, match="accepted values are \\['gender'\\]"):
        scorecard(ModelOutputs(pred=OLD, score=OLD_SCORE), ModelOutputs(pred=NEW, score=NEW_SCORE), labels=Y,
                  groups={"gender": GENDER}, fairness_groups=["age"])
    with pytest.raises(InvalidParameterError, match="'old' parameter of scorecard must be a ModelOutputs"):
        scorecard(OLD, ModelOutputs(pred=NEW), labels=Y)
    with pytest.raises(InvalidParameterError, match="one row per evaluation row"):
        scorecard(ModelOutputs(pred=OLD), ModelOutputs(pred=NEW), labels=Y, groups={"g": GENDER[:4]})


def test_one_roc_gives_the_mann_whitney_auc_with_ties():
    from workbench import metrics
    from workbench.scorecard.measures import membership_measures

    rng = np.random.default_rng(5)
    for _ in range(20):
        m, nm = rng.integers(0, 6, 30).astype(float), rng.integers(0, 6, 25).astype(float)  # many ties
        auc, tpr = membership_measures(m, nm, target=0.1)
        s, y = np.r_[m, nm], np.r_[np.ones(30), np.zeros(25)]
        assert auc == pytest.approx(metrics.roc_auc(s, y), abs=1e-12)
        fpr, tp, _ = metrics.roc_curve(s, y)
        assert tpr == metrics.tpr_at_fpr(fpr, tpr=tp, target=0.1)


def test_fairness_gaps_need_scores_only_when_asked_for():
    card = scorecard(ModelOutputs(pred=OLD), ModelOutputs(pred=NEW), labels=Y, groups={"gender": GENDER},
                     config=ScorecardConfig(n_boot=20))
    assert "fairness" not in set(card.dimension) and "gender" in set(card.group)  # flips per group still reported
    with pytest.raises(InvalidParameterError, match="needs both models' 'score'"):
        scorecard(ModelOutputs(pred=OLD), ModelOutputs(pred=NEW), labels=Y, groups={"gender": GENDER}, fairness_groups=["gender"])


def test_vectorised_membership_bootstrap_equals_the_resample_loop():
    """The matrix form gives, resample by resample, membership_measures of the rows drawn (members and non-members
    resampled apart, from the same generator draws as resample_indices)."""
    from workbench.scorecard.bootstrap import resample_indices, stratified_resample_weights
    from workbench.scorecard.measures import membership_measures, membership_measures_resampled

    rng = np.random.default_rng(7)
    m, nm = rng.integers(0, 8, 40) / 2.0, rng.integers(0, 8, 35) / 2.0 - 0.5  # ties within and across the groups
    W = stratified_resample_weights(len(m), len(nm), n_boot=60, rng=np.random.default_rng([3, 1]))
    aucs, tprs = membership_measures_resampled(m, nm, weights=W, target=0.05)
    draw = np.random.default_rng([3, 1])
    im, inm = resample_indices(len(m), n_boot=60, rng=draw), resample_indices(len(nm), n_boot=60, rng=draw)
    for b in range(60):
        auc, tpr = membership_measures(m[im[b]], nm[inm[b]], target=0.05)
        assert aucs[b] == pytest.approx(auc, abs=1e-12)
        assert tprs[b] == tpr
    assert len(set(np.round(aucs, 9))) > 10  # the resamples differ


def test_scorecard_privacy_rows_are_deterministic_and_cover_the_point_estimate():
    from workbench.scorecard import card

    rng = np.random.default_rng(0)
    outs = [ModelOutputs(pred=[0, 1, 1, 0], member_scores=rng.normal(mu, 1, 300), nonmember_scores=rng.normal(0, 1, 300))
            for mu in (0.0, 1.0)]
    cfg = ScorecardConfig(n_boot=200, seed=4)
    first = scorecard(*outs, labels=[0, 1, 1, 0], config=cfg).query("dimension == 'privacy'")
    card._MEMBERSHIP_CACHE.clear()
    again = scorecard(*outs, labels=[0, 1, 1, 0], config=cfg).query("dimension == 'privacy'")
    pd.testing.assert_frame_equal(first, again)
    auc = first.set_index("measure").loc["mia_auc"]
    assert auc.old_low <= auc.old <= auc.old_high and auc.new_low <= auc.new <= auc.new_high
    true_change = 0.7602 - 0.5  # members N(1, 1) vs non-members N(0, 1): AUC = Phi(1 / sqrt(2)); identical ones: 0.5
    assert auc.change_low <= true_change <= auc.change_high and auc.change_low > 0.15
