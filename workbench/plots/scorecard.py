"""Figures of the update scorecard (notebook 09): data in, ``go.Figure`` out, no computation beyond selecting rows."""
from __future__ import annotations

from typing import Mapping, Sequence

import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from .common import TEMPLATE

__all__ = ["scorecard_figure", "verdict_figure", "chain_flips_figure", "PANELS", "OUTCOME_COLORS"]

#: The four panels of :func:`scorecard_figure`: (title, dimension, quantity plotted).
PANELS = (("accuracy change", "accuracy", "change"), ("negative flip rate", "flips", "new"),
          ("fairness gap change", "fairness", "change"), ("membership AUC (new; hollow: old)", "privacy", "new"))
OUTCOME_COLORS = {"pass": "#2ca02c", "inconclusive": "#ff7f0e", "fail": "#d62728"}
_SYMBOLS = ("circle", "diamond", "square", "triangle-up", "cross", "x", "star", "pentagon")


def _points(fig, rows: pd.DataFrame, *, quantity: str, name: str, col: int, symbol: str, color=None, showlegend=True,
            hollow: bool = False):
    err_plus = rows[f"{quantity}_high"] - rows[quantity]
    err_minus = rows[quantity] - rows[f"{quantity}_low"]
    marker = dict(symbol=symbol + ("-open" if hollow else ""), size=9)
    if color:
        marker["color"] = color
    fig.add_trace(go.Scatter(
        x=rows[quantity], y=rows["update"], mode="markers", name=name, legendgroup=name, showlegend=showlegend, marker=marker,
        error_x=dict(type="data", symmetric=False, array=err_plus, arrayminus=err_minus, thickness=1.2),
        hovertemplate=f"{name}<br>%{{y}}: %{{x:.4f}}<extra></extra>"), row=1, col=col)


def scorecard_figure(cards: pd.DataFrame, *, thresholds: Mapping[str, float] | None = None,
                     nfr_groups: Sequence[str] = ("all", "gender", "race"), accuracy_groups: Sequence[str] = ("all", "source"),
                     title: str | None = None) -> go.Figure:
    """Every dimension of every update side by side, each point with its bootstrap interval.

    Panels: the accuracy change overall and per group of ``accuracy_groups``; the negative flip rate overall and per group of ``nfr_groups``; the change of
    every fairness gap; the membership-inference AUC of the new model (the old one hollow). One row per update
    (the ``update`` column of :func:`workbench.scorecard.studies.update_scorecards`). ``thresholds`` (keys
    ``accuracy``, ``nfr``, ``gap``, ``mia_auc``) draw the rules' thresholds as dashed lines.

    Examples
    --------
    >>> rows = [{"update": "v1 -> v2", "dimension": "accuracy", "measure": "accuracy", "group": "all", "slice": "all",
    ...          "old": 0.6, "new": 0.7, "change": 0.1, "change_low": 0.05, "change_high": 0.15}]
    >>> len(scorecard_figure(pd.DataFrame(rows), thresholds={"accuracy": 0.0}).data)
    1
    """
    fig = make_subplots(rows=1, cols=4, shared_yaxes=True, subplot_titles=[p[0] for p in PANELS], horizontal_spacing=0.03)
    order = list(dict.fromkeys(cards["update"]))
    # accuracy
    acc = cards[(cards["dimension"] == "accuracy") & cards["group"].isin(accuracy_groups)]
    for i, ((group, slice_), rows) in enumerate(acc.groupby(["group", "slice"], sort=False)):
        label = "accuracy (all)" if group == "all" else f"accuracy {group}={slice_}"
        _points(fig, rows, quantity="change", name=label, col=1, symbol=_SYMBOLS[i % len(_SYMBOLS)])
    # flips
    flips = cards[(cards["dimension"] == "flips") & (cards["measure"] == "nfr") & cards["group"].isin(nfr_groups)]
    for i, ((group, slice_), rows) in enumerate(flips.groupby(["group", "slice"], sort=False)):
        label = "NFR (all)" if group == "all" else f"NFR {group}={slice_}"
        _points(fig, rows, quantity="new", name=label, col=2, symbol=_SYMBOLS[i % len(_SYMBOLS)])
    # fairness
    fair = cards[cards["dimension"] == "fairness"]
    for i, ((group, measure), rows) in enumerate(fair.groupby(["group", "measure"], sort=False)):
        _points(fig, rows, quantity="change", name=f"{measure} ({group})", col=3, symbol=_SYMBOLS[i % len(_SYMBOLS)])
    # privacy
    mia = cards[(cards["dimension"] == "privacy") & (cards["measure"] == "mia_auc")]
    if len(mia):
        _points(fig, mia, quantity="new", name="MIA AUC new", col=4, symbol="circle", color="#9467bd")
        _points(fig, mia, quantity="old", name="MIA AUC old", col=4, symbol="circle", color="#9467bd", hollow=True)
    for key, col in (("accuracy", 1), ("nfr", 2), ("gap", 3), ("mia_auc", 4)):
        if thresholds and key in thresholds:
            fig.add_vline(x=thresholds[key], line_dash="dash", line_color="grey", row=1, col=col)
    fig.update_yaxes(categoryorder="array", categoryarray=order[::-1])
    fig.update_layout(template=TEMPLATE, title=title or "Update scorecard: every dimension, 95% bootstrap intervals",
                      height=max(320, 90 + 60 * len(order)), legend=dict(orientation="h", y=-0.2))
    return fig


def verdict_figure(verdicts: pd.DataFrame, *, title: str | None = None) -> go.Figure:
    """Updates x rules, each cell coloured by its outcome (pass / inconclusive / fail), the overall verdict last.

    Examples
    --------
    >>> v = pd.DataFrame({"update": ["a", "a"], "rule": ["r", "overall"], "outcome": ["pass", "pass"]})
    >>> verdict_figure(v).data[0].type
    'heatmap'
    """
    rules = list(dict.fromkeys(verdicts["rule"]))
    updates = list(dict.fromkeys(verdicts["update"]))
    code = {"fail": 0, "inconclusive": 1, "pass": 2}
    grid = verdicts.pivot(index="update", columns="rule", values="outcome").reindex(index=updates, columns=rules)
    z = grid.apply(lambda c: c.map(code)).to_numpy(dtype=float)
    colorscale = [[0, OUTCOME_COLORS["fail"]], [0.33, OUTCOME_COLORS["fail"]], [0.34, OUTCOME_COLORS["inconclusive"]],
                  [0.66, OUTCOME_COLORS["inconclusive"]], [0.67, OUTCOME_COLORS["pass"]], [1, OUTCOME_COLORS["pass"]]]
    fig = go.Figure(go.Heatmap(z=z, x=rules, y=updates, text=grid.to_numpy(), texttemplate="%{text}", zmin=0, zmax=2,
                               colorscale=colorscale, showscale=False, hovertemplate="%{y}<br>%{x}: %{text}<extra></extra>"))
    fig.update_yaxes(autorange="reversed")
    fig.update_layout(template=TEMPLATE, title=title or "Verdict per rule (interval-aware)", height=max(260, 80 + 40 * len(updates)))
    return fig


def chain_flips_figure(flips: pd.DataFrame, *, title: str | None = None) -> go.Figure:
    """Per release path and version: the step NFR, the sum of steps, the cumulative NFR against the first version and
    the share of examples that regressed at some step (from :func:`workbench.scorecard.studies.chain_flips`).

    Examples
    --------
    >>> f = pd.DataFrame({"path": ["a -> b"], "version": ["b"], "step_nfr": [0.1], "sum_step_nfr": [0.1],
    ...                   "cumulative_nfr": [0.1], "ever_regressed": [0.1]})
    >>> len(chain_flips_figure(f).data)
    4
    """
    x = [f"{p}: {v}" for p, v in zip(flips["path"], flips["version"])]
    fig = go.Figure()
    for col, label in (("step_nfr", "step NFR"), ("sum_step_nfr", "sum of step NFRs"),
                       ("cumulative_nfr", "cumulative NFR (vs first)"), ("ever_regressed", "regressed at some step")):
        fig.add_trace(go.Bar(x=x, y=flips[col], name=label))
    fig.update_layout(template=TEMPLATE, barmode="group", title=title or "Flips along each release path",
                      yaxis_title="share of evaluation rows", xaxis_title="path: version")
    return fig
