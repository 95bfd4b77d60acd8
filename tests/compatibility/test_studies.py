"""The study layer of notebooks 06 and 07: configs, study functions, tables and run records."""
import re

import numpy as np
import pandas as pd
import pytest

from workbench.compatibility import flips
from workbench.compatibility.bct import BCTConfig, compatibility_summary, rank_gallery, retrieval_matrix, retrieval_metrics
from workbench.compatibility.pc_training import run_update
from workbench.compatibility.studies import (BCTStudyConfig, FlipStudyConfig, bct_study, bct_study_metrics, bct_study_record,
                                             flip_breakdown, flip_study, flip_study_metrics, flip_study_record, lambda_sweep,
                                             retrieval_split, scenario_comparison, tradeoff_study)
from workbench.results import METRIC_KEY_PATTERN, load_record, save_record
from workbench.validation import InvalidParameterError

FLIP_CFG = FlipStudyConfig(dataset="digits", n_train=200, n_test=100, epoch_scale=0.4, n_ensemble=2, tradeoff_betas=(0.0, 5.0),
                           tradeoff_temperatures=(1.0,), tradeoff_kd_alphas=(3.0,))
BCT_CFG = BCTStudyConfig(dataset="digits", n_train=400, n_test=300, n_queries=100, old_hidden=(16,), new_hidden=(64,),
                         embedding_dim=8, old_epochs=2, new_epochs=3, lambda_sweep=(3.0,))


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Tiny MLPs: one torch thread is fastest, and far faster than two on a busy machine."""
    from workbench.training import torch_threads

    with torch_threads(1):
        yield


@pytest.fixture(scope="module")
def flip_data():
    return FLIP_CFG.load_data()


@pytest.fixture(scope="module")
def study(flip_data):
    return flip_study(flip_data, config=FLIP_CFG)


@pytest.fixture(scope="module")
def tradeoff(study, flip_data):
    return tradeoff_study(flip_data, study)


@pytest.fixture(scope="module")
def bct_data():
    return BCT_CFG.load_data()


@pytest.fixture(scope="module")
def bstudy(bct_data):
    return bct_study(bct_data, config=BCT_CFG)


# ------------------------------------------------------------------------------------------------ notebook 06
def test_flip_study_is_the_notebooks_old_computation(study, flip_data):
    """Same numbers as the notebook's former cells: run_update with the scaled scenario and the four methods."""
    base = FLIP_CFG.update_scenario()
    assert (base.old_epochs, base.new_epochs) == (2, 2)  # bigger_model's 5 epochs x 0.4
    direct = run_update(flip_data.train, flip_data.test, scenario=base, methods=FLIP_CFG.methods(), n_classes=10, seed=0)
    pd.testing.assert_frame_equal(study.summary, direct.summary)
    s = study.summary
    assert np.allclose(s["error_old"] - s["pfr"] + s["nfr"], s["error_new"])
    assert s.loc["focal distillation", ["alpha", "beta"]].tolist() == [1.0, 5.0]


def test_flip_metrics_follow_the_naming_scheme_and_the_summary(study):
    m = flip_study_metrics(study.summary)
    assert all(re.match(METRIC_KEY_PATTERN, k) for k in m)
    assert m["no_constraint/nfr"] == study.summary.loc["no constraint", "nfr"]
    assert m["ensemble/error_new"] == study.summary.loc["ensemble of 2", "error_new"]
    assert m["focal_distillation/nfr_reduction"] == pytest.approx(1 - m["focal_distillation/nfr"] / m["no_constraint/nfr"])
    assert len(m) == 1 + 4 * 4 + 1


def test_flip_breakdown_views_count_the_same_flips(study, flip_data):
    b = flip_breakdown(study, flip_data)
    new = study.pred("no constraint")
    n_negative = int(flips.flip_masks(study.result.labels, study.result.old_pred, new)["negative"].sum())
    assert int(b.per_class["n_negative"].sum()) == int(b.matrix.sum()) == int(b.per_group["n_negative"].sum()) == n_negative
    assert b.worst_class == int(np.argmax(b.matrix.sum(axis=1)))
    assert (b.examples["label"] == b.worst_class).all() and (b.examples["old"] == b.worst_class).all()
    assert b.per_group["name"].tolist() == ["light", "medium", "dark"] and b.per_group["n"].sum() == len(new)
    assert b.negative_by_method.columns.tolist() == ["no constraint", "focal distillation"]
    with pytest.raises(ValueError, match="'method' parameter of FlipStudy.pred"):
        study.pred("nope")


def test_tradeoff_study_grid_and_baselines(study, tradeoff):
    tradeoff, baselines = tradeoff
    assert tradeoff["beta"].tolist() == [0.0, 5.0] and (tradeoff["alpha"] == 0.0).all()
    assert baselines.index.tolist()[-1] == "distillation α=3" and baselines.loc["distillation α=3", "alpha"] == 3.0
    assert len(baselines) == len(study.summary) + 1
    # the same old model everywhere: the old error is shared
    assert tradeoff["error_old"].nunique() == 1 and tradeoff["error_old"].iloc[0] == study.summary["error_old"].iloc[0]


def test_scenario_comparison_trains_every_registered_scenario(flip_data):
    cfg = FlipStudyConfig(dataset="digits", n_train=100, n_test=100, epoch_scale=0.2)
    table = scenario_comparison(flip_data, config=cfg)
    assert table.index.tolist() == ["more_data", "more_epochs", "bigger_model", "all"]
    assert np.allclose(table["error_old"] - table["pfr"] + table["nfr"], table["error_new"])


def test_flip_study_record_round_trips(study, flip_data, tradeoff, tmp_path):
    tradeoff, baselines = tradeoff
    record = flip_study_record(study, baselines=baselines, tradeoff=tradeoff, breakdown=flip_breakdown(study, flip_data),
                               scenarios=pd.DataFrame())
    saved = load_record(save_record(tmp_path, notebook="06_model_update_flips", **record))
    assert saved["parameters"]["SCENARIO"] == "bigger_model" and saved["parameters"]["TRADEOFF_BETAS"] == [0.0, 5.0]
    assert saved["metrics"]["focal_distillation/nfr"] == pytest.approx(study.summary.loc["focal distillation", "nfr"])
    assert set(saved["tables"]) == {"summary", "tradeoff", "per_class", "per_group"}
    nfr = study.summary.loc["no constraint", "nfr"]
    assert saved["extra"]["finding"].startswith("Focal distillation (alpha 1, beta 5)") and f"{100 * nfr:.2g}%" in saved["extra"]["finding"]


def test_flip_config_validation():
    assert FlipStudyConfig(n_train=np.int64(50)).n_train == 50
    with pytest.raises(InvalidParameterError, match="'tradeoff_temperatures' parameter of FlipStudyConfig must be a non-empty list"):
        FlipStudyConfig(tradeoff_temperatures=[])
    with pytest.raises(InvalidParameterError, match="'distance' parameter of FlipStudyConfig must be one of"):
        FlipStudyConfig(distance="l1")
    with pytest.raises(InvalidParameterError, match="'compare_scenarios' parameter"):
        FlipStudyConfig(compare_scenarios="yes")
    with pytest.raises(InvalidParameterError, match="'config' parameter of flip_study"):
        flip_study(None, config={"dataset": "digits"})


# ------------------------------------------------------------------------------------------------ notebook 07
def test_bct_study_matches_its_parts(bstudy, bct_data):
    split = retrieval_split(bct_data, n_queries=BCT_CFG.n_queries)
    assert split.n_gallery == 200 and len(bstudy.split.query[1]) == 100
    # the old model saw the first 30% of the training rows only
    assert bstudy.n_old_train == round(0.3 * 400)
    again = retrieval_matrix(bstudy.models, split.query, split.gallery, pairs=[("BCT", "old"), ("old", "old")])
    row = bstudy.matrix.set_index(["query_model", "gallery_model"])
    assert again["map"].tolist() == [row.loc[("BCT", "old"), "map"], row.loc[("old", "old"), "map"]]
    comp = bstudy.compatibility.set_index(["model", "metric"])
    expected = compatibility_summary(bstudy.matrix, new="linear map", new_gallery="independent", metric="map")
    assert comp.loc[("linear map", "map"), "update_gain"] == pytest.approx(expected["update_gain"], nan_ok=True)
    assert bstudy.gains("map")["BCT"]["new_old"] == row.loc[("BCT", "old"), "map"]


def test_flip_study_config_fills_a_partial_tradeoff_and_refuses_unknown_keys():
    from workbench.compatibility.studies import FLIP_GROUPS, flip_study_config

    cfg = flip_study_config(dataset="digits", n_train=100, n_test=100, beta=2.0, tradeoff={"betas": [0, 5]})
    defaults = FlipStudyConfig()
    assert (cfg.beta, cfg.tradeoff_betas) == (2.0, (0.0, 5.0))
    assert (cfg.tradeoff_alpha, cfg.tradeoff_temperatures, cfg.tradeoff_kd_alphas) == (
        defaults.tradeoff_alpha, defaults.tradeoff_temperatures, defaults.tradeoff_kd_alphas)
    assert flip_study_config() == defaults and set(FLIP_GROUPS) == {"TRADEOFF"}
    with pytest.raises(InvalidParameterError, match=r"'TRADEOFF' parameter of notebook 06_model_update_flips must be a dict with "
                                                    r"keys among \['alpha', 'betas', 'kd_alphas', 'temperatures'\]"):
        flip_study_config(tradeoff={"alphas": [1.0]})
    with pytest.raises(InvalidParameterError, match="'tradeoff_temperatures' parameter of FlipStudyConfig"):
        flip_study_config(tradeoff={"temperatures": [0.0]})


def test_bct_study_config_fills_a_partial_models_dict_and_refuses_unknown_keys():
    from workbench.compatibility.studies import BCT_GROUPS, bct_study_config

    cfg = bct_study_config(dataset="digits", n_train=300, n_test=200, n_queries=50, models={"new_epochs": 2, "new_hidden": [32]})
    defaults = BCTStudyConfig()
    assert (cfg.new_epochs, cfg.new_hidden, cfg.dataset) == (2, (32,), "digits")
    assert (cfg.old_hidden, cfg.embedding_dim, cfg.old_epochs) == (defaults.old_hidden, defaults.embedding_dim, defaults.old_epochs)
    assert bct_study_config() == defaults and set(BCT_GROUPS) == {"MODELS"}
    with pytest.raises(InvalidParameterError, match=r"'MODELS' parameter of notebook 07_backward_compatible_embeddings must be a "
                                                    r"dict with keys among \['embedding_dim', 'new_epochs'"):
        bct_study_config(models={"epochs": 2})
    with pytest.raises(InvalidParameterError, match="'embedding_dim' parameter of BCTStudyConfig must be an int >= 1"):
        bct_study_config(models={"embedding_dim": 0})


def test_lambda_sweep_reuses_the_study_model(bstudy, bct_data):
    sweep = lambda_sweep(bct_data, bstudy)
    assert sweep["lambda"].tolist() == [1.0, 3.0]
    row = bstudy.matrix.set_index(["query_model", "gallery_model"])
    assert sweep.loc[0, "map_new_old"] == row.loc[("BCT", "old"), "map"]
    assert sweep.loc[0, "map_old_old"] == sweep.loc[1, "map_old_old"] == row.loc[("old", "old"), "map"]


def test_bct_record(bstudy, tmp_path):
    m = bct_study_metrics(bstudy.matrix, bstudy.compatibility)
    assert all(re.match(METRIC_KEY_PATTERN, k) for k in m)
    assert "top1/linear_map/old" in m and "update_gain/top1/bct" in m and isinstance(m["compatible/map/independent"], bool)
    saved = load_record(save_record(tmp_path, notebook="07", **bct_study_record(bstudy)))
    assert saved["parameters"]["NEW_HIDDEN"] == [64] and saved["config"]["new"]["hidden"] == [64]
    assert len(saved["tables"]["matrix"]) == 7
    assert f"{bstudy.gains('map')['BCT']['new_old']:.3f}" in saved["extra"]["finding"]


def test_rank_gallery_agrees_with_retrieval_metrics():
    rng = np.random.default_rng(0)
    q, g = rng.normal(size=(30, 5)), rng.normal(size=(40, 5))
    ql, gl = rng.integers(0, 3, 30), rng.integers(0, 3, 40)
    for sim in ("cosine", "euclidean"):
        top = rank_gallery(q, g, similarity=sim, k=1)[:, 0]
        assert np.mean(gl[top] == ql) == retrieval_metrics(q, ql, g, gl, similarity=sim)["top1"]
    assert rank_gallery(q[0], g).shape == (1, 40)


@pytest.mark.parametrize("kwargs, message", [
    ({"hidden": (-4,)}, "The 'hidden' parameter of BCTConfig must be a list or tuple of an int >= 1. Got (-4,) instead."),
    ({"hidden": 5}, "The 'hidden' parameter of BCTConfig must be a list or tuple of an int >= 1. Got 5 instead."),
    ({"lr": 0}, "The 'lr' parameter of BCTConfig must be a float > 0. Got 0 instead."),
    ({"head": "cos"}, "The 'head' parameter of BCTConfig must be one of ('linear', 'cosine'). Got 'cos' instead."),
])
def test_bct_config_names_the_bad_parameter(kwargs, message):
    with pytest.raises(InvalidParameterError) as err:
        BCTConfig(**kwargs)
    assert str(err.value) == message


def test_bct_study_config_validation():
    assert BCTStudyConfig(embedding_dim=np.int32(16)).old_config().embedding_dim == 16
    assert BCTStudyConfig(influence_weight=2).new_config().influence_weight == 2.0
    with pytest.raises(InvalidParameterError, match="'old_n_classes' parameter of BCTStudyConfig must be an int >= 2"):
        BCTStudyConfig(old_n_classes=1)
    with pytest.raises(InvalidParameterError, match="'similarity' parameter of BCTStudyConfig"):
        BCTStudyConfig(similarity="dot")
