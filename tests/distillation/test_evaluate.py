"""Generation prompts, continuation scoring, bootstrap gaps, perplexity, and the run record's metrics."""
import numpy as np
import pandas as pd
import pytest

from workbench.distillation.evaluate import bootstrap_gap, generation_gaps, generation_prompts, score_continuations
from workbench.distillation.studies import DistillationStudyConfig, distillation_metrics
from workbench.results import METRIC_KEY_PATTERN
from workbench.validation import InvalidParameterError


def test_prompts_come_in_female_male_pairs_about_non_gendered_professions():
    p = generation_prompts(n_professions=12, seed=0)
    assert len(p) == 24 and all(sorted(g) == ["female", "male"] for _, g in p.groupby("pair_id").gender)
    from workbench.distillation.role_reversal import cda_swap

    wide = p.pivot(index="pair_id", columns="gender", values="prompt")
    assert (wide["female"].map(cda_swap) == wide["male"]).all()  # the two versions differ only in gender
    assert p.profession.nunique() == 12 and p.equals(generation_prompts(n_professions=12, seed=0))
    with pytest.raises(InvalidParameterError):
        generation_prompts(n_professions=0)


def test_score_continuations_counts_gendered_terms_and_own_gender_share():
    prompts = pd.DataFrame({"pair_id": [0, 0, 1, 1], "gender": ["female", "male", "female", "male"]})
    texts = ["she said he was late", "he and his brother", "nothing here", "her mother"]
    s = score_continuations(prompts, texts, sentiment=lambda t: np.arange(len(t), dtype=float))
    assert s.female_terms.tolist() == [1, 0, 0, 2] and s.male_terms.tolist() == [1, 3, 0, 0]
    assert s.own_gender_share.tolist()[:2] == [0.5, 1.0] and np.isnan(s.own_gender_share[2]) and s.own_gender_share[3] == 0
    assert s.positivity.tolist() == [0, 1, 2, 3]


def test_bootstrap_interval_covers_the_gap_and_shrinks_with_more_pairs():
    rng = np.random.default_rng(0)
    small = rng.normal(0.2, 1, size=(2, 30))
    big = rng.normal(0.2, 1, size=(2, 3000))
    g1, lo1, hi1 = bootstrap_gap(small[0], small[1], n_bootstrap=500)
    g2, lo2, hi2 = bootstrap_gap(big[0], big[1], n_bootstrap=500)
    assert lo1 <= g1 <= hi1 and lo2 <= g2 <= hi2 and (hi2 - lo2) < (hi1 - lo1) / 5
    assert abs(g2) < 0.1 and 0.08 < hi2 - lo2 < 0.12  # width ~ 2 * 1.96 * sqrt(2 / 3000) = 0.101
    assert np.isnan(bootstrap_gap([np.nan], [1.0])[0])


def test_generation_gaps_are_male_minus_female():
    scored = pd.DataFrame({"pair_id": [0, 0, 1, 1], "gender": ["female", "male"] * 2, "positivity": [0.2, 0.5, 0.4, 0.7],
                           "own_gender_share": [1.0, 1.0, np.nan, 0.0], "gendered_share": [0.1, 0.1, 0.0, 0.2]})
    g = generation_gaps(scored, n_bootstrap=50).set_index("measure")
    assert g.loc["sentiment_gap", "gap"] == pytest.approx(0.3) and g.loc["sentiment_gap", "n_pairs"] == 2
    assert g.loc["own_gender_gap", "gap"] == 0.0 and g.loc["own_gender_gap", "n_pairs"] == 1
    assert g.loc["gendered_share_gap", "gap"] == pytest.approx(0.1)


def test_metrics_follow_the_naming_scheme_and_state_the_criterion():
    import re

    summary = pd.DataFrame({"model": ["teacher", "distilled", "cda", "perturbed", "cda_perturbed"],
                            "perplexity": [10.0, 20.0, 20.2, 20.4, 22.0], "sentiment_gap": [0.1, 0.2, 0.1, -0.15, 0.05],
                            "sentiment_gap_low": [0.0] * 5, "layers": [30, 15, 15, 15, 15]})
    m = distillation_metrics(summary)
    assert all(re.match(METRIC_KEY_PATTERN, k) for k in m)
    assert m["cda/gap_reduction_vs_distilled"] == pytest.approx(0.5)
    assert m["cda_perturbed/gap_reduction_vs_distilled"] == pytest.approx(0.75)
    assert m["cda_perturbed/perplexity_cost_vs_distilled"] == pytest.approx(0.1)
    assert "teacher/gap_reduction_vs_distilled" not in m and m["teacher/layers"] == 30
    assert not any("polarity" in k for k in m)  # no polarity column, no polarity criterion
    m = distillation_metrics(summary.assign(polarity_gap=[0.3, 0.4, 0.1, 0.0, -0.2]))
    assert m["cda/polarity_gap_reduction_vs_distilled"] == pytest.approx(0.75)
    assert m["perturbed/polarity_gap_reduction_vs_distilled"] == pytest.approx(1.0)
    assert m["cda_perturbed/polarity_gap_reduction_vs_distilled"] == pytest.approx(0.5)
    assert m["cda_perturbed/polarity_gap"] == pytest.approx(-0.2)


def test_config_validation_names_the_parameter():
    with pytest.raises(InvalidParameterError, match="'variants' parameter of DistillationStudyConfig"):
        DistillationStudyConfig(variants=["teacher", "dropout"])
    with pytest.raises(InvalidParameterError, match="'cda_mode' parameter .* one of \\('one_sided', 'substitute', 'two_sided'\\)"):
        DistillationStudyConfig(cda_mode="two-sided")
    assert DistillationStudyConfig(cda_mode="two_sided").cda_mode == "two_sided"
    with pytest.raises(ValueError, match="'n_tweets' parameter of DistillationStudyConfig must be 0 or >= 30"):
        DistillationStudyConfig(n_tweets=10)
    assert DistillationStudyConfig(n_train=np.int64(4)).n_train == 4
