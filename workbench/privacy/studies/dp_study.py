"""Notebook 01's DP-vs-non-DP study as functions: the tasks (:func:`load_dp_tasks`), the privacy schedule per
target epsilon (:func:`schedule_table`), the accountant curves (:func:`accounting_curves`), the utility-vs-epsilon
sweep of every model (:func:`utility_sweep`), per-example gradient norms (:func:`gradient_norms`), the
clipping-norm x noise grid (:func:`clip_noise_grid`) and the run record (:func:`dp_study_record`).

Each function makes the same calls, in the same order, as the notebook cells it replaced, so a run at the same
seed records the same numbers.
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd

from workbench.validation import Interval, Options, Seq, check, fill_groups

from .training import dp_study_metrics

DP_PARAMETERS = ("DATA", "SWEEP_MODELS", "EPSILONS", "EPOCHS", "BATCH_SIZE", "LR", "DELTA", "MAX_GRAD_NORM", "ENGINE",
                 "TIMING", "CLIP_NORMS", "NOISE_MULTIPLIERS", "ACCOUNTING_POINTS")
"""The parameter names of notebook 01 that its run record keeps (``DATA`` and ``TIMING`` are grouped, see
:data:`DP_GROUPS`)."""

DP_GROUPS = {
    "DATA": {"n_tweets": 3000, "n_token_tweets": 20000, "max_len": 32, "max_vocab": 5000},
    "TIMING": {"models": ["bag", "gru", "linear"], "engines": ["fast", "opacus-ghost", "opacus-hooks"], "samples": 1024},
}
"""Notebook 01's grouped parameters (dict literals) and their defaults: ``DATA`` holds the keyword arguments of
:func:`load_dp_tasks`, ``TIMING`` those of :func:`~workbench.privacy.studies.engine_timings`. A partial dict keeps the
defaults of the keys it leaves out (:func:`dp_study_parameters`)."""

_TWEETS = Interval(int, 10, 38158)


def _group_constraints() -> dict:
    from ..data import MODEL_FAMILIES
    from ..dp import ENGINES

    return {"DATA": {"n_tweets": _TWEETS, "n_token_tweets": _TWEETS, "max_len": Interval(int, 1, None),
                     "max_vocab": Interval(int, 3, None)},
            "TIMING": {"models": Seq(Options(set(MODEL_FAMILIES)), min_len=1), "engines": Seq(Options(set(ENGINES)), min_len=1),
                       "samples": Interval(int, 1, None)}}


def dp_study_parameters(parameters: Mapping[str, Any]) -> dict:
    """Notebook 01's parameters by name (:data:`DP_PARAMETERS`), with the grouped ones (:data:`DP_GROUPS`) filled:
    a partial ``DATA`` or ``TIMING`` keeps the defaults of the keys it leaves out, so ``-p DATA '{n_tweets: 500}'``
    changes one value. Unknown keys, and grouped values out of their range, raise
    :class:`~workbench.validation.InvalidParameterError` naming the parameter and what it accepts. The result is what
    the run record keeps.

    Examples
    --------
    >>> p = dp_study_parameters({"DATA": {"n_tweets": 500}, "TIMING": None, "EPOCHS": 3})
    >>> p["DATA"], p["TIMING"]["samples"], p["EPOCHS"]
    ({'n_tweets': 500, 'n_token_tweets': 20000, 'max_len': 32, 'max_vocab': 5000}, 1024, 3)
    >>> dp_study_parameters({"TIMING": {"sample": 64}})
    Traceback (most recent call last):
    ...
    workbench.validation.InvalidParameterError: The 'TIMING' parameter of notebook 01_dp_vs_non_dp must be a dict with keys among ['engines', 'models', 'samples']. Got {'sample': 64} instead.
    >>> dp_study_parameters({"DATA": {"n_tweets": 5}})
    Traceback (most recent call last):
    ...
    workbench.validation.InvalidParameterError: The "DATA['n_tweets']" parameter of notebook 01_dp_vs_non_dp must be an int in [10, 38158]. Got 5 instead.
    """
    return fill_groups(parameters, DP_GROUPS, owner="notebook 01_dp_vs_non_dp", constraints=_group_constraints())


SWEEP_COLUMNS = ["model", "epsilon_target", "epsilon", "noise_multiplier", "val_accuracy", "val_loss", "seconds_per_epoch",
                 "resumed"]
"""The columns of :func:`utility_sweep` worth showing first."""


def _models(models, owner: str) -> list[str]:
    from ..data import MODEL_FAMILIES

    return list(check(list(models), Seq(Options(set(MODEL_FAMILIES)), min_len=1), name="models", owner=owner))


def load_dp_tasks(models: Sequence[str], *, n_tweets: int, n_token_tweets: int, max_len: int, max_vocab: int,
                  seed: int = 0) -> dict:
    """The tweet tasks the ``models`` need, by feature kind (``"minilm"`` then ``"tokens"``).

    Token models (``bag``, ``gru``) train from scratch on ``n_token_tweets`` tweets; the MiniLM-feature heads
    (``linear``, ``mlp``) on ``n_tweets`` (their features cost an encoder pass each).

    Examples
    --------
    >>> tasks = load_dp_tasks(["bag"], n_tweets=100, n_token_tweets=120, max_len=8, max_vocab=500)
    >>> sorted(tasks), tasks["tokens"].n_train
    (['tokens'], 96)
    """
    from ..data import MODEL_FAMILIES, load_tweet_task

    models = _models(models, "load_dp_tasks")
    sizes = {"tokens": n_token_tweets, "minilm": n_tweets}
    return {f: load_tweet_task(n=sizes[f], features=f, max_len=max_len, max_vocab=max_vocab, seed=seed)
            for f in sorted({MODEL_FAMILIES[m] for m in models})}


def schedule_table(tasks: Mapping[str, Any], *, epsilons: Sequence[float], config, delta: float) -> pd.DataFrame:
    """Sample rate, steps and noise multiplier that DP-SGD needs for each target epsilon, for the smallest task.

    Examples
    --------
    >>> from workbench.training import TrainConfig
    >>> tasks = load_dp_tasks(["bag"], n_tweets=100, n_token_tweets=120, max_len=8, max_vocab=500)
    >>> table = schedule_table(tasks, epsilons=[8.0], config=TrainConfig(epochs=1, batch_size=32), delta=1e-5)
    >>> table["target epsilon"].tolist(), int(table["steps"][0])
    ([8.0], 3)
    """
    from ..dp import DPConfig, privacy_schedule

    n_train = min(t.n_train for t in tasks.values())
    return pd.DataFrame([{"target epsilon": e, **privacy_schedule(n_train, config=config, dp=DPConfig(target_epsilon=e, delta=delta))}
                         for e in epsilons])


def accounting_curves(*, sample_rate: float, steps: int, delta: float, points: int = 8, low: float = 0.5,
                      high: float = 4.0, accountants: Sequence[str] = ("rdp", "prv")) -> dict:
    """Epsilon as a function of the noise multiplier, per accountant: ``{"RDP": (sigmas, epsilons), ...}``.

    ``points`` noise multipliers spaced geometrically from ``low`` to ``high``; PRV takes about a second each.

    Examples
    --------
    >>> curves = accounting_curves(sample_rate=0.01, steps=100, delta=1e-5, points=2, accountants=["rdp"])
    >>> sigmas, eps = curves["RDP"]
    >>> sigmas.tolist(), eps[0] > eps[1]
    ([0.5, 4.0], True)
    """
    from ..accounting import compute_epsilon

    points = check(points, Interval(int, 1, None), name="points", owner="accounting_curves")
    sigmas = np.geomspace(low, high, points)
    return {acc.upper(): (sigmas, [compute_epsilon(noise_multiplier=float(s), sample_rate=sample_rate, steps=steps,
                                                   delta=delta, accountant=acc) for s in sigmas]) for acc in accountants}


def utility_sweep(tasks: Mapping[str, Any], *, models: Sequence[str], epsilons: Sequence[float], config, dp,
                  output_dir: str | Path, notebook: str = "01_dp_vs_non_dp", verbose: bool = True) -> pd.DataFrame:
    """Train each model without DP and at each target epsilon (:func:`~workbench.privacy.dp.epsilon_sweep`).

    Each model's points are saved under ``<output_dir>/sweep/<model>-n<rows>-e<epochs>-b<batch>-C<clip>-<engine>-seed<seed>``
    and resumed from there on a re-run. Returns the sweeps of all models in one tidy table with a ``model``
    column; ``verbose`` prints each model's wall time.
    """
    from ..data import MODEL_FAMILIES, make_task_model
    from ..dp import epsilon_sweep

    sweeps = []
    for name in _models(models, "utility_sweep"):
        task = tasks[MODEL_FAMILIES[name]]
        n_rows = task.n_train + len(task.val[1])
        run_root = (Path(output_dir) / "sweep" /
                    f"{name}-n{n_rows}-e{config.epochs}-b{config.batch_size}-C{dp.max_grad_norm:g}-{dp.engine}-seed{config.seed}")
        t0 = time.perf_counter()
        table = epsilon_sweep(lambda: make_task_model(name, task, seed=config.seed), task.train, epsilons=epsilons,
                              config=config, dp=dp, val=task.val, output_dir=run_root, notebook=notebook)
        table["model"] = name
        sweeps.append(table)
        if verbose:
            print(f"{name}: {time.perf_counter() - t0:.1f} s")
    return pd.concat(sweeps, ignore_index=True)


def gradient_norms(task, *, config, max_grad_norm: float, n: int = 512, model: str = "bag") -> dict:
    """Per-example gradient norms of ``n`` training examples at initialisation and after non-DP training.

    Returns ``{"at initialisation": [...], "after non-DP training": [...]}`` (computed with ghost clipping's
    norm pass, :class:`~workbench.privacy.fast_dp.GhostClippingEngine`); the model is seeded by ``config.seed``.
    """
    from workbench.training import fit

    from ..data import make_task_model
    from ..fast_dp import GhostClippingEngine

    probe = make_task_model(model, task, seed=config.seed)
    xb, yb = task.train[0][:n], task.train[1][:n]
    norms = {}
    for label in ("at initialisation", "after non-DP training"):
        if label == "after non-DP training":
            fit(probe, task.train, config=config, progress=False)
        engine = GhostClippingEngine(probe, max_grad_norm=max_grad_norm)
        norms[label] = engine.per_sample_norms(xb, yb).tolist()
        engine.remove()
    return norms


def norm_summary(norms: Mapping[str, Sequence[float]], *, clip: float) -> dict:
    """Median norm and the share of examples above the clipping norm, per entry of :func:`gradient_norms`.

    Examples
    --------
    >>> norm_summary({"a": [0.5, 2.0, 3.0]}, clip=1.0)
    {'a': 'median 2.000, clipped share at C=1: 67%'}
    """
    return {k: f"median {np.median(v):.3f}, clipped share at C={clip:g}: {np.mean(np.array(v) > clip):.0%}" for k, v in norms.items()}


def clip_noise_grid(tasks: Mapping[str, Any], *, clip_norms: Sequence[float], noise_multipliers: Sequence[float], config,
                    delta: float, engine: str) -> tuple[str, pd.DataFrame]:
    """Train the cheapest model once per (noise multiplier, clipping norm); returns ``(model, table)``.

    The model is a linear head on MiniLM features when ``tasks`` has them, else the bag-of-embeddings model.
    Rows: ``noise_multiplier``, ``max_grad_norm``, ``epsilon`` and the ``val_`` metrics.
    """
    from ..data import MODEL_FAMILIES, make_task_model
    from ..dp import DPConfig, train

    model = "linear" if "minilm" in tasks else "bag"
    task = tasks[MODEL_FAMILIES[model]]
    rows = []
    for sigma in noise_multipliers:
        for c in clip_norms:
            res = train(make_task_model(model, task, seed=config.seed), task.train, config=config,
                        dp=DPConfig(noise_multiplier=sigma, max_grad_norm=c, delta=delta, engine=engine), val=task.val, progress=False)
            rows.append({"noise_multiplier": sigma, "max_grad_norm": c, "epsilon": res.epsilon,
                         **{f"val_{k}": v for k, v in res.metrics.items()}})
    return model, pd.DataFrame(rows)


def dp_study_record(*, config, dp, sweep: pd.DataFrame, timing: pd.DataFrame, grid: pd.DataFrame) -> dict:
    """The ``config``, ``metrics``, ``history`` and ``extra`` sections of notebook 01's run record, as keyword
    arguments of :func:`workbench.results.save_record` (metrics: :func:`~.training.dp_study_metrics`).

    Examples
    --------
    >>> sweep = pd.DataFrame({"model": ["bag"], "epsilon_target": [None], "epsilon": [None], "val_accuracy": [0.6]})
    >>> timing = pd.DataFrame({"model": ["bag"], "engine": ["fast"], "slowdown": [1.2]})
    >>> rec = dp_study_record(config=None, dp=None, sweep=sweep, timing=timing, grid=pd.DataFrame())
    >>> rec["metrics"]
    {'bag/non_dp/val_accuracy': 0.6, 'bag/non_dp/epsilon': None, 'slowdown/bag/fast': 1.2}
    """
    return {"config": {"train": config, "dp": dp}, "metrics": dp_study_metrics(sweep, timing=timing),
            "history": sweep.to_dict("records"),
            "extra": {"timing": timing.to_dict("records"), "clip_grid": grid.to_dict("records")}}
