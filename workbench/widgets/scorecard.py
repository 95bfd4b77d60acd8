"""Interactive panel of the update scorecard (notebook 09).

``scorecard_panel``: pick the old and the new version of the chain, move the thresholds of the four rules (and
whether the interval or the point estimate is judged); the verdict table, the verdict and the scorecard figure of
that update follow. Scorecards of pairs not computed before are computed on first use and kept.

The panel only composes: scorecards and verdicts from :mod:`workbench.scorecard`, figures from
:mod:`workbench.plots.scorecard`. Building it computes at most one scorecard (the initial pair, unless given).
"""
from __future__ import annotations

import dataclasses
from typing import Sequence

import pandas as pd

__all__ = ["scorecard_panel"]


def scorecard_panel(chain, *, cards: pd.DataFrame | None = None, config=None, old: str = "v2", new: str = "v3",
                    fairness_groups: Sequence[str] = ("gender", "race")):
    """Panel: old/new version dropdowns, four rule thresholds, interval/point basis -> verdict + figure.

    Parameters
    ----------
    chain : :class:`~workbench.scorecard.chain.UpdateChain`
    cards : DataFrame, optional
        Scorecards already computed (:func:`~workbench.scorecard.studies.update_scorecards`), reused per update.
    config : ScorecardConfig, optional
        For pairs computed by the panel (default: the notebook's tweet settings with 200 resamples, so a new pair
        answers in about a second).
    old, new : str
        The pair shown first.

    Returns
    -------
    ipywidgets.VBox
    """
    import ipywidgets as w
    from IPython.display import HTML

    from ..plots.scorecard import OUTCOME_COLORS, scorecard_figure
    from ..scorecard.studies import TWEET_SCORECARD, update_label, update_scorecards
    from ..scorecard.verdict import default_rules, judge, overall_verdict
    from ._display import show

    config = config or dataclasses.replace(TWEET_SCORECARD, n_boot=200)
    store = {}
    if cards is not None:
        for update, card in cards.groupby("update", sort=False):
            store[update] = card

    def card_for(o, n):
        key = update_label(o, n)
        if key not in store:
            store[key] = update_scorecards(chain, updates=[(o, n)], config=config, fairness_groups=fairness_groups)
        return store[key]

    versions = chain.versions
    old_dd = w.Dropdown(options=versions, value=old, description="old")
    new_dd = w.Dropdown(options=versions, value=new, description="new")
    drop = w.FloatSlider(value=0.0, min=0.0, max=0.05, step=0.0025, readout_format=".4f", description="max acc. drop")
    nfr = w.FloatSlider(value=0.02, min=0.0, max=0.2, step=0.005, readout_format=".3f", description="max group NFR")
    gap = w.FloatSlider(value=0.02, min=0.0, max=0.1, step=0.005, readout_format=".3f", description="max gap growth")
    mia = w.FloatSlider(value=0.6, min=0.5, max=1.0, step=0.01, readout_format=".2f", description="max MIA AUC")
    basis = w.ToggleButtons(options=[("judge the interval", "interval"), ("judge the point estimate", "point")], value="interval")
    status = w.HTML()
    table_out, fig_out = w.Output(), w.Output()

    def refresh(*_):
        if old_dd.value == new_dd.value:
            status.value = "<b>Pick two different versions.</b>"
            show(table_out)
            show(fig_out)
            return
        card = card_for(old_dd.value, new_dd.value)
        rules = [dataclasses.replace(r, basis=basis.value) for r in
                 default_rules(max_accuracy_drop=drop.value, max_group_nfr=nfr.value, max_gap_growth=gap.value, max_mia_auc=mia.value)]
        verdicts = judge(card, rules)
        overall = overall_verdict(verdicts)
        color = OUTCOME_COLORS[overall]
        status.value = (f"<b>{update_label(old_dd.value, new_dd.value)}</b>: verdict "
                        f"<b style='color:{color}'>{overall.upper()}</b> ({basis.value} basis)")
        shown = verdicts.copy()
        shown["worst_value"] = shown["worst_value"].round(4)
        show(table_out, HTML(shown.to_html(index=False)))
        thresholds = {"accuracy": -drop.value, "nfr": nfr.value, "gap": gap.value, "mia_auc": mia.value}
        show(fig_out, scorecard_figure(card, thresholds=thresholds, title=f"{update_label(old_dd.value, new_dd.value)}"))

    for widget in (old_dd, new_dd, drop, nfr, gap, mia, basis):
        widget.observe(refresh, names="value")
    refresh()
    return w.VBox([w.HBox([old_dd, new_dd]), w.HBox([drop, nfr]), w.HBox([gap, mia]), basis, status, table_out, fig_out])
