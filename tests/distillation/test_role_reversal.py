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
