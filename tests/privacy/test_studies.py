"""The study functions behind notebooks 01 and 02: they give the same numbers as the notebooks' former
hand-written cells (same recipe, same random draws), their tables hold what the attacks and the DP guarantee
say they should, and bad input fails with a clear message."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import torch

from workbench.privacy import attacks as A
from workbench.privacy import canaries as C
from workbench.privacy import studies as S

pytestmark = pytest.mark.usefixtures("one_torch_thread")  # tiny models: one thread is fastest


# ------------------------------------------------------------------------------------------- membership inference
def _pool(seed=0, n=120):
    # random labels: a model can only get them right by memorising its training set, so membership leaks
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, 8, generator=g), torch.randint(0, 3, (n,), generator=g)


MIA_CONFIG = S.MembershipStudyConfig(epsilons=(2.0,), k_shadows=4, epochs=30, batch_size=16, lr=1e-2, hidden=(128,), seed=3)


@pytest.fixture(scope="module")
def mia():
    return S.membership_attack_study(_pool(), config=MIA_CONFIG)


def _notebook_membership_cell(X, y, *, epsilons, k, epochs, batch, lr, dp_lr, hidden, delta, seed):
    """The code notebook 02 ran before the study function existed (cells 4 and 6), verbatim but for names."""
    from workbench.models import MLP
    from workbench.privacy.accounting import noise_for_epsilon
    from workbench.privacy.dp import DPConfig, train
    from workbench.training import TrainConfig

    mia_config = TrainConfig(epochs=epochs, batch_size=batch, lr=lr, seed=seed)
    dp_mia_config = TrainConfig(epochs=epochs, batch_size=batch, lr=dp_lr, seed=seed)
    half = len(X) // 2
    steps_per_epoch = -(-half // batch)
    sigmas = {eps: noise_for_epsilon(target_epsilon=eps, sample_rate=1 / steps_per_epoch, steps=steps_per_epoch * epochs,
                                     delta=delta) for eps in epsilons}

    def make_train_fn(epsilon):
        def train_fn(X, y, *, seed):
            torch.manual_seed(seed)
            model = MLP(in_features=X.shape[1], hidden=hidden, out_features=3)
            cfg = TrainConfig(**{**(mia_config if epsilon is None else dp_mia_config).__dict__, "seed": seed})
            dp = None if epsilon is None else DPConfig(noise_multiplier=sigmas[epsilon], delta=delta)
            res = train(model, (X, y), config=cfg, dp=dp, progress=False)
            return res.model, {"epsilon": res.epsilon}
        return train_fn

    reports = {}
    for eps in [None, *epsilons]:
        label = "non-DP" if eps is None else f"eps={eps:g}"
        reports[label] = A.membership_inference(make_train_fn(eps), X=X, y=y, k=k, seed=seed)
    rows = []
    for label, rep in reports.items():
        eps = rep.target_info.get("epsilon")
        for row in rep.summary():
            row.update(model=label, epsilon=eps, empirical_epsilon_lb=A.empirical_epsilon(rep.results[row["attack"]], delta=delta))
            rows.append(row)
    return reports, rows, sigmas


def test_membership_study_gives_the_numbers_of_the_former_notebook_cell(mia):
    c = MIA_CONFIG
    X, y = _pool()
    reports, rows, sigmas = _notebook_membership_cell(X, y, epsilons=list(c.epsilons), k=c.k_shadows, epochs=c.epochs,
                                                      batch=c.batch_size, lr=c.lr, dp_lr=c.dp_lr, hidden=c.hidden, delta=c.delta,
                                                      seed=c.seed)
    assert mia.noise_multipliers == sigmas
    assert list(mia.reports) == list(reports) == ["non-DP", "eps=2"]
    for label, rep in reports.items():
        np.testing.assert_array_equal(mia.reports[label].is_member, rep.is_member)
        for name, r in rep.results.items():
            np.testing.assert_array_equal(mia.reports[label].results[name].scores, r.scores)
    expected = pd.DataFrame(rows)[list(mia.table.columns)]
    pd.testing.assert_frame_equal(mia.table, expected)


def test_membership_study_table_and_privacy(mia):
    t = mia.table
    assert t[["model", "attack"]].values.tolist() == [[m, a] for m in ("non-DP", "eps=2") for a in A.ATTACKS]
    assert t.loc[t.model == "non-DP", "epsilon"].isna().all()
    # the DP target trains on exactly half the pool, the size the noise was calibrated for: it spends its epsilon
    assert t.loc[t.model == "eps=2", "epsilon"].unique() == pytest.approx([2.0], rel=0.01)
    assert mia.train_config.lr == 1e-2 and mia.dp_train_config.lr == MIA_CONFIG.dp_lr and mia.dp_train_config.epochs == 30
    assert mia.timings["membership_inference_seconds"] > 0
    # memorised random labels leak; measured at this seed: loss AUC 0.91, LiRA online 0.90, DP attacks 0.49-0.54
    non_dp = t[t.model == "non-DP"].set_index("attack")
    assert non_dp.loc["loss", "auc"] > 0.8 and non_dp.loc["lira-online", "auc"] > 0.8
    assert non_dp.loc["loss", "empirical_epsilon_lb"] > 1.0  # the non-DP model is certifiably not 1-DP
    assert (t.loc[t.model == "eps=2", "auc"] < 0.65).all()
    for row in t.itertuples():
        assert row.empirical_epsilon_lb == A.empirical_epsilon(mia.reports[row.model].results[row.attack], delta=MIA_CONFIG.delta)


def test_membership_config_and_input_validation():
    assert S.MembershipStudyConfig(epsilons=[1, 8], hidden=16).hidden == (16,)
    with pytest.raises(ValueError, match="'epsilons' parameter of MembershipStudyConfig must be a list or tuple of a float > 0"):
        S.MembershipStudyConfig(epsilons=[0.0])
    with pytest.raises(ValueError, match="'epsilons' parameter of MembershipStudyConfig must not repeat"):
        S.MembershipStudyConfig(epsilons=[1.0, 1])
    with pytest.raises(ValueError, match="'k_shadows' parameter of MembershipStudyConfig must be an int >= 2"):
        S.MembershipStudyConfig(k_shadows=1)
    with pytest.raises(ValueError, match="'delta' parameter of MembershipStudyConfig must be a float in \\(0, 1\\)"):
        S.MembershipStudyConfig(delta=1.0)
    with pytest.raises(ValueError, match="'data' parameter of membership_attack_study"):
        S.membership_attack_study((torch.zeros(10, 2), torch.zeros(9, dtype=torch.long)))
    with pytest.raises(ValueError, match="at least 4 examples"):
        S.membership_attack_study((torch.zeros(2, 2), torch.zeros(2, dtype=torch.long)))
    with pytest.raises(ValueError, match="'config' parameter of membership_attack_study must be an instance of MembershipStudyConfig"):
        S.membership_attack_study(_pool(), config={"epochs": 1})


# ------------------------------------------------------------------------------------------- theory vs practice
def test_theory_vs_practice_on_a_dp_study(mia):
    t = S.theory_vs_practice(mia.reports, epsilons=[2.0], delta=1e-5)
    grid = t.bounds["bound eps=2"][0]
    assert list(t.bounds) == ["bound eps=2"] and len(grid) == 401 and grid[0] == 0.0 and grid[1] == 1e-4 and grid[-1] == 1.0
    np.testing.assert_array_equal(t.bounds["bound eps=2"][1], A.dp_tpr_bound(grid, epsilon=2.0, delta=1e-5))
    assert [m["label"] for m in t.measured] == ["non-DP: LiRA online", "eps=2: LiRA online"]
    np.testing.assert_array_equal(t.measured[0]["tpr"], mia.reports["non-DP"].results["lira-online"].tpr)
    spent = mia.reports["eps=2"].target_info["epsilon"]
    assert list(t.model_bounds) == ["eps=2"]
    np.testing.assert_array_equal(t.model_bounds["eps=2"][1], A.dp_tpr_bound(grid, epsilon=spent, delta=1e-5))
    # one check per attack on the DP model, at the epsilon it spent; the guarantee holds for every attack
    assert t.checks.model.tolist() == ["eps=2"] * len(A.ATTACKS) and t.checks.attack.tolist() == list(A.ATTACKS)
    for row in t.checks.itertuples():
        assert row.max_excess_ci == A.bound_violations(mia.reports["eps=2"].results[row.attack], epsilon=spent,
                                                       delta=1e-5)["max_excess_ci"]
    assert (t.checks.n_violations_ci == 0).all()
    assert [r["attack"] for r in t.auc_rows] == list(A.ATTACKS) and all(r["epsilon"] == spent for r in t.auc_rows)
    axis, max_auc = t.auc_bound
    assert axis[0] == pytest.approx(1.0) and axis[-1] == pytest.approx(4.0) and len(axis) == 50
    assert max_auc[0] == A.dp_auc_bound(epsilon=axis[0], delta=1e-5) and np.all(np.diff(max_auc) > 0)
    assert all(r["auc"] < A.dp_auc_bound(epsilon=spent, delta=1e-5) for r in t.auc_rows)


def _report(scores, member, *, epsilon):
    r = A.evaluate_scores(scores, is_member=member, name="loss")
    return A.MembershipReport(is_member=r.is_member, results={"loss": r}, shadows=None, target_outputs={},
                              target_info={} if epsilon is None else {"epsilon": epsilon})


def test_theory_vs_practice_flags_an_attack_that_beats_the_claimed_epsilon():
    member = np.r_[np.ones(200, bool), np.zeros(200, bool)]
    perfect = _report(member.astype(float), member, epsilon=0.5)
    guessing = _report(np.random.default_rng(0).random(400), member, epsilon=0.5)
    t = S.theory_vs_practice({"leaky": perfect, "honest": guessing, "non-DP": _report(member * 1.0, member, epsilon=None)},
                             epsilons=[0.5], delta=1e-5, attack="loss")
    checks = t.checks.set_index("model")
    assert checks.loc["leaky", "n_violations_ci"] > 0 and checks.loc["leaky", "max_excess_ci"] > 0.3
    assert checks.loc["honest", "n_violations_ci"] == 0
    assert "non-DP" not in checks.index and list(t.model_bounds) == ["leaky", "honest"]
    assert [m["label"] for m in t.measured] == ["leaky: loss", "honest: loss", "non-DP: loss"]


def test_theory_vs_practice_without_dp_models_and_bad_input():
    member = np.r_[np.ones(20, bool), np.zeros(20, bool)]
    t = S.theory_vs_practice({"non-DP": _report(member * 1.0, member, epsilon=None)}, epsilons=[], delta=1e-5, attack="loss")
    assert t.checks.empty and list(t.checks.columns) == ["model", "attack", "max_excess", "max_excess_ci", "n_violations_ci"]
    assert t.bounds == {} and t.auc_rows == [] and len(t.auc_bound[0]) == 0
    with pytest.raises(ValueError, match="'attack' parameter of theory_vs_practice must be one of"):
        S.theory_vs_practice({}, epsilons=[1.0], delta=1e-5, attack="lira")


# ------------------------------------------------------------------------------------------- canaries
CANARY_CONFIG = S.CanaryStudyConfig(repetitions=(1, 16), n_digits=2, epochs=4, extraction_steps=10, extraction_restarts=2,
                                    extrapolation_samples=100, seed=0)


@pytest.fixture(scope="module")
def tweets():
    from workbench.datasets import load_tweets

    return load_tweets(n=300, seed=1)


@pytest.fixture(scope="module")
def canary(tweets):
    return S.canary_study(tweets.text.tolist(), labels=tweets.label_id.to_numpy(), config=CANARY_CONFIG)


def _notebook_canary_cell(canary_df, *, repetitions, n_digits, epochs, dropout, dp_epsilon, steps, restarts, samples, seed):
    """The code notebook 02 ran before the study function existed (cell 12), verbatim but for names."""
    from workbench.privacy.dp import DPConfig, train
    from workbench.textmodels import RecurrentClassifier
    from workbench.training import TrainConfig

    rng = np.random.default_rng(seed)
    is_val = rng.random(len(canary_df)) < 0.2
    train_df, val_df = canary_df[~is_val], canary_df[is_val]
    canaries = C.make_canaries(repetitions=repetitions, n_digits=n_digits, label=[i % 3 for i in range(len(repetitions))], seed=seed + 1)
    data = C.insert_canaries(train_df.text.tolist(), labels=train_df.label_id.to_numpy(), canaries=canaries, seed=seed)
    vocab = C.build_vocabulary(data.texts, max_size=5000)
    X_tr, y_tr = vocab.encode(data.texts, max_len=32), torch.as_tensor(data.labels)
    X_val, y_val = vocab.encode(val_df.text.tolist(), max_len=32), torch.tensor(val_df.label_id.to_numpy())

    def train_canary_model(*, epochs, dropout=0.0, epsilon=None):
        torch.manual_seed(seed)
        model = RecurrentClassifier(len(vocab), dim=32, hidden=32, dropout=dropout)
        cfg = TrainConfig(epochs=epochs, batch_size=64, lr=3e-3 if epsilon is None else 1e-2, seed=seed)
        dp = None if epsilon is None else DPConfig(target_epsilon=epsilon, delta=1e-4)
        return train(model, (X_tr, y_tr), config=cfg, dp=dp, val=(X_val, y_val), progress=False)

    runs = {"non-DP": train_canary_model(epochs=epochs)}
    val_loss = [row["val_loss"] for row in runs["non-DP"].history.epochs]
    best_epoch = int(np.argmin(val_loss)) + 1
    runs[f"early stop (epoch {best_epoch})"] = train_canary_model(epochs=best_epoch)
    runs[f"dropout {dropout:g}"] = train_canary_model(epochs=epochs, dropout=dropout)
    runs[f"DP eps={dp_epsilon:g}"] = train_canary_model(epochs=epochs, epsilon=dp_epsilon)
    rows = []
    for variant, res in runs.items():
        for c in canaries:
            rank = C.rank_exposure(res.model, canary=c, vocab=vocab)
            extra = C.extrapolated_exposure(res.model, canary=c, vocab=vocab, n_samples=samples, seed=seed)
            ext = C.extract_canary(res.model, canary=c, vocab=vocab, steps=steps, restarts=restarts, method="gumbel", seed=seed)
            rows.append({"variant": variant, "repetitions": c.repetitions, "exposure": rank.exposure, "rank": rank.rank,
                         "extrapolated": extra.exposure, **ext.summary(),
                         "val_accuracy": res.metrics.get("accuracy"), "epsilon": res.epsilon})
    return canaries, pd.DataFrame(rows)


def test_canary_study_gives_the_numbers_of_the_former_notebook_cell(canary, tweets):
    c = CANARY_CONFIG
    canaries, expected = _notebook_canary_cell(tweets, repetitions=list(c.repetitions), n_digits=c.n_digits, epochs=c.epochs,
                                               dropout=c.dropout, dp_epsilon=c.dp_epsilon, steps=c.extraction_steps,
                                               restarts=c.extraction_restarts, samples=c.extrapolation_samples, seed=c.seed)
    assert canary.canaries == canaries
    pd.testing.assert_frame_equal(canary.table, expected)


def test_canary_study_variants_and_exposure(canary):
    t = canary.table
    history = canary.runs["non-DP"].history.epochs
    assert canary.best_epoch == int(np.argmin([e["val_loss"] for e in history])) + 1
    variants = ["non-DP", f"early stop (epoch {canary.best_epoch})", "dropout 0.5", "DP eps=1"]
    assert list(canary.runs) == variants and t.variant.tolist() == [v for v in variants for _ in range(2)]
    assert len(canary.runs[variants[1]].history.epochs) == canary.best_epoch
    assert t.repetitions.tolist() == [1, 16] * 4
    assert [c.label for c in canary.canaries] == [0, 1] and [c.repetitions for c in canary.canaries] == [1, 16]
    assert canary.canaries[0].prefix == C.PREFIXES[0] and canary.canaries[1].prefix == C.PREFIXES[1]
    assert canary.max_exposure == pytest.approx(math.log2(100))
    # exposure lies in [0, log2 |R|] and matches the rank: log2 |R| - log2 rank
    assert ((t.exposure >= 0) & (t.exposure <= canary.max_exposure + 1e-12)).all()
    np.testing.assert_allclose(t.exposure, math.log2(100) - np.log2(t["rank"]))
    assert ((t.digit_accuracy >= 0) & (t.digit_accuracy <= 1)).all() and t.true.str.len().eq(2).all()
    assert t.loc[t.variant == "DP eps=1", "epsilon"].to_numpy() == pytest.approx([1.0, 1.0], rel=0.02)
    assert t.loc[t.variant != "DP eps=1", "epsilon"].isna().all()
    assert set(canary.timings) == {"canary_training_seconds", "canary_attack_seconds"}


def test_canary_config_and_input_validation():
    with pytest.raises(ValueError, match="'repetitions' parameter of CanaryStudyConfig must be a non-empty list or tuple of an int >= 1"):
        S.CanaryStudyConfig(repetitions=[0, 8])
    with pytest.raises(ValueError, match="'repetitions' parameter of CanaryStudyConfig must hold 1 to 8"):
        S.CanaryStudyConfig(repetitions=list(range(1, 10)))
    with pytest.raises(ValueError, match="'n_digits' parameter of CanaryStudyConfig must be an int in"):
        S.CanaryStudyConfig(n_digits=8)
    with pytest.raises(ValueError, match="'val_fraction' parameter of CanaryStudyConfig must be a float in"):
        S.CanaryStudyConfig(val_fraction=0.0)
    with pytest.raises(ValueError, match="'extrapolation_samples' parameter of CanaryStudyConfig must be an int >= 20"):
        S.CanaryStudyConfig(extrapolation_samples=5)
    with pytest.raises(ValueError, match="'labels' parameter of canary_study must hold one class id"):
        S.canary_study(["a", "b"], labels=[0])
    with pytest.raises(ValueError, match="'labels' parameter of canary_study"):
        S.canary_study(["a", "b"], labels=[0.5, 1.0])
    with pytest.raises(ValueError, match="both sides of the validation split"):
        S.canary_study(["a"], labels=[0])


# ------------------------------------------------------------------------------------------- record metrics
def test_membership_metrics_name_every_row_and_repeat_the_first_dp_model(mia):
    m = S.membership_metrics(mia.table)
    n_attacks = len(A.ATTACKS)
    assert len(m) == 2 * n_attacks * 3 + 1 + n_attacks * 3
    assert m["non_dp/lira_online/auc"] == mia.reports["non-DP"].results["lira-online"].auc
    assert m["epsilon_2/loss/tpr_at_fpr_0.001"] == mia.reports["eps=2"].results["loss"].tpr_at[0.001]
    assert m["epsilon_2/rmia_online/tpr_at_fpr_0.01"] == mia.reports["eps=2"].results["rmia-online"].tpr_at[0.01]
    assert m["dp/epsilon"] == mia.reports["eps=2"].target_info["epsilon"]
    assert m["dp/reference/auc"] == m["epsilon_2/reference/auc"]
    assert m["dp/loss/empirical_epsilon_lb"] == mia.table.empirical_epsilon_lb[n_attacks]
    from workbench.results import METRIC_KEY_PATTERN
    import re
    assert all(re.match(METRIC_KEY_PATTERN, k) for k in m)
    two_dp = pd.concat([mia.table, mia.table[mia.table.model == "eps=2"].assign(model="eps=8", epsilon=7.9, auc=0.6)])
    assert S.membership_metrics(two_dp)["dp/epsilon"] == m["dp/epsilon"]  # the first DP model, not the last
    assert not any(k.startswith("dp/") for k in S.membership_metrics(mia.table[mia.table.model == "non-DP"]))


def test_canary_metrics(canary):
    m = S.canary_metrics(canary.table)
    assert len(m) == 8 * 3
    row = canary.table.iloc[-1]
    assert m["canary/dp_epsilon_1/repetitions_16/exposure"] == row.exposure
    assert m["canary/dp_epsilon_1/repetitions_16/extrapolated_exposure"] == row.extrapolated
    assert m["canary/dp_epsilon_1/repetitions_16/digit_accuracy"] == row.digit_accuracy
    assert f"canary/early_stop/repetitions_1/exposure" in m and "canary/dropout_0.5/repetitions_1/exposure" in m


def test_dp_study_metrics():
    sweep = pd.DataFrame({"model": ["bag", "bag", "linear"], "epsilon_target": [np.nan, 0.5, 2.0],
                          "epsilon": [np.nan, 0.49, 1.98], "val_accuracy": [0.64, 0.51, 0.66]})
    timing = pd.DataFrame({"model": ["bag", "bag"], "engine": ["non-DP", "fast"], "slowdown": [1.0, 1.6]})
    m = S.dp_study_metrics(sweep, timing=timing)
    # the records' one naming scheme (c317f01): "/" between levels, "non-DP" -> "non_dp"
    assert list(m) == ["bag/non_dp/val_accuracy", "bag/non_dp/epsilon", "bag/eps_0.5/val_accuracy", "bag/eps_0.5/epsilon",
                       "linear/eps_2/val_accuracy", "linear/eps_2/epsilon", "slowdown/bag/non_dp", "slowdown/bag/fast"]
    assert m["bag/eps_0.5/epsilon"] == 0.49 and math.isnan(m["bag/non_dp/epsilon"]) and m["slowdown/bag/fast"] == 1.6
    assert len(S.dp_study_metrics(sweep)) == 6


# ------------------------------------------------------------------------------------------- engine timings
@pytest.fixture(scope="module")
def token_task():
    from workbench.privacy.data import load_tweet_task

    return load_tweet_task(n=200, features="tokens", max_len=16, max_vocab=1000, seed=0)


@pytest.mark.filterwarnings("ignore::UserWarning")  # Opacus's notices about secure RNG and backward hooks
def test_engine_timings_rows_ratios_and_unsupported_pairs(token_task):
    from workbench.training import TrainConfig

    threads = torch.get_num_threads()
    t = S.engine_timings({"tokens": token_task}, models=["bag", "gru"], engines=["fast", "opacus-ghost"], samples=64,
                         config=TrainConfig(epochs=3, batch_size=32, lr=0.01, seed=0), repeats=1, threads=2)
    assert torch.get_num_threads() == threads  # restored
    assert t[["model", "engine"]].values.tolist() == [[m, e] for m in ("bag", "gru") for e in ("non-DP", "fast", "opacus-ghost")]
    for model, rows in t.groupby("model"):
        base = rows.seconds_per_epoch.iloc[0]
        assert base > 0 and rows.slowdown.iloc[0] == 1.0
        np.testing.assert_allclose(rows.slowdown, rows.seconds_per_epoch / base)
    ghost_gru = t[(t.model == "gru") & (t.engine == "opacus-ghost")].iloc[0]
    # Opacus ghost clipping refuses the GRU's hidden projection, used once per time step
    assert math.isnan(ghost_gru.seconds_per_epoch) and "not supported" in ghost_gru.note
    others = t.drop(index=ghost_gru.name)
    assert np.isfinite(others.seconds_per_epoch).all() and (others.note == "").all()


def test_engine_timings_input_validation(token_task):
    tasks = {"tokens": token_task}
    with pytest.raises(ValueError, match=r"The 'engines' parameter of engine_timings must be a list or tuple of .*'opacus-ghost'.*Got \['ghost'\] instead"):
        S.engine_timings(tasks, models=["bag"], engines=["ghost"])
    with pytest.raises(ValueError, match=r"The 'models' parameter of engine_timings must be a list or tuple of .*'gru'.*Got \['transformer'\] instead"):
        S.engine_timings(tasks, models=["transformer"])
    with pytest.raises(ValueError, match=r"lacks the features \['minilm'\]"):
        S.engine_timings(tasks, models=["bag", "linear"])
    with pytest.raises(ValueError, match="'samples' parameter of engine_timings must be an int >= 1"):
        S.engine_timings(tasks, models=["bag"], samples=0)


# ------------------------------------------------------------------------------------------- the attack pool
def test_load_attack_pool_pairs_minilm_features_with_labels():
    from workbench.datasets import encode_texts, load_tweets

    pool = S.load_attack_pool(n=12, seed=0)
    tweets = load_tweets(n=12, seed=0)
    assert pool.texts == tweets.text.tolist()
    assert pool.y.dtype == torch.int64 and pool.y.tolist() == tweets.label_id.tolist()
    assert pool.X.dtype == torch.float32 and tuple(pool.X.shape) == (12, 384)
    np.testing.assert_array_equal(pool.X.numpy(), encode_texts(pool.texts, progress=False))
    assert pool.timings["encode_seconds"] >= 0
    with pytest.raises(ValueError, match="'n' parameter of load_attack_pool must be an int >= 4"):
        S.load_attack_pool(n=2)


def test_attack_study_record_round_trips_through_a_run_record(mia, canary, tmp_path):
    from workbench.results import load_record, save_record

    theory = S.theory_vs_practice(mia.reports, epsilons=[2.0], delta=1e-5)
    pool = S.AttackPool(X=torch.zeros(4, 1), y=torch.zeros(4, dtype=torch.long), texts=[""] * 4, timings={"encode_seconds": 0.5})
    X, y = _pool()
    audit = S.one_run_audit_study((X, y), config=S.AuditStudyConfig(epsilons=(2.0,), n_canaries=40, epochs=2, hidden=(8,)))
    shadows = S.shadow_count_study((X, y), config=S.ShadowStudyConfig(shadow_counts=(2,), epochs=2))
    save_record(tmp_path, notebook="02_privacy_attacks", seed=3,
                **S.attack_study_record(mia, theory=theory, canary=canary, pool=pool, audit=audit, shadows=shadows))
    rec = load_record(tmp_path)
    assert rec["metrics"] == {**S.membership_metrics(mia.table), **S.canary_metrics(canary.table), **S.audit_metrics(audit.table),
                              **S.shadow_metrics(shadows.table)}
    assert [r["model"] for r in rec["tables"]["theory_vs_practice"]] == ["non-DP", "eps=2"]
    assert rec["tables"]["theory_vs_practice"][1]["bound_holds"] and len(rec["tables"]["shadow_budget"]) == 4
    assert rec["config"]["audit"]["n_canaries"] == 40 and rec["config"]["shadows"]["shadow_counts"] == [2]
    assert rec["config"]["mia"]["lr"] == 1e-2 and rec["config"]["mia_dp"]["lr"] == 3e-3
    assert rec["config"]["noise_multipliers"] == {"2.0": mia.noise_multipliers[2.0]}
    assert rec["config"]["canaries"]["n_digits"] == 2 and rec["config"]["canaries"]["repetitions"] == [1, 16]
    assert set(rec["timings"]) == {"encode_seconds", "membership_inference_seconds", "canary_training_seconds", "canary_attack_seconds",
                                   "audit_seconds", *(f"shadow_study_{k}" for k in shadows.timings)}
    rows = rec["tables"]["membership_inference"]
    assert len(rows) == 2 * len(A.ATTACKS) and rows[0]["epsilon"] is None and rows[-1]["epsilon"] == mia.reports["eps=2"].target_info["epsilon"]
    assert len(rec["tables"]["bound_checks"]) == len(A.ATTACKS) and len(rec["tables"]["canaries"]) == 8
    assert rec["tables"]["canaries"][0]["true"] == canary.table.true[0]
