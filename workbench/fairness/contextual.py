"""Contextual word embeddings: a word's vector inside a sentence, at chosen hidden layers.

For each (sentence, word) pair the encoder runs on the sentence; the word's first whole-word,
case-insensitive occurrence is located by characters, the sub-tokens whose character offsets overlap it
are selected, and their hidden states at each requested layer are pooled:

* ``"mean"``: average of the word's sub-tokens (default);
* ``"first"``: first sub-token (what BERT-style probing often uses);
* ``"last"``: last sub-token - for a left-to-right decoder (SmolLM2) this is the only position that has
  seen the whole word.

Layer 0 is the input-embedding layer, 1..n the transformer blocks, -1 the last. All requested layers come
from one forward pass. Results are cached under ``<cache_dir>/contextual/<encoder>/`` keyed by the
encoder fingerprint, options and every (sentence, word) pair, so notebooks re-run in seconds.
"""
from __future__ import annotations

import hashlib
import json
import warnings
from typing import Sequence

import numpy as np

from workbench.validation import Options, check

from workbench.datasets._sources import cache_dir, read_cached_array, write_cached_array

from .contexts import word_pattern

__all__ = ["WORD_POOLINGS", "contextual_word_embeddings", "word_pools", "resolve_layers", "static_word_vectors"]

WORD_POOLINGS = ("mean", "first", "last")
#: Encoders with causal (left-to-right) attention. A word's hidden states there do not depend on the text
#: after it, so each sentence is cut right after the word before encoding: same vectors, less compute.
CAUSAL_ENCODERS = frozenset({"smollm2"})


def resolve_layers(layers, n_layers: int) -> list[int]:
    """Normalise layer ids to 0..n_layers ("all" -> every layer).

    Examples
    --------
    >>> resolve_layers([-1, 0, 3], 6)
    [6, 0, 3]
    >>> resolve_layers("all", 2)
    [0, 1, 2]
    """
    if isinstance(layers, str):
        if layers != "all":
            raise ValueError(f"The 'layers' parameter must be 'all', an int or a list of ints. Got {layers!r} instead.")
        return list(range(n_layers + 1))
    if isinstance(layers, (int, np.integer)):
        layers = [int(layers)]
    out = []
    for layer in layers:
        if not -n_layers - 1 <= layer <= n_layers:
            raise ValueError(f"The 'layers' parameter must hold ints in [{-n_layers - 1}, {n_layers}]. Got {layer!r} instead.")
        out.append(int(layer) % (n_layers + 1))
    if not out:
        raise ValueError("The 'layers' parameter must not be empty.")
    return out


def _cache_path(enc, sentences, words, *, layers, pooling, max_length):

    h = hashlib.sha256(json.dumps(["contextual-v1", enc.fingerprint, layers, pooling, max_length]).encode())
    for s, w in zip(sentences, words):
        h.update(hashlib.sha256(f"{w}\x00{s}".encode("utf-8")).digest())
    return cache_dir() / "contextual" / enc.name / f"{h.hexdigest()[:32]}.npy"


def contextual_word_embeddings(sentences: Sequence[str], words: Sequence[str], *, encoder: str = "minilm", layers="all",
                               pooling: str = "mean", batch_size: int = 32, max_length: int = 96, cache: bool = True,
                               progress: bool | None = None) -> np.ndarray:
    """Embedding of ``words[i]`` in ``sentences[i]`` at each of ``layers``.

    Parameters
    ----------
    sentences, words : sequences of str, same length
        Each word must occur in its sentence (whole word, any case).
    encoder : str
        A name in :data:`workbench.datasets.ENCODERS`.
    layers : "all", int or list of int
        Hidden layers (0 = input embeddings, -1 = last).
    pooling : {"mean", "first", "last"}
        How the word's sub-token vectors are pooled.
    batch_size, max_length : int
        Sentences per forward pass; tokens kept per sentence (a word cut off by truncation raises).
    cache : bool
        Read/write ``<cache_dir>/contextual/<encoder>/<hash>.npy``.
    progress : bool, optional
        Progress bar; default when there is more than one batch.

    Returns
    -------
    numpy.ndarray
        float32, shape (len(sentences), len(layers), encoder dim).

    Notes
    -----
    For causal encoders (:data:`CAUSAL_ENCODERS`) each sentence is cut right after the word: the word's
    hidden states cannot see later tokens, so this changes nothing but the cost.

    Examples
    --------
    >>> e = contextual_word_embeddings(["A rose is red.", "Rose smiled."], ["rose", "rose"], layers=[0, -1], cache=False)
    >>> e.shape
    (2, 2, 384)
    """
    from workbench.datasets import load_encoder
    from workbench.datasets.encoders import encoder_spec

    if isinstance(sentences, str) or isinstance(words, str):
        raise TypeError("The 'sentences' and 'words' parameters of contextual_word_embeddings must be sequences of strings.")
    sentences, words = [str(s) for s in sentences], [str(w) for w in words]
    if len(sentences) != len(words):
        raise ValueError(f"The 'sentences' and 'words' parameters of contextual_word_embeddings must have the same length. Got {len(sentences)} and {len(words)} instead.")
    check(pooling, Options(tuple(WORD_POOLINGS)), name="pooling", owner="contextual_word_embeddings")
    spans = []
    for s, w in zip(sentences, words):
        m = word_pattern(w).search(s)
        if m is None:
            raise ValueError(f"contextual_word_embeddings: the word {w!r} does not occur in its sentence {s!r}.")
        spans.append(m.span())
    enc = encoder_spec(encoder)  # the model itself is loaded only on a cache miss
    layer_ids = resolve_layers(layers, enc.n_layers)
    if encoder in CAUSAL_ENCODERS:
        sentences = [s[:b] for s, (_, b) in zip(sentences, spans)]
    if not sentences:
        return np.empty((0, len(layer_ids), enc.dim), np.float32)
    path = _cache_path(enc, sentences, words, layers=layer_ids, pooling=pooling, max_length=max_length)
    shape = (len(sentences), len(layer_ids), enc.dim)
    cached = read_cached_array(path, shape=shape) if cache else None
    if cached is not None:
        return cached
    out = _run(load_encoder(encoder), sentences, spans, layer_ids=layer_ids, pooling=pooling, batch_size=batch_size,
               max_length=max_length, progress=progress)
    if cache:
        write_cached_array(path, out)
    return out


def _run(enc, sentences, spans, *, layer_ids, pooling, batch_size, max_length, progress) -> np.ndarray:
    import torch
    from tqdm.auto import tqdm

    out = np.empty((len(sentences), len(layer_ids), enc.dim), np.float32)
    order = np.argsort([len(s) for s in sentences], kind="stable")
    starts = range(0, len(sentences), batch_size)
    show = len(starts) > 1 if progress is None else progress
    need_all = layer_ids != [enc.n_layers]
    with torch.inference_mode():
        for start in tqdm(starts, desc=f"contextual embeddings ({enc.name})", unit="batch", disable=not show):
            rows = order[start:start + batch_size]
            batch = enc.tokenizer([sentences[i] for i in rows], padding=True, truncation=True, max_length=max_length,
                                  return_tensors="pt", return_offsets_mapping=True)
            offsets = batch.pop("offset_mapping").numpy()
            mask = batch["attention_mask"].numpy().astype(bool)
            res = enc.model(**batch, output_hidden_states=need_all)
            states = torch.stack([res.hidden_states[k] for k in layer_ids], dim=1) if need_all else res.last_hidden_state[:, None]
            states = states.float().numpy()  # (b, n_layers, T, D)
            for j, i in enumerate(rows):
                a, b = spans[i]
                starts_, ends_ = offsets[j, :, 0], offsets[j, :, 1]
                hit = np.flatnonzero(mask[j] & (ends_ > starts_) & (starts_ < b) & (ends_ > a))
                if hit.size == 0:
                    raise ValueError(f"contextual_word_embeddings: the word at characters {a}-{b} of {sentences[i]!r} "
                                     f"was cut off (max_length={max_length}); raise max_length or shorten the sentence.")
                if pooling == "first":
                    vec = states[j, :, hit[0]]
                elif pooling == "last":
                    vec = states[j, :, hit[-1]]
                else:
                    vec = states[j][:, hit].mean(axis=1)
                out[i] = vec
    return out


def word_pools(contexts, *, words: Sequence[str] | None = None, encoder: str = "minilm", layers="all", pooling: str = "mean",
               batch_size: int = 32, max_length: int = 96, cache: bool = True, progress: bool | None = None) -> dict[str, np.ndarray]:
    """Contextual embeddings of every word in each of its contexts.

    Parameters
    ----------
    contexts : workbench.fairness.contexts.Contexts
    words : sequence of str, optional
        Subset/order of words (default: all words of ``contexts``).
    encoder, layers, pooling, batch_size, max_length, cache, progress
        See :func:`contextual_word_embeddings`.

    Returns
    -------
    dict word -> float32 array (n_contexts, n_layers, D)
        Words without contexts map to an empty (0, n_layers, D) array (with a warning).
    """
    words = list(contexts.sentences) if words is None else list(dict.fromkeys(words))
    unknown = [w for w in words if w not in contexts.sentences]
    if unknown:
        raise ValueError(f"word_pools: no contexts were searched for {unknown}; call find_contexts with these words.")
    sents, ws = contexts.pairs(words)
    emb = contextual_word_embeddings(sents, ws, encoder=encoder, layers=layers, pooling=pooling, batch_size=batch_size,
                                     max_length=max_length, cache=cache, progress=progress)
    pools, start = {}, 0
    for w in words:
        k = len(contexts.sentences[w])
        pools[w] = emb[start:start + k]
        start += k
    empty = [w for w in words if len(pools[w]) == 0]
    if empty:
        warnings.warn(f"word_pools: no contexts for {empty}; CEAT cannot use these words.", UserWarning, stacklevel=2)
    return pools


def static_word_vectors(words: Sequence[str], *, encoder: str = "minilm", layers=0, pooling: str = "mean",
                        cache: bool = True) -> np.ndarray:
    """Decontextualised vectors: each word encoded alone, pooled over its own sub-tokens (no special tokens).

    Returns float32 (len(words), len(layers), D). Layer 0 is the closest a transformer has to a static
    word embedding (sub-token embeddings plus position embeddings).
    """
    return contextual_word_embeddings(list(words), list(words), encoder=encoder, layers=layers, pooling=pooling, cache=cache, progress=False)
