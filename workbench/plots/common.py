"""Shared figure builders and the workbench's plot style."""
from __future__ import annotations

from typing import Sequence

import plotly.graph_objects as go

__all__ = ["TEMPLATE", "history_figure", "bar_figure"]

#: Plotly template every workbench figure uses.
TEMPLATE = "plotly_white"


def history_figure(histories: dict[str, Sequence[dict]], *, metric: str, x: str = "epoch", title: str | None = None) -> go.Figure:
    """One line per run: ``metric`` against ``x`` from per-epoch records.

    Examples
    --------
    >>> fig = history_figure({"a": [{"epoch": 1, "loss": 2.0}, {"epoch": 2, "loss": 1.0}]}, metric="loss")
    >>> len(fig.data)
    1
    """
    fig = go.Figure()
    for name, rows in histories.items():
        rows = [r for r in rows if metric in r]
        fig.add_trace(go.Scatter(x=[r[x] for r in rows], y=[r[metric] for r in rows], mode="lines+markers", name=name))
    fig.update_layout(template=TEMPLATE, title=title or metric, xaxis_title=x, yaxis_title=metric)
    return fig


def bar_figure(labels: Sequence, values: Sequence[float], *, title: str, xaxis: str = "", yaxis: str = "") -> go.Figure:
    """A plain bar chart.

    Examples
    --------
    >>> bar_figure(["a", "b"], [1, 2], title="t").data[0].type
    'bar'
    """
    fig = go.Figure(go.Bar(x=list(labels), y=list(values)))
    fig.update_layout(template=TEMPLATE, title=title, xaxis_title=xaxis, yaxis_title=yaxis)
    return fig
