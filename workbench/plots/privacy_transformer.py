"""Figures of notebook 02's fine-tuned-transformer attacks: canary extraction from MiniLM next to the GRU's, and
membership inference with MiniLM shadow models next to the loss attack. Data in, ``go.Figure`` out; no computation."""
from __future__ import annotations

from typing import Sequence

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from .common import TEMPLATE

__all__ = ["canary_recovery_figure", "transformer_shadow_figure"]


def canary_recovery_figure(rows: Sequence[dict], *, gru_rows: Sequence[dict] = (), chance: float = 0.1,
                           title: str = "Canary extraction: MiniLM (solid) vs GRU (dashed)") -> go.Figure:
    """Whole-code recovery rate (left) and fraction of digits recovered (right) against the canary's repetitions, one
    line per model (``rows``: ``{"model", "repetitions", "exact_rate", "digit_accuracy"}``, e.g.
    ``canary_recovery(study.table)`` records); ``gru_rows`` the same for the GRU, dashed. The dotted line is chance
    per digit.

    Examples
    --------
    >>> rows = [{"model": "non-DP", "repetitions": r, "exact_rate": e, "digit_accuracy": d} for r, e, d in [(1, 0, .2), (8, .5, .8)]]
    >>> f = canary_recovery_figure(rows, gru_rows=[dict(rows[0], model="non-DP")])
    >>> [t.name for t in f.data]
    ['MiniLM non-DP', 'MiniLM non-DP', 'GRU non-DP', 'GRU non-DP']
    >>> list(f.data[1].y)
    [0.2, 0.8]
    """
    fig = make_subplots(rows=1, cols=2, subplot_titles=("whole code recovered", "digits recovered"))
    for prefix, data, dash in (("MiniLM", rows, "solid"), ("GRU", gru_rows, "dash")):
        for i, model in enumerate(dict.fromkeys(r["model"] for r in data)):
            rs = sorted((r for r in data if r["model"] == model), key=lambda r: r["repetitions"])
            for col, metric in ((1, "exact_rate"), (2, "digit_accuracy")):
                fig.add_trace(go.Scatter(x=[r["repetitions"] for r in rs], y=[r[metric] for r in rs], mode="lines+markers",
                                         name=f"{prefix} {model}", legendgroup=f"{prefix} {model}", showlegend=col == 1,
                                         line=dict(dash=dash)), row=1, col=col)
    fig.add_hline(y=chance, line_dash="dot", annotation_text="chance per digit", row=1, col=2)
    fig.update_xaxes(type="log", title_text="canary repetitions")
    fig.update_yaxes(range=[-0.03, 1.03])
    fig.update_yaxes(title_text="fraction of canaries", row=1, col=1)
    fig.update_yaxes(title_text="fraction of digits", row=1, col=2)
    fig.update_layout(template=TEMPLATE, title=title)
    return fig


def transformer_shadow_figure(rows: Sequence[dict], *, metric: str = "auc",
                              title: str = "Membership inference on fine-tuned MiniLM") -> go.Figure:
    """Bars of ``metric`` (``auc``, ``tpr_at_fpr_0.001``, ``tpr_at_fpr_0.01``) per attack, one bar group per number of
    shadow models (``rows``: ``{"shadows", "attack", <metric>}``, e.g. ``TransformerShadowStudy.table`` records); the
    loss attack (``shadows`` 0) is the dashed line it is compared with.

    Examples
    --------
    >>> rows = [{"shadows": 0, "attack": "loss", "auc": 0.55}, {"shadows": 4, "attack": "lira-online", "auc": 0.6}]
    >>> f = transformer_shadow_figure(rows)
    >>> [t.name for t in f.data], f.layout.shapes[0].y0
    (['4 shadows'], 0.55)
    """
    fig = go.Figure()
    for k in sorted({r["shadows"] for r in rows if r["attack"] != "loss"}):
        rs = [r for r in rows if r["shadows"] == k and r["attack"] != "loss"]
        fig.add_trace(go.Bar(x=[r["attack"] for r in rs], y=[r[metric] for r in rs], name=f"{k} shadows"))
    for r in rows:
        if r["attack"] == "loss":
            fig.add_hline(y=r[metric], line_dash="dash", annotation_text=f"loss attack ({r[metric]:.3g})")
    label = {"auc": "ROC AUC"}.get(metric, metric.replace("tpr_at_fpr_", "TPR at FPR "))
    fig.update_layout(template=TEMPLATE, title=title, barmode="group", xaxis_title="attack", yaxis_title=label)
    return fig
