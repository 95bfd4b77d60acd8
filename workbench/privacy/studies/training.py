"""Notebook 01's DP training study: the cost of each DP engine (:func:`engine_timings`) and the run record's
metrics of the epsilon sweep and the timings (:func:`dp_study_metrics`)."""
from __future__ import annotations

import dataclasses
from typing import Mapping, Sequence

import pandas as pd

from ._checks import _int_at_least
from ._labels import NON_DP


def engine_timings(tasks: Mapping[str, object], *, models: Sequence[str], engines: Sequence[str] | None = None, samples: int = 256,
                   config=None, max_grad_norm: float = 1.0, delta: float = 1e-5, noise_multiplier: float = 1.0,
                   repeats: int = 2, threads: int | None = 1) -> pd.DataFrame:
    """Seconds per training epoch of each model without DP and with each DP engine, and the slowdown.

    Each (model, engine) trains a fresh :func:`~workbench.privacy.data.make_task_model` (seeded by
    ``config.seed``) for one epoch on the first ``samples`` training rows of its task, ``repeats`` times, and keeps
    the fastest epoch (timings on a shared machine are noisy). An engine that refuses a model (e.g. Opacus ghost
    clipping on the GRU's re-used hidden projection) gets NaN and the first line of its error in ``note``.

    Parameters
    ----------
    tasks : {features: TweetTask}
        Tasks by feature kind (``"tokens"``, ``"minilm"``, see :func:`~workbench.privacy.data.load_tweet_task`);
        each model uses the one its family needs (:data:`~workbench.privacy.data.MODEL_FAMILIES`).
    models : sequence of str
        Names in :data:`~workbench.privacy.data.MODEL_FAMILIES`.
    engines : sequence of str, optional
        Names in :data:`~workbench.privacy.dp.ENGINES` (default: all of them).
    samples : int
        Training rows per epoch.
    config : TrainConfig, optional
        Batch size, learning rate, optimizer and seed (its ``epochs`` is replaced by 1).
    max_grad_norm, delta, noise_multiplier : float
        The DP settings of every engine (epsilon plays no part in the time per step).
    repeats : int
        Epochs timed per (model, engine); the minimum is kept.
    threads : int or None
        Torch threads while timing (restored afterwards); ``None`` leaves them alone. One thread keeps the
        ratios steady on a busy machine.

    Returns
    -------
    pandas.DataFrame
        One row per (model, engine), ``"non-DP"`` first for each model: ``model``, ``engine``,
        ``seconds_per_epoch``, ``slowdown`` (relative to the model's non-DP epoch) and ``note``.

    Examples
    --------
    >>> from workbench.privacy.data import load_tweet_task
    >>> task = load_tweet_task(n=120, features="tokens", max_len=8)
    >>> t = engine_timings({"tokens": task}, models=["bag"], engines=["fast"], samples=32, repeats=1)
    >>> t.engine.tolist(), float(t.slowdown[0])
    (['non-DP', 'fast'], 1.0)
    """
    from workbench.training import TrainConfig, torch_threads

    from ..data import MODEL_FAMILIES, make_task_model
    from ..dp import ENGINES, DPConfig, train

    engines = list(ENGINES if engines is None else engines)
    unknown = [e for e in engines if e not in ENGINES]
    if unknown:
        raise ValueError(f"The 'engines' parameter of engine_timings must hold names in {ENGINES}. Got {unknown} instead.")
    bad = [m for m in models if m not in MODEL_FAMILIES]
    if bad:
        raise ValueError(f"The 'models' parameter of engine_timings must hold names in {sorted(MODEL_FAMILIES)}. Got {bad} instead.")
    missing = sorted({MODEL_FAMILIES[m] for m in models} - set(tasks))
    if missing:
        raise ValueError(f"The 'tasks' parameter of engine_timings lacks the features {missing} that the models {list(models)} need. "
                         f"Got tasks for {sorted(tasks)}.")
    _int_at_least("engine_timings", "samples", samples, 1)
    _int_at_least("engine_timings", "repeats", repeats, 1)
    config = dataclasses.replace(config or TrainConfig(), epochs=1)
    rows = []
    with torch_threads(threads):
        for name in models:
            task = tasks[MODEL_FAMILIES[name]]
            subset = (task.train[0][:samples], task.train[1][:samples])
            base = None
            for engine in [NON_DP, *engines]:
                dp = None if engine == NON_DP else DPConfig(noise_multiplier=noise_multiplier, delta=delta, max_grad_norm=max_grad_norm,
                                                             engine=engine)
                try:
                    seconds = min(train(make_task_model(name, task, seed=config.seed), subset, config=config, dp=dp,
                                        progress=False).seconds_per_epoch for _ in range(repeats))
                    note = ""
                except (NotImplementedError, ValueError) as err:  # e.g. Opacus ghost clipping on a re-used layer
                    seconds, note = float("nan"), str(err).splitlines()[0][:80]
                base = seconds if engine == NON_DP else base
                rows.append({"model": name, "engine": engine, "seconds_per_epoch": seconds, "slowdown": seconds / base, "note": note})
    return pd.DataFrame(rows, columns=["model", "engine", "seconds_per_epoch", "slowdown", "note"])


def dp_study_metrics(sweep: pd.DataFrame, *, timing: pd.DataFrame | None = None) -> dict:
    """Flat metrics of notebook 01 for a run record.

    From the epsilon sweep (:func:`~workbench.privacy.dp.epsilon_sweep` rows with a ``model`` column):
    ``<model>.<point>.val_accuracy`` and ``<model>.<point>.epsilon``, where ``<point>`` is ``non_dp`` or
    ``eps_<target>``; from :func:`engine_timings`: ``slowdown.<model>.<engine>``.

    Examples
    --------
    >>> sweep = pd.DataFrame({"model": ["bag", "bag"], "epsilon_target": [None, 8.0], "epsilon": [None, 7.9],
    ...                       "val_accuracy": [0.64, 0.54]})
    >>> timing = pd.DataFrame({"model": ["bag"], "engine": ["fast"], "slowdown": [1.5]})
    >>> dp_study_metrics(sweep, timing=timing)
    {'bag.non_dp.val_accuracy': 0.64, 'bag.non_dp.epsilon': nan, 'bag.eps_8.val_accuracy': 0.54, 'bag.eps_8.epsilon': 7.9, 'slowdown.bag.fast': 1.5}
    """
    metrics = {}
    for _, r in sweep.iterrows():
        key = "non_dp" if pd.isna(r["epsilon_target"]) else f"eps_{r['epsilon_target']:g}"
        metrics[f"{r['model']}.{key}.val_accuracy"] = r["val_accuracy"]
        metrics[f"{r['model']}.{key}.epsilon"] = r["epsilon"]
    if timing is not None:
        for _, r in timing.iterrows():
            metrics[f"slowdown.{r['model']}.{r['engine']}"] = r["slowdown"]
    return metrics
