"""Notebook 02's theory against practice: the measured membership ROCs next to what an (epsilon, delta)-DP
guarantee allows (:func:`theory_vs_practice`)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np
import pandas as pd

from .. import attacks as A
from workbench.validation import Interval, Options, check

from ._labels import _epsilon_label


@dataclass
class TheoryVsPractice:
    """Measured ROCs next to the (epsilon, delta)-DP region, as :func:`theory_vs_practice` returns them.

    Attributes
    ----------
    measured : list of {"label", "fpr", "tpr"}
        The chosen attack's ROC on every model (for :func:`workbench.plots.attacks.theory_vs_practice_figure`).
    bounds : {"bound eps=<e>": (fpr, max tpr)}
        The region's upper edge for each claimed epsilon.
    model_bounds : {model label: (fpr, max tpr)}
        The same at each DP model's *spent* epsilon (for :func:`workbench.widgets.attacks.attack_panel`).
    checks : pandas.DataFrame
        One row per (DP model, attack): ``model``, ``attack``, ``max_excess``, ``max_excess_ci``,
        ``n_violations_ci`` (:func:`~workbench.privacy.attacks.bound_violations` at the spent epsilon).
    auc_rows : list of {"attack", "epsilon", "auc"}
        Every attack's AUC on every DP model, against the spent epsilon.
    auc_bound : (epsilons, max AUC)
        The largest AUC the guarantee allows (:func:`~workbench.privacy.attacks.dp_auc_bound`) from half the
        smallest to twice the largest claimed epsilon.
    """

    measured: list
    bounds: dict
    model_bounds: dict
    checks: pd.DataFrame
    auc_rows: list
    auc_bound: tuple


_ATTACK_TITLES = {"loss": "loss", "reference": "reference", "lira-offline": "LiRA offline", "lira-online": "LiRA online",
                  "rmia-offline": "RMIA offline", "rmia-online": "RMIA online"}


def theory_vs_practice(reports: Mapping[str, A.MembershipReport], *, epsilons: Sequence[float], delta: float,
                       attack: str = "lira-online", grid_points: int = 400) -> TheoryVsPractice:
    """Compare measured membership leakage with what an (epsilon, delta)-DP guarantee allows.

    Parameters
    ----------
    reports : {model label: MembershipReport}
        E.g. :attr:`MembershipStudy.reports`; a model is "DP" when its ``target_info`` holds an ``epsilon``.
    epsilons : sequence of float
        The claimed epsilons whose bounds are drawn.
    delta : float
    attack : str
        Whose ROC is drawn against the bounds (a key of :data:`~workbench.privacy.attacks.ATTACKS`).
    grid_points : int
        FPR values of the bound curves: 0 and ``grid_points`` values log-spaced over [1e-4, 1].

    Returns
    -------
    TheoryVsPractice

    Examples
    --------
    >>> perfect = A.evaluate_scores(np.r_[np.ones(50), np.zeros(50)], is_member=np.r_[np.ones(50), np.zeros(50)], name="loss")
    >>> report = A.MembershipReport(is_member=perfect.is_member, results={"loss": perfect}, shadows=None,
    ...                             target_outputs={}, target_info={"epsilon": 0.1})
    >>> t = theory_vs_practice({"eps=0.1": report}, epsilons=[0.1], delta=1e-5, attack="loss")
    >>> int(t.checks.loc[0, "n_violations_ci"]) > 0   # a perfect attack on an eps = 0.1 model: the claim is false
    True
    """
    attack = check(attack, Options(tuple(A.ATTACKS)), name="attack", owner="theory_vs_practice")
    grid_points = check(grid_points, Interval(int, 2, None), name="grid_points", owner="theory_vs_practice")
    epsilons = [float(e) for e in epsilons]
    grid = np.r_[0.0, np.logspace(-4, 0, grid_points)]
    title = _ATTACK_TITLES.get(attack, attack)
    measured = [{"label": f"{label}: {title}", "fpr": rep.results[attack].fpr, "tpr": rep.results[attack].tpr}
                for label, rep in reports.items()]
    bounds = {f"bound {_epsilon_label(eps)}": (grid, A.dp_tpr_bound(grid, epsilon=eps, delta=delta)) for eps in epsilons}
    model_bounds, checks, auc_rows = {}, [], []
    for label, rep in reports.items():
        eps = rep.target_info.get("epsilon")
        if eps is None:
            continue
        model_bounds[label] = (grid, A.dp_tpr_bound(grid, epsilon=eps, delta=delta))
        for name, r in rep.results.items():
            auc_rows.append({"attack": name, "epsilon": eps, "auc": r.auc})
            checks.append({"model": label, "attack": name, **A.bound_violations(r, epsilon=eps, delta=delta)})
    if epsilons:
        axis = np.logspace(np.log10(min(epsilons) / 2), np.log10(max(epsilons) * 2), 50)
        auc_bound = (axis, [A.dp_auc_bound(epsilon=e, delta=delta) for e in axis])
    else:
        auc_bound = (np.empty(0), [])
    return TheoryVsPractice(measured=measured, bounds=bounds, model_bounds=model_bounds,
                            checks=pd.DataFrame(checks, columns=["model", "attack", "max_excess", "max_excess_ci", "n_violations_ci"]),
                            auc_rows=auc_rows, auc_bound=auc_bound)
