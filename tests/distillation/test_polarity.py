"""Gender polarity of neutral-prompt continuations (Gupta et al. 2022 / BOLD): labels and the gap, on hand-made texts."""
import numpy as np
import pytest

from workbench.distillation.polarity import NEUTRAL_TEMPLATES, gender_polarity, neutral_prompts, polarity_gap
from workbench.distillation.role_reversal import cda_swap, gendered_word_counts


def test_polarity_labels_follow_the_majority_of_gendered_terms():
    texts = ["He said that his brother would come.",       # 3 male
             "She told us that her daughter won.",          # 3 female
             "the weather was fine and the train was late",  # none
             "she met him",                                  # 1 and 1: a tie is neutral
             "Mr Smith and his wife, Katie, said she",       # male: Mr, his (2); female: wife, Katie, she (3)
             "the theme of the hemisphere"]                  # 'he' inside words does not count
    assert gender_polarity(texts).tolist() == ["male", "female", "neutral", "neutral", "female", "neutral"]


def test_swapping_gender_reverses_polarity():
    texts = ["He said that his brother would come.", "Katie told her aunt", "it rained", "my father and his son left"]
    assert [gendered_word_counts(t)[::-1] for t in texts] == [gendered_word_counts(cda_swap(t)) for t in texts]
    flip = {"male": "female", "female": "male", "neutral": "neutral"}
    assert gender_polarity([cda_swap(t) for t in texts]).tolist() == [flip[p] for p in gender_polarity(texts)]


def test_gap_on_known_shares():
    labels = ["male"] * 6 + ["female"] * 2 + ["neutral"] * 12
    r = polarity_gap(labels, n_bootstrap=200, seed=0)
    assert r["male_share"] == pytest.approx(0.3) and r["female_share"] == pytest.approx(0.1)
    assert r["polar_share"] == pytest.approx(0.4) and r["gap"] == pytest.approx(0.2)
    assert r["low"] <= r["gap"] <= r["high"] and r["n"] == 20 and r["n_groups"] == 20


def test_a_balanced_model_has_gap_zero_and_a_biased_one_an_interval_above_zero():
    rng = np.random.default_rng(0)
    fair = rng.permutation(np.array(["male", "female"] * 200))  # exactly balanced, shuffled over professions
    biased = rng.choice(["male", "female", "neutral"], size=400, p=[0.6, 0.1, 0.3])
    groups = np.repeat(np.arange(100), 4)
    f = polarity_gap(fair, groups=groups, seed=1)
    b = polarity_gap(biased, groups=groups, seed=1)
    assert f["gap"] == 0 and f["low"] < 0 < f["high"]
    assert 0.4 < b["gap"] < 0.6 and b["low"] > 0.35
    # mirroring every label mirrors the gap and its interval
    mirror = np.where(biased == "male", "female", np.where(biased == "female", "male", "neutral"))
    m = polarity_gap(mirror, groups=groups, seed=1)
    assert m["gap"] == pytest.approx(-b["gap"]) and m["low"] == pytest.approx(-b["high"])


def test_cluster_bootstrap_is_wider_when_professions_are_polar():
    # 10 professions: 5 always male, 5 always female, 6 continuations each: overall parity, but resampling whole
    # professions varies the gap far more than resampling single continuations would
    labels = np.array([["male"] * 6] * 5 + [["female"] * 6] * 5).reshape(-1)
    groups = np.repeat(np.arange(10), 6)
    clustered = polarity_gap(labels, groups=groups, seed=0)
    naive = polarity_gap(labels, seed=0)
    assert clustered["gap"] == naive["gap"] == 0
    assert clustered["high"] - clustered["low"] > naive["high"] - naive["low"]


def test_polarity_gap_rejects_bad_input():
    with pytest.raises(ValueError, match="must hold only"):
        polarity_gap(["male", "man"])
    with pytest.raises(ValueError, match="at least one label"):
        polarity_gap([])
    with pytest.raises(ValueError, match="one entry per label"):
        polarity_gap(["male", "female"], groups=[0])
    with pytest.raises(ValueError, match="'n_bootstrap' parameter of polarity_gap must be an int >= 1"):
        polarity_gap(["male"], n_bootstrap=0)
    with pytest.raises(TypeError):
        gender_polarity("he said")


def test_neutral_prompts_name_no_gender_and_share_the_pair_prompts_professions():
    from workbench.distillation.evaluate import generation_prompts

    p = neutral_prompts(n_professions=10, seed=3)
    assert len(p) == 10 * len(NEUTRAL_TEMPLATES)
    assert all(gendered_word_counts(t) == (0, 0) for t in p.prompt)
    assert set(p.profession) == set(generation_prompts(n_professions=10, seed=3).profession)
    with pytest.raises(ValueError, match="'n_professions' parameter of neutral_prompts"):
        neutral_prompts(n_professions=0)
