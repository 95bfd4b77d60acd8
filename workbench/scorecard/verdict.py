"""A verdict on a scorecard: the user's rules, pass / fail / inconclusive per rule and overall.

A :class:`Rule` names rows of the scorecard (a measure, possibly a wildcard pattern such as ``"*_gap"``, and which
slices: only the overall row, every row, or the rows of one group column), the quantity it reads (``old``,
``new`` or ``change``), a comparison (``"<="`` or ``">="``) and a threshold. How the interval is taken into account:

* ``"<= t"`` **passes** when the whole interval is at or below ``t`` (``high <= t``), **fails** when the whole
  interval is above it (``low > t``) and is **inconclusive** when the interval straddles ``t``.
* ``">= t"`` passes when ``low >= t``, fails when ``high < t``, inconclusive otherwise.
* A value exactly at the threshold satisfies the rule (rules are "at most" / "at least"), so an interval whose
  upper end equals ``t`` passes a ``"<="`` rule.
* A row whose interval is undefined (NaN, e.g. a slice without examples) is inconclusive.
* A rule over several rows (every group) fails if any row fails, else is inconclusive if any row is, else passes.
  The overall verdict combines the rules the same way.

With ``basis="point"`` the point estimate is compared instead (the interval is ignored): pass or fail only.

Examples
--------
>>> import pandas as pd
>>> card = pd.DataFrame({"dimension": ["flips"], "measure": ["nfr"], "group": ["all"], "slice": ["all"],
...                      "new": [0.015], "new_low": [0.01], "new_high": [0.025]})
>>> judge(card, [Rule("nfr", quantity="new", op="<=", threshold=0.02)])["outcome"].tolist()
['inconclusive']
>>> judge(card, [Rule("nfr", quantity="new", op="<=", threshold=0.025)])["outcome"].tolist()
['pass']
"""
from __future__ import annotations

import fnmatch
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import pandas as pd

from ..validation import InstanceOf, Interval, Options, check, check_fields

__all__ = ["Rule", "OPERATORS", "QUANTITIES", "BASES", "OUTCOMES", "default_rules", "judge", "overall_verdict", "combine"]

#: Comparison name -> (test on a value, description).
OPERATORS = {
    "<=": lambda value, t: value <= t,
    ">=": lambda value, t: value >= t,
}
QUANTITIES = ("old", "new", "change")
BASES = ("interval", "point")
#: Outcomes, worst first.
OUTCOMES = ("fail", "inconclusive", "pass")


@dataclass(frozen=True)
class Rule:
    """One requirement on a scorecard.

    Parameters
    ----------
    measure : str
        Measure name or a shell-style pattern (``"*_gap"``).
    quantity : {"old", "new", "change"}
        What the rule reads (flip measures keep their value in ``new``).
    op : {"<=", ">="}
    threshold : float
    slices : str
        ``"all"``: the overall row only; ``"each"``: every row of the measure (overall, every class, every group);
        any other value: the rows whose ``group`` column equals it (e.g. ``"gender"``).
    basis : {"interval", "point"}
    name : str, optional
        Label in the verdict table (default: generated from the rule).

    Examples
    --------
    >>> Rule("accuracy", quantity="change", op=">=", threshold=0.0).label
    'accuracy change >= 0 (all)'
    >>> Rule("nfr", op="<")
    Traceback (most recent call last):
    ...
    workbench.validation.InvalidParameterError: The 'op' parameter of Rule must be one of ('<=', '>='). Got '<' instead.
    """

    measure: str
    quantity: str = "new"
    op: str = "<="
    threshold: float = 0.0
    slices: str = "all"
    basis: str = "interval"
    name: str | None = None

    def __post_init__(self):
        check_fields(self, measure=InstanceOf(str), quantity=Options(QUANTITIES), op=Options(tuple(OPERATORS)),
                     threshold=Interval(float, None, None), slices=InstanceOf(str), basis=Options(BASES),
                     name=(InstanceOf(str), None))

    @property
    def label(self) -> str:
        return self.name or f"{self.measure} {self.quantity} {self.op} {self.threshold:g} ({self.slices})"

    def rows(self, card: pd.DataFrame) -> pd.DataFrame:
        """The scorecard rows this rule reads."""
        sel = card["measure"].map(lambda m: fnmatch.fnmatchcase(str(m), self.measure))
        if self.slices == "all":  # the overall row; a fairness gap's row is already across every group of its column
            sel &= (card["slice"] == "all") & ((card["group"] == "all") | (card["dimension"] == "fairness"))
        elif self.slices != "each":
            sel &= card["group"] == self.slices
        return card[sel]

    def outcome(self, value: float, low: float, high: float) -> str:
        """Outcome for one row (see the module docstring)."""
        test = OPERATORS[self.op]
        t = self.threshold
        if self.basis == "point":
            if np.isnan(value):
                return "inconclusive"
            return "pass" if test(value, t) else "fail"
        if np.isnan(low) or np.isnan(high):
            return "inconclusive"
        if self.op == "<=":
            return "pass" if high <= t else ("fail" if low > t else "inconclusive")
        return "pass" if low >= t else ("fail" if high < t else "inconclusive")


def combine(outcomes: Sequence[str]) -> str:
    """Worst outcome of several: any fail -> "fail", else any inconclusive -> "inconclusive", else "pass"
    (no outcome at all is inconclusive: nothing was checked).

    Examples
    --------
    >>> combine(["pass", "inconclusive"]), combine(["pass", "fail", "inconclusive"]), combine([])
    ('inconclusive', 'fail', 'inconclusive')
    """
    outcomes = list(outcomes)
    if not outcomes:
        return "inconclusive"
    return min(outcomes, key=OUTCOMES.index)


def default_rules(*, max_accuracy_drop: float = 0.0, max_group_nfr: float = 0.02, max_gap_growth: float = 0.02,
                  max_mia_auc: float = 0.6) -> list[Rule]:
    """The four rules of issue 15: accuracy must not drop (by more than ``max_accuracy_drop``), the NFR is at most
    ``max_group_nfr`` in every group, no fairness gap grows by more than ``max_gap_growth``, and the new model's
    membership-inference AUC is at most ``max_mia_auc``.

    Accuracy, NFR and AUC are fractions, so their thresholds must lie in [0, 1]: above 1 a rule passes every model
    (``max_mia_auc=2``) and says nothing. ``max_gap_growth`` only needs to be >= 0.

    Examples
    --------
    >>> [r.label for r in default_rules()]
    ['accuracy must not drop', 'NFR <= 0.02 in every group', 'no fairness gap grows by > 0.02', 'MIA AUC <= 0.6']
    >>> default_rules(max_mia_auc=2)
    Traceback (most recent call last):
    ...
    workbench.validation.InvalidParameterError: The 'max_mia_auc' parameter of default_rules must be a float in [0, 1]. Got 2 instead.
    """
    fraction = Interval(float, 0, 1)
    max_accuracy_drop = check(max_accuracy_drop, fraction, name="max_accuracy_drop", owner="default_rules")
    max_group_nfr = check(max_group_nfr, fraction, name="max_group_nfr", owner="default_rules")
    max_gap_growth = check(max_gap_growth, Interval(float, 0, None), name="max_gap_growth", owner="default_rules")
    max_mia_auc = check(max_mia_auc, fraction, name="max_mia_auc", owner="default_rules")
    drop = "accuracy must not drop" if max_accuracy_drop == 0 else f"accuracy drops by <= {max_accuracy_drop:g}"
    return [
        Rule("accuracy", quantity="change", op=">=", threshold=-float(max_accuracy_drop), slices="all", name=drop),
        Rule("nfr", quantity="new", op="<=", threshold=float(max_group_nfr), slices="each", name=f"NFR <= {max_group_nfr:g} in every group"),
        Rule("*_gap", quantity="change", op="<=", threshold=float(max_gap_growth), slices="each",
             name=f"no fairness gap grows by > {max_gap_growth:g}"),
        Rule("mia_auc", quantity="new", op="<=", threshold=float(max_mia_auc), slices="all", name=f"MIA AUC <= {max_mia_auc:g}"),
    ]


def judge(card: pd.DataFrame, rules: Sequence[Rule]) -> pd.DataFrame:
    """Apply ``rules`` to a scorecard: one row per rule.

    Returns
    -------
    pandas.DataFrame
        Columns ``rule`` (label), ``outcome`` ("pass" / "fail" / "inconclusive"), ``rows`` (rows checked),
        ``failing`` and ``inconclusive`` (the slices with those outcomes, as "group=slice" text), ``worst_value``
        (the point value farthest on the wrong side of the threshold) and ``threshold``.
    """
    if isinstance(rules, Rule):
        rules = [rules]
    for r in rules:
        if not isinstance(r, Rule):
            raise ValueError(f"The 'rules' parameter of judge must hold Rule objects. Got {type(r).__name__} instead.")
    out = []
    for rule in rules:
        rows = rule.rows(card)
        q = rule.quantity
        outcomes, failing, unsure, values = [], [], [], []
        for _, row in rows.iterrows():
            value = float(row[q]) if q in row and pd.notna(row[q]) else float("nan")
            low = float(row.get(f"{q}_low", np.nan)) if pd.notna(row.get(f"{q}_low", np.nan)) else float("nan")
            high = float(row.get(f"{q}_high", np.nan)) if pd.notna(row.get(f"{q}_high", np.nan)) else float("nan")
            o = rule.outcome(value, low, high)
            outcomes.append(o)
            where = f"{row['group']}={row['slice']}" if row["dimension"] != "fairness" else f"{row['measure']} ({row['group']})"
            (failing if o == "fail" else unsure if o == "inconclusive" else []).append(where)
            values.append(value)
        vals = np.array(values, float)
        worst = float("nan")
        if len(vals) and not np.isnan(vals).all():
            worst = float(np.nanmax(vals) if rule.op == "<=" else np.nanmin(vals))
        out.append({"rule": rule.label, "outcome": combine(outcomes), "rows": len(outcomes), "failing": ", ".join(failing),
                    "inconclusive": ", ".join(unsure), "worst_value": worst, "threshold": rule.threshold})
    return pd.DataFrame(out, columns=["rule", "outcome", "rows", "failing", "inconclusive", "worst_value", "threshold"])


def overall_verdict(verdicts: pd.DataFrame) -> str:
    """Combine the per-rule outcomes of :func:`judge` (see :func:`combine`).

    Examples
    --------
    >>> overall_verdict(pd.DataFrame({"outcome": ["pass", "pass"]}))
    'pass'
    """
    return combine(verdicts["outcome"].tolist())
