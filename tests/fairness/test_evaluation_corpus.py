"""The templated evaluation corpus: the committed file equals a fresh generation; the design is balanced."""
import gzip

import pandas as pd
import pytest

from workbench.datasets import load_weat_word_sets
from workbench.fairness.evaluation_corpus import (
    CORPUS_PATH,
    EMOTION_STATE_WORDS,
    NAMES,
    corpus_csv_text,
    generate_evaluation_corpus,
    load_evaluation_corpus,
    subsample_corpus,
    write_evaluation_corpus,
)


@pytest.fixture(scope="module")
def fresh():
    return generate_evaluation_corpus()


def test_committed_file_equals_fresh_generation(fresh):
    assert CORPUS_PATH.exists(), "regenerate with write_evaluation_corpus()"
    assert gzip.decompress(CORPUS_PATH.read_bytes()).decode("utf-8") == corpus_csv_text(fresh)
    pd.testing.assert_frame_equal(load_evaluation_corpus(), fresh)


def test_generation_is_deterministic_to_the_byte(tmp_path, fresh):
    a = write_evaluation_corpus(tmp_path / "a.csv.gz").read_bytes()
    b = write_evaluation_corpus(tmp_path / "b.csv.gz").read_bytes()
    assert a == b
    plain = write_evaluation_corpus(tmp_path / "c.csv").read_text(encoding="utf-8")
    assert plain == corpus_csv_text(fresh)


def test_design_counts(fresh):
    # 7 emotion templates x 20 words x 60 persons + 4 neutral templates x 60 persons (the EEC's 8,640)
    assert len(fresh) == 7 * 20 * 60 + 4 * 60 == 8640
    assert fresh["sentence"].is_unique
    assert fresh.groupby("gender").size().to_dict() == {"female": 4320, "male": 4320}
    names = fresh[fresh.person_type == "name"]
    assert names.groupby(["race", "gender"]).size().unique().tolist() == [144 * 10]
    assert set(fresh.loc[fresh.person_type == "noun_phrase", "race"]) == {"unspecified"}
    assert fresh.groupby("valence").size().to_dict() == {"negative": 7 * 15 * 60, "none": 240, "positive": 7 * 5 * 60}


def test_pairs_differ_only_in_the_person(fresh):
    for key, cols in (("gender_pair", "gender"), ("race_pair", "race")):
        sub = fresh[fresh[key] != ""]
        grouped = sub.groupby(key)
        assert grouped.size().unique().tolist() == [2]
        assert grouped[cols].nunique().unique().tolist() == [2]
        for same in ("template_id", "emotion_word"):
            assert grouped[same].nunique().unique().tolist() == [1]


def test_sentences_fill_the_templates(fresh):
    row = fresh[(fresh.template_id == 5) & (fresh.person == "Ebony") & (fresh.emotion_word == "amazing")].iloc[0]
    assert row.sentence == "Ebony found herself in an amazing situation."
    row = fresh[(fresh.template_id == 2) & (fresh.person == "he") & (fresh.emotion_word == "sad")].iloc[0]
    assert row.sentence == "The situation makes him feel sad."
    assert row.valence == "negative" and row.emotion == "sadness"
    assert fresh.sentence.str.match(r"^[A-Z]").all()
    assert not fresh.sentence.str.contains(r"\{|\}").any()


def test_names_come_from_weat_lists():
    sets = load_weat_word_sets()
    for (race, _), names in NAMES.items():
        assert set(names) <= set(sets[f"{race}_names_5"])
    assert len({n for v in NAMES.values() for n in v}) == 40


def test_subsample_keeps_pairs(fresh):
    small = subsample_corpus(fresh, words_per_emotion=2, noun_phrases=3, names_per_group=2)
    persons = 3 * 2 + 2 * 4
    assert len(small) == (7 * 8 + 4) * persons
    assert small.groupby("gender_pair").size().unique().tolist() == [2]
    assert set(small.emotion_word) - {""} <= {w for ws in EMOTION_STATE_WORDS.values() for w in ws[:2]} | \
        set(small[small.template_id >= 5].emotion_word)
    with pytest.raises(ValueError, match="words_per_emotion"):
        subsample_corpus(fresh, words_per_emotion=6)


def test_missing_file_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="write_evaluation_corpus"):
        load_evaluation_corpus(tmp_path / "nope.csv.gz")
