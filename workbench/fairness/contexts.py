"""Sentences that contain a word: the contexts from which CEAT draws contextual embeddings.

Three sources:

* ``"tweets"``: the 38,158 tweets of :func:`workbench.datasets.load_tweets`;
* ``"shakespeare"``: the speeches of :func:`workbench.datasets.load_shakespeare`, split into sentences;
* ``"templates"``: sentences the project generates from neutral templates (:data:`CONTEXT_TEMPLATES`,
  :data:`NAME_TEMPLATES` for capitalised words, i.e. names), so that rare words (many WEAT names and
  flowers never occur in tweets or plays) still have contexts.

Matching is whole-word and case-insensitive ("Rose" the name also finds "rose" the flower; that is a
known limitation of word-level matching, as in the reference implementation). Guo & Caliskan (2021) drew
contexts from Reddit; these corpora are far smaller and older, so counts per word are low and vary a lot:
:meth:`Contexts.counts` reports them and :func:`find_contexts` warns when a word has fewer than
``min_per_word``.
"""
from __future__ import annotations

import re
import warnings
from collections import defaultdict
from dataclasses import dataclass
from functools import lru_cache
from typing import Sequence

import numpy as np
import pandas as pd

from workbench.validation import Interval, Options, Seq, check

__all__ = [
    "CONTEXT_SOURCES",
    "CONTEXT_TEMPLATES",
    "NAME_TEMPLATES",
    "SEAT_TEMPLATES",
    "Contexts",
    "find_contexts",
    "template_sentences",
    "corpus_sentences",
    "word_pattern",
]

CONTEXT_SOURCES = ("tweets", "shakespeare", "templates")

#: Semantically bleached sentences of SEAT (May et al., 2019), used by :func:`~workbench.fairness.association.seat`.
SEAT_TEMPLATES = ("This is {}.", "That is {}.", "There is {}.", "Here is {}.", "{} is here.", "{} is there.")

#: Project-generated contexts for any word (neutral; the word is a noun, adjective or name alike).
CONTEXT_TEMPLATES = (
    "This is {}.", "That is {}.", "There is {}.", "Here is {}.", "{} is here.", "{} is there.",
    "The word is {}.", "I was thinking about {}.", "We talked about {} today.", "They wrote {} on the board.",
    "She said {} twice.", "Someone mentioned {} yesterday.",
)
#: Project-generated contexts for names (capitalised words).
NAME_TEMPLATES = (
    "This is {}.", "That is {}.", "There is {}.", "Here is {}.", "{} is here.", "{} is there.",
    "{} is a person.", "The person's name is {}.", "I met {} yesterday.", "{} walked into the room.",
    "Have you seen {}?", "{} lives nearby.",
)

_TOKEN = re.compile(r"[a-z0-9']+")
_SENTENCE_END = re.compile(r"(?<=[.!?;])\s+")


def word_pattern(word: str) -> re.Pattern:
    """Whole-word, case-insensitive pattern of ``word`` (used to find it in a sentence).

    Examples
    --------
    >>> word_pattern("art").search("Arts and art.").span()
    (9, 12)
    """
    return re.compile(rf"(?<![\w']){re.escape(word)}(?![\w'])", re.IGNORECASE)


def template_sentences(word: str, *, templates: Sequence[str] | None = None) -> list[str]:
    """The project-generated contexts of ``word`` (name templates when it is capitalised).

    Examples
    --------
    >>> template_sentences("tulip")[:2]
    ['This is tulip.', 'That is tulip.']
    >>> template_sentences("Amy")[6]
    'Amy is a person.'
    """
    if templates is None:
        templates = NAME_TEMPLATES if word[:1].isupper() else CONTEXT_TEMPLATES
    out = []
    for t in templates:
        s = t.format(word)
        out.append(s[0].upper() + s[1:])
    return out


@lru_cache(maxsize=4)
def corpus_sentences(source: str, *, max_chars: int = 300) -> tuple[str, ...]:
    """All sentences of a corpus source ("tweets" or "shakespeare"), at most ``max_chars`` long.

    Tweets are kept whole; Shakespeare's speeches are joined and split at ``. ! ? ;``.
    """
    if source == "tweets":
        from workbench.datasets import load_tweets

        texts = load_tweets(size="full")["text"].tolist()
    elif source == "shakespeare":
        from workbench.datasets import load_shakespeare

        texts = [s for speech in load_shakespeare(size="full")["text"] for s in _SENTENCE_END.split(speech.replace("\n", " "))]
    else:
        check(source, Options(("tweets", "shakespeare")), name="source", owner="corpus_sentences")
    return tuple(t.strip() for t in texts if 3 <= len(t.strip()) <= max_chars)


@lru_cache(maxsize=4)
def _index(source: str, max_chars: int = 300) -> dict[str, np.ndarray]:
    """Inverted index: lower-case token -> ids of the sentences of ``source`` that contain it."""
    index: dict[str, list[int]] = defaultdict(list)
    for i, sentence in enumerate(corpus_sentences(source, max_chars=max_chars)):
        for token in set(_TOKEN.findall(sentence.lower())):
            index[token].append(i)
    return {k: np.asarray(v, dtype=np.int64) for k, v in index.items()}


@dataclass(frozen=True)
class Contexts:
    """Sentences per word and the source of each.

    Attributes
    ----------
    sentences : dict word -> list of str
    sources : dict word -> list of str
        Source name of each sentence ("tweets", "shakespeare", "templates").
    min_per_word : int
        Threshold below which :meth:`counts` flags a word.
    """

    sentences: dict
    sources: dict
    min_per_word: int = 5

    def counts(self) -> pd.DataFrame:
        """One row per word: number of contexts in total and per source, and ``too_few``.

        Examples
        --------
        >>> c = find_contexts(["tulip"], sources=("templates",))
        >>> row = c.counts().loc["tulip"]
        >>> int(row.n_contexts), int(row.templates), bool(row.too_few)
        (12, 12, False)
        """
        rows = []
        for w, srcs in self.sources.items():
            row = {"word": w, "n_contexts": len(srcs)}
            for s in CONTEXT_SOURCES:
                row[s] = sum(1 for x in srcs if x == s)
            row["too_few"] = len(srcs) < self.min_per_word
            rows.append(row)
        return pd.DataFrame(rows, columns=["word", "n_contexts", *CONTEXT_SOURCES, "too_few"]).set_index("word")

    def pairs(self, words: Sequence[str] | None = None) -> tuple[list[str], list[str]]:
        """Flattened (sentences, words) in word order, for :func:`~workbench.fairness.contextual.contextual_word_embeddings`."""
        words = list(self.sentences) if words is None else list(words)
        sents = [s for w in words for s in self.sentences[w]]
        ws = [w for w in words for _ in self.sentences[w]]
        return sents, ws


def find_contexts(words: Sequence[str], *, sources: Sequence[str] = CONTEXT_SOURCES, max_per_word: int = 20,
                  min_per_word: int = 5, n_templates: int | None = None, max_chars: int = 300, seed: int = 0,
                  warn: bool = True) -> Contexts:
    """Find sentences containing each word.

    Parameters
    ----------
    words : sequence of str
    sources : sequence of {"tweets", "shakespeare", "templates"}
        Where to look. Template sentences are always all included; corpus sentences (tweets and
        Shakespeare pooled) are subsampled to at most ``max_per_word`` per word.
    max_per_word : int
        Cap on corpus contexts per word (drawn at random with ``seed`` when more are found).
    min_per_word : int
        Words with fewer contexts in total are reported with a warning (and ``counts().too_few``).
    n_templates : int, optional
        Use only the first ``n_templates`` templates (default: all 12).
    max_chars : int
        Ignore corpus sentences longer than this (long sentences cost encoder time).
    seed : int
    warn : bool
        Emit the ``UserWarning`` about words with too few contexts.

    Returns
    -------
    Contexts

    Examples
    --------
    >>> c = find_contexts(["tulip", "Amy"], sources=("templates",))
    >>> c.sentences["Amy"][0], len(c.sentences["tulip"])
    ('This is Amy.', 12)
    """
    if isinstance(words, str):
        raise TypeError("The 'words' parameter of find_contexts must be a sequence of words, not one string.")
    words = list(dict.fromkeys(words))
    if not words:
        raise ValueError("The 'words' parameter of find_contexts must not be empty.")
    sources = check(sources, Seq(Options(tuple(CONTEXT_SOURCES)), min_len=1), name="sources", owner="find_contexts")
    max_per_word = check(max_per_word, Interval(int, 0, None), name="max_per_word", owner="find_contexts")
    min_per_word = check(min_per_word, Interval(int, 0, None), name="min_per_word", owner="find_contexts")
    n_templates = check(n_templates, Interval(int, 0, None), None, name="n_templates", owner="find_contexts")
    max_chars = check(max_chars, Interval(int, 1, None), name="max_chars", owner="find_contexts")
    rng = np.random.default_rng(seed)
    sentences: dict[str, list[str]] = {}
    origin: dict[str, list[str]] = {}
    corpora = [s for s in sources if s != "templates"]
    for w in words:
        found: list[tuple[str, str]] = []
        keys = _TOKEN.findall(w.lower())
        for src in corpora:
            if not keys:
                continue
            index = _index(src, max_chars)
            ids = index.get(keys[0], np.empty(0, np.int64))
            for k in keys[1:]:  # multi-token words: candidates must contain every token
                ids = np.intersect1d(ids, index.get(k, np.empty(0, np.int64)))
            pat = word_pattern(w)
            corpus = corpus_sentences(src, max_chars=max_chars)
            found += [(corpus[i], src) for i in ids if pat.search(corpus[i])]
        if len(found) > max_per_word:
            keep = np.sort(rng.choice(len(found), size=max_per_word, replace=False))
            found = [found[i] for i in keep]
        if "templates" in sources:
            found += [(s, "templates") for s in template_sentences(w)[:n_templates]]
        sentences[w] = [s for s, _ in found]
        origin[w] = [o for _, o in found]
    ctx = Contexts(sentences, origin, min_per_word)
    if warn:
        few = [w for w in words if len(sentences[w]) < min_per_word]
        if few:
            shown = ", ".join(f"{w!r} ({len(sentences[w])})" for w in few[:15])
            warnings.warn(
                f"find_contexts: {len(few)} of {len(words)} words have fewer than {min_per_word} contexts: {shown}"
                f"{' ...' if len(few) > 15 else ''}. Add the 'templates' source or lower 'min_per_word'.",
                UserWarning, stacklevel=2,
            )
    return ctx
