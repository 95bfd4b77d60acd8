"""Figures of the counterfactual-distillation study (notebook 08): data in, ``go.Figure`` out, no computation."""
from __future__ import annotations

import html

import pandas as pd
import plotly.graph_objects as go

from .common import TEMPLATE

__all__ = ["MEASURE_LABELS", "gap_figure", "fairness_fluency_figure", "loss_figure", "continuations_html"]

#: Axis labels of the generation-gap measures.
MEASURE_LABELS = {"sentiment_gap": "sentiment gap (male - female positivity)",
                  "own_gender_gap": "own-gender share gap (male - female prompts)",
                  "gendered_share_gap": "gendered-word share gap (male - female prompts)",
                  "polarity_gap": "gender polarity gap on neutral prompts (male - female share)"}


def gap_figure(gaps: pd.DataFrame, *, measure: str = "sentiment_gap", title: str | None = None) -> go.Figure:
    """One point per model with its bootstrap 95% interval (rows of a study's ``gaps`` table); 0 = no gap.

    Examples
    --------
    >>> g = pd.DataFrame({"model": ["a", "b"], "measure": ["sentiment_gap"] * 2, "gap": [0.1, 0.0],
    ...                   "low": [0.0, -0.1], "high": [0.2, 0.1]})
    >>> list(gap_figure(g).data[0].x)
    ['a', 'b']
    """
    g = gaps[gaps["measure"] == measure]
    fig = go.Figure(go.Scatter(x=g["model"], y=g["gap"], mode="markers", marker_size=11,
                               error_y=dict(type="data", symmetric=False, array=g["high"] - g["gap"], arrayminus=g["gap"] - g["low"])))
    fig.add_hline(y=0, line_dash="dot", line_color="grey")
    fig.update_layout(template=TEMPLATE, title=title or f"{MEASURE_LABELS.get(measure, measure)}, 95% bootstrap interval",
                      xaxis_title="model", yaxis_title=measure)
    return fig


def fairness_fluency_figure(summary: pd.DataFrame, *, measure: str = "sentiment_gap", title: str | None = None) -> go.Figure:
    """|gap| against held-out perplexity, one labelled point per model: down and left is better.

    Examples
    --------
    >>> s = pd.DataFrame({"model": ["a"], "perplexity": [20.0], "sentiment_gap": [-0.1]})
    >>> float(fairness_fluency_figure(s).data[0].y[0])
    0.1
    """
    fig = go.Figure(go.Scatter(x=summary["perplexity"], y=summary[measure].abs(), text=summary["model"],
                               mode="markers+text", textposition="top center", marker_size=11))
    fig.update_layout(template=TEMPLATE, title=title or "Fairness vs fluency", xaxis_title="held-out perplexity (log)",
                      xaxis_type="log", yaxis_title=f"|{measure}|")
    return fig


def loss_figure(history: pd.DataFrame, *, metric: str = "kl", title: str | None = None) -> go.Figure:
    """Training curve of every student: ``metric`` ("kl", "lm" or "loss") against tokens seen.

    Examples
    --------
    >>> h = pd.DataFrame({"model": ["a", "a"], "tokens": [10, 20], "kl": [2.0, 1.0]})
    >>> len(loss_figure(h).data)
    1
    """
    fig = go.Figure()
    for model, rows in history.groupby("model", sort=False):
        fig.add_trace(go.Scatter(x=rows["tokens"], y=rows[metric], mode="lines", name=str(model)))
    fig.update_layout(template=TEMPLATE, title=title or f"Distillation: {metric} per step", xaxis_title="tokens seen",
                      yaxis_title=metric, legend_title="student")
    return fig


def continuations_html(generations: pd.DataFrame, *, pair_id: int) -> str:
    """An HTML table: the female and male prompt of ``pair_id`` and every model's continuation side by side.

    Examples
    --------
    >>> g = pd.DataFrame({"model": ["a", "a"], "pair_id": [0, 0], "gender": ["female", "male"],
    ...                   "prompt": ["My sister is", "My brother is"], "continuation": ["kind", "tall"],
    ...                   "positivity": [0.7, 0.5]})
    >>> "My sister is" in continuations_html(g, pair_id=0)
    True
    """
    rows = generations[generations["pair_id"] == pair_id]
    if rows.empty:
        raise ValueError(f"No generations for pair_id={pair_id}; accepted values are {sorted(int(p) for p in generations['pair_id'].unique())}.")
    prompts = rows.drop_duplicates("gender").set_index("gender")["prompt"]
    head = "".join(f"<th>{html.escape(prompts.get(g, ''))} ...</th>" for g in ("female", "male"))
    body = []
    for model, r in rows.groupby("model", sort=False):
        cells = []
        for g in ("female", "male"):
            hit = r[r["gender"] == g]
            text, pos = (hit["continuation"].iloc[0], hit["positivity"].iloc[0]) if len(hit) else ("", float("nan"))
            cells.append(f"<td>{html.escape(text)} <small>(positivity {pos:.2f})</small></td>")
        body.append(f"<tr><td><b>{html.escape(str(model))}</b></td>{''.join(cells)}</tr>")
    return f"<table><tr><th>model</th>{head}</tr>{''.join(body)}</table>"
