"""Figures of the model-update studies (06 flips / PC training, 07 compatible embeddings).

Builders only: tables and arrays in, ``plotly.graph_objects.Figure`` out.
"""
from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from .common import TEMPLATE

__all__ = [
    "update_summary_figure",
    "scenario_figure",
    "per_class_flips_figure",
    "flip_matrix_figure",
    "tradeoff_figure",
    "image_grid_figure",
    "retrieval_matrix_figure",
    "update_gain_figure",
    "retrieval_examples_figure",
]


def update_summary_figure(summary: pd.DataFrame, *, title: str = "Old vs new: error and flips") -> go.Figure:
    """Grouped bars of ``error_new``, ``nfr`` and ``pfr`` per row (method), with the old error as a line.

    Examples
    --------
    >>> t = pd.DataFrame({"error_old": [.2, .2], "error_new": [.15, .16], "nfr": [.04, .02], "pfr": [.09, .06]}, index=["none", "fd"])
    >>> len(update_summary_figure(t).data)
    3
    """
    labels = [str(i) for i in summary.index]
    fig = go.Figure()
    for col, name in (("error_new", "error rate (new)"), ("nfr", "negative flip rate"), ("pfr", "positive flip rate")):
        fig.add_trace(go.Bar(x=labels, y=summary[col] * 100, name=name, text=[f"{v * 100:.1f}" for v in summary[col]], textposition="outside"))
    if "error_old" in summary:
        fig.add_hline(y=float(summary["error_old"].iloc[0]) * 100, line_dash="dash", annotation_text="error rate (old)")
    fig.update_layout(template=TEMPLATE, title=title, barmode="group", yaxis_title="% of test samples", xaxis_title="new model")
    return fig


def scenario_figure(table: pd.DataFrame, *, title: str = "Kinds of update: error rates and negative flips") -> go.Figure:
    """Bars of old error, new error and NFR per update scenario (``table`` indexed by scenario).

    Examples
    --------
    >>> t = pd.DataFrame({"error_old": [.2], "error_new": [.15], "nfr": [.04]}, index=["more_data"])
    >>> [d.name for d in scenario_figure(t).data]
    ['error rate (old)', 'error rate (new)', 'negative flip rate']
    """
    labels = [str(i) for i in table.index]
    fig = go.Figure()
    for col, name in (("error_old", "error rate (old)"), ("error_new", "error rate (new)"), ("nfr", "negative flip rate")):
        fig.add_trace(go.Bar(x=labels, y=table[col] * 100, name=name))
    fig.update_layout(template=TEMPLATE, title=title, barmode="group", yaxis_title="% of test samples", xaxis_title="update scenario")
    return fig


def per_class_flips_figure(table: pd.DataFrame, *, title: str = "Where the flips are: per class") -> go.Figure:
    """NFR and PFR within each class (``table`` from :func:`~workbench.compatibility.flips.per_class_flips`).

    Examples
    --------
    >>> t = pd.DataFrame({"name": ["a", "b"], "nfr": [.1, 0], "pfr": [0, .2], "n_negative": [1, 0]})
    >>> len(per_class_flips_figure(t).data)
    2
    """
    names = table["name"].astype(str).tolist()
    fig = go.Figure([
        go.Bar(x=names, y=table["nfr"] * 100, name="negative flips (old right, new wrong)", marker_color="#d62728",
               customdata=table.get("n_negative"), hovertemplate="%{x}: %{y:.1f}%% (%{customdata} samples)<extra></extra>"),
        go.Bar(x=names, y=table["pfr"] * 100, name="positive flips (old wrong, new right)", marker_color="#2ca02c"),
    ])
    fig.update_layout(template=TEMPLATE, title=title, barmode="group", yaxis_title="% of the class's test samples", xaxis_title="true class")
    return fig


def flip_matrix_figure(matrix: np.ndarray, *, classes: Sequence[str] | None = None, title: str = "Negative flips: true class -> new prediction") -> go.Figure:
    """Heatmap of :func:`~workbench.compatibility.flips.negative_flip_matrix`.

    Examples
    --------
    >>> flip_matrix_figure(np.array([[0, 2], [1, 0]]), classes=["a", "b"]).data[0].type
    'heatmap'
    """
    matrix = np.asarray(matrix)
    names = list(classes) if classes is not None else [str(i) for i in range(len(matrix))]
    fig = go.Figure(go.Heatmap(z=matrix, x=names, y=names, colorscale="Reds", text=matrix, texttemplate="%{text}",
                               hovertemplate="true %{y} -> new %{x}: %{z}<extra></extra>"))
    fig.update_layout(template=TEMPLATE, title=title, xaxis_title="new model predicts", yaxis_title="true class (old model right)",
                      yaxis_autorange="reversed")
    return fig


def tradeoff_figure(
    tradeoff: pd.DataFrame,
    *,
    baselines: pd.DataFrame | None = None,
    title: str = "Positive-congruent training: NFR vs error rate",
) -> go.Figure:
    """NFR against error rate: one line per temperature through the ``beta`` grid, baselines as markers.

    Parameters
    ----------
    tradeoff : DataFrame
        From :func:`~workbench.compatibility.pc_training.pc_tradeoff` (``beta``, ``temperature``,
        ``error_new``, ``nfr``).
    baselines : DataFrame, optional
        Rows indexed by method name with ``error_new`` and ``nfr`` (and ``error_old`` for the old model's error line).

    Examples
    --------
    >>> t = pd.DataFrame({"beta": [0, 5], "temperature": [1, 1], "error_new": [.16, .17], "nfr": [.03, .02]})
    >>> len(tradeoff_figure(t).data)
    1
    """
    fig = go.Figure()
    for temp, rows in tradeoff.groupby("temperature", sort=True):
        rows = rows.sort_values("beta")
        fig.add_trace(go.Scatter(
            x=rows["error_new"] * 100, y=rows["nfr"] * 100, mode="lines+markers+text", name=f"focal distillation, T={temp:g}",
            text=[f"β={b:g}" for b in rows["beta"]], textposition="top center",
            hovertemplate="β=%{text}<br>error %{x:.2f}%<br>NFR %{y:.2f}%<extra></extra>",
        ))
    if baselines is not None:
        symbols = ["x", "diamond", "square", "star", "triangle-up", "cross"]
        for i, (name, row) in enumerate(baselines.iterrows()):
            fig.add_trace(go.Scatter(x=[row["error_new"] * 100], y=[row["nfr"] * 100], mode="markers", name=str(name),
                                     marker=dict(size=13, symbol=symbols[i % len(symbols)])))
    fig.update_layout(template=TEMPLATE, title=title, xaxis_title="error rate of the new model (%)",
                      yaxis_title="negative flip rate (%)")
    return fig


def image_grid_figure(
    images: np.ndarray,
    *,
    titles: Sequence[str] | None = None,
    n_cols: int = 8,
    title: str = "",
    size: int = 95,
) -> go.Figure:
    """Grayscale images in a grid (e.g. the flipped examples of one class).

    Examples
    --------
    >>> fig = image_grid_figure(np.zeros((3, 8, 8)), titles=["a", "b", "c"], n_cols=2)
    >>> len(fig.data)
    3
    """
    images = np.asarray(images, dtype=float)
    n = len(images)
    if n == 0:
        fig = go.Figure()
        fig.update_layout(template=TEMPLATE, title=title or "no images", height=150,
                          annotations=[dict(text="nothing to show", showarrow=False, x=0.5, y=0.5, xref="paper", yref="paper")])
        fig.update_xaxes(visible=False)
        fig.update_yaxes(visible=False)
        return fig
    n_cols = max(1, min(n_cols, n))
    n_rows = int(np.ceil(n / n_cols))
    fig = make_subplots(rows=n_rows, cols=n_cols, subplot_titles=list(titles) if titles is not None else None,
                        horizontal_spacing=0.01, vertical_spacing=0.25 / max(n_rows, 1) if titles is not None else 0.01)
    for i, img in enumerate(images):
        fig.add_trace(go.Heatmap(z=img[::-1], colorscale="gray_r", showscale=False, hoverinfo="skip"), row=i // n_cols + 1, col=i % n_cols + 1)
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False)
    for k in range(1, n + 1):  # square pixels: tie each subplot's y scale to its x scale
        fig.layout[f"yaxis{'' if k == 1 else k}"].scaleanchor = "x" if k == 1 else f"x{k}"
    fig.update_annotations(font_size=10)
    fig.update_layout(template=TEMPLATE, title=title, height=60 + n_rows * size, width=max(300, n_cols * size), margin=dict(l=10, r=10, t=60, b=10))
    return fig


def retrieval_matrix_figure(matrix: pd.DataFrame, *, metric: str = "top1", title: str | None = None) -> go.Figure:
    """Heatmap of a retrieval metric: rows = query model, columns = gallery model (blank = not evaluated).

    Examples
    --------
    >>> m = pd.DataFrame({"query_model": ["old", "new"], "gallery_model": ["old", "old"], "top1": [.7, .75]})
    >>> retrieval_matrix_figure(m).data[0].type
    'heatmap'
    """
    table = matrix.pivot(index="query_model", columns="gallery_model", values=metric)
    order = list(dict.fromkeys(list(matrix["query_model"]) + list(matrix["gallery_model"])))
    table = table.reindex(index=[o for o in order if o in table.index], columns=[o for o in order if o in table.columns])
    z = table.to_numpy(dtype=float)
    text = np.where(np.isnan(z), "", np.vectorize(lambda v: f"{v:.3f}")(np.nan_to_num(z)))
    fig = go.Figure(go.Heatmap(z=z, x=list(table.columns), y=list(table.index), colorscale="Viridis", text=text,
                               texttemplate="%{text}", hovertemplate="query %{y} / gallery %{x}: %{z:.3f}<extra></extra>"))
    fig.update_layout(template=TEMPLATE, title=title or f"Retrieval {metric}: query model x gallery model",
                      xaxis_title="gallery embedded with", yaxis_title="queries embedded with", yaxis_autorange="reversed")
    return fig


def update_gain_figure(summaries: Mapping[str, Mapping[str, float]], *, title: str | None = None) -> go.Figure:
    """Per new model: M(old, old), M(new query, old gallery) and M(new, new) side by side.

    ``summaries`` maps a model name to :func:`~workbench.compatibility.bct.compatibility_summary` output.

    Examples
    --------
    >>> s = {"bct": {"metric": "map", "old_old": .6, "new_old": .65, "new_new": .7, "update_gain": .5, "compatible": True}}
    >>> len(update_gain_figure(s).data)
    3
    """
    names = list(summaries)
    metric = next(iter(summaries.values()))["metric"] if summaries else ""
    fig = go.Figure()
    for key, label in (("old_old", "old query / old gallery"), ("new_old", "new query / old gallery (no backfill)"), ("new_new", "new query / new gallery (backfilled)")):
        fig.add_trace(go.Bar(x=names, y=[summaries[n][key] for n in names], name=label))
    for i, n in enumerate(names):
        s = summaries[n]
        fig.add_annotation(x=n, y=max(s["old_old"], s["new_old"], s["new_new"]) + 0.05, showarrow=False,
                           text=f"gain {s['update_gain']:.2f}<br>{'compatible' if s['compatible'] else 'NOT compatible'}")
    fig.update_layout(template=TEMPLATE, title=title or f"Update gain ({metric})", barmode="group", yaxis_title=metric, xaxis_title="new model")
    return fig


def retrieval_examples_figure(query_image: np.ndarray, retrieved: np.ndarray, *, correct: Sequence[bool], title: str = "") -> go.Figure:
    """A query image followed by its top retrieved gallery images (titles mark right/wrong class).

    Examples
    --------
    >>> len(retrieval_examples_figure(np.zeros((8, 8)), np.zeros((2, 8, 8)), correct=[True, False]).data)
    3
    """
    images = np.concatenate([np.asarray(query_image, dtype=float)[None], np.asarray(retrieved, dtype=float)])
    titles = ["query"] + [f"#{i + 1} {'✓' if c else '✗'}" for i, c in enumerate(correct)]
    return image_grid_figure(images, titles=titles, n_cols=len(images), title=title)
