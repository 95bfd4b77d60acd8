"""Group metrics: AUCs against sklearn on hand-built subsets, rates by hand, power mean, bad input."""
import warnings

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import confusion_matrix, roc_auc_score

from workbench.fairness.groups import (
    UndefinedMetricWarning,
    bias_aucs,
    bias_summary,
    fairness_gaps,
    generalized_mean,
    group_metrics,
    membership,
    roc_auc,
)


@pytest.fixture
def data():
    rng = np.random.default_rng(0)
    n = 400
    groups = rng.choice(np.array(["black", "white", "asian", None], dtype=object), size=n)
    labels = rng.integers(0, 2, size=n)
    # a biased scorer: "black" examples get a score bonus, so their negatives look positive
    scores = 0.5 * labels + rng.normal(0, 0.3, size=n) + 0.25 * (groups == "black")
    scores = np.round(scores, 2)  # create ties on purpose
    return scores, labels, groups


def test_roc_auc_matches_sklearn_with_ties(data):
    scores, labels, _ = data
    assert roc_auc(scores, labels) == pytest.approx(roc_auc_score(labels, scores), abs=1e-12)
    assert roc_auc([1, 1, 1, 1], [0, 1, 0, 1]) == 0.5


def test_bias_aucs_match_sklearn_on_hand_built_subsets(data):
    scores, labels, groups = data
    table = bias_aucs(scores, labels, groups)
    assert list(table.index) == ["asian", "black", "white"]
    for g in table.index:
        in_g = np.array([x == g for x in groups])
        sub = in_g
        bpsn = (~in_g & (labels == 1)) | (in_g & (labels == 0))
        bnsp = (~in_g & (labels == 0)) | (in_g & (labels == 1))
        assert table.loc[g, "size"] == in_g.sum()
        assert table.loc[g, "subgroup_auc"] == pytest.approx(roc_auc_score(labels[sub], scores[sub]), abs=1e-12)
        assert table.loc[g, "bpsn_auc"] == pytest.approx(roc_auc_score(labels[bpsn], scores[bpsn]), abs=1e-12)
        assert table.loc[g, "bnsp_auc"] == pytest.approx(roc_auc_score(labels[bnsp], scores[bnsp]), abs=1e-12)
    # the planted bias shows up where the definitions say it should
    assert table.loc["black", "bpsn_auc"] < table.loc["white", "bpsn_auc"]
    assert table.loc["black", "bnsp_auc"] > table.loc["white", "bnsp_auc"]


def test_membership_table_equals_names(data):
    scores, labels, groups = data
    table = pd.DataFrame({g: [x == g for x in groups] for g in ["black", "white"]})
    pd.testing.assert_frame_equal(bias_aucs(scores, labels, table),
                                  bias_aucs(scores, labels, groups, subgroups=["black", "white"]))
    # overlapping membership (an example mentioning two groups) is allowed with a table
    table.loc[0, "white"] = table.loc[0, "black"] = True
    out = bias_aucs(scores, labels, table)
    m = table["white"].to_numpy()
    assert out.loc["white", "subgroup_auc"] == pytest.approx(roc_auc_score(labels[m], scores[m]))


def test_group_metrics_against_confusion_matrix(data):
    scores, labels, groups = data
    t = group_metrics(scores, groups, labels=labels, threshold=0.4)
    pred = (scores >= 0.4).astype(int)
    for g in ["asian", "black", "white"]:
        m = np.array([x == g for x in groups])
        tn, fp, fn, tp = confusion_matrix(labels[m], pred[m], labels=[0, 1]).ravel()
        assert t.loc[g, "n"] == m.sum()
        assert t.loc[g, "fpr"] == pytest.approx(fp / (fp + tn))
        assert t.loc[g, "fnr"] == pytest.approx(fn / (fn + tp))
        assert t.loc[g, "tpr"] == pytest.approx(tp / (fn + tp))
        assert t.loc[g, "positive_rate"] == pytest.approx(pred[m].mean())
        assert t.loc[g, "mean_score"] == pytest.approx(scores[m].mean())
        assert t.loc[g, "fpr_gap"] == pytest.approx(t.loc[g, "fpr"] - t.loc["all", "fpr"])
    assert t.loc["all", "n"] == len(scores)
    gaps = fairness_gaps(scores, labels, groups, threshold=0.4)
    g3 = t.drop(index="all")
    assert gaps["fpr_gap"] == pytest.approx(g3["fpr"].max() - g3["fpr"].min())
    assert gaps["fned"] == pytest.approx((g3["fnr"] - t.loc["all", "fnr"]).abs().sum())
    assert gaps["fpr_gap"] > 0.1  # the planted bias raises black FPR


def test_group_metrics_without_labels():
    t = group_metrics([0.1, 0.9, 0.7, 0.2], ["m", "f", "f", "m"])
    assert list(t.columns) == ["n", "mean_score", "positive_rate", "mean_score_gap", "positive_rate_gap"]
    assert t.loc["f", "positive_rate"] == 1.0 and t.loc["m", "positive_rate"] == 0.0
    assert t.loc["f", "mean_score"] == pytest.approx(0.8)


def test_generalized_mean_closed_forms():
    v = [0.6, 0.8, 0.9]
    assert generalized_mean(v, p=1) == pytest.approx(np.mean(v))
    assert generalized_mean(v, p=0) == pytest.approx(np.prod(v) ** (1 / 3))
    assert generalized_mean(v, p=-1) == pytest.approx(3 / sum(1 / x for x in v))  # harmonic mean
    assert generalized_mean(v, p=-5) == pytest.approx((np.mean(np.power(v, -5.0))) ** (-1 / 5))
    assert min(v) < generalized_mean(v, p=-5) < generalized_mean(v, p=1)
    with pytest.warns(UndefinedMetricWarning):
        assert generalized_mean([0.5, np.nan], p=-5) == pytest.approx(0.5)
    with pytest.raises(ValueError, match="must be > 0"):
        generalized_mean([0.0, 0.5], p=-5)


def test_bias_summary_formula(data):
    scores, labels, groups = data
    s = bias_summary(scores, labels, groups)
    t = bias_aucs(scores, labels, groups)
    pm = [generalized_mean(t[c], p=-5) for c in ("subgroup_auc", "bpsn_auc", "bnsp_auc")]
    assert s["final"] == pytest.approx(0.25 * roc_auc_score(labels, scores) + 0.75 * np.mean(pm))


def test_single_class_group_gives_nan_with_warning():
    scores = [0.9, 0.8, 0.1, 0.7, 0.6]
    labels = [1, 1, 0, 1, 1]
    groups = ["a", "a", "a", "b", "b"]  # group b has positives only
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        t = bias_aucs(scores, labels, groups)
    messages = sorted(str(w.message).split(" is undefined")[0] for w in caught if w.category is UndefinedMetricWarning)
    # b has positives only: its subgroup and BPSN subsets lack negatives; a's BNSP subset (background
    # negatives, i.e. b's, + a's positives) has no negative either
    assert messages == ["BNSP AUC of 'a'", "BPSN AUC of 'b'", "Subgroup AUC of 'b'"]
    assert np.isnan(t.loc["b", "subgroup_auc"])
    assert not np.isnan(t.loc["a", "subgroup_auc"])
    with pytest.warns(UndefinedMetricWarning, match="FPR of group 'b'"):
        g = group_metrics(scores, groups, labels=labels)
    assert np.isnan(g.loc["b", "fpr"])


def test_bad_input():
    with pytest.raises(ValueError, match="one entry per score"):
        bias_aucs([0.1, 0.2, 0.3], [0, 1, 0], ["a", "b"])
    with pytest.raises(ValueError, match="'labels' parameter .* one entry per score"):
        group_metrics([0.1, 0.2], ["a", "b"], labels=[0, 1, 1])
    with pytest.raises(ValueError, match=r"Unknown group\(s\) \['martian'\].*accepted values are \['a', 'b'\]"):
        bias_aucs([0.1, 0.2, 0.3, 0.4], [0, 1, 0, 1], ["a", "a", "b", "b"], subgroups=["martian"])
    with pytest.raises(ValueError, match="binary"):
        bias_aucs([0.1, 0.2], [0, 2], ["a", "b"])
    with pytest.raises(ValueError, match="finite"):
        group_metrics([0.1, np.nan], ["a", "b"])
    with pytest.raises(ValueError, match="must not be empty"):
        group_metrics([], [])
    with pytest.raises(ValueError, match="must be boolean"):
        membership(pd.DataFrame({"a": [0, 2]}))


def _planted_classifier(bias: float):
    """A sentiment head on 2 features (valence, gender) whose positive logit gets +bias for female."""
    import torch

    from workbench.fairness.classifier import SentimentModel
    from workbench.models import MLP
    from workbench.training import History

    model = MLP(in_features=2, hidden=(), out_features=3)
    lin = model.net[-1]
    with torch.no_grad():
        lin.weight.copy_(torch.tensor([[-2.0, 0.0], [0.0, 0.0], [2.0, bias]]))
        lin.bias.zero_()
    return SentimentModel(model, np.zeros(2, np.float32), np.ones(2, np.float32), History())


@pytest.mark.parametrize("bias", [0.0, 0.8])
def test_audit_on_corpus_recovers_a_planted_gender_bias(bias):
    from workbench.fairness.classifier import audit_on_corpus
    from workbench.fairness.evaluation_corpus import generate_evaluation_corpus, subsample_corpus

    corpus = subsample_corpus(generate_evaluation_corpus(), words_per_emotion=2, noun_phrases=3, names_per_group=2)
    # valence feature with noise shared by all sentences of a (template, emotion word) cell, so that
    # rankings overlap while counterpart sentences keep the same valence feature
    pair_ids = (corpus["template_id"].astype(str) + corpus["emotion_word"]).astype("category").cat.codes.to_numpy()
    noise = np.random.default_rng(0).normal(0, 1.0, size=pair_ids.max() + 1)[pair_ids]
    valence = corpus["valence"].map({"positive": 1.0, "negative": -1.0, "none": 0.0}).to_numpy() + noise
    female = np.where(corpus["gender"] == "female", 1.0, -1.0)
    X = np.stack([valence, female], axis=1).astype(np.float32)
    audit = audit_on_corpus(_planted_classifier(bias), corpus, X, protected=np.array([0.0, 1.0]))

    def positivity(v, g):  # closed form of the planted head
        z = np.array([-2 * v, 0.0, 2 * v + bias * g])
        p = np.exp(z - z.max()); p /= p.sum()
        return (1 + p[2] - p[0]) / 2

    expected = np.mean([positivity(v, 1.0) - positivity(v, -1.0) for v in valence[female == 1]])
    m = audit.metrics
    assert m["gender_gap"] == pytest.approx(expected, abs=1e-6)
    assert m["race_gap"] == pytest.approx(0.0, abs=1e-6) and m["race_ctf"] == pytest.approx(0.0, abs=1e-6)
    assert len(audit.gender_pairs) == len(corpus) // 2
    if bias == 0.0:
        assert m["gender_ctf"] == pytest.approx(0.0, abs=1e-7) and m["aps"] == pytest.approx(0.0, abs=1e-7)
        assert audit.aucs.loc["female", "bpsn_auc"] == pytest.approx(audit.aucs.loc["male", "bpsn_auc"])
    else:
        assert m["gender_gap"] > 0.05 and m["gender_ctf"] == pytest.approx(m["gender_gap"], abs=1e-6)
        assert m["aps"] > 0.01
        # female negatives are pushed up: lower BPSN AUC for female, lower BNSP AUC for male
        assert audit.aucs.loc["female", "bpsn_auc"] < audit.aucs.loc["male", "bpsn_auc"]
        assert audit.aucs.loc["male", "bnsp_auc"] < audit.aucs.loc["female", "bnsp_auc"]
        assert audit.groups.loc["female", "mean_score"] > audit.groups.loc["male", "mean_score"]
