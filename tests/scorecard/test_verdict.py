"""Verdict logic on its edge cases: a rule exactly at its threshold, an interval straddling it, several rows."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from workbench.scorecard import ModelOutputs, Rule, ScorecardConfig, default_rules, judge, overall_verdict, scorecard
from workbench.scorecard.verdict import combine
from workbench.validation import InvalidParameterError


def _card(rows):
    base = {"dimension": "flips", "measure": "nfr", "group": "all", "slice": "all", "n": 100, "old": np.nan, "new": np.nan,
            "change": np.nan, "old_low": np.nan, "old_high": np.nan, "new_low": np.nan, "new_high": np.nan,
            "change_low": np.nan, "change_high": np.nan}
    return pd.DataFrame([{**base, **r} for r in rows])


@pytest.mark.parametrize("low, high, expected", [
    (0.010, 0.020, "pass"),          # upper end exactly at the threshold: "at most" holds on the whole interval
    (0.010, 0.0201, "inconclusive"),  # straddles
    (0.020, 0.030, "inconclusive"),  # lower end exactly at the threshold: the rule may hold
    (0.0201, 0.030, "fail"),         # whole interval above
])
def test_at_most_rule_edges(low, high, expected):
    card = _card([{"new": (low + high) / 2, "new_low": low, "new_high": high}])
    v = judge(card, [Rule("nfr", quantity="new", op="<=", threshold=0.02)])
    assert v["outcome"].tolist() == [expected]


@pytest.mark.parametrize("low, high, expected", [
    (0.0, 0.01, "pass"),       # accuracy change exactly 0 at the low end: "must not drop" holds
    (-0.01, 0.02, "inconclusive"),
    (-0.03, 0.0, "inconclusive"),  # the top of the interval touches 0: a drop is not certain
    (-0.03, -0.001, "fail"),
])
def test_at_least_rule_edges(low, high, expected):
    card = _card([{"dimension": "accuracy", "measure": "accuracy", "change": (low + high) / 2, "change_low": low, "change_high": high}])
    v = judge(card, [Rule("accuracy", quantity="change", op=">=", threshold=0.0)])
    assert v["outcome"].tolist() == [expected]


def test_point_basis_ignores_the_interval_and_counts_the_threshold_as_passing():
    card = _card([{"new": 0.02, "new_low": 0.0, "new_high": 0.05}])
    assert judge(card, [Rule("nfr", op="<=", threshold=0.02, basis="point")])["outcome"].tolist() == ["pass"]
    assert judge(card, [Rule("nfr", op="<=", threshold=0.0199, basis="point")])["outcome"].tolist() == ["fail"]
    assert judge(card, [Rule("nfr", op="<=", threshold=0.02)])["outcome"].tolist() == ["inconclusive"]


def test_every_group_rule_takes_the_worst_row_and_names_it():
    card = _card([
        {"new": 0.01, "new_low": 0.005, "new_high": 0.015},
        {"group": "gender", "slice": "female", "new": 0.01, "new_low": 0.0, "new_high": 0.03},
        {"group": "gender", "slice": "male", "new": 0.04, "new_low": 0.03, "new_high": 0.05},
    ])
    v = judge(card, [Rule("nfr", op="<=", threshold=0.02, slices="each")]).iloc[0]
    assert v.outcome == "fail" and v.rows == 3
    assert v.failing == "gender=male" and v.inconclusive == "gender=female"
    assert v.worst_value == pytest.approx(0.04)
    only_overall = judge(card, [Rule("nfr", op="<=", threshold=0.02, slices="all")]).iloc[0]
    assert only_overall.outcome == "pass" and only_overall.rows == 1
    by_gender = judge(card, [Rule("nfr", op="<=", threshold=0.02, slices="gender")]).iloc[0]
    assert by_gender.rows == 2 and by_gender.outcome == "fail"


def test_undefined_interval_is_inconclusive_and_no_rows_is_inconclusive():
    card = _card([{"new": np.nan}])
    assert judge(card, [Rule("nfr", op="<=", threshold=0.02)])["outcome"].tolist() == ["inconclusive"]
    assert judge(card, [Rule("mia_auc", op="<=", threshold=0.6)])["rows"].tolist() == [0]
    assert judge(card, [Rule("mia_auc", op="<=", threshold=0.6)])["outcome"].tolist() == ["inconclusive"]


def test_combine_and_overall():
    assert combine(["pass", "pass"]) == "pass"
    assert combine(["pass", "inconclusive", "pass"]) == "inconclusive"
    assert combine(["inconclusive", "fail"]) == "fail"
    assert overall_verdict(pd.DataFrame({"outcome": ["pass", "fail"]})) == "fail"


def test_default_rules_on_a_real_scorecard():
    """An update that is clearly better on accuracy, flips nobody, and whose old and new models leak equally."""
    rng = np.random.default_rng(0)
    n = 3000
    y = rng.integers(0, 3, n)
    old = np.where(rng.random(n) < 0.6, y, (y + 1) % 3)
    new = np.where(old == y, y, np.where(rng.random(n) < 0.5, y, old))  # fixes half the old errors, breaks nothing
    gender = rng.choice(["female", "male"], n)
    score = rng.random(n)
    members, non = rng.normal(0, 1, 500), rng.normal(0, 1, 500)
    card = scorecard(ModelOutputs(pred=old, score=score, member_scores=members, nonmember_scores=non),
                     ModelOutputs(pred=new, score=score, member_scores=members, nonmember_scores=non),
                     labels=y, groups={"gender": gender}, config=ScorecardConfig(n_boot=200))
    v = judge(card, default_rules()).set_index("rule")["outcome"]
    assert v["accuracy must not drop"] == "pass"
    assert v["NFR <= 0.02 in every group"] == "pass"  # no negative flip at all: interval [0, 0]
    assert v["no fairness gap grows by > 0.02"] == "pass"  # same scores: every gap changes by exactly 0
    assert v["MIA AUC <= 0.6"] == "pass"
    assert overall_verdict(judge(card, default_rules())) == "pass"
    strict = judge(card, [Rule("accuracy", quantity="change", op=">=", threshold=0.5)])
    assert strict["outcome"].tolist() == ["fail"]


def test_rule_validation():
    with pytest.raises(InvalidParameterError, match="'quantity' parameter of Rule"):
        Rule("nfr", quantity="delta")
    with pytest.raises(InvalidParameterError, match="'threshold' parameter of Rule"):
        Rule("nfr", threshold="high")
    with pytest.raises(InvalidParameterError, match="'max_mia_auc' parameter of default_rules"):
        default_rules(max_mia_auc=-1)
    with pytest.raises(ValueError, match="Rule objects"):
        judge(_card([{}]), ["nfr <= 0.02"])
