"""Notebook 01's DP training study: the cost of each DP engine (:func:`engine_timings`) and the run record's
metrics of the epsilon sweep and the timings (:func:`dp_study_metrics`)."""
from __future__ import annotations

import dataclasses
from typing import Mapping, Sequence

import pandas as pd

from workbench.validation import Interval, InvalidParameterError, Options, Seq, check

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

    engines = list(check(list(ENGINES if engines is None else engines), Seq(Options(set(ENGINES))), name="engines",
                         owner="engine_timings"))
    models = list(check(list(models), Seq(Options(set(MODEL_FAMILIES))), name="models", owner="engine_timings"))
    missing = sorted({MODEL_FAMILIES[m] for m in models} - set(tasks))
    if missing:
        raise InvalidParameterError(f"The 'tasks' parameter of engine_timings lacks the features {missing} that the models {list(models)} need. "
                                    f"Got tasks for {sorted(tasks)}.")
    samples = check(samples, Interval(int, 1, None), name="samples", owner="engine_timings")
    repeats = check(repeats, Interval(int, 1, None), name="repeats", owner="engine_timings")
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


def finetune_timings(model_fn, train, *, engines: Sequence[str], config, samples: int = 64, noise_multiplier: float = 1.0,
                     max_grad_norm: float = 1.0, delta: float = 1e-5, model: str = "minilm", threads: int | None = None) -> pd.DataFrame:
    """Seconds per epoch of fine-tuning a fresh ``model_fn()`` on the first ``samples`` rows of ``train``, without DP and
    with each engine (one epoch each, fixed batches so every engine sees the same ones), and the slowdown.

    Same columns as :func:`engine_timings` (``model``, ``engine``, ``seconds_per_epoch``, ``slowdown``, ``note``);
    ``train`` may be any dataset of :func:`workbench.privacy.dp.train` (e.g. a
    :class:`~workbench.privacy.transformer.TokenizedTexts`).

    Examples
    --------
    >>> import torch
    >>> from workbench.models import MLP
    >>> from workbench.training import TrainConfig
    >>> X = torch.randn(32, 3); y = (X[:, 0] > 0).long()
    >>> t = finetune_timings(lambda: MLP(in_features=3, out_features=2), (X, y), engines=["fast"], config=TrainConfig(batch_size=16),
    ...                      samples=32, model="mlp")
    >>> t.engine.tolist(), float(t.slowdown[0])
    (['non-DP', 'fast'], 1.0)
    """
    from workbench.training import TensorData, as_dataset, torch_threads

    from ..dp import ENGINES, DPConfig, train as train_model

    owner = "finetune_timings"
    engines = list(check(engines, Seq(Options(ENGINES)), name="engines", owner=owner))
    samples = check(samples, Interval(int, 1, None), name="samples", owner=owner)
    data = as_dataset(train, owner=owner)
    subset = _Subset(data, min(samples, len(data)))
    config = dataclasses.replace(config, epochs=1)
    rows, base = [], None
    with torch_threads(threads):
        for engine in [NON_DP, *engines]:
            dp = None if engine == NON_DP else DPConfig(noise_multiplier=noise_multiplier, max_grad_norm=max_grad_norm, delta=delta,
                                                         engine=engine, poisson_sampling=False)
            try:
                seconds, note = train_model(model_fn(), subset, config=config, dp=dp, progress=False).seconds_per_epoch, ""
            except (NotImplementedError, ValueError) as err:
                seconds, note = float("nan"), str(err).splitlines()[0][:80]
            base = seconds if engine == NON_DP else base
            rows.append({"model": model, "engine": engine, "seconds_per_epoch": seconds, "slowdown": seconds / base, "note": note})
    return pd.DataFrame(rows, columns=["model", "engine", "seconds_per_epoch", "slowdown", "note"])


class _Subset:
    """The first ``n`` rows of a dataset with ``batch(idx)``."""

    def __init__(self, data, n):
        self.data, self.n = data, n

    def __len__(self):
        return self.n

    def batch(self, idx):
        return self.data.batch(idx)


def dp_study_metrics(sweep: pd.DataFrame, *, timing: pd.DataFrame | None = None) -> dict:
    """Flat metrics of notebook 01 for a run record, in the records' one naming scheme (:func:`workbench.results.metric_key`).

    From the epsilon sweep (:func:`~workbench.privacy.dp.epsilon_sweep` rows with a ``model`` column):
    ``<model>/<point>/val_accuracy`` and ``<model>/<point>/epsilon``, where ``<point>`` is ``non_dp`` or
    ``eps_<target>``; from :func:`engine_timings`: ``slowdown/<model>/<engine>`` (``opacus-ghost`` -> ``opacus_ghost``).

    Examples
    --------
    >>> sweep = pd.DataFrame({"model": ["bag", "bag"], "epsilon_target": [None, 8.0], "epsilon": [None, 7.9],
    ...                       "val_accuracy": [0.64, 0.54]})
    >>> timing = pd.DataFrame({"model": ["bag"], "engine": ["opacus-ghost"], "slowdown": [1.5]})
    >>> dp_study_metrics(sweep, timing=timing)
    {'bag/non_dp/val_accuracy': 0.64, 'bag/non_dp/epsilon': nan, 'bag/eps_8/val_accuracy': 0.54, 'bag/eps_8/epsilon': 7.9, 'slowdown/bag/opacus_ghost': 1.5}
    """
    from workbench.results import metric_key

    metrics = {}
    for _, r in sweep.iterrows():
        point = "non_dp" if pd.isna(r["epsilon_target"]) else f"eps_{r['epsilon_target']:g}"
        metrics[metric_key(r["model"], point, "val_accuracy")] = r["val_accuracy"]
        metrics[metric_key(r["model"], point, "epsilon")] = r["epsilon"]
    if timing is not None:
        for _, r in timing.iterrows():
            metrics[metric_key("slowdown", r["model"], r["engine"])] = r["slowdown"]
    return metrics
