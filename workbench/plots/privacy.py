"""Figures of the DP studies (data in, ``go.Figure`` out; no training here).

Examples
--------
>>> import pandas as pd
>>> df = pd.DataFrame({"model": ["bag"] * 3, "epsilon": [None, 1.0, 8.0], "val_accuracy": [0.7, 0.5, 0.6]})
>>> fig = utility_vs_epsilon_figure(df)
>>> len(fig.data), len(fig.layout.shapes)  # the DP line and the dashed non-DP level
(1, 1)
"""
from __future__ import annotations

from typing import Mapping, Sequence

import plotly.graph_objects as go

from .common import TEMPLATE

__all__ = [
    "utility_vs_epsilon_figure",
    "overhead_figure",
    "clip_norm_figure",
    "grad_norm_histogram",
    "epsilon_vs_noise_figure",
]

_COLORS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b")


def utility_vs_epsilon_figure(df, *, metric: str = "val_accuracy", model_col: str = "model", title: str | None = None) -> go.Figure:
    """Validation ``metric`` against spent epsilon (log axis), one line per model; non-DP runs (epsilon NaN) as dashed lines."""
    fig = go.Figure()
    for i, (name, rows) in enumerate(df.groupby(model_col, sort=False)):
        color = _COLORS[i % len(_COLORS)]
        dp_rows = rows[rows["epsilon"].notna()].sort_values("epsilon")
        fig.add_trace(go.Scatter(x=dp_rows["epsilon"], y=dp_rows[metric], mode="lines+markers", name=f"{name} (DP)",
                                 line=dict(color=color)))
        for value in rows.loc[rows["epsilon"].isna(), metric]:
            fig.add_hline(y=float(value), line=dict(color=color, dash="dash"), annotation_text=f"{name} non-DP",
                          annotation_position="top left")
    fig.update_layout(template=TEMPLATE, title=title or "Utility vs privacy budget", xaxis_title="epsilon (log scale)",
                      yaxis_title=metric.replace("_", " "), xaxis_type="log")
    return fig


def overhead_figure(table, *, value: str = "slowdown", title: str | None = None) -> go.Figure:
    """Grouped bars: ``value`` (e.g. epoch time relative to non-DP) per model (x) and engine (colour).

    ``table`` has columns ``model``, ``engine`` and ``value``; missing values (unsupported pairs) show as gaps.
    """
    fig = go.Figure()
    for i, (engine, rows) in enumerate(table.groupby("engine", sort=False)):
        fig.add_trace(go.Bar(x=rows["model"], y=rows[value], name=engine, marker_color=_COLORS[i % len(_COLORS)],
                             text=[f"{v:.1f}x" if v == v else "n/a" for v in rows[value]], textposition="outside"))
    fig.update_layout(template=TEMPLATE, barmode="group", title=title or "DP training time per epoch, relative to non-DP",
                      xaxis_title="model", yaxis_title=value.replace("_", " "), yaxis_type="log")
    return fig


def clip_norm_figure(df, *, x: str = "max_grad_norm", metric: str = "val_accuracy", group: str | None = "noise_multiplier",
                     title: str | None = None) -> go.Figure:
    """``metric`` against the clipping norm C (log axis), one line per value of ``group``."""
    fig = go.Figure()
    groups = df.groupby(group, sort=True) if group else [("", df)]
    for i, (key, rows) in enumerate(groups):
        rows = rows.sort_values(x)
        fig.add_trace(go.Scatter(x=rows[x], y=rows[metric], mode="lines+markers", name=f"{group}={key:g}" if group else metric,
                                 line=dict(color=_COLORS[i % len(_COLORS)])))
    fig.update_layout(template=TEMPLATE, title=title or "Effect of the clipping norm", xaxis_title="clipping norm C (log scale)",
                      yaxis_title=metric.replace("_", " "), xaxis_type="log")
    return fig


def grad_norm_histogram(norms: Mapping[str, Sequence[float]], *, clip: float | None = None, title: str | None = None) -> go.Figure:
    """Overlaid histograms of per-sample gradient norms (one per named set), with the clipping norm as a line."""
    fig = go.Figure()
    for i, (name, values) in enumerate(norms.items()):
        fig.add_trace(go.Histogram(x=list(values), name=name, opacity=0.6, marker_color=_COLORS[i % len(_COLORS)], nbinsx=40))
    if clip is not None:
        fig.add_vline(x=clip, line=dict(color="black", dash="dash"), annotation_text=f"C = {clip:g}")
    fig.update_layout(template=TEMPLATE, barmode="overlay", title=title or "Per-sample gradient norms",
                      xaxis_title="||per-sample gradient||", yaxis_title="samples")
    return fig


def epsilon_vs_noise_figure(curves: Mapping[str, tuple[Sequence[float], Sequence[float]]], *, title: str | None = None) -> go.Figure:
    """Epsilon (log axis) against the noise multiplier, one line per accountant / setting: ``{name: (sigmas, epsilons)}``."""
    fig = go.Figure()
    for i, (name, (sigmas, eps)) in enumerate(curves.items()):
        fig.add_trace(go.Scatter(x=list(sigmas), y=list(eps), mode="lines", name=name, line=dict(color=_COLORS[i % len(_COLORS)])))
    fig.update_layout(template=TEMPLATE, title=title or "Privacy spent vs noise multiplier", xaxis_title="noise multiplier sigma",
                      yaxis_title="epsilon (log scale)", yaxis_type="log")
    return fig
