"""Figures for the data tour: class balance, client activity, image grids."""
from __future__ import annotations

from typing import Sequence

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from .common import TEMPLATE

__all__ = ["class_balance_figure", "activity_figure", "image_grid_figure", "professions_figure"]


def class_balance_figure(labels: Sequence[str], counts: Sequence[int], *, title: str) -> go.Figure:
    """Bar chart of examples per class, annotated with percentages.

    Examples
    --------
    >>> class_balance_figure(["a", "b"], [3, 1], title="t").data[0].text
    ('75.0%', '25.0%')
    """
    total = float(sum(counts))
    fig = go.Figure(go.Bar(x=list(labels), y=list(counts), text=[f"{100 * c / total:.1f}%" for c in counts], textposition="auto"))
    fig.update_layout(template=TEMPLATE, title=title, xaxis_title="class", yaxis_title="examples")
    return fig


def activity_figure(activity: Sequence[float], *, title: str, unit: str = "characters") -> go.Figure:
    """Client activity two ways: a log-scale histogram and the cumulative share held by the most active clients."""
    x = np.sort(np.asarray(activity, dtype=float))[::-1]
    share = np.cumsum(x) / x.sum()
    fig = make_subplots(rows=1, cols=2, subplot_titles=(f"{unit} per client (log scale)", "share of all data held by the top clients"))
    fig.add_trace(go.Histogram(x=np.log10(np.maximum(x, 1)), nbinsx=40, name="clients", showlegend=False), row=1, col=1)
    fig.add_trace(go.Scatter(x=np.arange(1, x.size + 1) / x.size * 100, y=share * 100, mode="lines", showlegend=False), row=1, col=2)
    fig.update_xaxes(title_text=f"log10({unit})", row=1, col=1)
    fig.update_yaxes(title_text="clients", row=1, col=1)
    fig.update_xaxes(title_text="% of clients (most active first)", row=1, col=2)
    fig.update_yaxes(title_text="% of data", row=1, col=2)
    fig.update_layout(template=TEMPLATE, title=title)
    return fig


def image_grid_figure(images: np.ndarray, labels: Sequence[int], classes: Sequence[str], *, columns: int = 8, title: str = "") -> go.Figure:
    """A grid of grayscale images titled with their class names.

    Examples
    --------
    >>> fig = image_grid_figure(np.zeros((3, 4, 4)), [0, 1, 0], ["x", "y"], columns=2)
    >>> len(fig.data)
    3
    """
    n = len(images)
    rows = max(1, int(np.ceil(n / columns)))
    fig = make_subplots(rows=rows, cols=columns, subplot_titles=[classes[int(y)] for y in labels],
                        horizontal_spacing=0.01, vertical_spacing=0.06)
    for i, img in enumerate(images):
        fig.add_trace(go.Heatmap(z=np.asarray(img)[::-1], colorscale="gray_r", showscale=False, hoverinfo="skip"),
                      row=i // columns + 1, col=i % columns + 1)
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False, scaleanchor="x")
    fig.update_annotations(font_size=10)
    fig.update_layout(template=TEMPLATE, title=title, height=120 * rows + 80, margin=dict(l=10, r=10, t=60, b=10))
    return fig


def professions_figure(professions, *, title: str = "Professions: definitional vs stereotypical gender") -> go.Figure:
    """Scatter of Bolukbasi et al.'s two gender scores per profession (negative = female)."""
    fig = go.Figure(go.Scatter(x=professions["definitional"], y=professions["stereotypical"], mode="markers",
                               text=professions["profession"], hovertemplate="%{text}<br>def %{x}<br>stereo %{y}<extra></extra>"))
    fig.update_layout(template=TEMPLATE, title=title, xaxis_title="definitional", yaxis_title="stereotypical")
    return fig
