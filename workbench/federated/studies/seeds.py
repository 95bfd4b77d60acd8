"""Notebook 03's comparisons over seeds: :func:`seed_study` (in one process) or :func:`seeds_from_runs` (one batch
run per seed), :func:`seed_intervals` (means and paired differences with t-intervals) and :func:`study_finding`."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd

from workbench.validation import Interval, Options, Seq, check

from ..simulation import FederatedData, run_fedavg
from .config import SETTINGS, FedStudyConfig
from .runs import FedStudy, _final_row, _shuffled

__all__ = ["seed_study", "seeds_from_runs", "seed_intervals", "study_finding"]


def seed_study(data: FederatedData, config: FedStudyConfig, *, seeds, strategies=None, settings=SETTINGS,
               iid_strategies=("uniform", "activity"), model_fn=None, progress: bool = True,
               reuse: FedStudy | None = None) -> pd.DataFrame:
    """The comparisons of :func:`selection_study` repeated over ``seeds`` (model initialisation, selection and
    minibatch order). ``seeds=None`` is ``[config.seed]`` alone: one run per seed through the batch runner instead,
    combined by :func:`seeds_from_runs`.

    ``strategies`` default to all of ``config.strategies``; the ``shuffled_iid`` setting runs ``iid_strategies``
    only (those among ``strategies``), on the shuffled devices of ``reuse`` (or made as :func:`selection_study`
    makes them: the shuffle itself is fixed by ``config.seed``). ``reuse``: a :func:`selection_study` at
    ``config.seed`` whose runs stand in for that seed (same numbers, not run twice). Returns one row per
    (setting, strategy, seed) with the final metrics.
    """
    from tqdm.auto import tqdm

    from ..tasks import make_model_fn

    seeds = [config.seed] if seeds is None else check(list(seeds), Seq(Interval(int, None, None), min_len=1),
                                                      name="seeds", owner="seed_study")
    settings = check(list(settings), Seq(Options(SETTINGS), min_len=1), name="settings", owner="seed_study")
    strategies = list(config.strategies) if strategies is None else list(strategies)
    model_fn = model_fn or make_model_fn(data)
    rows, jobs = [], []
    for setting in settings:
        for s in ([s for s in strategies if s in iid_strategies] if setting == "shuffled_iid" else strategies):
            for seed in seeds:
                if reuse is not None and seed == config.seed and s in reuse.runs.get(setting, {}):
                    rows.append(_final_row(setting, s, reuse.runs[setting][s], seed=seed))
                else:
                    jobs.append((setting, s, seed))
    devices = {"static": data, "continual": data}
    if any(setting == "shuffled_iid" for setting, _, _ in jobs):
        devices["shuffled_iid"] = reuse.iid_data if reuse is not None and reuse.iid_data is not None else _shuffled(data, config)
    for setting, s, seed in tqdm(jobs, desc="seed study", unit="run", disable=not progress):
        fed = config.fed_config(s, seed=seed, **(config.continual() if setting == "continual" else {}))
        res = run_fedavg(devices[setting], model_fn=model_fn, config=fed, progress=False, simulator=config.simulator)
        rows.append(_final_row(setting, s, res, seed=seed))
    return pd.DataFrame(rows).sort_values(["setting", "strategy", "seed"]).reset_index(drop=True)


def seeds_from_runs(runs_dir, *, table: str = "seeds", notebook: str = "03_federated_sampling") -> pd.DataFrame:
    """The per-seed rows of every completed run of notebook 03 under ``runs_dir``, as one table for
    :func:`seed_intervals`: the seed comparisons run through the batch runner, one run per seed (2 at a time, or on
    a Dask cluster), instead of one after another in one notebook::

        python -m workbench run notebooks/03_federated_sampling.ipynb --grid grids/federated/seeds.yaml --jobs 2

    ``table`` is ``"seeds"`` (:func:`seed_study`'s rows) or ``"partition_seeds"`` (:func:`partition_seed_study`'s).
    A (setting, strategy, seed) row found in several runs is kept once. The runs' study configs must differ in
    ``seed`` only: runs of different sweeps (other rounds, another task) are an error naming the fields that
    differ, since their seeds would not be comparable.

    Examples
    --------
    >>> seeds_from_runs("/nonexistent")
    Traceback (most recent call last):
    ...
    ValueError: No completed run of notebook 03_federated_sampling with a 'seeds' table under /nonexistent.
    """
    from pathlib import Path

    from workbench.results import RECORD_NAME, load_record, record_problem

    check(table, Options(("seeds", "partition_seeds")), name="table", owner="seeds_from_runs")
    frames, settings = [], {}
    for path in sorted(Path(runs_dir).rglob(RECORD_NAME)):
        try:
            rec = load_record(path)
        except (OSError, ValueError):
            continue  # a broken record: `python -m workbench collect` lists it with the reason
        if record_problem(rec):  # the same
            continue
        rows = (rec.get("tables") or {}).get(table)
        if not rows or rec.get("notebook") != notebook or rec.get("status") != "completed":
            continue
        frames.append(pd.DataFrame(rows))
        settings[str(path.parent)] = {k: v for k, v in (rec.get("config") or {}).items() if k != "seed"}
    if not frames:
        raise ValueError(f"No completed run of notebook {notebook} with a {table!r} table under {runs_dir}.")
    first = next(iter(settings.values()))
    differ = sorted({k for p in settings.values() for k in set(p) | set(first) if p.get(k) != first.get(k)})
    if differ:
        raise ValueError(f"The runs under {runs_dir} differ in {differ}, not only in the seed: combine the runs of one "
                         "sweep (give each sweep its own --output folder).")
    out = pd.concat(frames, ignore_index=True).drop_duplicates(["setting", "strategy", "seed"])
    return out.sort_values(["setting", "strategy", "seed"]).reset_index(drop=True)


def _t_interval(x: np.ndarray, level: float = 0.95) -> tuple[float, float, float]:
    from scipy import stats

    x = np.asarray(x, dtype=np.float64)
    mean = float(x.mean())
    if len(x) < 2:
        return mean, float("nan"), float("nan")
    half = float(stats.t.ppf(0.5 + level / 2, len(x) - 1) * x.std(ddof=1) / math.sqrt(len(x)))
    return mean, mean - half, mean + half


def seed_intervals(table: pd.DataFrame, *, metric: str, baseline: str = "uniform", compare: str = "strategy",
                   level: float = 0.95) -> pd.DataFrame:
    """Mean and ``level`` t-interval of ``metric`` per (setting, strategy) over seeds, and of the paired
    difference to ``baseline`` (same seed, same setting); ``survives`` says whether that interval excludes 0.

    ``compare="setting"`` compares settings instead: the difference of each setting to the setting ``baseline``
    for the same strategy and seed (e.g. ``baseline="static"``: does shuffling the samples change the result?).

    Examples
    --------
    >>> t = pd.DataFrame({"setting": "static", "strategy": ["uniform"] * 3 + ["activity"] * 3,
    ...                   "seed": [0, 1, 2] * 2, "test_accuracy": [0.5, 0.6, 0.55, 0.6, 0.71, 0.64]})
    >>> seed_intervals(t, metric="test_accuracy")[["strategy", "n_seeds", "difference", "survives"]].round(3).values.tolist()
    [['activity', 3, 0.1, True], ['uniform', 3, 0.0, False]]
    """
    level = check(level, Interval(float, 0, 1, closed="neither"), name="level", owner="seed_intervals")
    compare = check(compare, Options(("strategy", "setting")), name="compare", owner="seed_intervals")
    within = "setting" if compare == "strategy" else "strategy"
    rows = []
    for (setting, strategy), g in table.groupby(["setting", "strategy"], sort=True):
        mean, lo, hi = _t_interval(g[metric], level)
        row = {"setting": setting, "strategy": strategy, "n_seeds": len(g), "mean": mean, "ci_low": lo, "ci_high": hi}
        key = {"setting": setting, "strategy": strategy}
        base = table[(table[within] == key[within]) & (table[compare] == baseline)].set_index("seed")[metric]
        paired = g.set_index("seed")[metric].sub(base).dropna()
        if key[compare] != baseline and len(paired) >= 2:
            d, dlo, dhi = _t_interval(paired.to_numpy(), level)
            row.update({"difference": d, "difference_low": dlo, "difference_high": dhi, "survives": bool(dlo > 0 or dhi < 0)})
        else:
            row.update({"difference": 0.0, "difference_low": float("nan"), "difference_high": float("nan"), "survives": False})
        rows.append(row)
    return pd.DataFrame(rows)


def study_finding(intervals: pd.DataFrame, *, metric: str, baseline: str = "uniform") -> str:
    """One sentence for the report: each strategy's paired difference to ``baseline`` per setting, with its interval.

    Examples
    --------
    >>> t = pd.DataFrame({"setting": ["static"] * 2, "strategy": ["activity", "uniform"], "n_seeds": [5, 5],
    ...                   "difference": [-0.5, 0.0], "difference_low": [-0.6, None], "difference_high": [-0.4, None],
    ...                   "survives": [True, False]})
    >>> study_finding(t, metric="test_perplexity")
    'Over 5 seeds, against uniform selection, test perplexity changes by -0.5 (95% CI -0.6 to -0.4, survives) with activity (static).'
    """
    parts = [f"{r['difference']:+.3g} (95% CI {r['difference_low']:.3g} to {r['difference_high']:.3g}, "
             f"{'survives' if r['survives'] else 'not significant'}) with {r['strategy']} ({r['setting']})"
             for r in intervals.to_dict("records") if r["strategy"] != baseline]
    n = int(intervals["n_seeds"].max()) if len(intervals) else 0
    if not parts:
        return f"Over {n} seeds: no strategy to compare with {baseline} selection."
    return f"Over {n} seeds, against {baseline} selection, {metric.replace('_', ' ')} changes by " + "; ".join(parts) + "."
