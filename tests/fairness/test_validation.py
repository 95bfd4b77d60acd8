"""The fairness functions name the bad parameter with the workbench's one wording (workbench.validation)."""
import numpy as np
import pytest

from workbench.fairness.association import weat
from workbench.fairness.classifier import train_sentiment_classifier
from workbench.fairness.contexts import find_contexts
from workbench.fairness.counterfactual import eec_name_lexicon
from workbench.fairness.evaluation_corpus import load_evaluation_corpus, subsample_corpus
from workbench.fairness.groups import bias_summary
from workbench.fairness.meta import random_effects
from workbench.fairness.sensitivity import fit_protected_model
from workbench.validation import InvalidParameterError

X2 = np.eye(2)

CASES = [
    (lambda: subsample_corpus(load_evaluation_corpus(), words_per_emotion=6),
     "The 'words_per_emotion' parameter of subsample_corpus must be an int in [0, 5]. Got 6 instead."),
    (lambda: eec_name_lexicon(swap="age"), "The 'swap' parameter of eec_name_lexicon must be one of ('gender', 'race'). Got 'age' instead."),
    (lambda: bias_summary([0.1, 0.9], [0, 1], ["a", "a"], overall_weight=2),
     "The 'overall_weight' parameter of bias_summary must be a float in [0, 1]. Got 2 instead."),
    (lambda: random_effects([0.1, 0.2], [0.1, 0.1], alternative="up"),
     "The 'alternative' parameter of random_effects must be one of ('greater', 'less', 'two-sided'). Got 'up' instead."),
    (lambda: find_contexts(["tulip"], sources=("templates",), max_per_word=-1),
     "The 'max_per_word' parameter of find_contexts must be an int >= 0. Got -1 instead."),
    (lambda: find_contexts(["tulip"], sources=("reddit",)),
     "The 'sources' parameter of find_contexts must be a non-empty list or tuple of one of ('tweets', 'shakespeare', 'templates'). Got ('reddit',) instead."),
    (lambda: fit_protected_model(np.eye(4), ["f", "m", "f", "m"], C=0),
     "The 'C' parameter of fit_protected_model must be a float > 0. Got 0 instead."),
    (lambda: train_sentiment_classifier(np.eye(3), [0, 1, 2], hidden=5),
     "The 'hidden' parameter of train_sentiment_classifier must be a list or tuple of an int >= 1. Got 5 instead."),
    (lambda: weat(X2, -X2, X2, -X2, n_permutations=0), "The 'n_permutations' parameter of weat must be an int >= 1. Got 0 instead."),
]


@pytest.mark.parametrize("call, message", CASES, ids=[m.split("'")[1] for _, m in CASES])
def test_bad_parameter_is_named(call, message):
    with pytest.raises(InvalidParameterError) as err:
        call()
    assert str(err.value) == message


def test_numpy_integers_are_accepted():
    small = subsample_corpus(load_evaluation_corpus(), words_per_emotion=np.int64(1), noun_phrases=np.int32(1), names_per_group=np.int64(0))
    assert len(small) > 0
