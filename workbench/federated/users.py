"""Light, medium and heavy users: the one definition of activity groups used by the study, its tables and figures.

A device's *activity* is its number of training samples. Devices are ranked by activity (ties broken by
device order) and cut into equal-sized groups by rank: with ``groups=3`` the bottom third are the *light*
users, the top third the *heavy* ones.

Examples
--------
>>> activity_groups([5, 1, 9, 3, 7, 2]).tolist()
['medium', 'light', 'heavy', 'medium', 'heavy', 'light']
"""
from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["USER_GROUPS", "activity_groups"]

#: Group names, lightest first, for ``groups=3``.
USER_GROUPS = ("light", "medium", "heavy")


def activity_groups(n_train, *, groups: int = 3) -> np.ndarray:
    """The activity group of every device: ``USER_GROUPS`` names for 3 groups, ``"q1".."qG"`` otherwise.

    Group ``g`` (0-based) holds the devices whose activity rank, as a fraction in (0, 1], lies in
    ``(g / groups, (g + 1) / groups]``.
    """
    if isinstance(groups, bool) or not isinstance(groups, (int, np.integer)) or groups < 1:
        from workbench.validation import Interval, check

        check(groups, Interval(int, 1, None), name="groups", owner="activity_groups")
    names = list(USER_GROUPS) if groups == 3 else [f"q{i + 1}" for i in range(groups)]
    ranks = pd.Series(np.asarray(n_train)).rank(method="first", pct=True).to_numpy()
    edges = np.arange(groups + 1) / groups  # the same comparisons as g / groups < rank <= (g + 1) / groups
    idx = np.clip(np.searchsorted(edges, ranks, side="left") - 1, 0, groups - 1)
    return np.asarray(names, dtype=object)[idx]
