"""Identity swaps (case, whole words, pronoun rules), CTF gap, counterfactual data augmentation."""
import numpy as np
import pytest

from workbench.datasets import load_gender_pairs
from workbench.fairness.counterfactual import (
    SwapLexicon,
    counterfactual_augment,
    counterfactual_gaps,
    counterfactual_texts,
    counterfactual_token_fairness,
    eec_name_lexicon,
    gender_lexicon,
    name_lexicon,
    race_name_lexicon,
    score_counterfactuals,
    swap_identity,
)
from workbench.fairness.evaluation_corpus import generate_evaluation_corpus


@pytest.mark.parametrize("text, expected", [
    ("He", "She"), ("HIS book", "HER book"), ("she said hi", "he said hi"),
    ("My MOTHER and my father", "My FATHER and my mother"),
    ("he and she", "she and he"),                      # one pass: no double swap
    ("the theme, hello there, heather", "the theme, hello there, heather"),  # whole words only
    ("I gave it to her.", "I gave it to him."),        # object before punctuation
    ("I told her that", "I told him that"),            # object before a function word
    ("I made her feel sad", "I made him feel sad"),    # bare verb after a causative
    ("her book is red", "his book is red"),            # possessive determiner
    ("the book is his.", "the book is hers."),         # possessive pronoun
    ("his dog barked", "her dog barked"),
    ("She found herself alone", "He found himself alone"),
    ("hers was better", "his was better"),
    ("my twin sister laughed", "my twin brother laughed"),  # multi-word pair wins over "sister"
    ("she's my wife's best friend", "he's my husband's best friend"),
    ("Queen", "King"), ("mother-in-law", "father-in-law"),
    ("@he said she", "@he said he"),                    # user handles stay
])
def test_gender_swaps(text, expected):
    assert swap_identity(text) == expected


def test_every_data_layer_pair_swaps_both_ways():
    lex = gender_lexicon()
    for f, m, _ in load_gender_pairs().itertuples(index=False):
        if f.lower() in ("her", "his") or m.lower() in ("her", "his"):
            continue
        assert swap_identity(f"the {f.lower()} came", lexicon=lex) == f"the {m.lower()} came"
        assert swap_identity(f"the {m.lower()} came", lexicon=lex) == f"the {f.lower()} came"


def test_swap_is_an_involution_on_unambiguous_text():
    texts = ["The queen told her son a story.", "HE IS MY UNCLE", "Grandma and grandpa visited their granddaughter"]
    for t in texts:
        assert swap_identity(swap_identity(t)) == t


def test_names_swap_only_when_capitalised():
    lex = name_lexicon(["Jack", "Ebony"], ["Jill", "Darnell"])
    assert swap_identity("Jack and Ebony met.", lexicon=lex) == "Jill and Darnell met."
    assert swap_identity("a jack and an ebony table", lexicon=lex) == "a jack and an ebony table"
    assert swap_identity("JACK", lexicon=lex) == "JILL"
    assert swap_identity("Jackson", lexicon=lex) == "Jackson"


def test_gender_swap_maps_every_corpus_sentence_to_its_counterpart():
    # an independent check: the corpus is built from templates, the swap from word lists and rules
    df = generate_evaluation_corpus()
    lex = gender_lexicon() | eec_name_lexicon(swap="gender")
    female = df[df.gender == "female"].set_index("gender_pair")["sentence"]
    male = df[df.gender == "male"].set_index("gender_pair")["sentence"].loc[female.index]
    assert [swap_identity(s, lexicon=lex) for s in female] == male.tolist()
    assert [swap_identity(s, lexicon=lex) for s in male] == female.tolist()
    race = eec_name_lexicon(swap="race")
    names = df[df.race == "african_american"].set_index("race_pair")["sentence"]
    other = df[df.race == "european_american"].set_index("race_pair")["sentence"].loc[names.index]
    assert [swap_identity(s, lexicon=race) for s in names] == other.tolist()


def test_race_name_lexicon_is_deterministic_and_exclusive():
    a = race_name_lexicon("black", "white", n=20, seed=3)
    b = race_name_lexicon("black", "white", n=20, seed=3)
    assert a.names == b.names and len(a.names) == 40
    assert race_name_lexicon("black", "white", n=20, seed=4).names != a.names
    with pytest.raises(ValueError, match=r"Unknown group 'martian'.*accepted values are \["):
        race_name_lexicon("martian", "white")


def test_ctf_gap_and_gaps():
    assert counterfactual_token_fairness([0.2, 0.8, 0.5], [0.2, 0.8, 0.5]) == 0.0
    assert counterfactual_token_fairness([0.2, 0.8], [0.5, 0.4]) == pytest.approx((0.3 + 0.4) / 2)
    probs = np.array([[0.2, 0.8], [0.5, 0.5]])
    assert counterfactual_gaps(probs, probs[:, ::-1]).tolist() == pytest.approx([1.2, 0.0])
    with pytest.raises(ValueError, match="same shape"):
        counterfactual_gaps([0.1, 0.2], [0.1])


def test_score_counterfactuals_with_a_biased_scorer():
    # scorer that adds 0.3 for every male word: the CTF gap is exactly 0.3 per swapped word
    male = {"he", "him", "his", "man", "father"}
    score = lambda texts: np.array([0.3 * sum(w.strip(".").lower() in male for w in t.split()) for t in texts])
    out = score_counterfactuals(["She is here.", "The man left.", "It rains."], score)
    assert out["index"].tolist() == [0, 1]
    assert out["gap"].tolist() == pytest.approx([0.3, 0.3])


def test_counterfactual_augment():
    texts = ["she won", "it rained", "My father cried"]
    out = counterfactual_augment(texts, np.array([2, 0, 0]))
    assert out["text"].tolist() == texts + ["he won", "My mother cried"]
    assert out["label"].tolist() == [2, 0, 0, 2, 0]
    assert out["origin"].tolist() == [0, 1, 2, 0, 2]
    full = counterfactual_augment(texts, [2, 0, 0], only_changed=False)
    assert len(full) == 6
    with pytest.raises(ValueError, match="one entry per text"):
        counterfactual_augment(texts, [1, 2])


def test_bad_input():
    with pytest.raises(TypeError):
        counterfactual_texts("she")
    with pytest.raises(ValueError, match="same length"):
        name_lexicon(["a"], ["b", "c"])
    with pytest.raises(ValueError, match="must hold some"):
        SwapLexicon()
    with pytest.raises(ValueError, match="'swap' parameter"):
        eec_name_lexicon(swap="age")
    assert counterfactual_texts(["she", "x"]).changed.tolist() == [True, False]
