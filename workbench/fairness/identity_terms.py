"""Identity word lists shared by the counterfactual swaps (:mod:`workbench.fairness.counterfactual`) and the
templated evaluation corpus (:mod:`workbench.fairness.evaluation_corpus`). Plain data, no imports, so that neither
of those modules needs the other.

Examples
--------
>>> ("wife", "husband") in EXTRA_GENDER_PAIRS, EEC_NAMES[("european_american", "male")][0]
(True, 'Adam')
"""
from __future__ import annotations

__all__ = ["EXTRA_GENDER_PAIRS", "EEC_NAMES"]

#: (female, male) pairs added to the data layer's Bolukbasi pairs.
EXTRA_GENDER_PAIRS: tuple[tuple[str, str], ...] = (
    ("wife", "husband"),
    ("girlfriend", "boyfriend"),
    ("girlfriends", "boyfriends"),
    ("mrs", "mr"),
    ("madam", "sir"),
    ("actress", "actor"),
    ("actresses", "actors"),
    ("waitress", "waiter"),
    ("aunts", "uncles"),
    ("nieces", "nephews"),
    ("grandmothers", "grandfathers"),
    ("woman's", "man's"),
    ("women's", "men's"),
)

#: The EEC's first names by (race, gender); name i of each list are the counterparts used for pairs.
EEC_NAMES: dict[tuple[str, str], tuple[str, ...]] = {
    ("african_american", "female"): ("Ebony", "Jasmine", "Lakisha", "Latisha", "Latoya",
                                     "Nichelle", "Shaniqua", "Shereen", "Tanisha", "Tia"),
    ("african_american", "male"): ("Alonzo", "Alphonse", "Darnell", "Jamel", "Jerome",
                                   "Lamar", "Leroy", "Malik", "Terrence", "Torrance"),
    ("european_american", "female"): ("Amanda", "Betsy", "Courtney", "Ellen", "Heather",
                                      "Katie", "Kristin", "Melanie", "Nancy", "Stephanie"),
    ("european_american", "male"): ("Adam", "Alan", "Andrew", "Frank", "Harry",
                                    "Jack", "Josh", "Justin", "Roger", "Ryan"),
}
