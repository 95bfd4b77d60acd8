"""The audit and shadow-budget studies of notebook 02: the one-run audit on real training (a memorising model is
certifiably leaky, a DP model's audited bound stays under its promise), the theory-vs-practice table, the shadow
loop's determinism and the shadow-budget table read from prefixes of one set of shadows."""
from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest
import torch

from workbench.privacy import attacks as A
from workbench.privacy import audit as AU
from workbench.privacy import studies as S
from workbench.results import METRIC_KEY_PATTERN

pytestmark = pytest.mark.usefixtures("one_torch_thread")  # tiny models: one thread is fastest


def _pool(seed=0, n=240, d=8):
    # random labels: a model gets them right only by memorising them
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, d, generator=g), torch.randint(0, 3, (n,), generator=g)


AUDIT_CONFIG = S.AuditStudyConfig(epsilons=(1.0,), n_canaries=160, epochs=40, batch_size=16, lr=1e-2, hidden=(128,), seed=1)


@pytest.fixture(scope="module")
def audit():
    return S.one_run_audit_study(_pool(), config=AUDIT_CONFIG)


def test_audit_study_certifies_the_memorising_model_and_not_the_dp_one(audit):
    t = audit.table.set_index("model")
    assert list(t.index) == ["non-DP", "eps=1"]
    assert np.isnan(t.loc["non-DP", "epsilon"]) and t.loc["eps=1", "epsilon"] == pytest.approx(1.0, rel=0.1)
    # each canary's inclusion is a fair coin
    assert 0.35 < audit.included.mean() < 0.65 and len(audit.included) == 160
    # a model that memorises random labels is certifiably not 0.5-DP (measured at this seed: 1.6)
    assert t.loc["non-DP", "epsilon_lb"] > 0.5 and t.loc["non-DP", "guess_accuracy"] > 0.8
    # the DP model: the audited bound stays below the promise
    assert t.loc["eps=1", "epsilon_lb"] <= t.loc["eps=1", "epsilon"]
    for label, res in audit.audits.items():
        assert res.correct == AU.count_correct_guesses(audit.scores[label], included=audit.included, k_plus=res.k_plus,
                                                       k_minus=res.k_minus)
        assert res.epsilon_lb == AU.one_run_audit(audit.scores[label], included=audit.included, delta=AUDIT_CONFIG.delta).epsilon_lb
        assert res.epsilon_lb <= res.max_epsilon_lb
    # included canaries have lower loss under the memorising model
    s = audit.scores["non-DP"]
    assert s[audit.included].mean() > s[~audit.included].mean()


def test_audit_study_is_deterministic_and_validates():
    small = S.AuditStudyConfig(epsilons=(), n_canaries=20, epochs=2, hidden=(8,), seed=2)
    a = S.one_run_audit_study(_pool(n=60), config=small)
    b = S.one_run_audit_study(_pool(n=60), config=small)
    pd.testing.assert_frame_equal(a.table, b.table)
    np.testing.assert_array_equal(a.scores["non-DP"], b.scores["non-DP"])
    with pytest.raises(ValueError, match="needs more examples than the 20 canaries"):
        S.one_run_audit_study(_pool(n=20), config=small)
    with pytest.raises(ValueError, match="'n_canaries' parameter of AuditStudyConfig must be an int >= 2"):
        S.AuditStudyConfig(n_canaries=1)
    with pytest.raises(ValueError, match="'config' parameter of one_run_audit_study must be an instance of AuditStudyConfig"):
        S.one_run_audit_study(_pool(), config=None)


def test_audit_vs_promise_joins_the_attack_and_flags_a_broken_promise(audit):
    mia = pd.DataFrame({"model": ["non-DP", "eps=1"], "attack": ["lira-online"] * 2, "tpr_at_fpr_0.001": [0.05, 0.0],
                        "tpr_at_fpr_0.01": [0.2, 0.01], "empirical_epsilon_lb": [1.5, 0.0]})
    t = S.audit_vs_promise(audit.table, membership=mia)
    assert t.model.tolist() == ["non-DP", "eps=1"] and t.bound_holds.all()
    assert t.loc[0, "tpr_at_fpr_0.01"] == 0.2 and np.isnan(t.loc[0, "promised_epsilon"])
    assert t.loc[1, "audited_epsilon_lb"] == audit.table.loc[1, "epsilon_lb"]
    broken = audit.table.assign(epsilon=[np.nan, 0.1 * audit.table.loc[0, "epsilon_lb"]], epsilon_lb=audit.table.loc[0, "epsilon_lb"])
    assert S.audit_vs_promise(broken, membership=mia).bound_holds.tolist() == [True, False]
    m = S.audit_metrics(audit.table)
    assert m["audit/non_dp/epsilon_lb"] == audit.table.loc[0, "epsilon_lb"] and "audit/epsilon_1/promised_epsilon" in m
    assert all(re.match(METRIC_KEY_PATTERN, k) for k in m)


# ------------------------------------------------------------------------------------------- shadow loop
def _train_fn(hidden=(16,)):
    from workbench.privacy.studies.membership import _mlp_train_fn
    from workbench.training import TrainConfig

    return _mlp_train_fn(in_features=8, n_classes=3, config=TrainConfig(epochs=3, batch_size=16, lr=1e-2), hidden=hidden,
                         noise_multiplier=None, delta=1e-5)


def test_shadow_loop_is_deterministic():
    X, y = _pool(n=60)
    keep = A.paired_halves(60, k=4, seed=3)
    a = A.train_shadow_models(_train_fn(), X=X, y=y, k=4, seed=3, keep=keep)
    b = A.train_shadow_models(_train_fn(), X=X, y=y, k=4, seed=3, keep=keep)
    np.testing.assert_array_equal(a.phi, b.phi)
    np.testing.assert_array_equal(a.loss, b.loss)
    c = A.train_shadow_models(_train_fn(), X=X, y=y, k=4, seed=4, keep=keep)
    assert not np.array_equal(a.phi, c.phi)   # another seed, other models
    assert set(a.timings) == {"train_seconds", "score_seconds"} and a.timings["train_seconds"] > 0
    with pytest.raises(ValueError, match="'keep' parameter of train_shadow_models must have shape \\(2, 60\\)"):
        A.train_shadow_models(_train_fn(), X=X, y=y, k=2, keep=keep)


def test_dp_shadow_loop_is_deterministic():
    from workbench.privacy.studies.membership import _mlp_train_fn
    from workbench.training import TrainConfig

    fn = _mlp_train_fn(in_features=8, n_classes=3, config=TrainConfig(epochs=2, batch_size=16, lr=1e-2), hidden=(8,),
                       noise_multiplier=1.0, delta=1e-5)
    X, y = _pool(n=40)
    a = A.train_shadow_models(fn, X=X, y=y, k=2, seed=5)
    b = A.train_shadow_models(fn, X=X, y=y, k=2, seed=5)
    np.testing.assert_array_equal(a.phi, b.phi)
    assert a.info[0]["epsilon"] > 0


def test_paired_halves_balance_every_even_prefix():
    keep = A.paired_halves(101, k=8, seed=0)
    for k in (2, 4, 6, 8):
        assert (keep[:k].sum(0) == k // 2).all()
    assert (keep[::2].sum(1) == 50).all()
    with pytest.raises(ValueError, match="even int"):
        A.paired_halves(10, k=3)


def test_shadow_count_study_reads_prefixes_of_one_training():
    X, y = _pool(n=120)
    cfg = S.ShadowStudyConfig(shadow_counts=(8, 2, 4), epochs=15, batch_size=16, lr=1e-2, hidden=(64,), seed=0)
    study = S.shadow_count_study((X, y), config=cfg)
    t = study.table
    assert cfg.shadow_counts == (2, 4, 8) and study.shadows.k == 8
    assert t[["shadows", "attack"]].values.tolist() == [[k, a] for k in (2, 4, 8) for a in S.SHADOW_ATTACKS]
    assert t.online.tolist() == [a.endswith("online") for a in t.attack]
    # the row at 4 shadows is the attack run on the first 4
    s4 = study.shadows.first(4)
    lira = A.lira_attack(study.target_outputs["phi"], shadow_phi=s4.phi, shadow_in=s4.keep, is_member=study.is_member)
    row = t[(t.shadows == 4) & (t.attack == "lira-online")].iloc[0]
    assert row.auc == lira.auc and row["tpr_at_fpr_0.01"] == lira.tpr_at[0.01]
    # memorised random labels leak to every attack once 8 shadows are there (measured: AUC 0.8-0.9)
    assert (t[t.shadows == 8].auc > 0.65).all()
    assert set(study.timings) == {"target_seconds", "shadow_train_seconds", "shadow_score_seconds", "attack_seconds"}
    m = S.shadow_metrics(t)
    assert m["shadows/lira_online/k_4/auc"] == row.auc and len(m) == 3 * 4 * 3
    with pytest.raises(ValueError, match="'shadow_counts' parameter of ShadowStudyConfig"):
        S.ShadowStudyConfig(shadow_counts=(1,))


def test_shadow_count_study_on_the_bag_model_with_dp_is_deterministic():
    from workbench.privacy.data import load_tweet_task, make_task_model

    task = load_tweet_task(n=80, features="tokens", max_len=8, max_vocab=300, seed=0)
    cfg = S.ShadowStudyConfig(shadow_counts=(2, 4), epsilon=8.0, epochs=2, batch_size=16)
    a = S.shadow_count_study(task.train, config=cfg, model_fn=lambda: make_task_model("bag", task, dim=8))
    b = S.shadow_count_study(task.train, config=cfg, model_fn=lambda: make_task_model("bag", task, dim=8))
    np.testing.assert_array_equal(a.shadows.phi, b.shadows.phi)
    pd.testing.assert_frame_equal(a.table, b.table)
    assert a.shadows.info[0]["epsilon"] == pytest.approx(8.0, rel=0.1)   # the shadows train with DP-SGD too
    with pytest.raises(ValueError, match="'model_fn' parameter of shadow_count_study must be a callable"):
        S.shadow_count_study(task.train, config=cfg, model_fn="bag")
