"""Figures of the extrinsic bias study (notebook 05): data in, ``go.Figure`` out, no computation."""
from __future__ import annotations

from typing import Sequence

import pandas as pd
import plotly.graph_objects as go

from .common import TEMPLATE

__all__ = [
    "group_metric_figure",
    "bias_auc_figure",
    "pair_gap_figure",
    "sensitivity_scatter",
    "intrinsic_extrinsic_figure",
]


def group_metric_figure(table: pd.DataFrame, *, metrics: Sequence[str] = ("mean_score", "positive_rate", "fpr", "fnr"),
                        title: str = "Classifier behaviour by group") -> go.Figure:
    """Grouped bars: one bar group per metric, one bar per group (a ``group_metrics`` table).

    Examples
    --------
    >>> t = pd.DataFrame({"fpr": [0.1, 0.2], "fnr": [0.3, 0.1]}, index=["f", "m"])
    >>> len(group_metric_figure(t, metrics=["fpr", "fnr"]).data)
    2
    """
    fig = go.Figure()
    for group, row in table.iterrows():
        fig.add_trace(go.Bar(name=str(group), x=list(metrics), y=[row[m] for m in metrics]))
    fig.update_layout(template=TEMPLATE, barmode="group", title=title, yaxis_title="value", legend_title="group")
    return fig


def bias_auc_figure(aucs: pd.DataFrame, *, title: str = "Bias AUCs by group (Borkan et al. 2019)") -> go.Figure:
    """Subgroup, BPSN and BNSP AUC per group (a ``bias_aucs`` table); 0.5 = chance, 1 = perfect ranking.

    Examples
    --------
    >>> t = pd.DataFrame({"subgroup_auc": [0.9], "bpsn_auc": [0.8], "bnsp_auc": [0.95]}, index=["f"])
    >>> [d.name for d in bias_auc_figure(t).data]
    ['subgroup AUC', 'BPSN AUC', 'BNSP AUC']
    """
    fig = go.Figure()
    for col, name in (("subgroup_auc", "subgroup AUC"), ("bpsn_auc", "BPSN AUC"), ("bnsp_auc", "BNSP AUC")):
        fig.add_trace(go.Bar(name=name, x=[str(i) for i in aucs.index], y=aucs[col]))
    lo = min(0.5, float(aucs[["subgroup_auc", "bpsn_auc", "bnsp_auc"]].min().min()) - 0.05)
    fig.update_layout(template=TEMPLATE, barmode="group", title=title, yaxis_title="AUC", yaxis_range=[lo, 1.0])
    return fig


def pair_gap_figure(pairs: pd.DataFrame, *, by: str = "emotion", label: str = "female - male",
                    title: str | None = None) -> go.Figure:
    """Box plot of per-pair score gaps (``gap`` column of a pair table) split by ``by``; 0 = no bias.

    Examples
    --------
    >>> p = pd.DataFrame({"gap": [0.1, -0.05, 0.02], "emotion": ["joy", "joy", "anger"]})
    >>> len(pair_gap_figure(p).data)
    2
    """
    fig = go.Figure()
    for key, sub in pairs.groupby(by, sort=True):
        fig.add_trace(go.Box(y=sub["gap"], name=str(key), boxmean=True))
    fig.add_hline(y=0, line_dash="dot", line_color="gray")
    fig.update_layout(template=TEMPLATE, title=title or f"Counterfactual score gap ({label}) by {by}",
                      yaxis_title=f"positivity gap ({label})", showlegend=False)
    return fig


def sensitivity_scatter(frame: pd.DataFrame, *, x: str = "sensitivity", y: str = "abs_gap", text: str | None = None,
                        color: str | None = None, title: str = "Prediction sensitivity vs counterfactual gap") -> go.Figure:
    """One point per example (or pair): prediction sensitivity against counterfactual gap, hover shows ``text``.

    Examples
    --------
    >>> f = pd.DataFrame({"sensitivity": [0.1, 0.2], "abs_gap": [0.0, 0.1], "s": ["a", "b"]})
    >>> sensitivity_scatter(f, text="s").data[0].mode
    'markers'
    """
    fig = go.Figure()
    groups = [(None, frame)] if color is None else list(frame.groupby(color, sort=True))
    for key, sub in groups:
        fig.add_trace(go.Scatter(x=sub[x], y=sub[y], mode="markers", name=str(key) if key is not None else y,
                                 text=None if text is None else sub[text].astype(str),
                                 hovertemplate="%{text}<br>" + f"{x}=%{{x:.4f}}<br>{y}=%{{y:.4f}}<extra></extra>"
                                 if text else None, marker={"size": 6, "opacity": 0.7}))
    fig.update_layout(template=TEMPLATE, title=title, xaxis_title=x, yaxis_title=y, showlegend=color is not None)
    return fig


def intrinsic_extrinsic_figure(table: pd.DataFrame, *, x: str = "intrinsic_weat", y: str = "gender_gap",
                               color: str = "variant", label: str = "layer",
                               title: str = "Intrinsic vs extrinsic bias") -> go.Figure:
    """One point per (layer, variant) row: an intrinsic measure against an extrinsic one.

    Examples
    --------
    >>> t = pd.DataFrame({"intrinsic_weat": [0.1, 0.3], "gender_gap": [0.0, 0.02], "variant": ["a", "b"], "layer": [2, 6]})
    >>> len(intrinsic_extrinsic_figure(t).data)
    2
    """
    fig = go.Figure()
    for key, sub in table.groupby(color, sort=False):
        fig.add_trace(go.Scatter(x=sub[x], y=sub[y], mode="markers+text", name=str(key),
                                 text=[f"{label} {v}" for v in sub[label]], textposition="top center",
                                 marker={"size": 11}))
    fig.update_layout(template=TEMPLATE, title=title, xaxis_title=x, yaxis_title=y, legend_title=color)
    return fig
