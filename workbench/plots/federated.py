"""Figures of the federated-learning study (data in, ``go.Figure`` out; no computation beyond grouping).

Examples
--------
>>> h = {"uniform": [{"round": 1, "bytes_total": 10, "test_accuracy": 0.2}, {"round": 2, "bytes_total": 20, "test_accuracy": 0.3}]}
>>> len(rounds_figure(h, metric="test_accuracy", baseline=0.4).data)
2
"""
from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np
import plotly.graph_objects as go

from .common import TEMPLATE

__all__ = ["rounds_figure", "settings_figure", "participation_figure", "client_accuracy_figure",
           "selection_cost_figure", "partition_figure", "partition_sizes_figure", "seed_intervals_figure", "difference_figure",
           "epsilon_activity_figure", "privacy_tradeoff_figure", "selection_figures"]

_LABELS = {"test_accuracy": "test accuracy", "test_perplexity": "test perplexity (lower is better)",
           "test_loss": "test loss", "bytes_total": "bytes communicated", "round": "round"}


def rounds_figure(histories: Mapping[str, Sequence[dict]], *, metric: str = "test_accuracy", x: str = "round",
                  baseline: float | None = None, baseline_name: str = "centralized", title: str | None = None) -> go.Figure:
    """One line per run (e.g. per strategy): ``metric`` against ``x`` ("round" or "bytes_total")."""
    fig = go.Figure()
    for name, rows in histories.items():
        rows = [r for r in rows if r.get(metric) is not None]
        fig.add_trace(go.Scatter(x=[r[x] for r in rows], y=[r[metric] for r in rows], mode="lines+markers", name=name))
    if baseline is not None:
        xs = [r[x] for rows in histories.values() for r in rows]
        if xs:
            fig.add_trace(go.Scatter(x=[min(xs), max(xs)], y=[baseline, baseline], mode="lines",
                                     line={"dash": "dash", "color": "black"}, name=baseline_name))
    fig.update_layout(template=TEMPLATE, title=title or f"{_LABELS.get(metric, metric)} vs {_LABELS.get(x, x)}",
                      xaxis_title=_LABELS.get(x, x), yaxis_title=_LABELS.get(metric, metric))
    return fig


def settings_figure(finals: Mapping[str, Mapping[str, float]], *, metric: str = "test_accuracy",
                    baseline: float | None = None, title: str | None = None) -> go.Figure:
    """Grouped bars: ``finals[setting][strategy]`` (e.g. setting = "static" / "continual").

    Examples
    --------
    >>> fig = settings_figure({"static": {"a": 0.5, "b": 0.6}, "continual": {"a": 0.4, "b": 0.5}})
    >>> [t.name for t in fig.data]
    ['static', 'continual']
    """
    fig = go.Figure()
    for setting, values in finals.items():
        fig.add_trace(go.Bar(x=list(values), y=list(values.values()), name=setting))
    if baseline is not None:
        fig.add_hline(y=baseline, line_dash="dash", annotation_text="centralized")
    fig.update_layout(template=TEMPLATE, barmode="group", title=title or f"final {_LABELS.get(metric, metric)} by strategy",
                      xaxis_title="selection strategy", yaxis_title=_LABELS.get(metric, metric))
    return fig


def participation_figure(participation: Mapping[str, Sequence[int]], activity: Sequence[int], *,
                         title: str = "Who gets selected: participation vs activity") -> go.Figure:
    """Times each device was selected against its number of samples, one marker series per strategy (log x)."""
    fig = go.Figure()
    act = np.asarray(activity)
    for name, counts in participation.items():
        fig.add_trace(go.Scatter(x=act, y=np.asarray(counts), mode="markers", name=name, opacity=0.6))
    fig.update_layout(template=TEMPLATE, title=title, xaxis_title="samples on the device (activity)",
                      yaxis_title="times selected", xaxis_type="log")
    return fig


def client_accuracy_figure(client_metrics: Mapping[str, "object"], *, metric: str = "accuracy", groups: int = 3,
                           title: str = "Per-device accuracy by activity group") -> go.Figure:
    """Box plots of each device's own test accuracy, per strategy, split into activity groups (light..heavy).

    ``client_metrics[strategy]`` is a DataFrame with ``n_train`` and ``metric`` columns (as in
    :attr:`FedResult.client_metrics`).
    """
    from workbench.federated.users import USER_GROUPS, activity_groups

    fig = go.Figure()
    names = list(USER_GROUPS) if groups == 3 else [f"q{i + 1}" for i in range(groups)]
    for name in names:
        xs, ys = [], []
        for strategy, df in client_metrics.items():
            mask = activity_groups(df["n_train"], groups=groups) == name
            ys.extend(df[metric].to_numpy()[mask].tolist())
            xs.extend([strategy] * int(mask.sum()))
        fig.add_trace(go.Box(x=xs, y=ys, name=f"{name} users", boxmean=True))
    fig.update_layout(template=TEMPLATE, boxmode="group", title=title, xaxis_title="selection strategy",
                      yaxis_title=f"device {metric} (own test samples)")
    return fig


def selection_cost_figure(rows: Sequence[dict], *, title: str = "Selecting k devices: time per round") -> go.Figure:
    """Benchmark rows (``strategy``, ``n_devices``, ``ms``) as lines on log-log axes.

    Examples
    --------
    >>> selection_cost_figure([{"strategy": "uniform", "n_devices": 10, "ms": 0.1}]).data[0].name
    'uniform'
    """
    fig = go.Figure()
    for name in dict.fromkeys(r["strategy"] for r in rows):
        sel = [r for r in rows if r["strategy"] == name]
        fig.add_trace(go.Scatter(x=[r["n_devices"] for r in sel], y=[r["ms"] for r in sel], mode="lines+markers", name=name))
    fig.update_layout(template=TEMPLATE, title=title, xaxis_type="log", yaxis_type="log",
                      xaxis_title="devices", yaxis_title="milliseconds per selection")
    return fig


def partition_figure(summary, *, max_clients: int = 50, title: str = "Samples per device") -> go.Figure:
    """Stacked bars of label counts per device (or plain sizes), most active first, from ``Partition.summary``."""
    df = summary.sort_values("n_samples", ascending=False).head(max_clients)
    labels = [c for c in df.columns if c.startswith("label_")]
    fig = go.Figure()
    x = df["name"].astype(str).tolist()
    if labels:
        for c in labels:
            fig.add_trace(go.Bar(x=x, y=df[c], name=c.replace("label_", "class ")))
    else:
        fig.add_trace(go.Bar(x=x, y=df["n_samples"], name="samples"))
    fig.update_layout(template=TEMPLATE, barmode="stack", title=title, xaxis_title="device", yaxis_title="samples")
    return fig


def partition_sizes_figure(sizes: Mapping[str, Sequence[int]], *, min_size: int | None = 10,
                           title: str = "Client sizes under each partition", stats=None) -> go.Figure:
    """Box plot of client sizes per partition (log y), with a dashed line at ``min_size``; given ``stats`` (the
    :func:`~workbench.federated.studies.partition_study` table), a second panel shows each partition's label skew
    (``label_skew_tv``) next to the share of its clients under 10 samples.

    Examples
    --------
    >>> len(partition_sizes_figure({"iid": [5, 5], "dirichlet": [1, 9]}).data)
    2
    >>> import pandas as pd
    >>> t = pd.DataFrame({"partition": ["iid", "dirichlet"], "n_clients": [2, 2], "clients_under_10": [2, 1],
    ...                   "label_skew_tv": [0.0, 0.4]})
    >>> len(partition_sizes_figure({"iid": [5, 5], "dirichlet": [1, 9]}, stats=t).data)
    4
    """
    from plotly.subplots import make_subplots

    rows = 1 if stats is None else 2
    fig = make_subplots(rows=rows, cols=1, vertical_spacing=0.12,
                        subplot_titles=None if stats is None else ("samples per client", "label skew and tiny clients"))
    for name, values in sizes.items():
        fig.add_trace(go.Box(y=np.maximum(np.asarray(values), 0.5), name=name, boxpoints="all", jitter=0.4, pointpos=0,
                             showlegend=False), row=1, col=1)
    if min_size is not None:
        fig.add_hline(y=min_size, line_dash="dash", annotation_text=f"{min_size} samples", row=1, col=1)
    if stats is not None:
        names = list(stats["partition"])
        if "label_skew_tv" in stats:
            fig.add_trace(go.Bar(x=names, y=stats["label_skew_tv"], name="label skew (mean TV distance)"), row=2, col=1)
        fig.add_trace(go.Bar(x=names, y=stats["clients_under_10"] / stats["n_clients"], name="share of clients under 10 samples"),
                      row=2, col=1)
        fig.update_yaxes(range=[0, 1], title_text="0 = IID / none", row=2, col=1)
    fig.update_layout(template=TEMPLATE, title=title, showlegend=stats is not None, height=420 * rows,
                      legend=dict(orientation="h", y=-0.15))
    fig.update_yaxes(type="log", title_text="samples on the client (0 shown at 0.5)", row=1, col=1)
    return fig


def _interval_points(table, *, by: str, x: str, y: str, low: str, high: str) -> go.Figure:
    """One marker series per value of ``by``: ``y`` against ``x`` with the asymmetric interval [``low``, ``high``]."""
    fig = go.Figure()
    for name, g in table.groupby(by, sort=False):
        fig.add_trace(go.Scatter(x=g[x], y=g[y], mode="markers", name=str(name), marker={"size": 10},
                                 error_y={"type": "data", "symmetric": False, "array": g[high] - g[y],
                                          "arrayminus": g[y] - g[low]}))
    return fig


def seed_intervals_figure(intervals, *, metric: str = "test_accuracy", title: str | None = None) -> go.Figure:
    """Mean and confidence interval per strategy over seeds, one colour per setting (a
    :func:`workbench.federated.studies.seed_intervals` table).

    Examples
    --------
    >>> import pandas as pd
    >>> t = pd.DataFrame({"setting": ["static"], "strategy": ["uniform"], "n_seeds": [5], "mean": [1.0], "ci_low": [0.9], "ci_high": [1.1]})
    >>> seed_intervals_figure(t).data[0].name
    'static'
    """
    fig = _interval_points(intervals, by="setting", x="strategy", y="mean", low="ci_low", high="ci_high")
    n = int(intervals["n_seeds"].max()) if len(intervals) else 0
    fig.update_layout(template=TEMPLATE, title=title or f"final {_LABELS.get(metric, metric)}: mean and 95% interval over {n} seeds",
                      xaxis_title="selection strategy", yaxis_title=_LABELS.get(metric, metric), scattermode="group")
    return fig


def difference_figure(intervals, *, metric: str = "test_accuracy", baseline: str = "uniform",
                      title: str | None = None) -> go.Figure:
    """Each strategy's paired difference to ``baseline`` with its interval, one group per setting (or partition),
    with the line of no difference: a bar that crosses it is a difference the seeds do not show. From a
    :func:`workbench.federated.studies.seed_intervals` table.

    Examples
    --------
    >>> import pandas as pd
    >>> t = pd.DataFrame({"setting": ["natural", "natural"], "strategy": ["activity", "uniform"], "n_seeds": [5, 5],
    ...                   "difference": [-0.5, 0.0], "difference_low": [-0.6, None], "difference_high": [-0.4, None]})
    >>> [trace.name for trace in difference_figure(t).data]
    ['activity']
    """
    fig = _interval_points(intervals[intervals["strategy"] != baseline], by="strategy", x="setting", y="difference",
                           low="difference_low", high="difference_high")
    fig.add_hline(y=0, line_dash="dash", line_color="grey")
    n = int(intervals["n_seeds"].max()) if len(intervals) else 0
    label = _LABELS.get(metric, metric)
    fig.update_layout(template=TEMPLATE, title=title or f"{label}: difference to {baseline} selection, 95% interval over {n} seeds",
                      xaxis_title="devices", yaxis_title=f"difference in {label}", scattermode="group",
                      showlegend=True, legend_title_text="strategy")
    return fig


def epsilon_activity_figure(clients, *, title: str = "Client-level epsilon vs activity (DP-FedAvg)") -> go.Figure:
    """Each device's epsilon against its training samples, one marker series per strategy (log x), from the
    ``clients`` table of :func:`workbench.federated.studies.client_privacy_study`."""
    fig = go.Figure()
    for strategy, g in clients.groupby("strategy", sort=False):
        g = g[g["n_train"] > 0]
        fig.add_trace(go.Scatter(x=g["n_train"], y=g["epsilon"], mode="markers", name=str(strategy), opacity=0.7))
    fig.update_layout(template=TEMPLATE, title=title, xaxis_type="log", xaxis_title="samples on the device (activity)",
                      yaxis_title="epsilon of the device")
    return fig


def privacy_tradeoff_figure(summary, *, metric: str = "test_accuracy",
                            title: str = "Utility vs the heavy users' privacy") -> go.Figure:
    """One point per strategy: the DP model's ``metric`` against the median epsilon of its heavy users."""
    fig = go.Figure()
    for row in summary.to_dict("records"):
        fig.add_trace(go.Scatter(x=[row["heavy_users_epsilon_median"]], y=[row.get(metric)], mode="markers+text",
                                 text=[row["strategy"]], textposition="top center", name=row["strategy"],
                                 marker={"size": 12}))
    fig.update_layout(template=TEMPLATE, title=title, xaxis_title="median epsilon of the heavy users (lower: more private)",
                      yaxis_title=_LABELS.get(metric, metric), showlegend=False)
    return fig


def selection_figures(study, *, metric: str, baseline: float | None = None, activity=None) -> dict:
    """The figures of a :func:`workbench.federated.studies.selection_study`, by name: ``metric_vs_rounds``,
    ``metric_vs_bytes`` (static), ``static_vs_continual``, ``continual_rounds``, ``iid_vs_non_iid``,
    ``participation`` (needs ``activity``: samples per device) and ``client_accuracy``."""
    label = metric.replace("_", " ")
    static = study.runs["static"]
    figs = {
        "metric_vs_rounds": rounds_figure(study.histories("static"), metric=metric, baseline=baseline,
                                          title=f"Static setting: {label} vs round"),
        "metric_vs_bytes": rounds_figure(study.histories("static"), metric=metric, x="bytes_total", baseline=baseline,
                                         title="... and vs bytes communicated"),
        "client_accuracy": client_accuracy_figure({s: r.client_metrics for s, r in static.items()}),
    }
    if "continual" in study.runs:
        figs["static_vs_continual"] = settings_figure(study.finals(metric), metric=metric, baseline=baseline)
        figs["continual_rounds"] = rounds_figure(study.histories("continual"), metric=metric, baseline=baseline,
                                                 title=f"Continual setting: {label} vs round")
    if "shuffled_iid" in study.runs:
        iid = study.runs["shuffled_iid"]
        finals = {"natural (non-IID)": {s: static[s].final[metric] for s in iid if s in static},
                  "shuffled (IID, same sizes)": {s: r.final[metric] for s, r in iid.items()}}
        figs["iid_vs_non_iid"] = settings_figure(finals, metric=metric, baseline=baseline, title="Non-IID vs IID devices (same sizes)")
    if activity is not None:
        figs["participation"] = participation_figure({s: r.participation for s, r in static.items()}, activity)
    return figs
