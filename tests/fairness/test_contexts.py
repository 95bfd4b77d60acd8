"""Contexts per word (corpora + templates) and contextual word embeddings on the real MiniLM encoder."""
import warnings

import numpy as np
import pytest

from workbench.fairness.contexts import (
    CONTEXT_TEMPLATES,
    NAME_TEMPLATES,
    corpus_sentences,
    find_contexts,
    template_sentences,
    word_pattern,
)
from workbench.fairness.contextual import contextual_word_embeddings, resolve_layers, word_pools


def test_word_pattern_is_whole_word_and_case_insensitive():
    pat = word_pattern("art")
    assert pat.search("Art is long.") and pat.search("state-of-the-art!")
    assert not pat.search("arts and smart start") and not pat.search("art's")


def test_templates():
    assert template_sentences("tulip") == [t.format("tulip")[0].upper() + t.format("tulip")[1:] for t in CONTEXT_TEMPLATES]
    assert len(template_sentences("Amy")) == len(NAME_TEMPLATES) and "Amy is a person." in template_sentences("Amy")
    assert all(word_pattern("tulip").search(s) for s in template_sentences("tulip"))


def test_corpus_contexts_contain_the_word_and_are_capped():
    c = find_contexts(["love", "caterpillar"], sources=("tweets", "shakespeare"), max_per_word=7, min_per_word=0, seed=1)
    counts = c.counts()
    assert counts.loc["love", "n_contexts"] == 7  # "love" is everywhere: capped
    assert counts.loc["love", "tweets"] + counts.loc["love", "shakespeare"] == 7
    for w in ("love", "caterpillar"):
        assert all(word_pattern(w).search(s) for s in c.sentences[w])
        assert set(c.sources[w]) <= {"tweets", "shakespeare"}
    # every sentence that contains "caterpillar" is found (independent scan of the corpora)
    pat = word_pattern("caterpillar")
    expected = sum(1 for src in ("tweets", "shakespeare") for s in corpus_sentences(src) if pat.search(s))
    assert counts.loc["caterpillar", "n_contexts"] == min(7, expected)
    same = find_contexts(["love"], sources=("tweets", "shakespeare"), max_per_word=7, min_per_word=0, seed=1)
    assert same.sentences["love"] == c.sentences["love"]


def test_warns_on_too_few_contexts_and_templates_fill_in():
    with pytest.warns(UserWarning, match="fewer than 5 contexts: 'hyacinth' \\(0\\)"):
        c = find_contexts(["hyacinth"], sources=("tweets", "shakespeare"))
    assert c.counts().loc["hyacinth", "too_few"]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        c = find_contexts(["hyacinth"], sources=("tweets", "shakespeare", "templates"))
    assert c.counts().loc["hyacinth", "templates"] == len(CONTEXT_TEMPLATES) and not c.counts().loc["hyacinth", "too_few"]


def test_bad_input():
    with pytest.raises(ValueError, match="'sources'"):
        find_contexts(["rose"], sources=("reddit",))
    with pytest.raises(ValueError, match="must not be empty"):
        find_contexts([])
    with pytest.raises(TypeError, match="not one string"):
        find_contexts("rose")


def test_resolve_layers():
    assert resolve_layers(-1, 6) == [6] and resolve_layers([0, -7], 6) == [0, 0]
    with pytest.raises(ValueError, match="'layers'"):
        resolve_layers([7], 6)


@pytest.fixture(scope="module")
def minilm():
    from workbench.datasets import load_encoder

    return load_encoder("minilm")


def test_contextual_embedding_matches_a_manual_forward_pass(minilm):
    import torch

    sentence, word = "Yesterday a HYACINTH bloomed in the garden.", "hyacinth"
    tok, model = minilm.tokenizer, minilm.model
    pieces = tok.tokenize(word)
    ids = tok(sentence, return_tensors="pt")
    tokens = tok.convert_ids_to_tokens(ids["input_ids"][0])
    start = next(i for i in range(len(tokens)) if tokens[i:i + len(pieces)] == pieces)
    with torch.no_grad():
        hidden = model(**ids, output_hidden_states=True).hidden_states
    got = contextual_word_embeddings([sentence], [word], layers=[0, 3, -1], cache=False)
    for j, layer in enumerate([0, 3, 6]):
        expected = hidden[layer][0, start:start + len(pieces)].mean(0).numpy()
        np.testing.assert_allclose(got[0, j], expected, rtol=1e-4, atol=1e-5)
    first = contextual_word_embeddings([sentence], [word], layers=[-1], pooling="first", cache=False)[0, 0]
    last = contextual_word_embeddings([sentence], [word], layers=[-1], pooling="last", cache=False)[0, 0]
    assert len(pieces) > 1
    np.testing.assert_allclose(first, hidden[6][0, start].numpy(), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(last, hidden[6][0, start + len(pieces) - 1].numpy(), rtol=1e-4, atol=1e-5)


def test_padding_and_batching_do_not_change_embeddings(minilm, tmp_path, monkeypatch):
    monkeypatch.setenv("WORKBENCH_CACHE", str(tmp_path))
    sents = ["Tulip.", "A very long sentence about the garden where the tulip grows every spring again.", "tulip tulip"]
    words = ["tulip"] * 3
    batched = contextual_word_embeddings(sents, words, layers=[-1], batch_size=3)
    alone = np.concatenate([contextual_word_embeddings([s], [w], layers=[-1], cache=False) for s, w in zip(sents, words)])
    np.testing.assert_allclose(batched, alone, rtol=1e-4, atol=1e-4)
    assert list((tmp_path / "contextual" / "minilm").glob("*.npy"))  # cached
    again = contextual_word_embeddings(sents, words, layers=[-1], batch_size=3)
    assert np.array_equal(again, batched)


def test_word_must_occur_and_pools_follow_contexts(minilm):
    with pytest.raises(ValueError, match="does not occur"):
        contextual_word_embeddings(["A rose."], ["tulip"], cache=False)
    with pytest.raises(ValueError, match="same length"):
        contextual_word_embeddings(["A rose."], ["rose", "rose"], cache=False)
    c = find_contexts(["tulip", "Amy"], sources=("templates",))
    pools = word_pools(c, encoder="minilm", layers=[-1], cache=False, progress=False)
    assert pools["tulip"].shape == (len(CONTEXT_TEMPLATES), 1, 384) and pools["Amy"].shape == (len(NAME_TEMPLATES), 1, 384)
