"""Counterfactual role reversal (Gupta et al., Findings of ACL 2022) as pure functions.

Two ways to show a student language model both genders in the same roles while it is distilled:

* **Counterfactual data augmentation (CDA)** of the distillation corpus: :func:`cda_swap` swaps gendered words
  and first names in a text (both directions in one pass: "he" <-> "she", "Mr" <-> "Mrs", "Jack" <-> "Katie"),
  keeping the case pattern and matching whole words only; :func:`augment_texts` builds the training texts,
  either *one-sided* (``mode="one_sided"``: the originals plus a swapped copy of every text that contains a
  gendered term; the corpus grows) or by substitution (``mode="substitute"``, counterfactual data substitution of
  Maudslay et al. 2019: each gendered text is replaced by its swapped copy with probability 1/2, the corpus keeps
  its size), or *two-sided* (``mode="two_sided"``: every gendered text next to its swapped copy, and
  :func:`training_rows` draws the training budget in (original, counterfactual) pairs, so every gendered text a
  student sees comes with its role-reversed twin and the rows it trains on are gender-balanced).
* **Teacher probability perturbation**: :func:`perturb_probabilities` changes the teacher's next-token
  distribution on every gendered token pair (female token, male token): ``"swap"`` exchanges the two
  probabilities, ``"equalize"`` gives both their mean. Both keep each row's total, so a distribution stays a
  distribution, and leave every other token's probability exactly as it was.

The word lists are the workbench's own: :func:`workbench.fairness.counterfactual.gender_lexicon` (Bolukbasi et
al.'s pairs, pronoun rules) and the female/male first names of the evaluation corpus
(:func:`workbench.fairness.counterfactual.eec_name_lexicon`). The swap itself is
:func:`workbench.fairness.counterfactual.swap_identity` (its rules for the ambiguous "her"/"his" are documented
there), so notebooks 05 and 08 swap text the same way.
"""
from __future__ import annotations

from functools import lru_cache
from typing import Sequence

import numpy as np

__all__ = ["PERTURBATIONS", "CDA_MODES", "role_reversal_lexicon", "cda_swap", "augment_texts", "training_rows",
           "gendered_word_counts",
           "gender_token_pairs", "perturb_probabilities"]

#: Teacher-probability perturbations: name -> what happens to a (female, male) token pair's probabilities.
PERTURBATIONS = {"swap": "exchange the two probabilities", "equalize": "both get the pair's mean probability"}
#: CDA modes of :func:`augment_texts`.
CDA_MODES = {"one_sided": "originals + swapped copies of gendered texts",
             "substitute": "each gendered text swapped with probability 1/2 (same corpus size)",
             "two_sided": "every gendered text with its swapped copy, drawn in pairs (balanced rows)"}
#: Pronoun pairs (female, male) used for token-level perturbation ("her" pairs with "his", "hers"/"him" are left out
#: so that every token belongs to one pair at most).
PRONOUN_PAIRS = (("she", "he"), ("her", "his"), ("herself", "himself"))


@lru_cache(maxsize=1)
def role_reversal_lexicon():
    """The swap lexicon: gender word pairs with pronoun rules, plus female <-> male first names.

    Examples
    --------
    >>> lex = role_reversal_lexicon()
    >>> lex.words["mother"], lex.names["Katie"], lex.pronouns
    ('father', 'Jack', True)
    """
    from workbench.fairness.counterfactual import eec_name_lexicon, gender_lexicon

    return gender_lexicon() | eec_name_lexicon(swap="gender")


def cda_swap(text: str) -> str:
    """Swap every gendered word and first name of ``text`` for its counterpart (both directions, one pass).

    Examples
    --------
    >>> cda_swap("He met his sister Katie; SHE is the Queen.")
    'She met her brother Jack; HE is the King.'
    >>> cda_swap("The theme of Shelby's hello.")  # whole words only
    "The theme of Shelby's hello."
    """
    from workbench.fairness.counterfactual import swap_identity

    from workbench.validation import InstanceOf, check

    check(text, InstanceOf(str), name="text", owner="cda_swap")
    return swap_identity(text, lexicon=role_reversal_lexicon())


def gendered_word_counts(text: str) -> tuple[int, int]:
    """``(female, male)``: how many female and male terms of the lexicon ``text`` holds (whole words).

    Examples
    --------
    >>> gendered_word_counts("She told him that her brother and KATIE left.")
    (3, 2)
    """
    lex = role_reversal_lexicon()
    female_words = {f.lower() for f, _ in _female_male_words()}
    female = male = 0
    for m in lex.pattern.finditer(text):
        if " ".join(m.group(0).lower().split()) in female_words:
            female += 1
        else:
            male += 1
    return female, male


@lru_cache(maxsize=1)
def _female_male_words() -> tuple[tuple[str, str], ...]:
    """Every (female, male) pair of the lexicon: words, names and pronouns ("hers" is female, "him" male)."""
    from workbench.datasets import load_gender_pairs
    from workbench.fairness.counterfactual import EXTRA_GENDER_PAIRS
    from workbench.fairness.evaluation_corpus import NAMES

    pairs = [(f.lower(), m.lower()) for f, m in load_gender_pairs()[["female", "male"]].itertuples(index=False)]
    pairs += [(f.lower(), m.lower()) for f, m in EXTRA_GENDER_PAIRS] + list(PRONOUN_PAIRS) + [("hers", "him")]
    for race in ("african_american", "european_american"):
        pairs += list(zip(NAMES[(race, "female")], NAMES[(race, "male")]))
    return tuple(dict.fromkeys(pairs))


def augment_texts(texts: Sequence[str], *, mode: str = "one_sided", seed: int = 0) -> list[str]:
    """Counterfactual data augmentation of a list of texts.

    Parameters
    ----------
    texts : sequence of str
    mode : {"one_sided", "substitute", "two_sided"}
        ``"one_sided"``: the originals, in order, then a swapped copy of each text that changed under
        :func:`cda_swap`. ``"substitute"``: one text per original, the swapped copy in place of the original for a
        random half (drawn with ``seed``) of the texts that contain a gendered term. ``"two_sided"``: the same texts
        as ``"one_sided"``, but each swapped copy right after its original (use :func:`training_rows` to draw a
        budget from it without splitting a pair).
    seed : int

    Examples
    --------
    >>> augment_texts(["she won", "it rained"])
    ['she won', 'it rained', 'he won']
    >>> augment_texts(["she won", "it rained"], mode="two_sided")
    ['she won', 'he won', 'it rained']
    >>> len(augment_texts(["she won", "it rained"], mode="substitute"))
    2
    """
    return [t for unit in _cda_units(texts, mode=mode, seed=seed, owner="augment_texts") for t in unit]


def _cda_units(texts, *, mode, seed, owner):
    """The augmented corpus as units: 1-tuples, or (original, counterfactual) pairs in ``"two_sided"`` mode."""
    from workbench.validation import Interval, Options, check

    check(mode, Options(set(CDA_MODES)), name="mode", owner=owner)
    check(seed, Interval(int, 0, None), name="seed", owner=owner)
    if isinstance(texts, str):
        raise TypeError(f"The 'texts' parameter of {owner} must be a sequence of str, not one str.")
    texts = list(texts)
    swapped = [cda_swap(t) for t in texts]
    changed = [s != t for s, t in zip(swapped, texts)]
    if mode == "one_sided":
        return [(t,) for t in texts] + [(s,) for s, c in zip(swapped, changed) if c]
    if mode == "two_sided":
        return [(t, s) if c else (t,) for t, s, c in zip(texts, swapped, changed)]
    flip = np.random.default_rng(seed).random(len(texts)) < 0.5
    return [(s if (c and f) else t,) for t, s, c, f in zip(texts, swapped, changed, flip)]


def training_rows(texts: Sequence[str], *, n: int, mode: str | None = None, seed: int = 0) -> list[str]:
    """The ``n`` training texts of one student: the same budget rule for every variant.

    ``mode=None`` (no CDA): ``n`` of ``texts`` drawn without replacement with ``seed``. A CDA mode of
    :data:`CDA_MODES`: ``n`` texts drawn the same way from :func:`augment_texts`; in ``"two_sided"`` mode the draw
    is over (original, counterfactual) pairs and texts without a gendered term, taken whole in the drawn order
    until ``n`` texts are reached (a pair that no longer fits is passed over for the next single text), so every
    gendered text comes with its swapped twin.

    Raises
    ------
    ValueError
        When fewer than ``n`` texts are available, or when a two-sided draw cannot fill ``n`` without splitting a
        pair (an odd ``n`` and no text without a gendered term).

    Examples
    --------
    >>> training_rows(["she won", "it rained", "he lost"], n=2, mode="two_sided", seed=0)
    ['he lost', 'she lost']
    >>> len(training_rows(["she won", "it rained", "he lost"], n=3, mode="two_sided", seed=1))
    3
    """
    from workbench.validation import Interval, check

    owner = "training_rows"
    check(n, Interval(int, 1, None), name="n", owner=owner)
    units = [(t,) for t in texts] if mode is None else _cda_units(texts, mode=mode, seed=seed, owner=owner)
    if mode is None:
        check(seed, Interval(int, 0, None), name="seed", owner=owner)
        if isinstance(texts, str):
            raise TypeError(f"The 'texts' parameter of {owner} must be a sequence of str, not one str.")
    available = sum(len(u) for u in units)
    if n > available:
        raise ValueError(f"The 'n' parameter of {owner} must be at most {available} (the texts available"
                         f"{'' if mode is None else f' after {mode} augmentation'}). Got {n} instead.")
    order = np.random.default_rng(seed).permutation(len(units))
    if mode != "two_sided":
        return [units[i][0] for i in order[:n]]
    rows = []
    for i in order:
        if len(rows) + len(units[i]) <= n:
            rows += units[i]
        if len(rows) == n:
            return rows
    raise ValueError(f"A two-sided draw of {n} texts cannot be filled without splitting an (original, "
                     f"counterfactual) pair: {owner} needs an even 'n' or texts without gendered terms. Got n={n}.")


def gender_token_pairs(tokenizer) -> np.ndarray:
    """(female, male) token-id pairs of the gendered words that the tokenizer keeps as one token.

    Every word pair of the lexicon (and the pronoun pairs she/he, her/his, herself/himself) is tried with a leading
    space and capitalised (" she"/" he", " She"/" He"); a variant is kept when both words are single tokens. Each
    token appears in one pair at most (first come, first kept), so a swap is well defined.

    Returns
    -------
    numpy.ndarray, shape (P, 2), int64
    """
    pairs, used = [], set()
    names = {n for (r, g), ns in _eec_names().items() for n in ns}
    for f, m in _female_male_words():
        if (f, m) == ("hers", "him"):
            continue
        variants = [(f, m)] if f in names else [(f, m), (f.capitalize(), m.capitalize())]
        for a, b in variants:
            ia = tokenizer.encode(" " + a, add_special_tokens=False)
            ib = tokenizer.encode(" " + b, add_special_tokens=False)
            if len(ia) == 1 and len(ib) == 1 and ia[0] != ib[0] and not {ia[0], ib[0]} & used:
                pairs.append((ia[0], ib[0]))
                used |= {ia[0], ib[0]}
    return np.array(pairs, dtype=np.int64).reshape(-1, 2)


def _eec_names():
    from workbench.fairness.evaluation_corpus import NAMES

    return NAMES


def perturb_probabilities(probs, *, pairs, mode: str = "swap"):
    """Perturb next-token probabilities on gendered token pairs (pure: returns a new array or tensor).

    Parameters
    ----------
    probs : numpy.ndarray or torch.Tensor, shape (..., V)
        Probabilities (or any non-negative weights) over ``V`` columns.
    pairs : array-like of int, shape (P, 2)
        (female, male) column indices; no column may appear twice.
    mode : {"swap", "equalize"}
        ``"swap"``: the two columns exchange their values; ``"equalize"``: both get their mean.

    Returns
    -------
    Same type and shape as ``probs``. Row sums are unchanged and so is every column outside ``pairs``.

    Examples
    --------
    >>> p = np.array([[0.5, 0.2, 0.3]])
    >>> perturb_probabilities(p, pairs=[[0, 1]], mode="swap").tolist()
    [[0.2, 0.5, 0.3]]
    >>> perturb_probabilities(p, pairs=[[0, 1]], mode="equalize").tolist()
    [[0.35, 0.35, 0.3]]
    """
    from workbench.validation import Options, check

    check(mode, Options(set(PERTURBATIONS)), name="mode", owner="perturb_probabilities")
    pairs = np.asarray(pairs, dtype=np.int64).reshape(-1, 2)
    n_cols = probs.shape[-1]
    if len(pairs) and (pairs.min() < 0 or pairs.max() >= n_cols):
        raise ValueError(f"The 'pairs' parameter of perturb_probabilities must hold column indices in [0, {n_cols}). "
                         f"Got values from {pairs.min()} to {pairs.max()} instead.")
    if len(np.unique(pairs)) != pairs.size:
        raise ValueError("The 'pairs' parameter of perturb_probabilities must not use a column twice.")
    out = probs.clone() if hasattr(probs, "clone") else np.array(probs, dtype=float, copy=True)
    if not len(pairs):
        return out
    f, m = pairs[:, 0], pairs[:, 1]
    if hasattr(probs, "clone"):
        import torch

        f, m = torch.as_tensor(f), torch.as_tensor(m)
    pf, pm = probs[..., f], probs[..., m]
    if mode == "swap":
        out[..., f], out[..., m] = pm, pf
    else:
        mean = (pf + pm) / 2
        out[..., f], out[..., m] = mean, mean
    return out
