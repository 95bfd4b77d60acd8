"""The whole study on a tiny slice with the real SmolLM2 teacher (slow: loads the 135M-parameter teacher)."""
import re

import pytest

from workbench.distillation import DistillationStudyConfig, distillation_record, distillation_study
from workbench.results import METRIC_KEY_PATTERN

# notebook 08's smoke parameters (so the test and the notebook share one teacher cache)
TINY = dict(sources=["wiki"], max_documents=120, seq_len=16, n_train=8, n_heldout=2, keep_every=15, n_professions=2,
            max_new_tokens=4, n_tweets=0)


@pytest.mark.slow
def test_tiny_study_runs_every_variant_on_the_same_budget_and_caches_the_teacher():
    study = distillation_study(DistillationStudyConfig(**TINY))
    s = study.summary.set_index("model")
    assert list(s.index) == ["teacher", "distilled", "cda", "perturbed", "cda_perturbed"]
    assert s.loc["teacher", "layers"] == 30 and (s.drop("teacher").layers == 2).all()
    assert s.loc["teacher", "parameters"] == 134_515_008
    # the same number of rows and steps for every student; real tokens differ only by padding
    steps = study.history.groupby("model").step.max()
    assert steps.nunique() == 1 and steps.iloc[0] == 1
    assert (s.perplexity > 1).all() and s.loc["teacher", "perplexity"] < s.loc["distilled", "perplexity"]
    assert len(study.generations) == 5 * 4 and study.generations.continuation.map(type).eq(str).all()
    assert set(study.gaps.measure) == {"sentiment_gap", "own_gender_gap", "gendered_share_gap", "polarity_gap"}
    # Gupta et al.'s measure: every model continues the same 3 neutral prompts per profession
    pol = study.polarity
    assert len(pol) == 5 * 2 * 3 and set(pol.polarity) <= {"female", "neutral", "male"}
    assert (pol.groupby("model").prompt.apply(tuple).nunique()) == 1
    for model, rows in pol.groupby("model"):
        share = (rows.polarity == "male").mean() - (rows.polarity == "female").mean()
        assert s.loc[model, "polarity_gap"] == pytest.approx(share)
        assert s.loc[model, "polarity_gap_low"] <= share <= s.loc[model, "polarity_gap_high"]
    # plain and perturbed students share the teacher cache, as do cda and cda_perturbed: same inputs, one file each
    again = distillation_study(DistillationStudyConfig(**{**TINY, "variants": ["distilled"]}), keep_models=False)
    assert again.cache_hits == {"plain": True} and again.timings["teacher_cache_seconds"] == 0
    assert again.summary.perplexity.iloc[0] == pytest.approx(s.loc["distilled", "perplexity"], rel=1e-4)  # seeded
    rec = distillation_record(study)
    assert all(re.match(METRIC_KEY_PATTERN, k) for k in rec["metrics"])
    assert "cda_perturbed/gap_reduction_vs_distilled" in rec["metrics"]
    assert "cda_perturbed/polarity_gap" in rec["metrics"] and "teacher/male_polar_share" in rec["metrics"]
    assert set(rec["tables"]) == {"summary", "gaps", "generations", "polarity"}



@pytest.mark.slow
def test_cache_benchmark_runs_and_writes_its_result(tmp_path):
    import importlib.util
    import json
    from pathlib import Path

    path = Path(__file__).resolve().parents[2] / "benchmarks" / "distillation_cache.py"
    spec = importlib.util.spec_from_file_location("distillation_cache", path)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    out = tmp_path / "d.json"
    result = bench.main(["--rows", "2", "--seq-len", "16", "--keep-every", "15", "--steps", "1", "--batch-size", "2",
                         "--output", str(out)])
    assert json.loads(out.read_text()) == json.loads(json.dumps(result))
    assert result["cold_seconds"] > 0 and result["warm_seconds"] >= 0 and result["cache_bytes"] > 0
    frozen, trainable = result["students"]
    assert frozen["trained_parameters"] < trainable["trained_parameters"] == trainable["parameters"]
