"""The orchestration moved out of notebooks 01 and 02 (issue 11): each helper gives the numbers of the notebook
cells it replaced, and each notebook's parameter list matches the names the helpers read."""
import json
import re
from pathlib import Path

import numpy as np
import pytest

from workbench.privacy import studies as S
from workbench.privacy.accounting import compute_epsilon
from workbench.privacy.data import make_task_model
from workbench.privacy.dp import DPConfig, epsilon_sweep, train
from workbench.privacy.fast_dp import GhostClippingEngine
from workbench.training import TrainConfig, fit
from workbench.validation import InvalidParameterError

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")
NOTEBOOKS = Path(__file__).parents[2] / "notebooks"
SMOKE_02 = dict(N_POOL=200, K_SHADOWS=2, EPSILONS=[4.0], DELTA=1e-5, N_AUDIT_CANARIES=100, SHADOW_COUNTS=[2, 4],
                TRAINING=dict(mia_epochs=3, mia_batch=32, n_transformer_texts=40, transformer_epochs=1), REPETITIONS=[1, 8],
                N_DIGITS=3, CANARY=dict(n_tweets=200, epochs=2, dp_epsilon=1.0, dropout=0.5, extraction_steps=20,
                                        extraction_restarts=2, extrapolation_samples=200))


def _parameter_names(stem):
    nb = json.loads((NOTEBOOKS / f"{stem}.ipynb").read_text())
    [cell] = [c for c in nb["cells"] if "parameters" in c.get("metadata", {}).get("tags", [])]
    return {m.group(1) for m in re.finditer(r"^([A-Z_0-9]+)\s*=", "".join(cell["source"]), re.M)} - {"SEED", "OUTPUT_DIR"}


@pytest.mark.parametrize("stem, names", [("01_dp_vs_non_dp", S.DP_PARAMETERS), ("02_privacy_attacks", S.ATTACK_PARAMETERS)])
def test_the_helpers_read_exactly_the_notebook_parameters(stem, names):
    assert _parameter_names(stem) == set(names) and len(names) == len(set(names))


def test_dp_study_parameters_fill_partial_groups_and_refuse_unknown_keys():
    p = S.dp_study_parameters({"DATA": {"max_len": 16}, "TIMING": {"engines": ("fast",)}, "EPOCHS": 2})
    assert p["DATA"] == {**S.DP_GROUPS["DATA"], "max_len": 16} and p["EPOCHS"] == 2
    assert p["TIMING"] == {**S.DP_GROUPS["TIMING"], "engines": ["fast"]}
    assert S.dp_study_parameters({}) == S.DP_GROUPS
    with pytest.raises(InvalidParameterError, match=re.escape("The 'DATA' parameter of notebook 01_dp_vs_non_dp must be a "
                                                              "dict with keys among ['max_len', 'max_vocab', 'n_token_tweets', 'n_tweets']")):
        S.dp_study_parameters({"DATA": {"n_tweet": 100}})
    with pytest.raises(InvalidParameterError, match=re.escape("The \"TIMING['engines']\" parameter of notebook 01_dp_vs_non_dp "
                                                              "must be a non-empty list or tuple of one of")):
        S.dp_study_parameters({"TIMING": {"engines": ["gpu"]}})
    with pytest.raises(InvalidParameterError, match="must be a dict with keys among"):
        S.dp_study_parameters({"TIMING": ["bag"]})


def test_attack_study_configs_are_the_former_notebook_configs():
    c = S.attack_study_configs(SMOKE_02, seed=3)
    p = SMOKE_02
    assert c.membership == S.MembershipStudyConfig(epsilons=p["EPSILONS"], k_shadows=2, epochs=3, batch_size=32, delta=1e-5, seed=3)
    assert c.audit == S.AuditStudyConfig(epsilons=[4.0], n_canaries=100, epochs=3, batch_size=32, delta=1e-5, seed=3)
    assert c.transformer == S.TransformerAuditConfig(epsilons=[4.0], n_canaries=20, epochs=1, delta=1e-5, seed=3)
    assert c.shadows == S.ShadowStudyConfig(shadow_counts=[2, 4], epochs=3, batch_size=32, seed=3)
    assert c.canary == S.CanaryStudyConfig(repetitions=[1, 8], n_digits=3, epochs=2, dropout=0.5, dp_epsilon=1.0,
                                           extraction_steps=20, extraction_restarts=2, extrapolation_samples=200, seed=3)


def test_attack_study_configs_reject_missing_unknown_and_bad_values():
    with pytest.raises(InvalidParameterError, match=r"Missing \['N_DIGITS'\], unknown \['N_POLL'\]"):
        S.attack_study_configs({**{k: v for k, v in SMOKE_02.items() if k != "N_DIGITS"}, "N_POLL": 3})
    with pytest.raises(InvalidParameterError, match="must be a mapping"):
        S.attack_study_configs([("N_POOL", 200)])
    with pytest.raises(InvalidParameterError, match="'k_shadows' parameter of MembershipStudyConfig"):
        S.attack_study_configs({**SMOKE_02, "K_SHADOWS": 0})
    with pytest.raises(InvalidParameterError, match=re.escape("The 'CANARY' parameter of notebook 02_privacy_attacks must be a "
                                                              "dict with keys among ['dp_epsilon', 'dropout', 'epochs',")):
        S.attack_study_configs({**SMOKE_02, "CANARY": {"dropout_rate": 0.1}})
    with pytest.raises(InvalidParameterError, match=re.escape("The \"TRAINING['mia_epochs']\" parameter of notebook "
                                                              "02_privacy_attacks must be an int >= 1. Got 0 instead.")):
        S.attack_study_configs({**SMOKE_02, "TRAINING": {"mia_epochs": 0}})


def test_attack_study_configs_fill_partial_groups_with_the_defaults():
    without_training = {k: v for k, v in SMOKE_02.items() if k != "TRAINING"}   # a group left out keeps every default
    c = S.attack_study_configs({**without_training, "CANARY": {"epochs": 2}}, seed=3)
    t, k = S.ATTACK_GROUPS["TRAINING"], S.ATTACK_GROUPS["CANARY"]
    assert (c.membership.epochs, c.membership.batch_size, c.transformer.n_canaries) == (t["mia_epochs"], t["mia_batch"],
                                                                                          t["n_transformer_texts"] // 2)
    assert (c.canary.epochs, c.canary.dropout, c.canary.extraction_steps) == (2, k["dropout"], k["extraction_steps"])
    filled = S.attack_study_parameters({"CANARY": {"epochs": 2}})
    assert filled["CANARY"] == {**k, "epochs": 2} and filled["TRAINING"] == t


@pytest.fixture(scope="module")
def tasks():
    return S.load_dp_tasks(["bag"], n_tweets=100, n_token_tweets=160, max_len=8, max_vocab=300, seed=0)


CFG = TrainConfig(epochs=1, batch_size=32, lr=0.01, seed=0)


def test_load_dp_tasks_loads_only_the_features_the_models_need(tasks):
    assert list(tasks) == ["tokens"] and tasks["tokens"].n_train == 128 and len(tasks["tokens"].val[1]) == 32
    with pytest.raises(InvalidParameterError, match="'models' parameter of load_dp_tasks"):
        S.load_dp_tasks(["bert"], n_tweets=10, n_token_tweets=10, max_len=8, max_vocab=10)


def test_schedule_table_and_accounting_curves(tasks):
    table = S.schedule_table(tasks, epsilons=[0.5, 8.0], config=CFG, delta=1e-5)
    assert table["target epsilon"].tolist() == [0.5, 8.0]
    assert table.noise_multiplier[0] > table.noise_multiplier[1] > 0   # a smaller budget needs more noise
    curves = S.accounting_curves(sample_rate=0.25, steps=4, delta=1e-5, points=3, accountants=["rdp"])
    sigmas, eps = curves["RDP"]
    assert np.allclose(sigmas, [0.5, np.sqrt(2), 4.0])
    assert eps == [compute_epsilon(noise_multiplier=float(s), sample_rate=0.25, steps=4, delta=1e-5, accountant="rdp") for s in sigmas]
    assert eps[0] > eps[1] > eps[2]


def test_utility_sweep_gives_the_numbers_of_epsilon_sweep(tasks, tmp_path):
    dp = DPConfig(target_epsilon=8.0, delta=1e-5, max_grad_norm=1.0, engine="fast")
    sweep = S.utility_sweep(tasks, models=["bag"], epsilons=[8.0], config=CFG, dp=dp, output_dir=tmp_path / "a", verbose=False)
    task = tasks["tokens"]
    direct = epsilon_sweep(lambda: make_task_model("bag", task, seed=0), task.train, epsilons=[8.0], config=CFG, dp=dp,
                           val=task.val, output_dir=tmp_path / "b")
    assert sweep.model.tolist() == ["bag", "bag"] and set(S.SWEEP_COLUMNS) <= set(sweep)
    assert sweep.val_accuracy.tolist() == direct.val_accuracy.tolist()
    assert (tmp_path / "a" / "sweep" / "bag-n160-e1-b32-C1-fast-seed0").is_dir()


def test_gradient_norms_are_the_ghost_engine_norms_before_and_after_training(tasks):
    task = tasks["tokens"]
    norms = S.gradient_norms(task, config=CFG, max_grad_norm=1.0, n=64)
    probe = make_task_model("bag", task, seed=0)
    engine = GhostClippingEngine(probe, max_grad_norm=1.0)
    before = engine.per_sample_norms(task.train[0][:64], task.train[1][:64]).tolist()
    engine.remove()
    assert list(norms) == ["at initialisation", "after non-DP training"] and norms["at initialisation"] == before
    fit(probe, task.train, config=CFG, progress=False)
    engine = GhostClippingEngine(probe, max_grad_norm=1.0)
    assert norms["after non-DP training"] == engine.per_sample_norms(task.train[0][:64], task.train[1][:64]).tolist()
    assert norms["after non-DP training"] != before
    assert S.norm_summary({"x": [0.5, 2.0]}, clip=1.0) == {"x": "median 1.250, clipped share at C=1: 50%"}


def test_clip_noise_grid_trains_one_model_per_pair(tasks):
    model, grid = S.clip_noise_grid(tasks, clip_norms=[0.1, 10.0], noise_multipliers=[0.5, 2.0], config=CFG, delta=1e-5,
                                    engine="fast")
    assert model == "bag" and len(grid) == 4
    assert grid[["noise_multiplier", "max_grad_norm"]].values.tolist() == [[0.5, 0.1], [0.5, 10.0], [2.0, 0.1], [2.0, 10.0]]
    assert grid.epsilon[0] == grid.epsilon[1] > grid.epsilon[2] == grid.epsilon[3]   # sigma alone sets epsilon
    task = tasks["tokens"]
    res = train(make_task_model("bag", task, seed=0), task.train, config=CFG,
                dp=DPConfig(noise_multiplier=2.0, max_grad_norm=10.0, delta=1e-5, engine="fast"), val=task.val, progress=False)
    assert grid.val_accuracy[3] == res.metrics["accuracy"]


def test_dp_study_record_sections(tasks):
    import pandas as pd

    sweep = pd.DataFrame({"model": ["bag"], "epsilon_target": [8.0], "epsilon": [7.9], "val_accuracy": [0.5]})
    timing = pd.DataFrame({"model": ["bag"], "engine": ["fast"], "slowdown": [1.3]})
    grid = pd.DataFrame({"noise_multiplier": [1.0]})
    rec = S.dp_study_record(config=CFG, dp=None, sweep=sweep, timing=timing, grid=grid)
    assert rec["metrics"] == {"bag/eps_8/val_accuracy": 0.5, "bag/eps_8/epsilon": 7.9, "slowdown/bag/fast": 1.3}
    assert rec["config"]["train"] is CFG and rec["extra"]["clip_grid"] == [{"noise_multiplier": 1.0}]
