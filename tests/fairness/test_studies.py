"""The study layer of notebooks 04 and 05: configs, study functions, tables and run records, on real MiniLM."""
import re

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from workbench.datasets import load_weat_tests
from workbench.datasets.encoders import encode_layers
from workbench.fairness.association import ceat
from workbench.fairness.classifier import audit_on_corpus, train_sentiment_classifier
from workbench.fairness.sensitivity import fit_protected_model
from workbench.fairness.studies import (ExtrinsicStudyConfig, IntrinsicStudyConfig, TextFeatures, audit_layers, baseline_tests,
                                        ceat_by_layer, encode_extrinsic_features, extrinsic_study_metrics, extrinsic_study_record,
                                        gather_contexts, intrinsic_by_layer, intrinsic_study_metrics, intrinsic_study_record,
                                        intrinsic_vs_extrinsic, literature_comparison, prepare_extrinsic_data, samples_study,
                                        sign_agreement, test_words, word_sets_table)
from workbench.results import METRIC_KEY_PATTERN, load_record, save_record
from workbench.validation import InvalidParameterError

pytestmark = pytest.mark.usefixtures("one_torch_thread")

EXT = ExtrinsicStudyConfig(n_tweets=120, layers=(4, 6), main_layer=6, epochs=3, words_per_emotion=1, noun_phrases=2, names_per_group=1)
INT = IntrinsicStudyConfig(tests=("C6",), encoders=("minilm",), minilm_layers=(0, 6), sources=("templates",), n_templates=3,
                           n_samples=60, run_seat=False)


# ------------------------------------------------------------------------------------------------ configs
def test_extrinsic_config_validation():
    assert ExtrinsicStudyConfig(layers=[np.int64(6)], main_layer=np.int64(6)).layers == (6,)
    with pytest.raises(InvalidParameterError, match=r"'main_layer' parameter of ExtrinsicStudyConfig must be one of \(2, 4\)"):
        ExtrinsicStudyConfig(layers=[2, 4], main_layer=6)
    with pytest.raises(InvalidParameterError, match="'hidden' parameter of ExtrinsicStudyConfig must be a list or tuple"):
        ExtrinsicStudyConfig(hidden=64)
    with pytest.raises(InvalidParameterError, match="'words_per_emotion' parameter of ExtrinsicStudyConfig must be an int in"):
        ExtrinsicStudyConfig(words_per_emotion=6)


def test_intrinsic_config_validation():
    cfg = IntrinsicStudyConfig(smollm2_layers=[np.int64(30)])
    assert cfg.layers("smollm2") == (30,) and cfg.pooling("minilm") == "mean"
    with pytest.raises(InvalidParameterError, match="'minilm_layers' parameter of IntrinsicStudyConfig must be a non-empty list or tuple of an int in"):
        IntrinsicStudyConfig(minilm_layers=[7])
    with pytest.raises(InvalidParameterError, match="'tests' parameter of IntrinsicStudyConfig"):
        IntrinsicStudyConfig(tests=["C11"])
    with pytest.raises(InvalidParameterError, match="'encoder' parameter of IntrinsicStudyConfig.layers"):
        cfg.layers("bert")


def test_intrinsic_study_config_fills_partial_groups_and_refuses_unknown_keys():
    from workbench.fairness.studies import INTRINSIC_GROUPS, intrinsic_study_config

    cfg = intrinsic_study_config(encoders=["minilm"], contexts={"max_corpus_contexts": np.int64(5)}, statistics=None)
    defaults = IntrinsicStudyConfig()
    assert (cfg.encoders, cfg.max_corpus_contexts) == (("minilm",), 5)
    assert (cfg.max_chars, cfg.n_templates, cfg.min_contexts, cfg.variance, cfg.n_permutations) == (
        defaults.max_chars, defaults.n_templates, defaults.min_contexts, defaults.variance, defaults.n_permutations)
    assert set(INTRINSIC_GROUPS["CONTEXTS"]) | set(INTRINSIC_GROUPS["STATISTICS"]) < {f for f in IntrinsicStudyConfig.__dataclass_fields__}
    with pytest.raises(InvalidParameterError, match=r"'STATISTICS' parameter of notebook 04_intrinsic_bias_ceat must be a dict "
                                                    r"with keys among \['n_permutations', 'variance'\]"):
        intrinsic_study_config(statistics={"permutations": 10})
    with pytest.raises(InvalidParameterError, match="'variance' parameter of IntrinsicStudyConfig must be one of"):
        intrinsic_study_config(statistics={"variance": "hedges"})


# ------------------------------------------------------------------------------------------------ notebook 05
@pytest.fixture(scope="module")
def ext_data():
    return prepare_extrinsic_data(EXT)


@pytest.fixture(scope="module")
def ext_features(ext_data):
    return encode_extrinsic_features(ext_data, layers=EXT.layers, progress=False)


def test_prepare_extrinsic_data(ext_data):
    base, cda = ext_data.train_rows("baseline"), ext_data.train_rows("cda")
    assert len(base) == len(ext_data.train_idx) == 96 and len(cda) > len(base)
    assert set(cda["source"]) == {"original", "counterfactual"}
    assert ext_data.test_cf["changed"].all() and (ext_data.test_cf["text"] != ext_data.test_cf["counterfactual"]).all()
    w = ext_data.words
    assert w["female_words"] and not set(w["female_words"]) & set(w["male_words"])
    assert not set(w["positive_words"]) & set(w["negative_words"])
    with pytest.raises(InvalidParameterError, match="'variant' parameter"):
        ext_data.train_rows("augmented")


@pytest.mark.slow
def test_text_features_are_the_encoders_features(ext_data, ext_features):
    """The lookup returns exactly what encode_layers gives for a part, taking a text's first part."""
    corpus = ext_data.corpus["sentence"].tolist()
    direct = encode_layers(corpus, layers=[4, 6], progress=False)
    np.testing.assert_array_equal(ext_features(6, corpus), direct[6])
    np.testing.assert_array_equal(ext_features(4, corpus[::-1]), direct[4][::-1])
    tweet = ext_data.tweets["text"].iloc[0]
    assert ext_features._row_of[tweet] == ("tweets", 0)
    with pytest.raises(ValueError, match="no features of 1 text"):
        ext_features(6, ["a sentence nobody encoded"])
    with pytest.raises(ValueError, match="'layer' parameter of TextFeatures must be one of"):
        ext_features(2, corpus)


@pytest.mark.slow
def test_audit_layers_equals_the_direct_calls(ext_data, ext_features):
    intrinsic = intrinsic_by_layer(ext_features, ext_data)
    assert intrinsic.index.tolist() == [4, 6] and intrinsic.abs().max() <= 2
    audits, table = audit_layers(ext_data, ext_features, config=EXT, intrinsic=intrinsic)
    assert table[["layer", "variant"]].values.tolist() == [[4, "baseline"], [4, "cda"], [6, "baseline"], [6, "cda"]]
    # the layer-6 baseline row, recomputed the way notebook 05 used to
    X = ext_features(6, ext_data.corpus["sentence"])
    protected = fit_protected_model(X, ext_data.corpus["gender"], seed=0)
    train = ext_data.train_rows("baseline")
    test = ext_data.test_tweets
    clf = train_sentiment_classifier(ext_features(6, train["text"]), train["label"].to_numpy(), hidden=(), epochs=3, lr=0.003, seed=0,
                                     val=(ext_features(6, test["text"]), test["label_id"].to_numpy()))
    direct = audit_on_corpus(clf, ext_data.corpus, X, protected=protected)
    row = table[(table.layer == 6) & (table.variant == "baseline")].iloc[0]
    assert row["gender_gap"] == direct.metrics["gender_gap"] and row["aps"] == direct.metrics["aps"]
    assert audits[(6, "baseline")].metrics == direct.metrics

    corr = intrinsic_vs_extrinsic(table)
    assert corr["gender_gap"] == pytest.approx(stats.spearmanr(table["intrinsic_weat"], table["gender_gap"])[0])
    metrics = extrinsic_study_metrics(table, main_layer=6, correlations=corr)
    assert all(re.match(METRIC_KEY_PATTERN, k) for k in metrics)
    assert metrics["baseline/gender_gap"] == row["gender_gap"] and metrics["intrinsic_weat"] == intrinsic[6]
    assert metrics["cda/accuracy"] == table.iloc[3]["accuracy"]
    assert "cda/intrinsic_weat" not in metrics and "intrinsic_vs_extrinsic/aps_spearman" in metrics


def test_extrinsic_record_round_trips(tmp_path):
    table = pd.DataFrame({"layer": [6, 6, 4, 4], "variant": ["baseline", "cda"] * 2, "intrinsic_weat": [-0.2, -0.2, 0.1, 0.1],
                          "gender_probe_accuracy": [1.0] * 4, "gender_gap": [-0.1, -0.07, -0.05, -0.04], "gender_ctf": [0.2, 0.1, 0.1, 0.1],
                          "aps": [0.01, 0.02, 0.03, 0.01], "race_gap": [np.nan] * 4})
    record = extrinsic_study_record(EXT, table=table, correlations=intrinsic_vs_extrinsic(table), timings={"encode": 1.0})
    saved = load_record(save_record(tmp_path, notebook="05", **record))
    assert saved["parameters"]["LAYERS"] == [4, 6] and saved["parameters"]["MAIN_LAYER"] == 6
    assert saved["metrics"]["cda/gender_gap"] == -0.07 and saved["metrics"]["baseline/race_gap"] is None
    assert len(saved["tables"]["layers"]) == 4
    assert saved["extra"]["finding"].startswith("At layer 6 the classifier scores sentences about women 0.100 lower")
    with pytest.raises(ValueError, match="'main_layer' parameter of extrinsic_study_metrics"):
        extrinsic_study_metrics(table, main_layer=2, correlations=pd.Series(dtype=float))


# ------------------------------------------------------------------------------------------------ notebook 04
@pytest.fixture(scope="module")
def int_tests():
    return load_weat_tests(list(INT.tests))


@pytest.fixture(scope="module")
def search(int_tests):
    return gather_contexts(test_words(int_tests), config=INT)


def test_word_sets_table(int_tests):
    t = word_sets_table(int_tests)
    assert t.index.tolist() == ["C6"] and t.loc["C6", "sizes"] == "8/8/8/8"


def test_gather_contexts_templates_only(int_tests, search):
    words = test_words(int_tests)
    assert search.counts.index.tolist() == words
    assert (search.counts["templates"] == 3).all() and search.n_without_corpus_context == len(words)
    word, table = search.richest_word()
    assert word in words and len(table) == 3 and (table["source"] == "templates").all()
    assert table["sentence"].str.lower().str.contains(word.lower()).all()


@pytest.mark.slow
def test_ceat_by_layer_equals_direct_ceat(int_tests, search):
    words = test_words(int_tests)
    study = ceat_by_layer(int_tests, search.contexts, words=words, config=INT, progress=False)
    assert sorted(study.results) == [("C6", "minilm", 0), ("C6", "minilm", 6)]
    assert study.table["n_layers"].tolist() == [6, 6] and study.table["layer"].tolist() == [0, 6]
    direct = ceat(int_tests["C6"], encoder="minilm", layer=6, n_samples=60, seed=0, contexts=search.contexts, pooling="mean")
    assert study.results[("C6", "minilm", 6)].effect_size == pytest.approx(direct.effect_size, abs=1e-6)

    n = samples_study(int_tests, search.contexts, words=words, config=INT)
    assert n["N"].tolist() == [10, 60]
    assert n.loc[1, "effect_size"] == pytest.approx(study.results[("C6", "minilm", 6)].effect_size)
    assert n.loc[1, "se"] < n.loc[0, "se"]

    compare = literature_comparison(study.table, baseline_tests(int_tests, config=INT), config=INT)
    assert compare.loc["C6", "ceat_d_minilm"] == study.results[("C6", "minilm", 6)].effect_size
    assert compare.loc["C6", "glove_d_caliskan2017"] == 1.81
    agree = sign_agreement(compare, encoders=["minilm"]).iloc[0]
    assert agree["n_tests"] == 1 and agree["n_positive"] == int(compare.loc["C6", "ceat_d_minilm"] > 0)

    metrics = intrinsic_study_metrics(study.results, pd.DataFrame())
    assert sorted(metrics) == ["ceat_d/c6/minilm/layer_0", "ceat_d/c6/minilm/layer_6", "ceat_se/c6/minilm/layer_0", "ceat_se/c6/minilm/layer_6"]


def test_intrinsic_record_round_trips(search, tmp_path):
    from types import SimpleNamespace

    from workbench.fairness.studies import CeatStudy

    results = {("C6", "minilm", 6): SimpleNamespace(effect_size=0.35, se=0.01)}
    baseline = pd.DataFrame([{"test": "C6", "encoder": "minilm", "static_d": 0.2, "static_p": 0.3, "seat_d": -0.1, "seat_p": 0.6,
                              "glove_d_caliskan2017": 1.81}])
    record = intrinsic_study_record(INT, ceat=CeatStudy(results=results, table=pd.DataFrame([{"test": "C6"}]), seconds={"minilm": 2.0}),
                                    baseline=baseline, search=search)
    saved = load_record(save_record(tmp_path, notebook="04", **record))
    assert saved["metrics"] == {"ceat_d/c6/minilm/layer_6": 0.35, "ceat_se/c6/minilm/layer_6": 0.01, "seat_d/c6/minilm": -0.1,
                                "static_d/c6/minilm": 0.2}
    assert saved["parameters"]["MINILM_LAYERS"] == [0, 6] and saved["timings"]["embeddings_minilm"] == 2.0
    assert saved["tables"]["baseline"][0]["seat_d"] == -0.1
    assert saved["extra"]["finding"] == ("CEAT at the last layer: minilm 1 of 1 tests stereotype-congruent (mean |d| 0.35); "
                                         "GloVe WEAT: mean d 1.81 on these tests.")
