"""Figures of the intrinsic-bias study (notebook 04): forest plots, per-layer curves, heatmaps, context counts.

Builders take results (CeatResult objects or the summary DataFrame the notebook builds) and return
``plotly.graph_objects.Figure``; they compute nothing beyond arranging the numbers.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from .common import TEMPLATE

__all__ = ["forest_figure", "layer_figure", "effect_heatmap", "sample_effects_figure", "context_counts_figure"]


def forest_figure(result, *, max_rows: int = 40, title: str | None = None) -> go.Figure:
    """Forest plot of one CEAT meta-analysis: per-sample effects +- 1.96 sqrt(v_i), and the combined effect.

    Parameters
    ----------
    result : CeatResult
    max_rows : int
        Show this many samples (the first ones; all N enter the combination).

    Examples
    --------
    >>> from workbench.fairness.association import ceat_from_pools
    >>> rng = np.random.default_rng(0)
    >>> r = ceat_from_pools(*[[rng.normal(size=(3, 4)) for _ in range(3)] for _ in range(4)], n_samples=20)
    >>> len(forest_figure(r, max_rows=5).data)
    2
    """
    k = min(max_rows, len(result.effects))
    e, v = result.effects[:k], result.variances[:k]
    half = 1.96 * np.sqrt(v)
    labels = [f"sample {i + 1}" for i in range(k)]
    w = result.meta.weights[:k]
    size = 6 + 10 * w / max(w.max(), 1e-12)
    fig = go.Figure()
    fig.add_trace(go.Scatter(
        x=e, y=labels, mode="markers", name="per-sample effect (95% CI)",
        error_x=dict(type="data", symmetric=False, array=half, arrayminus=half, thickness=1),
        marker=dict(size=size, symbol="square", color="#4c78a8"),
        hovertemplate="d=%{x:.3f}<extra>%{y}</extra>",
    ))
    m = result.meta
    fig.add_trace(go.Scatter(
        x=[m.effect], y=["combined (random effects)"], mode="markers", name="combined effect (95% CI)",
        error_x=dict(type="data", symmetric=False, array=[m.ci_high - m.effect], arrayminus=[m.effect - m.ci_low], thickness=2),
        marker=dict(size=14, symbol="diamond", color="#e45756"),
        hovertemplate=f"d={m.effect:.3f} [{m.ci_low:.3f}, {m.ci_high:.3f}]<extra></extra>",
    ))
    fig.add_vline(x=0, line=dict(color="grey", dash="dot"))
    label = " ".join(str(x) for x in (result.test, result.encoder, f"layer {result.layer}" if result.layer is not None else None) if x)
    fig.update_layout(
        template=TEMPLATE, height=max(320, 18 * (k + 2) + 120),
        title=title or f"CEAT forest plot {label}: d={m.effect:.3f}, SE={m.se:.3f}, tau²={m.tau2:.3g}, I²={m.i2:.2f} (N={result.n_samples})",
        xaxis_title="effect size d", yaxis=dict(autorange="reversed"), legend=dict(orientation="h", y=-0.15),
    )
    return fig


def layer_figure(table: pd.DataFrame, *, test: str | None = None, value: str = "effect_size", title: str | None = None) -> go.Figure:
    """Combined effect size (with its 95% CI) against layer, one line per encoder (and test).

    ``table`` has columns ``test``, ``encoder``, ``layer``, ``effect_size``, ``ci_low``, ``ci_high``. Layers of
    encoders of different depth are drawn on a relative depth axis (layer / number of layers) when the
    table has an ``n_layers`` column.

    Examples
    --------
    >>> t = pd.DataFrame({"test": "C1", "encoder": "e", "layer": [0, 1], "effect_size": [0.1, 0.5], "ci_low": [0, 0.4], "ci_high": [0.2, 0.6]})
    >>> layer_figure(t).data[0].mode
    'lines+markers'
    """
    df = table if test is None else table[table["test"] == test]
    relative = "n_layers" in df.columns and df["encoder"].nunique() > 1
    fig = go.Figure()
    for (tst, enc), g in df.groupby(["test", "encoder"], sort=False):
        g = g.sort_values("layer")
        x = g["layer"] / g["n_layers"] if relative else g["layer"]
        err = dict(type="data", symmetric=False, array=g["ci_high"] - g[value], arrayminus=g[value] - g["ci_low"]) if value == "effect_size" else None
        fig.add_trace(go.Scatter(x=x, y=g[value], mode="lines+markers", name=f"{tst} {enc}" if test is None else enc,
                                 error_y=err, customdata=g["layer"], hovertemplate="layer %{customdata}: %{y:.3f}<extra></extra>"))
    fig.add_hline(y=0, line=dict(color="grey", dash="dot"))
    fig.update_layout(template=TEMPLATE, title=title or f"CEAT {value} by layer" + (f" ({test})" if test else ""),
                      xaxis_title="relative depth (layer / layers)" if relative else "layer", yaxis_title=value)
    return fig


def effect_heatmap(table: pd.DataFrame, *, encoder: str, value: str = "effect_size", title: str | None = None) -> go.Figure:
    """Heatmap test x layer of one encoder's ``value`` (diverging colours centred on 0).

    Examples
    --------
    >>> t = pd.DataFrame({"test": ["C1", "C1"], "encoder": "e", "layer": [0, 1], "effect_size": [0.1, 0.5]})
    >>> effect_heatmap(t, encoder="e").data[0].type
    'heatmap'
    """
    df = table[table["encoder"] == encoder]
    grid = df.pivot_table(index="test", columns="layer", values=value, sort=False)
    lim = float(np.nanmax(np.abs(grid.values))) if grid.size else 1.0
    fig = go.Figure(go.Heatmap(z=grid.values, x=[str(c) for c in grid.columns], y=list(grid.index), zmid=0,
                               zmin=-lim, zmax=lim, colorscale="RdBu_r", colorbar=dict(title=value),
                               text=np.round(grid.values, 2), texttemplate="%{text}"))
    fig.update_layout(template=TEMPLATE, title=title or f"CEAT {value}: {encoder}, test x layer",
                      xaxis_title="layer", yaxis=dict(autorange="reversed"))
    return fig


def sample_effects_figure(results: Sequence, *, title: str | None = None) -> go.Figure:
    """Distribution of the per-sample effect sizes of several CEAT results (one violin each).

    Examples
    --------
    >>> from workbench.fairness.association import ceat_from_pools
    >>> rng = np.random.default_rng(0)
    >>> r = ceat_from_pools(*[[rng.normal(size=(3, 4)) for _ in range(3)] for _ in range(4)], n_samples=20, test="T")
    >>> sample_effects_figure([r]).data[0].type
    'violin'
    """
    fig = go.Figure()
    for r in results:
        name = " ".join(str(x) for x in (r.test, r.encoder, f"L{r.layer}" if r.layer is not None else None) if x) or "CEAT"
        fig.add_trace(go.Violin(y=r.effects, name=name, box_visible=True, meanline_visible=True, points=False))
    fig.add_hline(y=0, line=dict(color="grey", dash="dot"))
    fig.update_layout(template=TEMPLATE, title=title or "Per-sample WEAT effect sizes (CEAT samples)", yaxis_title="effect size d")
    return fig


def context_counts_figure(counts: pd.DataFrame, *, sources: Sequence[str] = ("tweets", "shakespeare", "templates"),
                          min_per_word: int | None = None, title: str | None = None) -> go.Figure:
    """Stacked bars: contexts per word by source (``Contexts.counts()``), with the warning threshold.

    Examples
    --------
    >>> c = pd.DataFrame({"n_contexts": [3, 1], "tweets": [2, 0], "shakespeare": [1, 0], "templates": [0, 1]}, index=["a", "b"])
    >>> len(context_counts_figure(c, min_per_word=2).data)
    3
    """
    df = counts.sort_values("n_contexts")
    fig = go.Figure()
    for s in sources:
        if s in df.columns:
            fig.add_trace(go.Bar(x=list(df.index), y=df[s], name=s))
    if min_per_word:
        fig.add_hline(y=min_per_word, line=dict(color="red", dash="dash"), annotation_text=f"min {min_per_word}")
    fig.update_layout(template=TEMPLATE, barmode="stack", title=title or "Contexts per word by source",
                      xaxis_title="word", yaxis_title="contexts", height=420)
    return fig
