"""Figures of the privacy-attacks study (notebook 02): ROC curves on log-log axes, measured leakage against
the (epsilon, delta)-DP bound, and canary exposure. Data in, ``go.Figure`` out; no computation."""
from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np
import plotly.graph_objects as go

from .common import TEMPLATE

__all__ = ["roc_figure", "theory_vs_practice_figure", "auc_vs_epsilon_figure", "audit_figure", "shadow_budget_figure",
           "exposure_figure", "extraction_figure"]

_FLOOR = 1e-4  # where log axes start: zero rates are drawn here


def roc_figure(curves: Mapping[str, tuple], *, log: bool = True, title: str = "Membership inference ROC") -> go.Figure:
    """One ROC line per entry ``name -> (fpr, tpr)`` or an object with ``fpr``/``tpr``/``auc`` attributes.

    On log-log axes (Carlini et al.'s recommendation) the low-FPR regime, where a few members are
    identified with confidence, is visible; the dashed diagonal is random guessing.

    Examples
    --------
    >>> fig = roc_figure({"loss": ([0, 0.5, 1], [0, 0.8, 1])})
    >>> len(fig.data)
    2
    """
    fig = go.Figure()
    for name, c in curves.items():
        fpr, tpr = (c.fpr, c.tpr) if hasattr(c, "fpr") else c
        label = f"{name} (AUC {c.auc:.3f})" if hasattr(c, "auc") else name
        fpr, tpr = np.asarray(fpr, float), np.asarray(tpr, float)
        if log:
            fpr, tpr = np.maximum(fpr, _FLOOR), np.maximum(tpr, _FLOOR)
        fig.add_trace(go.Scatter(x=fpr, y=tpr, mode="lines", name=label, line_shape="hv"))
    diag = np.logspace(np.log10(_FLOOR), 0, 50) if log else np.array([0.0, 1.0])
    fig.add_trace(go.Scatter(x=diag, y=diag, mode="lines", name="random guess", line=dict(dash="dash", color="gray")))
    axis = dict(type="log", range=[np.log10(_FLOOR), 0]) if log else dict(range=[0, 1])
    fig.update_layout(template=TEMPLATE, title=title, xaxis_title="false positive rate", yaxis_title="true positive rate",
                      xaxis=axis, yaxis=axis, legend=dict(x=0.55, y=0.05))
    return fig


def theory_vs_practice_figure(measured: Sequence[dict], *, bounds: Mapping[str, tuple], log: bool = True,
                              title: str = "Measured leakage vs the DP guarantee") -> go.Figure:
    """Measured ROC curves (``{"label", "fpr", "tpr"}``) and the (epsilon, delta)-DP region's upper edges
    (``label -> (fpr, tpr_bound)``, dotted). A DP model's measured curve must stay under its own bound.

    Examples
    --------
    >>> f = theory_vs_practice_figure([{"label": "eps=1", "fpr": [0, 1], "tpr": [0, 1]}], bounds={"bound eps=1": ([0, 1], [0, 1])})
    >>> len(f.data)
    2
    """
    fig = go.Figure()
    colors = ["#636efa", "#ef553b", "#00cc96", "#ab63fa", "#ffa15a", "#19d3f3", "#ff6692"]
    for i, row in enumerate(measured):
        fpr, tpr = np.asarray(row["fpr"], float), np.asarray(row["tpr"], float)
        if log:
            fpr, tpr = np.maximum(fpr, _FLOOR), np.maximum(tpr, _FLOOR)
        fig.add_trace(go.Scatter(x=fpr, y=tpr, mode="lines", name=row["label"], line_shape="hv",
                                 line=dict(color=colors[i % len(colors)])))
    for i, (label, (fpr, tpr)) in enumerate(bounds.items()):
        fpr, tpr = np.asarray(fpr, float), np.asarray(tpr, float)
        if log:
            fpr, tpr = np.maximum(fpr, _FLOOR), np.maximum(tpr, _FLOOR)
        fig.add_trace(go.Scatter(x=fpr, y=tpr, mode="lines", name=label, line=dict(dash="dot", color=colors[i % len(colors)])))
    axis = dict(type="log", range=[np.log10(_FLOOR), 0]) if log else dict(range=[0, 1])
    fig.update_layout(template=TEMPLATE, title=title, xaxis_title="false positive rate", yaxis_title="true positive rate",
                      xaxis=axis, yaxis=axis)
    return fig


def auc_vs_epsilon_figure(rows: Sequence[dict], *, bound: tuple, title: str = "Attack AUC vs epsilon") -> go.Figure:
    """Measured AUC per attack (``rows``: ``{"attack", "epsilon", "auc"}``) against epsilon, with the
    largest AUC the DP guarantee allows (``bound = (epsilons, max_auc)``).

    Examples
    --------
    >>> auc_vs_epsilon_figure([{"attack": "loss", "epsilon": 1.0, "auc": 0.55}], bound=([0.5, 1.0], [0.62, 0.73])).data[0].name
    'loss'
    """
    fig = go.Figure()
    for attack in dict.fromkeys(r["attack"] for r in rows):
        rs = sorted((r for r in rows if r["attack"] == attack), key=lambda r: r["epsilon"])
        fig.add_trace(go.Scatter(x=[r["epsilon"] for r in rs], y=[r["auc"] for r in rs], mode="lines+markers", name=attack))
    fig.add_trace(go.Scatter(x=list(bound[0]), y=list(bound[1]), mode="lines", name="max AUC allowed by (eps, delta)-DP",
                             line=dict(dash="dot", color="black")))
    fig.update_layout(template=TEMPLATE, title=title, xaxis_title="epsilon", yaxis_title="ROC AUC", xaxis_type="log",
                      yaxis=dict(range=[0.4, 1.0]))
    return fig


def audit_figure(rows: Sequence[dict], *, title: str = "Promised vs audited epsilon") -> go.Figure:
    """Per model, the epsilon the accountant promises next to the lower bound the one-run audit certifies
    (``rows``: ``{"model", "promised_epsilon", "audited_epsilon_lb", "max_epsilon_lb", "confidence"}``, e.g.
    :func:`workbench.privacy.studies.audit_vs_promise` records). The audited bar must stay below the promised
    one; the diamonds mark what perfect guesses could certify with this many canaries (the audit's ceiling).

    Examples
    --------
    >>> f = audit_figure([{"model": "eps=1", "promised_epsilon": 1.0, "audited_epsilon_lb": 0.2, "max_epsilon_lb": 4.0,
    ...                    "confidence": 0.95}])
    >>> [t.name for t in f.data]
    ['promised epsilon', 'audited lower bound (95% confidence)', 'ceiling of this audit']
    """
    models = [r["model"] for r in rows]
    promised = [None if r["promised_epsilon"] is None or np.isnan(r["promised_epsilon"]) else r["promised_epsilon"] for r in rows]
    confidence = rows[0]["confidence"] if rows else 0.95
    fig = go.Figure()
    fig.add_trace(go.Bar(x=models, y=promised, name="promised epsilon", marker_color="#636efa",
                         text=["no promise" if p is None else f"{p:.2g}" for p in promised], textposition="outside"))
    fig.add_trace(go.Bar(x=models, y=[r["audited_epsilon_lb"] for r in rows], name=f"audited lower bound ({100 * confidence:g}% confidence)",
                         marker_color="#ef553b", text=[f"{r['audited_epsilon_lb']:.2f}" for r in rows], textposition="outside"))
    fig.add_trace(go.Scatter(x=models, y=[r["max_epsilon_lb"] for r in rows], mode="markers", name="ceiling of this audit",
                             marker=dict(symbol="diamond", size=10, color="gray")))
    fig.update_layout(template=TEMPLATE, title=title, barmode="group", xaxis_title="model", yaxis_title="epsilon")
    return fig


def shadow_budget_figure(rows: Sequence[dict], *, metric: str = "tpr_at_fpr_0.001",
                         title: str = "Attack strength vs number of shadow models") -> go.Figure:
    """One line per attack (``rows``: ``{"shadows", "attack", <metric>}``, e.g.
    :attr:`workbench.privacy.studies.ShadowStudy.table` records) of ``metric`` (``auc``, ``tpr_at_fpr_0.001``,
    ``tpr_at_fpr_0.01``) against the number of shadow models (log axis); online attacks solid, offline dashed.

    Examples
    --------
    >>> f = shadow_budget_figure([{"shadows": 4, "attack": "lira-online", "auc": 0.6}, {"shadows": 8, "attack": "lira-online", "auc": 0.7}],
    ...                          metric="auc")
    >>> f.data[0].name, list(f.data[0].y)
    ('lira-online', [0.6, 0.7])
    """
    fig = go.Figure()
    for attack in dict.fromkeys(r["attack"] for r in rows):
        rs = sorted((r for r in rows if r["attack"] == attack), key=lambda r: r["shadows"])
        fig.add_trace(go.Scatter(x=[r["shadows"] for r in rs], y=[r[metric] for r in rs], mode="lines+markers", name=attack,
                                 line=dict(dash="solid" if attack.endswith("online") else "dash")))
    label = {"auc": "ROC AUC"}.get(metric, metric.replace("tpr_at_fpr_", "TPR at FPR "))
    fig.update_layout(template=TEMPLATE, title=title, xaxis_title="shadow models", yaxis_title=label, xaxis_type="log")
    return fig


def exposure_figure(rows: Sequence[dict], *, max_exposure: float | None = None, title: str = "Canary exposure") -> go.Figure:
    """Exposure (bits) against repetitions, one line per training variant (``rows``: ``{"variant",
    "repetitions", "exposure"}``; optional ``"extrapolated"`` drawn dashed). ``max_exposure`` = log2 |R|.

    Examples
    --------
    >>> exposure_figure([{"variant": "non-DP", "repetitions": 1, "exposure": 2.0}], max_exposure=13.3).data[0].name
    'non-DP'
    """
    fig = go.Figure()
    for variant in dict.fromkeys(r["variant"] for r in rows):
        rs = sorted((r for r in rows if r["variant"] == variant), key=lambda r: r["repetitions"])
        trace = go.Scatter(x=[r["repetitions"] for r in rs], y=[r["exposure"] for r in rs], mode="lines+markers", name=variant)
        fig.add_trace(trace)
        if all("extrapolated" in r for r in rs):
            fig.add_trace(go.Scatter(x=[r["repetitions"] for r in rs], y=[r["extrapolated"] for r in rs], mode="lines",
                                     name=f"{variant} (extrapolated)", line=dict(dash="dash"), showlegend=True))
    if max_exposure is not None:
        fig.add_hline(y=max_exposure, line_dash="dot", annotation_text="log2 |R| (canary ranked first)")
    fig.update_layout(template=TEMPLATE, title=title, xaxis_title="repetitions of the canary in training", yaxis_title="exposure (bits)",
                      xaxis_type="log")
    return fig


def extraction_figure(rows: Sequence[dict], *, title: str = "Canary extraction by model inversion") -> go.Figure:
    """Digit accuracy of the extracted code per variant and canary (``rows``: ``{"variant", "repetitions",
    "digit_accuracy"}``); the dashed line is chance (1/10 per digit).

    Examples
    --------
    >>> extraction_figure([{"variant": "non-DP", "repetitions": 8, "digit_accuracy": 0.5}]).data[0].type
    'bar'
    """
    fig = go.Figure()
    for variant in dict.fromkeys(r["variant"] for r in rows):
        rs = sorted((r for r in rows if r["variant"] == variant), key=lambda r: r["repetitions"])
        fig.add_trace(go.Bar(x=[f"{r['repetitions']}x" for r in rs], y=[r["digit_accuracy"] for r in rs], name=variant))
    fig.add_hline(y=0.1, line_dash="dash", annotation_text="chance")
    fig.update_layout(template=TEMPLATE, title=title, barmode="group", xaxis_title="canary repetitions",
                      yaxis_title="fraction of digits recovered", yaxis=dict(range=[0, 1.05]))
    return fig
