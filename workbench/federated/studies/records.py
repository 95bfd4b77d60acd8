"""Notebook 03's run record: metric names and :func:`study_record`."""
from __future__ import annotations

from dataclasses import asdict

import pandas as pd

from ..simulation import FederatedData
from .config import FedStudyConfig
from .runs import FedStudy
from .seeds import study_finding

__all__ = ["metric_key_of", "study_record"]


def metric_key_of(config: FedStudyConfig, setting: str, strategy: str) -> str:
    """The record's name of a run's headline metric, e.g. ``static/activity/test_perplexity``."""
    return f"{setting}/{strategy}/{config.metric}"


def study_record(config: FedStudyConfig, *, data: FederatedData, central: pd.DataFrame, study: FedStudy,
                 seeds: pd.DataFrame | None = None,
                 intervals: pd.DataFrame | None = None, privacy: pd.DataFrame | None = None,
                 partitions: pd.DataFrame | None = None, partition_seeds: pd.DataFrame | None = None,
                 partition_intervals: pd.DataFrame | None = None) -> dict:
    """Keyword arguments of :func:`workbench.results.save_record` for notebook 03: ``config``, ``metrics``,
    ``history``, ``timings``, ``tables`` and ``extra``.

    Metric names: ``centralized/test_*``, ``<setting>/<strategy>/<final metric>`` (settings ``static``,
    ``continual``, ``shuffled_iid``), ``seeds/<setting>/<strategy>/{mean,ci_low,ci_high,difference}``,
    ``partition_seeds/<partition>/<strategy>/{mean,ci_low,ci_high,difference}`` (:func:`partition_seed_study`) and
    ``dp/<strategy>/{test_*,heavy_users_epsilon_median,epsilon_max}``.
    """
    central_final = central.iloc[-1]
    metrics: dict = {"centralized": {k: float(v) for k, v in central_final.items() if k.startswith("test_")}}
    for setting, by in study.runs.items():
        metrics[setting] = {s: dict(r.final) for s, r in by.items()}
    for group, table in {"seeds": intervals, "partition_seeds": partition_intervals}.items():
        if table is not None:
            metrics[group] = {}
            for row in table.to_dict("records"):
                metrics[group].setdefault(row["setting"], {})[row["strategy"]] = {
                    k: row[k] for k in ("mean", "ci_low", "ci_high", "difference")}
    if privacy is not None:
        metrics["dp"] = {row["strategy"]: {k: v for k, v in row.items() if k != "strategy"} for row in privacy.to_dict("records")}
    history = [{"setting": setting, "strategy": s, **{k: v for k, v in row.items() if k != "selected"}}
               for setting, by in study.runs.items() if setting != "shuffled_iid" for s, r in by.items() for row in r.history]
    tables = {"runs": study.table}
    for name, t in {"seeds": seeds, "seed_intervals": intervals, "client_privacy": privacy, "partitions": partitions,
                    "partition_seeds": partition_seeds, "partition_intervals": partition_intervals}.items():
        if t is not None:
            tables[name] = t
    static = study.runs.get("static", {})
    extra_report = {"headline_figure": "seed_intervals" if intervals is not None else "metric_vs_rounds",
                    "headline_metric": metric_key_of(config, "static", "activity" if "activity" in static else next(iter(static)))}
    if intervals is not None:
        extra_report["finding"] = study_finding(intervals, metric=config.metric)
    return {
        "config": asdict(config), "metrics": metrics, "history": history, "tables": tables,
        "timings": {f"{setting}/{s}": r.seconds for setting, by in study.runs.items() for s, r in by.items()},
        "extra": {**extra_report, "n_devices": data.n_clients, "device_sizes": data.train.sizes.tolist(),
                  "participation": {s: r.participation.tolist() for s, r in static.items()},
                  "selected": {s: [row["selected"] for row in r.history] for s, r in static.items()}},
    }
