"""Counterfactual (identity-swap) fairness: swap identity words in text, compare scores, augment data.

A counterfactual of a sentence is the same sentence about someone of another group: "She is a nurse"
-> "He is a nurse". A classifier is *counterfactually fair* on it when both get the same score
(Kusner et al. 2017; for text, Garg et al. 2019 "Counterfactual fairness in text classification through
robustness"). :func:`counterfactual_token_fairness` is Garg et al.'s CTF gap: the mean absolute score
change under the swap. Counterfactual data augmentation (CDA; Lu et al. 2018, Zmigrod et al. 2019)
adds the swapped copies to the training data: :func:`counterfactual_augment`.

Swapping rules (:func:`swap_identity`)
--------------------------------------
* Words are matched whole (``\\b``-style: "he" never matches inside "the" or "hello"; "@he", a user
  handle, is left alone), case-insensitively
  for common words, and the case pattern is kept: "he" -> "she", "He" -> "She", "HE" -> "SHE".
* Names are only swapped when written as in the lexicon or in capitals ("Jack" -> "Jill", "JACK" ->
  "JILL"), so that the common words "jack", "ebony" or "frank" stay untouched.
* Multi-word entries ("twin sister") are matched before single words; every word is swapped once, in
  one pass, so "he and she" becomes "she and he", not "he and he".
* Gendered pronouns are ambiguous in one direction: English "her" is both the object form (-> "him")
  and the possessive determiner (-> "his"), and "his" is both a determiner (-> "her") and a pronoun
  (-> "hers"). Without a parser we resolve them deterministically from the next word:

  - "her" -> "him" when it ends the text or a clause (followed by punctuation) or when the next word is in
    :data:`NOT_AFTER_POSSESSIVE` (prepositions, conjunctions, determiners, pronouns, adverbs such as
    "yesterday", and bare verbs after causatives: "made her *feel*"); otherwise "her" -> "his"
    ("her *book*" -> "his book").
  - "his" -> "hers" when followed by punctuation or the end of the text ("the book is his."),
    otherwise "his" -> "her".

  These rules get the EEC templates and common sentences right; a sentence like "I saw her walk"
  ("walk" is not in the list) becomes "I saw his walk". Extend the list if your text needs it.

The gender lexicon comes from the data layer (:func:`workbench.datasets.load_gender_pairs`, Bolukbasi
et al. 2016) plus :data:`EXTRA_GENDER_PAIRS` (wife/husband, girlfriend/boyfriend, ... which the EEC's
noun phrases need). Name lexicons pair names of two groups by position (:func:`name_lexicon`).
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Callable, Mapping, Sequence

import numpy as np
import pandas as pd

from workbench.validation import Interval, Options, check

from .identity_terms import EEC_NAMES, EXTRA_GENDER_PAIRS

__all__ = [
    "EXTRA_GENDER_PAIRS",
    "NOT_AFTER_POSSESSIVE",
    "SwapLexicon",
    "gender_lexicon",
    "name_lexicon",
    "eec_name_lexicon",
    "race_name_lexicon",
    "swap_identity",
    "counterfactual_texts",
    "counterfactual_gaps",
    "counterfactual_token_fairness",
    "counterfactual_augment",
    "score_counterfactuals",
]

_PRONOUNS = {"she": "he", "he": "she", "him": "her", "hers": "his", "herself": "himself", "himself": "herself"}
#: Words after which "her" cannot be a possessive determiner (so it is the object "him").
NOT_AFTER_POSSESSIVE: frozenset[str] = frozenset("""
a an the this that these those my your his her its our their some any no every each all both either neither
to in on at by for with from of about into onto over under after before since until through during
without within among against between off out up down away back around across along near like as than
and or but nor so yet if because when while whereas though although unless
i me you he him she it we us they them who whom what which whose
is was are were be been being am will would shall should can could may might must do does did
not too very also just only even still already again yesterday today tomorrow tonight now then here there
always never often sometimes once twice anymore
feel feels go come do be know see say tell think want look take give leave laugh cry smile stay try
get make help let talk wait work sleep eat win lose understand believe happy sad
""".split())

_WORD = r"[A-Za-z0-9]"  # what may not touch a match on either side


@dataclass(frozen=True)
class SwapLexicon:
    """Word -> counterpart maps used by :func:`swap_identity`.

    ``words`` are matched case-insensitively (keys lower-case), ``names`` only when capitalised
    (keys as written). ``pronouns`` turns on the she/he, her/him/his, hers/his rules.
    """

    words: Mapping[str, str] = field(default_factory=dict)
    names: Mapping[str, str] = field(default_factory=dict)
    pronouns: bool = False

    def __post_init__(self):
        object.__setattr__(self, "words", {k.lower(): v.lower() for k, v in dict(self.words).items()})
        object.__setattr__(self, "names", dict(self.names))
        if not (self.words or self.names or self.pronouns):
            raise ValueError("A SwapLexicon must hold some words, names or pronouns=True.")

    def __or__(self, other: "SwapLexicon") -> "SwapLexicon":
        return SwapLexicon({**self.words, **other.words}, {**self.names, **other.names}, self.pronouns or other.pronouns)

    @property
    def pattern(self) -> re.Pattern:
        return _compile(tuple(sorted(self.words)), tuple(sorted(self.names)), self.pronouns)


@lru_cache(maxsize=32)
def _compile(words: tuple[str, ...], names: tuple[str, ...], pronouns: bool) -> re.Pattern:
    def alt(items):
        # longest first so "twin sister" wins over "sister"; spaces match any whitespace
        return "|".join(r"\s+".join(map(re.escape, w.split())) for w in sorted(items, key=lambda w: (-len(w), w)))

    parts = []
    common = set(words) | ({"her", "his", *_PRONOUNS} if pronouns else set())
    if common:
        parts.append(f"(?P<w>(?i:{alt(common)}))")
    if names:
        parts.append(f"(?P<n>{alt(set(names) | {n.upper() for n in names})})")
    return re.compile(rf"(?<![A-Za-z0-9@])(?:{'|'.join(parts)})(?!{_WORD})")


def _pairs_to_map(pairs: Sequence[tuple[str, str]], *, what: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for a, b in pairs:
        for x, y in ((a, b), (b, a)):
            if out.get(x, y) != y:
                raise ValueError(f"{what}: {x!r} would swap to both {out[x]!r} and {y!r}.")
            out[x] = y
    return out


def gender_lexicon(*, extra: Sequence[tuple[str, str]] = EXTRA_GENDER_PAIRS, pronouns: bool = True) -> SwapLexicon:
    """Female <-> male swaps: the data layer's gender pairs (lower-cased) + ``extra``, and pronoun rules.

    Examples
    --------
    >>> lex = gender_lexicon()
    >>> lex.words["mother"], lex.words["king"], lex.words["husband"]
    ('father', 'queen', 'wife')
    """
    from workbench.datasets import load_gender_pairs

    pairs = [(f.lower(), m.lower()) for f, m in load_gender_pairs()[["female", "male"]].itertuples(index=False)]
    pairs = [p for p in dict.fromkeys(pairs + [(f.lower(), m.lower()) for f, m in extra])
             if p[0] not in ("her", "his") and p[1] not in ("her", "his")]
    mapping = _pairs_to_map(pairs, what="gender_lexicon")
    for p in _PRONOUNS:  # pronouns are handled by the rules
        mapping.pop(p, None)
    return SwapLexicon(words=mapping, pronouns=pronouns)


def name_lexicon(names_a: Sequence[str], names_b: Sequence[str]) -> SwapLexicon:
    """Swap name i of ``names_a`` with name i of ``names_b`` (both ways; matched only when capitalised).

    Examples
    --------
    >>> swap_identity("Jack met Jill.", lexicon=name_lexicon(["Jack"], ["Jill"]))
    'Jill met Jack.'
    """
    if len(names_a) != len(names_b):
        raise ValueError(f"The name lists of name_lexicon must have the same length. Got {len(names_a)} and {len(names_b)}.")
    if not len(names_a):
        raise ValueError("The name lists of name_lexicon must not be empty.")
    return SwapLexicon(names=_pairs_to_map(list(zip(names_a, names_b)), what="name_lexicon"))


def eec_name_lexicon(*, swap: str = "gender") -> SwapLexicon:
    """Name swaps between the evaluation corpus's name groups: ``swap="gender"`` (female <-> male name i
    within each race) or ``swap="race"`` (African American <-> European American name i, same gender)."""
    check(swap, Options(("gender", "race")), name="swap", owner="eec_name_lexicon")
    if swap == "gender":
        pairs = [(EEC_NAMES[(r, "female")], EEC_NAMES[(r, "male")]) for r in ("african_american", "european_american")]
    else:
        pairs = [(EEC_NAMES[("african_american", g)], EEC_NAMES[("european_american", g)]) for g in ("female", "male")]
    return name_lexicon([n for a, _ in pairs for n in a], [n for _, b in pairs for n in b])


def race_name_lexicon(group_a: str, group_b: str, *, n: int | None = None, seed: int = 0) -> SwapLexicon:
    """Pair first names of two groups of :func:`workbench.datasets.load_names` ("white", "black", ...).

    Names listed for more than one group are left out; ``n`` names per group (default: as many as the
    smaller group has) are drawn with ``seed`` from the sorted lists and paired by position.
    """
    from workbench.datasets import load_names

    names = load_names()
    counts = names.groupby("name")["group"].nunique()
    unique = names[names["name"].map(counts) == 1]
    known = sorted(unique["group"].unique())
    for g in (group_a, group_b):
        if g not in known:
            raise ValueError(f"Unknown group {g!r} for race_name_lexicon; accepted values are {known}.")
    if group_a == group_b:
        raise ValueError("The groups of race_name_lexicon must differ.")
    rng = np.random.default_rng(seed)
    a = sorted(unique.loc[unique["group"] == group_a, "name"])
    b = sorted(unique.loc[unique["group"] == group_b, "name"])
    k = min(len(a), len(b)) if n is None else check(n, Interval(int, 1, min(len(a), len(b))), name="n", owner="race_name_lexicon")
    return name_lexicon([a[i] for i in sorted(rng.choice(len(a), k, replace=False))],
                        [b[i] for i in sorted(rng.choice(len(b), k, replace=False))])


# ------------------------------------------------------------------------------------------------ swap
def _match_case(source: str, target: str) -> str:
    if source.isupper() and len(source) > 1:
        return target.upper()
    if source[:1].isupper():
        return target[:1].upper() + target[1:]
    return target


_NEXT = re.compile(r"\s*([A-Za-z']+|\S)?")


def _resolve_pronoun(word: str, text: str, end: int) -> str:
    m = _NEXT.match(text, end)
    nxt = (m.group(1) or "") if m else ""
    ends = nxt == "" or not nxt[0].isalpha()
    if word == "her":
        return "him" if ends or nxt.lower() in NOT_AFTER_POSSESSIVE else "his"
    if word == "his":
        return "hers" if ends else "her"
    return _PRONOUNS[word]


def swap_identity(text: str, *, lexicon: SwapLexicon | None = None) -> str:
    """Return ``text`` with every identity term swapped for its counterpart (rules in the module docstring).

    Parameters
    ----------
    text : str
    lexicon : SwapLexicon, optional
        Default: :func:`gender_lexicon`.

    Examples
    --------
    >>> swap_identity("He told HER that his mother-in-law loves her cat.")
    'She told HIM that her father-in-law loves his cat.'
    >>> swap_identity("The theme of the hello.")  # whole words only
    'The theme of the hello.'
    """
    if not isinstance(text, str):
        raise TypeError(f"The 'text' parameter of swap_identity must be a str. Got {type(text).__name__}.")
    lex = lexicon if lexicon is not None else _default_lexicon()

    def repl(m: re.Match) -> str:
        found = m.group(0)
        if m.group("n") if "n" in m.re.groupindex else None:
            if found in lex.names:
                return lex.names[found]
            return next(v.upper() for k, v in lex.names.items() if k.upper() == found)
        key = " ".join(found.lower().split())
        if lex.pronouns and (key in _PRONOUNS or key in ("her", "his")):
            target = _resolve_pronoun(key, text, m.end())
        else:
            target = lex.words[key]
        return _match_case(found, target)

    return lex.pattern.sub(repl, text)


@lru_cache(maxsize=1)
def _default_lexicon() -> SwapLexicon:
    return gender_lexicon()


def counterfactual_texts(texts: Sequence[str], *, lexicon: SwapLexicon | None = None) -> pd.DataFrame:
    """Swap every text; columns ``text``, ``counterfactual``, ``changed`` (did any term swap).

    Examples
    --------
    >>> counterfactual_texts(["she is here", "it rains"]).changed.tolist()
    [True, False]
    """
    if isinstance(texts, str):
        raise TypeError("The 'texts' parameter of counterfactual_texts must be a sequence of strings, not one string.")
    texts = [str(t) for t in texts]
    swapped = [swap_identity(t, lexicon=lexicon) for t in texts]
    return pd.DataFrame({"text": texts, "counterfactual": swapped,
                         "changed": [a != b for a, b in zip(texts, swapped)]})


# -------------------------------------------------------------------------------------------- metrics
def counterfactual_gaps(scores, counterfactual_scores) -> np.ndarray:
    """Per-example absolute score change ``|f(x) - f(x')|`` (rows: examples; 2-D scores are summed over classes).

    Examples
    --------
    >>> counterfactual_gaps([0.9, 0.5], [0.6, 0.5])
    array([0.3, 0. ])
    """
    a = np.asarray(scores, dtype=float)
    b = np.asarray(counterfactual_scores, dtype=float)
    if a.shape != b.shape:
        raise ValueError(f"The 'scores' and 'counterfactual_scores' of counterfactual_gaps must have the same shape. Got {a.shape} and {b.shape}.")
    if a.size == 0:
        raise ValueError("The 'scores' parameter of counterfactual_gaps must not be empty.")
    gap = np.abs(a - b)
    return gap if gap.ndim == 1 else gap.reshape(len(gap), -1).sum(axis=1)


def counterfactual_token_fairness(scores, counterfactual_scores) -> float:
    """Counterfactual token fairness gap (Garg et al., 2019): the mean absolute score change under the swap.

    0 means every prediction is unchanged by swapping identity terms.

    Examples
    --------
    >>> round(counterfactual_token_fairness([0.9, 0.5, 0.2], [0.6, 0.5, 0.2]), 6)
    0.1
    """
    return float(counterfactual_gaps(scores, counterfactual_scores).mean())


def counterfactual_augment(texts: Sequence[str], labels, *, lexicon: SwapLexicon | None = None,
                           only_changed: bool = True) -> pd.DataFrame:
    """Counterfactual data augmentation: the original examples plus a swapped copy with the same label.

    Parameters
    ----------
    texts : sequence of str
    labels : array-like, one per text
    lexicon : SwapLexicon, optional
        Default: :func:`gender_lexicon`.
    only_changed : bool
        Add copies only of texts that contain an identity term (others would be duplicates).

    Returns
    -------
    pandas.DataFrame
        Columns ``text``, ``label``, ``source`` ("original" | "counterfactual") and ``origin`` (row number
        of the original text). Originals come first, in order.

    Examples
    --------
    >>> counterfactual_augment(["she won", "it rained"], [2, 0]).values.tolist()
    [['she won', 2, 'original', 0], ['it rained', 0, 'original', 1], ['he won', 2, 'counterfactual', 0]]
    """
    cf = counterfactual_texts(texts, lexicon=lexicon)
    labels = np.asarray(labels).reshape(-1)
    if len(labels) != len(cf):
        raise ValueError(f"The 'labels' parameter of counterfactual_augment must have one entry per text. Got {len(labels)} labels for {len(cf)} texts.")
    orig = pd.DataFrame({"text": cf["text"], "label": labels, "source": "original", "origin": np.arange(len(cf))})
    keep = cf["changed"].to_numpy() if only_changed else np.ones(len(cf), dtype=bool)
    copies = pd.DataFrame({"text": cf.loc[keep, "counterfactual"].to_numpy(), "label": labels[keep],
                           "source": "counterfactual", "origin": np.flatnonzero(keep)})
    return pd.concat([orig, copies], ignore_index=True)


def score_counterfactuals(texts: Sequence[str], score_fn: Callable[[list[str]], np.ndarray], *,
                          lexicon: SwapLexicon | None = None) -> pd.DataFrame:
    """Score texts and their counterfactuals with ``score_fn(list_of_texts) -> scores``.

    Returns :func:`counterfactual_texts`'s frame plus ``index`` (row number in ``texts``), ``score``,
    ``counterfactual_score`` and ``gap``, for the texts that changed (a text with no identity term has
    no counterfactual).
    """
    cf = counterfactual_texts(texts, lexicon=lexicon)
    cf = cf[cf["changed"]].reset_index()
    if len(cf) == 0:
        raise ValueError("No text of score_counterfactuals contains an identity term of the lexicon.")
    s = np.asarray(score_fn(cf["text"].tolist()), dtype=float)
    c = np.asarray(score_fn(cf["counterfactual"].tolist()), dtype=float)
    cf["score"], cf["counterfactual_score"], cf["gap"] = s, c, counterfactual_gaps(s, c)
    return cf
