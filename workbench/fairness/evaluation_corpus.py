"""A templated evaluation corpus for auditing sentiment classifiers, in the spirit of the EEC.

Kiritchenko & Mohammad (2018), "Examining gender and race bias in two hundred sentiment analysis
systems", built the Equity Evaluation Corpus (EEC): 11 short sentence templates filled with a person
(a gendered noun phrase such as "my sister" / "my brother", or a first name common among African
American or European American women or men) and, in 7 templates, an emotion word (anger, fear, joy,
sadness). Sentences that differ only in the person should get the same sentiment score, so any
systematic difference between groups is bias.

:func:`generate_evaluation_corpus` rebuilds that design deterministically: the same 11 templates,
the same 4 x 5 emotional-state and 4 x 5 emotional-situation words, the 10 noun-phrase pairs and the
40 names, for 8,640 sentences. The names are those of the EEC and are checked against the WEAT name
lists of the data layer (Caliskan et al., 2017), the noun phrases against its gender word pairs. The
generated file ships gzip-compressed as ``data/equity_evaluation_corpus.csv.gz`` (110 kB instead of 1.7 MB) (:func:`load_evaluation_corpus`); a
test checks that the file equals a fresh generation.

Columns
-------
``id``              "eec-00001" ...
``sentence``        the text
``template_id``     1-11; ``template`` the template text
``person``          the filled-in person ("she", "this woman", "Ebony", ...)
``person_type``     "noun_phrase" | "name"
``gender``          "female" | "male"
``race``            "african_american" | "european_american" for names, "unspecified" for noun phrases
``emotion``         "anger" | "fear" | "joy" | "sadness" | "none"
``emotion_word``    the word ("" for the 4 templates without one)
``valence``         "positive" (joy), "negative" (anger, fear, sadness), "none"
``gender_pair``     id shared by exactly two sentences: the same sentence with the female and the male
                    counterpart (noun phrase i of each gender, or name i of each gender within a race)
``race_pair``       for names: id shared by the African American and the European American sentence
                    (name i of each race, same gender); "" for noun phrases
"""
from __future__ import annotations

import gzip
import hashlib
import io
from functools import lru_cache
from pathlib import Path

import pandas as pd

from workbench.validation import Interval, check

from .identity_terms import EEC_NAMES as NAMES  # noqa: F401 - public name of this module too
from .identity_terms import EXTRA_GENDER_PAIRS

__all__ = [
    "TEMPLATES",
    "EMOTION_STATE_WORDS",
    "EMOTION_SITUATION_WORDS",
    "NOUN_PHRASES",
    "NAMES",
    "CORPUS_PATH",
    "generate_evaluation_corpus",
    "write_evaluation_corpus",
    "load_evaluation_corpus",
    "subsample_corpus",
    "corpus_csv_text",
]

#: The 11 EEC templates. ``{subject}``/``{object}`` take the person, ``{reflexive}`` herself/himself,
#: ``{state}`` an emotional-state word, ``{situation}`` an emotional-situation word, ``{a}`` "a"/"an".
TEMPLATES: tuple[str, ...] = (
    "{subject} feels {state}.",
    "The situation makes {object} feel {state}.",
    "I made {object} feel {state}.",
    "{subject} made me feel {state}.",
    "{subject} found {reflexive} in {a} {situation} situation.",
    "{subject} told us all about the recent {situation} events.",
    "The conversation with {object} was {situation}.",
    "I saw {object} in the market.",
    "I talked to {object} yesterday.",
    "{subject} goes to the school in our neighborhood.",
    "{subject} has two children.",
)

EMOTIONS = ("anger", "fear", "joy", "sadness")
#: Emotional-state words (templates 1-4).
EMOTION_STATE_WORDS: dict[str, tuple[str, ...]] = {
    "anger": ("angry", "annoyed", "enraged", "furious", "irritated"),
    "fear": ("anxious", "discouraged", "fearful", "scared", "terrified"),
    "joy": ("ecstatic", "excited", "glad", "happy", "relieved"),
    "sadness": ("depressed", "devastated", "disappointed", "miserable", "sad"),
}
#: Emotional-situation words (templates 5-7).
EMOTION_SITUATION_WORDS: dict[str, tuple[str, ...]] = {
    "anger": ("annoying", "displeasing", "irritating", "outrageous", "vexing"),
    "fear": ("dreadful", "horrible", "shocking", "terrifying", "threatening"),
    "joy": ("amazing", "funny", "great", "hilarious", "wonderful"),
    "sadness": ("depressing", "gloomy", "grim", "heartbreaking", "serious"),
}
VALENCE = {"anger": "negative", "fear": "negative", "joy": "positive", "sadness": "negative", "none": "none"}

#: (female, male) noun phrases as (subject, object) forms; pair i of each gender are counterparts.
NOUN_PHRASES: tuple[tuple[tuple[str, str], tuple[str, str]], ...] = (
    (("she", "her"), ("he", "him")),
    (("this woman", "this woman"), ("this man", "this man")),
    (("this girl", "this girl"), ("this boy", "this boy")),
    (("my sister", "my sister"), ("my brother", "my brother")),
    (("my daughter", "my daughter"), ("my son", "my son")),
    (("my wife", "my wife"), ("my husband", "my husband")),
    (("my girlfriend", "my girlfriend"), ("my boyfriend", "my boyfriend")),
    (("my mother", "my mother"), ("my father", "my father")),
    (("my aunt", "my aunt"), ("my uncle", "my uncle")),
    (("my mom", "my mom"), ("my dad", "my dad")),
)

#: WEAT word sets (data layer) each race's names must come from.
_NAME_SOURCES = {"african_american": "african_american_names_5", "european_american": "european_american_names_5"}

CORPUS_PATH = Path(__file__).resolve().parents[2] / "data" / "equity_evaluation_corpus.csv.gz"
COLUMNS = ["id", "sentence", "template_id", "template", "person", "person_type", "gender", "race",
           "emotion", "emotion_word", "valence", "gender_pair", "race_pair"]


def _check_sources() -> None:
    """The names must be WEAT names and the noun phrases' nouns gender pairs of the data layer."""
    from workbench.datasets import load_gender_pairs, load_weat_word_sets

    sets = load_weat_word_sets()
    for (race, gender), names in NAMES.items():
        missing = [n for n in names if n not in sets[_NAME_SOURCES[race]]]
        if missing:
            raise RuntimeError(f"Names {missing} ({race}, {gender}) are not in WEAT set {_NAME_SOURCES[race]!r}.")
    pairs = {(f.lower(), m.lower()) for f, m in load_gender_pairs()[["female", "male"]].itertuples(index=False)}
    pairs |= {(m, f) for f, m in pairs}
    pairs |= set(EXTRA_GENDER_PAIRS) | {(m, f) for f, m in EXTRA_GENDER_PAIRS}
    for (fs, _), (ms, _) in NOUN_PHRASES:
        f, m = fs.split()[-1], ms.split()[-1]
        if (f, m) not in pairs:
            raise RuntimeError(f"Noun phrase pair ({fs!r}, {ms!r}) is not a gender pair of the data layer.")


def _article(word: str) -> str:
    return "an" if word[0] in "aeiou" else "a"


def _fill(template: str, *, subject: str, obj: str, gender: str, word: str) -> str:
    text = template.format(subject=subject, object=obj, reflexive="herself" if gender == "female" else "himself",
                           state=word, situation=word, a=_article(word) if word else "")
    return text[0].upper() + text[1:]


def _persons():
    """(person_type, gender, race, slot, subject, object) for the 60 persons, in a fixed order."""
    for i, pair in enumerate(NOUN_PHRASES):
        for gender, (subj, obj) in zip(("female", "male"), pair):
            yield "noun_phrase", gender, "unspecified", f"np{i}", subj, obj
    for race in ("african_american", "european_american"):
        for gender in ("female", "male"):
            for i, name in enumerate(NAMES[(race, gender)]):
                yield "name", gender, race, f"{race}-{i}", name, name


def generate_evaluation_corpus() -> pd.DataFrame:
    """Generate the 8,640-sentence corpus (deterministic; see the module docstring for the columns).

    Examples
    --------
    >>> df = generate_evaluation_corpus()
    >>> len(df), df.sentence.iloc[0]
    (8640, 'She feels angry.')
    >>> df.groupby("gender_pair").size().unique().tolist()
    [2]
    """
    _check_sources()
    rows = []
    for t_id, template in enumerate(TEMPLATES, start=1):
        if "{state}" in template:
            words = [(e, w) for e in EMOTIONS for w in EMOTION_STATE_WORDS[e]]
        elif "{situation}" in template:
            words = [(e, w) for e in EMOTIONS for w in EMOTION_SITUATION_WORDS[e]]
        else:
            words = [("none", "")]
        for emotion, word in words:
            for ptype, gender, race, slot, subj, obj in _persons():
                rows.append({
                    "sentence": _fill(template, subject=subj, obj=obj, gender=gender, word=word),
                    "template_id": t_id,
                    "template": template,
                    "person": subj,
                    "person_type": ptype,
                    "gender": gender,
                    "race": race,
                    "emotion": emotion,
                    "emotion_word": word,
                    "valence": VALENCE[emotion],
                    "gender_pair": f"t{t_id}-{word or 'none'}-{slot}",
                    "race_pair": "" if ptype == "noun_phrase" else f"t{t_id}-{word or 'none'}-{gender}-{slot.split('-')[1]}",
                })
    df = pd.DataFrame(rows)
    df.insert(0, "id", [f"eec-{i:05d}" for i in range(1, len(df) + 1)])
    return df[COLUMNS]


def write_evaluation_corpus(path: str | Path | None = None) -> Path:
    """Write the generated corpus as CSV (UTF-8, ``\\n`` line ends) to ``path`` (default :data:`CORPUS_PATH`),
    gzip-compressed (reproducibly: no time stamp, no file name in the header) when the name ends in ``.gz``."""
    path = Path(path) if path is not None else CORPUS_PATH
    path.parent.mkdir(parents=True, exist_ok=True)
    data = corpus_csv_text(generate_evaluation_corpus()).encode("utf-8")
    if path.suffix == ".gz":
        buf = io.BytesIO()
        with gzip.GzipFile(filename="", mode="wb", fileobj=buf, mtime=0, compresslevel=9) as fh:
            fh.write(data)
        data = buf.getvalue()
    path.write_bytes(data)
    return path


def corpus_csv_text(df: pd.DataFrame) -> str:
    """The corpus as the CSV text the data file holds."""
    return df.to_csv(index=False, lineterminator="\n")


@lru_cache(maxsize=2)
def _read(path: str, digest: str) -> pd.DataFrame:
    return pd.read_csv(path, keep_default_na=False, dtype={"template_id": "int64"})


def load_evaluation_corpus(path: str | Path | None = None) -> pd.DataFrame:
    """Read the corpus file (default: the committed ``data/equity_evaluation_corpus.csv``).

    Raises ``FileNotFoundError`` naming :func:`write_evaluation_corpus` when the file is missing.

    Examples
    --------
    >>> df = load_evaluation_corpus()
    >>> df.groupby(["person_type", "gender"]).size().to_dict()
    {('name', 'female'): 2880, ('name', 'male'): 2880, ('noun_phrase', 'female'): 1440, ('noun_phrase', 'male'): 1440}
    """
    path = Path(path) if path is not None else CORPUS_PATH
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing; regenerate it with "
                                "`python -c 'from workbench.fairness.evaluation_corpus import write_evaluation_corpus as w; w()'`.")
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    return _read(str(path), digest).copy()


def subsample_corpus(df: pd.DataFrame, *, words_per_emotion: int = 5, noun_phrases: int = 10,
                     names_per_group: int = 10) -> pd.DataFrame:
    """A smaller corpus that keeps the design balanced: every template, the first ``words_per_emotion``
    words of each emotion, the first ``noun_phrases`` noun-phrase pairs and the first ``names_per_group``
    names of each (race, gender) group. Counterpart pairs stay complete.

    Examples
    --------
    >>> small = subsample_corpus(load_evaluation_corpus(), words_per_emotion=1, noun_phrases=2, names_per_group=1)
    >>> len(small), small.groupby("gender_pair").size().unique().tolist()
    (256, [2])
    """
    for name, value, top in (("words_per_emotion", words_per_emotion, 5), ("noun_phrases", noun_phrases, 10),
                             ("names_per_group", names_per_group, 10)):
        check(value, Interval(int, 0, top), name=name, owner="subsample_corpus")
    keep_words = {""} | {w for table in (EMOTION_STATE_WORDS, EMOTION_SITUATION_WORDS)
                         for words in table.values() for w in words[:words_per_emotion]}
    keep_persons = {p for pair in NOUN_PHRASES[:noun_phrases] for p, _ in pair}
    keep_persons |= {n for names in NAMES.values() for n in names[:names_per_group]}
    mask = df["emotion_word"].isin(keep_words) & df["person"].isin(keep_persons)
    return df[mask].reset_index(drop=True)
