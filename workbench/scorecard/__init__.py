"""Trust scorecard of a model update (notebook 09): accuracy, negative flips per class and group, fairness gaps
and membership leakage of an old and a new model side by side, each with a seeded bootstrap interval, and a
verdict against the user's rules.

``measures``   pure per-measure functions (ratios of per-row sums; flips along a chain of versions)
``bootstrap``  the vectorised seeded bootstrap (one resample-count matrix, every measure by matrix products)
``card``       :func:`scorecard` -> one tidy table
``verdict``    :class:`Rule`, :func:`judge`, :func:`overall_verdict`
``chain``      the text model-update chain v1 -> v2 -> v3 (+ DP) whose cached outputs notebook 09 scores
"""
from __future__ import annotations

from .card import COLUMNS, ModelOutputs, ScorecardConfig, scorecard
from .measures import cumulative_flips
from .verdict import Rule, default_rules, judge, overall_verdict

__all__ = ["ModelOutputs", "ScorecardConfig", "scorecard", "COLUMNS", "Rule", "default_rules", "judge", "overall_verdict",
           "cumulative_flips"]
