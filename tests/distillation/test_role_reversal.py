"""Counterfactual role reversal: CDA swaps and teacher-probability perturbation (pure functions)."""
import numpy as np
import pytest
import torch

from workbench.distillation.role_reversal import (augment_texts, cda_swap, gendered_word_counts, perturb_probabilities,
                                                  role_reversal_lexicon)
from workbench.validation import InvalidParameterError


def _pair_words():
    lex = role_reversal_lexicon()
    return sorted(lex.words), sorted(lex.names)


def test_swapping_twice_is_identity_on_every_pair_word_and_name():
    words, names = _pair_words()
    assert len(words) > 100 and len(names) >= 40
    for w in words:
        for form in (w, w.capitalize(), w.upper()):
            text = f"Yesterday the {form} arrived."
            once = cda_swap(text)
            assert once != text, form
            assert cda_swap(once) == text, (form, once)
    for n in names:
        text = f"Then {n} arrived."
        assert cda_swap(cda_swap(text)) == text


def test_pronouns_swap_both_ways_and_round_trip_in_unambiguous_contexts():
    text = "She gave him her book because he asked herself."
    assert cda_swap(text) == "He gave her his book because she asked himself."
    assert cda_swap(cda_swap("He told her that she won.")) == "He told her that she won."


def test_case_is_preserved():
    assert cda_swap("he He HE") == "she She SHE"
    assert cda_swap("The KING and the Queen") == "The QUEEN and the King"


def test_word_boundaries_are_respected():
    text = "The theme: Shelby manages the hemisphere, sheets and mankind; @he hello."
    assert cda_swap(text) == text
    assert cda_swap("he-said") == "she-said"  # hyphen is a boundary
    assert cda_swap("sisterhood sister") == "sisterhood brother"


def test_both_directions_in_one_pass():
    assert cda_swap("the man and the woman") == "the woman and the man"
    assert cda_swap("Katie met Jack") == "Jack met Katie"


def test_common_words_that_are_names_in_lowercase_stay():
    assert cda_swap("jack up the car, frank talk") == "jack up the car, frank talk"


def test_gendered_word_counts():
    assert gendered_word_counts("She and her mother met Jack.") == (3, 1)
    assert gendered_word_counts("The weather is fine.") == (0, 0)


def test_augment_one_sided_adds_swapped_copies_of_gendered_texts_only():
    texts = ["she won", "it rained", "my father cooks"]
    out = augment_texts(texts, mode="one_sided")
    assert out == texts + ["he won", "my mother cooks"]


def test_augment_substitute_keeps_size_and_is_seeded():
    texts = [f"she won game {i}" for i in range(200)] + ["it rained"]
    a = augment_texts(texts, mode="substitute", seed=3)
    assert len(a) == len(texts) and a == augment_texts(texts, mode="substitute", seed=3)
    swapped = sum(t.startswith("he ") for t in a)
    assert 70 < swapped < 130  # about half
    assert a[-1] == "it rained"


def test_augment_rejects_bad_input():
    with pytest.raises(InvalidParameterError, match="'mode' parameter of augment_texts"):
        augment_texts(["x"], mode="two")
    with pytest.raises(TypeError):
        augment_texts("she won")


@pytest.mark.parametrize("mode", ["swap", "equalize"])
@pytest.mark.parametrize("backend", ["numpy", "torch"])
def test_perturbed_rows_sum_to_one_and_other_tokens_unchanged(mode, backend):
    rng = np.random.default_rng(0)
    p = rng.dirichlet(np.ones(50), size=(4, 7))
    pairs = np.array([[3, 10], [11, 2], [40, 41]])
    x = torch.tensor(p) if backend == "torch" else p
    q = perturb_probabilities(x, pairs=pairs, mode=mode)
    q = q.numpy() if backend == "torch" else q
    assert np.allclose(q.sum(-1), 1.0)
    others = np.setdiff1d(np.arange(50), pairs)
    assert np.array_equal(q[..., others], p[..., others])
    assert np.array_equal(x if backend == "numpy" else x.numpy(), p)  # input untouched
    f, m = pairs[:, 0], pairs[:, 1]
    if mode == "swap":
        assert np.array_equal(q[..., f], p[..., m]) and np.array_equal(q[..., m], p[..., f])
        back = perturb_probabilities(q, pairs=pairs, mode="swap")
        assert np.array_equal(back, p)
    else:
        assert np.allclose(q[..., f], q[..., m])
        assert np.allclose(q[..., f], (p[..., f] + p[..., m]) / 2)


def test_perturb_rejects_bad_pairs_and_modes():
    p = np.full((1, 4), 0.25)
    with pytest.raises(ValueError, match="column indices in \\[0, 4\\)"):
        perturb_probabilities(p, pairs=[[0, 4]])
    with pytest.raises(ValueError, match="must not use a column twice"):
        perturb_probabilities(p, pairs=[[0, 1], [1, 2]])
    with pytest.raises(InvalidParameterError, match="'mode' parameter of perturb_probabilities must be one of"):
        perturb_probabilities(p, pairs=[[0, 1]], mode="max")


# --- two-sided CDA and the training budget -------------------------------------------------------------------------
from collections import Counter  # noqa: E402

from workbench.distillation.role_reversal import training_rows  # noqa: E402

GENDERED = [f"she won game {i}" for i in range(30)] + [f"my father cooked dish {i}" for i in range(20)]
NEUTRAL = [f"it rained on day {i}" for i in range(25)]


def test_two_sided_augment_puts_each_swapped_copy_after_its_original():
    assert augment_texts(["she won", "it rained", "my father cooks"], mode="two_sided") == [
        "she won", "he won", "it rained", "my father cooks", "my mother cooks"]
    # the same texts as one-sided augmentation, in another order
    assert Counter(augment_texts(GENDERED + NEUTRAL, mode="two_sided")) == Counter(augment_texts(GENDERED + NEUTRAL))


@pytest.mark.parametrize("n", [10, 11, 40, 75])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_two_sided_rows_are_balanced_pairs_within_the_same_budget(n, seed):
    rows = training_rows(GENDERED + NEUTRAL, n=n, mode="two_sided", seed=seed)
    assert len(rows) == n  # the same number of rows as every other variant
    counts = Counter(rows)
    for text, k in counts.items():
        twin = cda_swap(text)
        if twin != text:  # every gendered row has its counterfactual, as often as itself
            assert counts[twin] == k, (text, twin)
    female = sum(gendered_word_counts(t)[0] for t in rows)
    male = sum(gendered_word_counts(t)[1] for t in rows)
    assert female == male and female > 0
    assert set(rows) <= set(augment_texts(GENDERED + NEUTRAL, mode="two_sided"))


def test_one_sided_rows_need_not_be_balanced_but_two_sided_always_are():
    unbalanced = 0
    for seed in range(10):
        rows = training_rows(GENDERED + NEUTRAL, n=20, mode="one_sided", seed=seed)
        f, m = np.sum([gendered_word_counts(t) for t in rows], axis=0)
        unbalanced += f != m
    assert unbalanced > 0  # what two-sided mode fixes


def test_two_sided_is_the_identity_on_texts_without_gendered_words():
    rows = training_rows(NEUTRAL, n=25, mode="two_sided", seed=0)
    assert sorted(rows) == sorted(NEUTRAL)
    assert training_rows(NEUTRAL, n=7, mode="two_sided", seed=4) == training_rows(NEUTRAL, n=7, seed=4)
    assert augment_texts(NEUTRAL, mode="two_sided") == NEUTRAL


def test_training_rows_budget_rules_are_the_same_for_every_mode():
    texts = GENDERED + NEUTRAL
    plain = training_rows(texts, n=30, seed=5)
    assert len(set(plain)) == 30 and set(plain) <= set(texts) and plain == training_rows(texts, n=30, seed=5)
    for mode in ("one_sided", "substitute", "two_sided"):
        rows = training_rows(texts, n=30, mode=mode, seed=5)
        assert len(rows) == 30 and rows == training_rows(texts, n=30, mode=mode, seed=5)
    # one-sided and substitute draw from augment_texts exactly as before (the teacher cache keys stay the same)
    aug = augment_texts(texts, mode="one_sided", seed=5)
    assert training_rows(texts, n=30, mode="one_sided", seed=5) == [aug[i] for i in np.random.default_rng(5).permutation(len(aug))[:30]]


def test_training_rows_rejects_impossible_budgets_and_bad_input():
    with pytest.raises(ValueError, match="'n' parameter of training_rows must be at most 75"):
        training_rows(GENDERED + NEUTRAL, n=76, seed=0)
    with pytest.raises(ValueError, match="at most 125 .*after two_sided augmentation"):
        training_rows(GENDERED + NEUTRAL, n=126, mode="two_sided")
    with pytest.raises(ValueError, match="without splitting"):
        training_rows(GENDERED[:3], n=5, mode="two_sided")
    with pytest.raises(InvalidParameterError, match="'mode' parameter of training_rows must be one of"):
        training_rows(NEUTRAL, n=2, mode="both")
    with pytest.raises(InvalidParameterError, match="'n' parameter of training_rows must be an int >= 1"):
        training_rows(NEUTRAL, n=0)
