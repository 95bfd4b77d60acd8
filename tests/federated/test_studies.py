"""Notebook 03's study layer: validated config, tidy tables, seed intervals, partitions, per-client privacy, record."""
import numpy as np
import pandas as pd
import pytest

from workbench.federated import studies as S
from workbench.federated.users import activity_groups
from workbench.results import METRIC_KEY_PATTERN, _flat_metrics


@pytest.fixture(scope="module")
def tiny():
    cfg = S.FedStudyConfig(data_size="tiny", stride=32, rounds=3, clients_per_round=3, max_local_steps=2, eval_every=3,
                           continual_periods=2, storage_limit=16, central_epochs=1, strategies=["uniform", "activity"])
    return cfg, S.load_study_data(cfg)


def test_config_validates_and_builds_run_configs():
    cfg = S.FedStudyConfig(rounds=np.int64(5), strategies="uniform, activity", server="fedadam")
    assert cfg.rounds == 5 and cfg.strategies == ("uniform", "activity")
    fed = cfg.fed_config("activity", seed=3, **cfg.continual())
    assert (fed.strategy, fed.seed, fed.periods, fed.server) == ("activity", 3, cfg.continual_periods, "fedadam")
    assert cfg.parameters()["ROUNDS"] == 5
    with pytest.raises(ValueError, match="'task' parameter of FedStudyConfig must be one of"):
        S.FedStudyConfig(task="mnist")
    with pytest.raises(ValueError, match="'rounds' parameter of FedStudyConfig must be an int >= 1"):
        S.FedStudyConfig(rounds=0)


def test_selection_study_is_the_plain_simulator_and_the_record_follows_the_scheme(tiny):
    from workbench.federated.simulation import run_fedavg
    from workbench.federated.tasks import make_model_fn

    cfg, data = tiny
    study = S.selection_study(data, cfg, progress=False)
    assert set(study.table["setting"]) == {"static", "continual", "shuffled_iid"}
    assert cfg.engine == "batched"  # the default engine: the round's devices trained together
    direct = run_fedavg(data, model_fn=make_model_fn(data), config=cfg.fed_config("activity"), progress=False,
                        simulator=cfg.simulator)
    assert study.runs["static"]["activity"].final == direct.final  # same numbers as calling the simulator
    plain = run_fedavg(data, model_fn=make_model_fn(data), config=cfg.fed_config("activity"), progress=False)
    assert plain.final["test_perplexity"] == pytest.approx(direct.final["test_perplexity"], rel=1e-4)
    fair = S.fairness_table(study.runs["static"])
    assert list(fair.columns) == ["strategy", "light_users_accuracy", "medium_users_accuracy", "heavy_users_accuracy", "accuracy_p10"]
    cm = study.runs["static"]["uniform"].client_metrics
    light = cm["accuracy"][activity_groups(cm["n_train"]) == "light"].mean()
    assert fair.loc[0, "light_users_accuracy"] == pytest.approx(light)

    seeds = S.seed_study(data, cfg, seeds=[0, 1], settings=("static",), reuse=study, progress=False)
    assert len(seeds) == 4
    reused = seeds[(seeds.strategy == "activity") & (seeds.seed == 0)].iloc[0]
    assert reused["test_perplexity"] == study.runs["static"]["activity"].final["test_perplexity"]
    intervals = S.seed_intervals(seeds, metric=cfg.metric)
    central = S.centralized_baseline(data, cfg)
    record = S.study_record(cfg, data=data, central=central, study=study, seeds=seeds, intervals=intervals)
    flat = _flat_metrics(record["metrics"])
    import re

    assert all(re.match(METRIC_KEY_PATTERN, k) for k in flat)
    assert "static/activity/test_perplexity" in flat and "seeds/static/activity/difference" in flat
    assert "centralized/test_perplexity" in flat
    assert record["extra"]["finding"].startswith("Over 2 seeds, against uniform selection, test perplexity changes by")
    assert record["extra"]["headline_metric"] in flat and record["extra"]["headline_figure"] == "seed_intervals"


def test_study_config_merges_partial_groups_over_the_defaults():
    cfg = S.study_config(task="shakespeare", rounds=np.int64(4), training={"client_lr": 0.2, "engine": "per_device"},
                         data={"topics": False}, continual={"storage_limit": 8})
    defaults = S.FedStudyConfig()
    assert (cfg.rounds, cfg.client_lr, cfg.topics, cfg.storage_limit) == (4, 0.2, False, 8)
    assert (cfg.batch_size, cfg.context, cfg.continual_periods, cfg.dp_noise) == (defaults.batch_size, defaults.context,
                                                                                  defaults.continual_periods, defaults.dp_noise)
    assert cfg.simulator is S.ENGINES["per_device"]
    with pytest.raises(ValueError, match=r"'training' parameter of study_config must be a dict with keys among \['batch_size'"):
        S.study_config(training={"lr": 0.1})
    with pytest.raises(ValueError, match="'engine' parameter of FedStudyConfig must be one of"):
        S.study_config(training={"engine": "gpu"})
    with pytest.raises(ValueError, match="'dp_noise' parameter of FedStudyConfig must be a float > 0"):
        S.study_config(dp={"noise": 0})


def test_seed_intervals_match_a_t_interval_and_pairing():
    from scipy import stats

    rng = np.random.default_rng(0)
    base = rng.normal(size=6)
    t = pd.DataFrame({"setting": "static", "seed": list(range(6)) * 2, "strategy": ["uniform"] * 6 + ["activity"] * 6,
                      "m": np.concatenate([base, base + 0.3 + 0.01 * rng.normal(size=6)])})
    out = S.seed_intervals(t, metric="m").set_index("strategy")
    lo, hi = stats.t.interval(0.95, 5, loc=base.mean(), scale=stats.sem(base))
    assert out.loc["uniform", "ci_low"] == pytest.approx(lo) and out.loc["uniform", "ci_high"] == pytest.approx(hi)
    # the shared per-seed noise cancels in the paired difference: it survives although the intervals overlap
    assert out.loc["activity", "survives"] and out.loc["activity", "ci_low"] < out.loc["uniform", "ci_high"]


@pytest.mark.slow
def test_partition_and_privacy_studies(tiny):
    """Shakespeare's k-means topics come from MiniLM features of the speeches (encoded once, then cached)."""
    cfg, data = tiny
    table, sizes = S.partition_study(data, n_clients=20, alpha=0.1, min_partition_size=10)
    row = table.set_index("partition")
    assert row.loc["k-means topics, min size 10", "min_size"] >= 10 and row.loc["k-means topics", "min_size"] < 10
    assert row.loc["k-means topics", "n_samples"] == data.train.n_samples == sizes["k-means topics"].sum()
    assert row.loc["k-means topics", "label_skew_tv"] > row.loc["iid", "label_skew_tv"]  # topics change the characters
    again, _ = S.partition_study(data, n_clients=20, alpha=0.1, min_partition_size=10)
    pd.testing.assert_frame_equal(again, table)
    assert "k-means topics" not in set(S.partition_study(data, n_clients=20, topics=False)[0]["partition"])
    assert row.loc["dirichlet, min size 10", "min_size"] >= 10 and row.loc["quantity, min size 10", "min_size"] >= 10
    assert row.loc["quantity (alpha 0.1)", "min_size"] < 10 and row.loc["iid", "label_skew_tv"] < row.loc["dirichlet (alpha 0.1)", "label_skew_tv"]
    clients, summary = S.client_privacy_study(data, cfg, noise_multiplier=1.0, clip=1.0, run=False, progress=False)
    s = summary.set_index("strategy")
    assert s.loc["activity", "heavy_users_epsilon_median"] > s.loc["uniform", "heavy_users_epsilon_median"]
    assert s.loc["activity", "light_users_epsilon_median"] < s.loc["uniform", "light_users_epsilon_median"]
    assert set(clients.columns) >= {"strategy", "n_train", "group", "sample_rate", "epsilon"}


def test_with_partition_deals_every_training_sample_once_and_keeps_the_pooled_test_set(tiny):
    from workbench.federated.partition import quantity_partition

    _, data = tiny
    part = quantity_partition(data.train.n_samples, n_clients=7, alpha=0.5, seed=0)
    d = S.with_partition(data, part, name="quantity", seed=0)
    assert d.n_clients == d.test.n_clients == 7 and d.train.sizes.tolist() == part.sizes.tolist()
    assert sorted(d.train.indices.tolist()) == sorted(data.train.indices.tolist())  # same samples, other devices
    assert sorted(d.test_indices().tolist()) == sorted(data.test_indices().tolist())
    assert d.test.sizes.max() - d.test.sizes.min() <= 1
    with pytest.raises(ValueError, match="must deal each of the .* training samples once"):
        S.with_partition(data, quantity_partition(5, n_clients=2, alpha=1.0), name="x")


def test_partition_seed_study_reuses_the_natural_rows_and_records_each_partition(tiny):
    from dataclasses import replace

    cfg, data = tiny
    cfg = replace(cfg, n_clients=8)
    natural = S.seed_study(data, cfg, seeds=[0, 1], settings=("static",), progress=False)
    table = S.partition_seed_study(data, cfg, seeds=[0, 1], partitions=["dirichlet", "quantity"], natural=natural,
                                   min_partition_size=3, progress=False)
    assert sorted(set(table["setting"])) == ["dirichlet", "natural", "quantity"] and len(table) == 12
    nat = table[table.setting == "natural"].sort_values(["strategy", "seed"])[cfg.metric].to_numpy()
    assert np.array_equal(nat, natural.sort_values(["strategy", "seed"])[cfg.metric].to_numpy())
    # a partition's run is the simulator on the repartitioned devices, nothing else
    from workbench.federated.simulation import run_fedavg
    from workbench.federated.tasks import make_model_fn

    made = S.fednlp_partitions(data, n_clients=8, min_partition_size=3, seed=cfg.seed, topics=False)
    devices = S.with_partition(data, made["quantity, min size 3"], name="quantity", seed=cfg.seed)
    direct = run_fedavg(devices, model_fn=make_model_fn(data), config=cfg.fed_config("activity", seed=1), progress=False,
                        simulator=cfg.simulator)
    row = table[(table.setting == "quantity") & (table.strategy == "activity") & (table.seed == 1)].iloc[0]
    assert row[cfg.metric] == pytest.approx(direct.final[cfg.metric], rel=1e-6)
    intervals = S.seed_intervals(table, metric=cfg.metric)
    study = S.selection_study(data, cfg, progress=False, settings=("static",))
    record = S.study_record(cfg, data=data, central=S.centralized_baseline(data, cfg), study=study,
                            partition_seeds=table, partition_intervals=intervals)
    flat = _flat_metrics(record["metrics"])
    assert {"partition_seeds/quantity/activity/difference", "partition_seeds/natural/uniform/mean"} <= set(flat)
    assert "partition_intervals" in record["tables"]


@pytest.mark.slow
def test_partition_seed_study_trains_on_topic_devices(tiny):
    """The k-means topic devices of the speeches' MiniLM features, trained on: every device holds data."""
    from dataclasses import replace

    cfg, data = tiny
    cfg = replace(cfg, n_clients=8)
    table = S.partition_seed_study(data, cfg, seeds=[0, 1], partitions=["topics"], min_partition_size=3, progress=False)
    assert set(table["setting"]) == {"natural", "topics"} and table[cfg.metric].notna().all()
    topics = S.fednlp_partitions(data, n_clients=8, min_partition_size=3, seed=cfg.seed)["k-means topics, min size 3"]
    assert topics.sizes.min() >= 3 and topics.n_samples == data.train.n_samples


def test_seed_intervals_can_compare_settings_paired_by_strategy_and_seed():
    t = pd.DataFrame({"setting": ["static"] * 4 + ["shuffled_iid"] * 4, "strategy": ["uniform", "uniform", "activity", "activity"] * 2,
                      "seed": [0, 1] * 4, "m": [1.0, 2.0, 1.0, 1.5, 1.5, 2.4, 1.0, 1.6]})
    out = S.seed_intervals(t, metric="m", baseline="static", compare="setting").set_index(["setting", "strategy"])
    assert out.loc[("shuffled_iid", "uniform"), "difference"] == pytest.approx(0.45)  # (0.5 + 0.4) / 2
    assert out.loc[("shuffled_iid", "activity"), "difference"] == pytest.approx(0.05)
    assert out.loc[("static", "activity"), "difference"] == 0.0 and not out.loc[("static", "uniform"), "survives"]
    with pytest.raises(ValueError, match="'compare' parameter of seed_intervals must be one of"):
        S.seed_intervals(t, metric="m", compare="seed")


def test_seed_study_repeats_the_shuffled_control_on_the_same_shuffle(tiny):
    from workbench.federated.simulation import run_fedavg
    from workbench.federated.tasks import make_model_fn

    cfg, data = tiny
    study = S.selection_study(data, cfg, progress=False, settings=("shuffled_iid",))
    seeds = S.seed_study(data, cfg, seeds=[0, 1], settings=("shuffled_iid",), reuse=study, progress=False)
    assert len(seeds) == 4 and set(seeds["setting"]) == {"shuffled_iid"}
    row = seeds[(seeds.strategy == "uniform") & (seeds.seed == 1)].iloc[0]
    direct = run_fedavg(study.iid_data, model_fn=make_model_fn(data), config=cfg.fed_config("uniform", seed=1),
                        progress=False, simulator=cfg.simulator)
    assert row[cfg.metric] == pytest.approx(direct.final[cfg.metric], rel=1e-6)
    fresh = S.seed_study(data, cfg, seeds=[0, 1], settings=("shuffled_iid",), strategies=["uniform"], progress=False)
    assert fresh[cfg.metric].tolist() == pytest.approx(seeds[seeds.strategy == "uniform"][cfg.metric].tolist(), rel=1e-6)


@pytest.mark.slow
@pytest.mark.notebook
def test_seeds_through_the_batch_runner_give_the_same_rows_as_in_one_notebook(tmp_path):
    """grids/federated/seeds.yaml's way: one notebook-03 run per seed (two processes at a time), each with only its
    own seed; seeds_from_runs gathers the rows, which equal seed_study's in one process."""
    from pathlib import Path

    from workbench import batch

    nb = Path(__file__).parents[2] / "notebooks" / "03_federated_sampling.ipynb"
    results = batch.run_notebooks([nb], grid=[{"SEED": 0, "SEEDS": None}, {"SEED": 1, "SEEDS": None}], smoke=True,
                                  parameters={"SHOW_PANEL": False}, output=tmp_path, jobs=2)
    assert [r.status for r in results] == ["completed", "completed"], [r.error for r in results]
    rows = S.seeds_from_runs(tmp_path)
    assert sorted(set(rows["seed"])) == [0, 1] and set(rows["setting"]) == {"static", "continual", "shuffled_iid"}
    record = __import__("json").loads(next(tmp_path.rglob("record.json")).read_text())
    cfg = S.FedStudyConfig(**record["config"])
    here = S.seed_study(S.load_study_data(cfg), cfg, seeds=[0, 1], settings=("static", "continual"), progress=False)
    merged = here.merge(rows, on=["setting", "strategy", "seed"], suffixes=("", "_runs"))
    assert len(merged) == len(here) == 2 * 2 * len(cfg.strategies)
    np.testing.assert_allclose(merged[cfg.metric + "_runs"], merged[cfg.metric], rtol=1e-5)
    assert len(S.seeds_from_runs(tmp_path, table="partition_seeds")) > 0
    other = tmp_path / "other"
    other.mkdir()
    (other / "record.json").write_text(__import__("json").dumps({**record, "config": {**record["config"], "rounds": 99}}))
    with pytest.raises(ValueError, match=r"differ in \['rounds'\]"):
        S.seeds_from_runs(tmp_path)


def test_difference_figure_draws_each_interval_around_its_difference():
    from workbench.plots.federated import difference_figure

    t = pd.DataFrame({"setting": ["natural", "natural", "topics", "topics"], "strategy": ["activity", "uniform"] * 2,
                      "n_seeds": 5, "difference": [-0.5, 0.0, 0.1, 0.0], "difference_low": [-0.6, None, -0.2, None],
                      "difference_high": [-0.4, None, 0.5, None]})
    fig = difference_figure(t, metric="test_perplexity")
    (trace,) = fig.data  # uniform, the baseline, is not drawn
    assert list(trace.x) == ["natural", "topics"] and list(trace.y) == [-0.5, 0.1]
    np.testing.assert_allclose(trace.error_y.array, [0.1, 0.4])
    np.testing.assert_allclose(trace.error_y.arrayminus, [0.1, 0.3])
    assert fig.layout.shapes[0].y0 == 0 and fig.layout.showlegend
