"""The update chain (real training on tweets, cached), the study functions, the record, figures and the panel."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from workbench.results import METRIC_KEY_PATTERN, load_record, save_record
from workbench.scorecard import ModelOutputs, ScorecardConfig, default_rules
from workbench.scorecard.chain import VERSIONS, ChainConfig, UpdateChain, corpus_labels, run_chain
from workbench.scorecard.studies import chain_flips, scorecard_record, update_scorecards, update_verdicts
from workbench.validation import InvalidParameterError

# notebook 09's smoke parameters: the smoke run then reads this test's cached chain (and vice versa)
TINY = ChainConfig(n_tweets=200, words_per_emotion=1, names_per_group=1, noun_phrases=1, encoder_layers=1,
                   n_members=40, seed=0)


def _synthetic_chain(n=600, seed=0) -> UpdateChain:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, n)
    groups = pd.DataFrame({"source": np.where(np.arange(n) < n // 2, "tweet", "corpus"),
                           "gender": np.where(np.arange(n) < n // 2, "", rng.choice(["female", "male"], n)),
                           "race": np.where(np.arange(n) < n // 2, "", rng.choice(["african_american", "european_american", ""], n))})
    outputs = {}
    for i, v in enumerate(VERSIONS):
        pred = np.where(rng.random(n) < 0.6 + 0.03 * i, y, rng.integers(0, 3, n))
        outputs[v] = ModelOutputs(pred=pred, score=rng.random(n), member_scores=rng.normal(0.1 * i, 1, 200),
                                  nonmember_scores=rng.normal(0, 1, 200))
    info = pd.DataFrame({"version": list(VERSIONS), "trained_on": 100, "dp": [v.endswith("_dp") for v in VERSIONS],
                         "epsilon": [8.0 if v.endswith("_dp") else np.nan for v in VERSIONS],
                         "accuracy": [float((outputs[v].pred == y).mean()) for v in VERSIONS],
                         "tweet_accuracy": 0.5, "seconds": 0.0}).set_index("version")
    return UpdateChain(outputs=outputs, labels=y, groups=groups, texts=[""] * n, info=info, config=TINY)


def test_scorecard_chain_config_fills_a_partial_corpus_and_refuses_unknown_keys():
    from dataclasses import fields

    from workbench.scorecard.studies import SCORECARD_GROUPS, scorecard_chain_config

    defaults = {f.name: f.default for f in fields(ChainConfig)}
    assert all(defaults[k] == v for k, v in SCORECARD_GROUPS["CORPUS"].items())   # a partial CORPUS keeps ChainConfig's defaults
    assert scorecard_chain_config(n_tweets=200, corpus={"words_per_emotion": 1, "names_per_group": 1, "noun_phrases": 1},
                                  encoder_layers=1, n_members=40) == TINY   # the smoke parameters, grouped
    cfg = scorecard_chain_config(corpus={"names_per_group": 10})
    assert (cfg.names_per_group, cfg.words_per_emotion, cfg.noun_phrases) == (10, defaults["words_per_emotion"], defaults["noun_phrases"])
    with pytest.raises(InvalidParameterError, match=r"'CORPUS' parameter of notebook 09_update_scorecard must be a dict with keys "
                                                    r"among \['names_per_group', 'noun_phrases', 'words_per_emotion'\]"):
        scorecard_chain_config(corpus={"names": 1})
    with pytest.raises(InvalidParameterError, match="'noun_phrases' parameter of ChainConfig must be an int in"):
        scorecard_chain_config(corpus={"noun_phrases": 11})


def test_corpus_labels_follow_valence():
    assert corpus_labels(["negative", "positive", "none", "negative"]).tolist() == [0, 2, 1, 0]


def test_study_tables_record_and_metric_names(tmp_path):
    chain = _synthetic_chain()
    cfg = ScorecardConfig(n_boot=50, positive_class=2, negative_class=0)
    cards = update_scorecards(chain, updates=[("v1", "v2"), ("v2", "v3")], config=cfg)
    assert cards["update"].unique().tolist() == ["v1 -> v2", "v2 -> v3"]
    assert set(cards[cards.dimension == "fairness"]["group"]) == {"gender", "race"}  # not the source column
    assert {"source", "gender", "race", "class"} <= set(cards[cards.dimension == "flips"]["group"])
    verdicts = update_verdicts(cards, default_rules())
    assert (verdicts.groupby("update")["rule"].last() == "overall").all()
    flips = chain_flips(chain, paths=[("v1", "v2", "v3")])
    assert flips["version"].tolist() == ["v2", "v3"]
    rec = scorecard_record(chain, cards, verdicts=verdicts, flips=flips, config=cfg, rules=default_rules())
    import re

    assert all(re.match(METRIC_KEY_PATTERN, k) for k in rec["metrics"])
    acc = cards[(cards["update"] == "v1 -> v2") & (cards.measure == "accuracy") & (cards.group == "all")].iloc[0]
    assert rec["metrics"]["v1_to_v2/accuracy/change"] == pytest.approx(acc.change)
    assert "v2_to_v3/nfr_by_gender/female" in rec["metrics"] and "v2_to_v3/gender/mean_score_gap/change" in rec["metrics"]
    assert "path/v1_v2_v3/v3/cumulative_nfr" in rec["metrics"]
    path = save_record(tmp_path, notebook="09_update_scorecard", seed=0, **rec)
    saved = load_record(path)
    assert len(saved["tables"]["scorecard"]) == len(cards)
    assert saved["extra"]["overall_verdict"]["v1 -> v2"] in ("pass", "fail", "inconclusive")
    json.dumps(saved)  # plain JSON, NaN turned into null
    with pytest.raises(InvalidParameterError, match="Unknown version"):
        update_scorecards(chain, updates=[("v1", "v9")], config=cfg)


def test_figures_and_panel_build_and_respond():
    pytest.importorskip("ipywidgets")
    from workbench.plots.scorecard import chain_flips_figure, scorecard_figure, verdict_figure
    from workbench.widgets.scorecard import scorecard_panel

    chain = _synthetic_chain()
    cfg = ScorecardConfig(n_boot=30, positive_class=2, negative_class=0)
    cards = update_scorecards(chain, updates=[("v1", "v2"), ("v2", "v3")], config=cfg)
    fig = scorecard_figure(cards, thresholds={"accuracy": 0, "nfr": 0.02, "gap": 0.02, "mia_auc": 0.6})
    assert {t.name for t in fig.data} >= {"accuracy (all)", "NFR (all)", "MIA AUC new", "MIA AUC old"}
    assert set(fig.data[0].y) == {"v1 -> v2", "v2 -> v3"}
    verdict_figure(update_verdicts(cards, default_rules()))
    chain_flips_figure(chain_flips(chain))
    panel = scorecard_panel(chain, cards=cards, config=cfg, old="v2", new="v3")
    status = [c for c in panel.children if type(c).__name__ == "HTML"][0]
    assert "v2 -&gt; v3" in status.value or "v2 -> v3" in status.value
    sliders = [c for box in panel.children if hasattr(box, "children") for c in box.children if type(c).__name__ == "FloatSlider"]
    mia = [s for s in sliders if s.description == "max MIA AUC"][0]
    nfr = [s for s in sliders if s.description == "max group NFR"][0]
    gap = [s for s in sliders if s.description == "max gap growth"][0]
    drop = [s for s in sliders if s.description == "max acc. drop"][0]
    mia.value, nfr.value, gap.value, drop.value = 0.5, 0.0, 0.0, 0.0
    assert "FAIL" in status.value  # NFR <= 0 with random predictions: certainly violated
    nfr.value, gap.value, mia.value, drop.value = 0.2, 0.1, 1.0, 0.05
    assert "FAIL" not in status.value
    dropdowns = [c for box in panel.children if hasattr(box, "children") for c in box.children if type(c).__name__ == "Dropdown"]
    dropdowns[1].value = "v2_dp"  # a pair not computed yet: computed on demand
    assert "v2 -&gt; v2_dp" in status.value or "v2 -> v2_dp" in status.value


@pytest.mark.slow
def test_run_chain_trains_caches_and_reads_back():
    import torch

    torch.set_num_threads(1)
    fresh = run_chain(TINY, cache=False)
    assert fresh.versions == list(VERSIONS) and not fresh.from_cache
    n = len(fresh.labels)
    assert len(fresh.groups) == n and set(fresh.groups["source"]) == {"tweet", "corpus"}
    corpus = fresh.groups["source"] == "corpus"
    assert set(fresh.groups.loc[corpus, "gender"]) == {"female", "male"}
    assert set(fresh.groups.loc[~corpus, "gender"]) == {""}
    for v in VERSIONS:
        out = fresh.outputs[v]
        assert len(out.pred) == n and ((out.score >= 0) & (out.score <= 1)).all()
        assert len(out.nonmember_scores) == int((~corpus).sum())
    assert fresh.info.loc["v2", "trained_on"] < fresh.info.loc["v3", "trained_on"]
    assert fresh.info.loc["v3_dp", "epsilon"] == 8.0 and np.isnan(fresh.info.loc["v3", "epsilon"])
    # the cache returns exactly what training produced (same seed, same numbers)
    run_chain(TINY)  # writes the cache (or reads it, from an earlier run of this test)
    again = run_chain(TINY)
    assert again.from_cache
    for v in VERSIONS:
        np.testing.assert_array_equal(again.outputs[v].pred, fresh.outputs[v].pred)
        np.testing.assert_allclose(again.outputs[v].member_scores, fresh.outputs[v].member_scores, rtol=1e-5)
        np.testing.assert_allclose(again.outputs[v].score, fresh.outputs[v].score, rtol=1e-5)
