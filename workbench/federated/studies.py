"""Notebook 03's federated study as functions: one validated config, study functions returning tidy tables, one
record builder.

:class:`FedStudyConfig` holds every knob of the notebook and builds the :class:`FedConfig` of each run.
:func:`load_study_data` -> :func:`centralized_baseline` ; :func:`selection_study` (every strategy in the static
and continual settings, and the natural-vs-shuffled control) ; :func:`fairness_table` (light vs heavy users) ;
:func:`seed_study` + :func:`seed_intervals` (the comparisons over several seeds with 95% intervals; or one batch
run per seed, combined by :func:`seeds_from_runs`) ;
:func:`partition_study` (FedNLP's partitions side by side) ; :func:`partition_seed_study` (does the ranking
hold on those partitions, over seeds) ; :func:`client_privacy_study` (DP-FedAvg's
per-client epsilon under each selection strategy, and the utility it buys) ; :func:`study_record` (the run
record's metrics and tables).

Examples
--------
>>> cfg = FedStudyConfig(task="shakespeare", data_size="tiny", rounds=2, strategies=["uniform", "activity"])
>>> cfg.metric, cfg.fed_config("activity", clients_per_round=3).strategy
('test_perplexity', 'activity')
"""
from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field

import numpy as np
import pandas as pd

from workbench.validation import Boolean, Interval, Options, Seq, check, check_fields

from .partition import (Partition, dirichlet_partition, iid_partition, kmeans_partition, partition_stats,
                        quantity_partition, shuffled_like)
from .privacy import inclusion_probabilities, per_client_epsilon
from .selection import STRATEGIES
from .batched import BatchedSimulator
from .simulation import FedAvgSimulator, FedConfig, FederatedData, FedResult, run_fedavg, train_centralized
from .strategies import SERVER_STRATEGIES
from .users import activity_groups

__all__ = ["FedStudyConfig", "FedStudy", "study_config", "GROUPS", "ENGINES", "load_study_data", "data_summary", "first_draw_table", "centralized_baseline", "selection_study", "fairness_table",
           "seed_study", "seeds_from_runs", "seed_intervals", "study_finding", "metric_key_of", "fednlp_partitions", "partition_study", "with_partition",
           "SEED_PARTITIONS", "partition_seed_study", "client_privacy_study", "study_record", "SETTINGS"]

#: Simulators by name: ``batched`` trains a round's devices together (equal to ``per_device`` within float
#: rounding, :mod:`~workbench.federated.batched`), ``per_device`` is the plain loop.
ENGINES = {"batched": BatchedSimulator, "per_device": FedAvgSimulator}

#: The settings of :func:`selection_study` and :func:`seed_study`.
SETTINGS = ("static", "continual", "shuffled_iid")
_COUNT = Interval(int, 1, None)
_POSITIVE = Interval(float, 0, None, closed="neither")


@dataclass(frozen=True)
class FedStudyConfig:
    """Every parameter of notebook 03 (validated; NumPy scalars accepted). See the notebook for their meaning.

    Examples
    --------
    >>> FedStudyConfig(strategies=["uniform", "nearest"])
    Traceback (most recent call last):
    ...
    workbench.validation.InvalidParameterError: The 'strategies' parameter of FedStudyConfig must be a non-empty list or tuple of one of ('activity', 'power_of_choice', 'round_robin', 'tempered', 'uniform'). Got ['uniform', 'nearest'] instead.
    """

    task: str = "shakespeare"
    data_size: str = "small"
    strategies: tuple = ("uniform", "activity", "tempered", "power_of_choice", "round_robin")
    rounds: int = 40
    clients_per_round: int = 10
    local_epochs: int = 1
    max_local_steps: int | None = 20
    batch_size: int = 32
    client_lr: float = 0.5
    server_lr: float = 1.0
    server: str = "fedavg"
    eval_every: int = 5
    context: int = 16
    stride: int = 8
    n_clients: int = 100
    alpha: float = 0.5
    continual_periods: int = 4
    storage_limit: int = 64
    central_epochs: int = 2
    seed: int = 0
    topics: bool = True
    dp_noise: float = 0.3
    dp_clip: float = 0.5
    engine: str = "batched"

    def __post_init__(self):
        strategies = self.strategies.split(",") if isinstance(self.strategies, str) else self.strategies
        object.__setattr__(self, "strategies", [s.strip() if isinstance(s, str) else s for s in strategies])
        check_fields(self, task=Options(("shakespeare", "tweets")), data_size=Options(("tiny", "small", "full")),
                     strategies=Seq(Options(tuple(sorted(STRATEGIES))), min_len=1), rounds=_COUNT,
                     clients_per_round=_COUNT, local_epochs=_COUNT, max_local_steps=(_COUNT, None), batch_size=_COUNT,
                     client_lr=_POSITIVE, server_lr=_POSITIVE, server=Options(tuple(sorted(SERVER_STRATEGIES))),
                     eval_every=_COUNT, context=_COUNT, stride=_COUNT, n_clients=Interval(int, 2, None), alpha=_POSITIVE,
                     continual_periods=_COUNT, storage_limit=_COUNT, central_epochs=_COUNT, seed=Interval(int, None, None),
                     topics=Boolean(), dp_noise=_POSITIVE, dp_clip=_POSITIVE, engine=Options(tuple(sorted(ENGINES))))

    @property
    def simulator(self):
        """The simulator class of :attr:`engine` (:data:`ENGINES`)."""
        return ENGINES[self.engine]

    @property
    def metric(self) -> str:
        """The headline metric: next-character perplexity (Shakespeare, lower is better) or accuracy (tweets)."""
        return "test_perplexity" if self.task == "shakespeare" else "test_accuracy"

    @property
    def lower_is_better(self) -> bool:
        return self.metric == "test_perplexity"

    def fed_config(self, strategy: str, **changes) -> FedConfig:
        """The :class:`FedConfig` of one run (``changes`` override fields, e.g. ``seed`` or ``periods``)."""
        base = dict(rounds=self.rounds, clients_per_round=self.clients_per_round, strategy=strategy,
                    local_epochs=self.local_epochs, max_local_steps=self.max_local_steps, batch_size=self.batch_size,
                    client_lr=self.client_lr, server_lr=self.server_lr, server=self.server, eval_every=self.eval_every,
                    seed=self.seed)
        base.update(changes)
        return FedConfig(**base)

    def parameters(self) -> dict:
        """The notebook's parameter names (upper case) and values, for the run record."""
        return {name.upper(): value for name, value in asdict(self).items()}

    def continual(self) -> dict:
        """The FedConfig fields of the continual setting."""
        return {"periods": self.continual_periods, "storage_limit": self.storage_limit}


#: Notebook 03's grouped parameters (dict literals) -> {key: FedStudyConfig field}; see :func:`study_config`.
GROUPS = {
    "training": {"local_epochs": "local_epochs", "batch_size": "batch_size", "client_lr": "client_lr",
                 "server_lr": "server_lr", "eval_every": "eval_every", "central_epochs": "central_epochs",
                 "engine": "engine"},
    "data": {"context": "context", "stride": "stride", "n_clients": "n_clients", "alpha": "alpha", "topics": "topics"},
    "continual": {"periods": "continual_periods", "storage_limit": "storage_limit"},
    "dp": {"noise": "dp_noise", "clip": "dp_clip"},
}


def study_config(*, training: dict | None = None, data: dict | None = None, continual: dict | None = None,
                 dp: dict | None = None, **fields) -> FedStudyConfig:
    """A :class:`FedStudyConfig` from notebook 03's parameters: plain ``fields`` plus the grouped dicts
    (:data:`GROUPS`), each of which may hold only *some* of its keys (the rest keep their defaults), so
    ``-p DATA '{alpha: 0.05}'`` changes one value. Unknown keys are an error naming the accepted ones.

    Examples
    --------
    >>> cfg = study_config(rounds=3, data={"alpha": 0.05}, dp={"noise": 1.0})
    >>> cfg.rounds, cfg.alpha, cfg.context, cfg.dp_noise, cfg.dp_clip
    (3, 0.05, 16, 1.0, 0.5)
    >>> study_config(dp={"sigma": 1.0})
    Traceback (most recent call last):
    ...
    workbench.validation.InvalidParameterError: The 'dp' parameter of study_config must be a dict with keys among ['clip', 'noise']. Got {'sigma': 1.0} instead.
    """
    from workbench.validation import fill_group

    for group, given in {"training": training, "data": data, "continual": continual, "dp": dp}.items():
        if given is not None:
            keys = GROUPS[group]
            defaults = {key: FedStudyConfig.__dataclass_fields__[f].default for key, f in keys.items()}
            fields.update({keys[k]: v for k, v in fill_group(given, defaults, name=group, owner="study_config").items()})
    return FedStudyConfig(**fields)


def load_study_data(config: FedStudyConfig) -> FederatedData:
    """The study's devices: one per Shakespeare speaker, or tweets split with Dirichlet label skew.

    ``clients_per_round`` larger than the devices holding data is an error naming both numbers.
    """
    from .tasks import shakespeare_task, tweets_task

    if config.task == "shakespeare":
        data = shakespeare_task(size=config.data_size, context=config.context, stride=config.stride)
    else:
        data = tweets_task(size=config.data_size, n_clients=config.n_clients, alpha=config.alpha, seed=config.seed)
    available = int((data.train.sizes > 0).sum())
    if config.clients_per_round > available:
        raise ValueError(f"The 'clients_per_round' parameter of FedStudyConfig must be <= the {available} devices holding "
                         f"training data in {data.name}. Got {config.clients_per_round} instead.")
    return data


def data_summary(data: FederatedData) -> str:
    """One line on how uneven the devices are (count, samples, median and max per device, top-10% share)."""
    sizes = data.train.sizes
    top = np.sort(sizes)[::-1][: max(1, len(sizes) // 10)].sum() / max(sizes.sum(), 1)
    return (f"{data.name}: {data.n_clients} devices, {data.train.n_samples} training samples, {data.n_classes} classes; "
            f"samples per device: median {np.median(sizes):.0f}, max {sizes.max()}, the top 10% of devices hold {top:.0%}")


def first_draw_table(data: FederatedData, *, strategies=("uniform", "activity", "tempered"), top: int = 5) -> pd.DataFrame:
    """Probability that each of the ``top`` most active devices is the first one drawn, per strategy."""
    from .selection import first_draw_probabilities

    sizes = data.train.sizes
    idx = np.argsort(-sizes, kind="stable")[:top]
    names = [str(n) for n in data.train.names[idx]] if data.train.names is not None else idx.tolist()
    return pd.DataFrame({s: first_draw_probabilities(s, sizes)[idx] for s in strategies}, index=names)


def centralized_baseline(data: FederatedData, config: FedStudyConfig, *, model_fn=None) -> pd.DataFrame:
    """The same model and SGD on the pooled training data, one row per epoch (``epoch``, ``samples_seen``,
    ``train_loss``, ``test_*``, ``seconds``)."""
    from .tasks import make_model_fn

    _, hist = train_centralized(data, model_fn=model_fn or make_model_fn(data), epochs=config.central_epochs,
                                batch_size=config.batch_size, lr=config.client_lr, seed=config.seed, progress=False)
    return pd.DataFrame(hist)


@dataclass
class FedStudy:
    """What :func:`selection_study` returns: ``runs[setting][strategy]`` (:class:`FedResult`) and ``table``, one row
    per (setting, strategy) with the final metrics and seconds."""

    runs: dict
    table: pd.DataFrame
    iid_data: FederatedData | None = None

    def histories(self, setting: str) -> dict:
        return {s: r.history for s, r in self.runs[setting].items()}

    def finals(self, metric: str, settings=("static", "continual")) -> dict:
        """``{setting: {strategy: final metric}}`` for :func:`workbench.plots.federated.settings_figure`."""
        return {s: {k: r.final[metric] for k, r in self.runs[s].items()} for s in settings if s in self.runs}


def _final_row(setting: str, strategy: str, res: FedResult, **extra) -> dict:
    return {"setting": setting, "strategy": strategy, **extra, **res.final, "seconds": res.seconds}


def selection_study(data: FederatedData, config: FedStudyConfig, *, model_fn=None, progress: bool = True,
                    settings=SETTINGS, iid_strategies=("uniform", "activity")) -> FedStudy:
    """Run every strategy of ``config`` in the static and continual settings, and ``iid_strategies`` on
    :func:`~workbench.federated.partition.shuffled_like` devices (same sizes, IID samples).

    Returns
    -------
    FedStudy
        ``table`` columns: ``setting``, ``strategy``, the :attr:`FedResult.final` metrics, ``seconds``.
    """
    from tqdm.auto import tqdm

    from .tasks import make_model_fn

    model_fn = model_fn or make_model_fn(data)
    iid_data = _shuffled(data, config)
    compare = [s for s in config.strategies if s in iid_strategies] or list(config.strategies[:1])
    jobs = [(setting, s) for setting in settings for s in (compare if setting == "shuffled_iid" else config.strategies)]
    runs: dict = {setting: {} for setting in settings}
    for setting, s in tqdm(jobs, desc="selection study", unit="run", disable=not progress):
        fed = config.fed_config(s, **(config.continual() if setting == "continual" else {}))
        runs[setting][s] = run_fedavg(iid_data if setting == "shuffled_iid" else data, model_fn=model_fn, config=fed,
                                      progress=False, simulator=config.simulator)
    table = pd.DataFrame([_final_row(setting, s, r) for setting, by in runs.items() for s, r in by.items()])
    return FedStudy(runs, table, iid_data)


def _shuffled(data: FederatedData, config: FedStudyConfig) -> FederatedData:
    """``data``'s devices with the same sizes and the samples dealt at random (the IID control)."""
    return FederatedData(data.X, data.y, train=shuffled_like(data.train, seed=config.seed), test=data.test,
                         n_classes=data.n_classes, task=data.task, name=data.name + "-shuffled")


def fairness_table(runs: dict) -> pd.DataFrame:
    """Each device's accuracy on its own test samples under the final model, averaged per activity group
    (:func:`~workbench.federated.users.activity_groups`), plus the 10th percentile; one row per strategy."""
    rows = []
    for strategy, res in runs.items():
        cm = res.client_metrics
        groups = activity_groups(cm["n_train"])
        row = {"strategy": strategy}
        row.update({f"{g}_users_accuracy": float(cm["accuracy"][groups == g].mean()) for g in ("light", "medium", "heavy")})
        row["accuracy_p10"] = res.final["client_accuracy_p10"]
        rows.append(row)
    return pd.DataFrame(rows)


def _among(config: FedStudyConfig, wanted) -> list:
    return [s for s in wanted if s in config.strategies] or list(config.strategies[:1])


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

    from .tasks import make_model_fn

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

    from workbench.results import RECORD_NAME, load_record

    check(table, Options(("seeds", "partition_seeds")), name="table", owner="seeds_from_runs")
    frames, settings = [], {}
    for path in sorted(Path(runs_dir).rglob(RECORD_NAME)):
        try:
            rec = load_record(path)
        except (OSError, ValueError):
            continue  # a broken record: `python -m workbench collect` lists it with the reason
        rows = (rec.get("tables") or {}).get(table) if isinstance(rec, dict) else None
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


def fednlp_partitions(data: FederatedData, *, n_clients: int, alpha: float = 0.1, min_partition_size: int = 10,
                      seed: int = 0, topics: bool = True) -> dict:
    """FedNLP's partitions of ``data``'s training samples, by name: IID, label-Dirichlet and quantity skew (each
    without and with a minimum partition size) and, with ``topics``, k-means topic clusters (without and with the
    minimum size) of MiniLM features: the tweets' own features, or for Shakespeare the features of the speech each
    sample comes from (:func:`~workbench.federated.tasks.speech_features`, cached after the first run; a speech's
    samples stay together).

    Each :class:`~workbench.federated.partition.Partition` holds *positions* into the training samples
    (``0 .. data.train.n_samples - 1``); :func:`with_partition` turns one into devices to train on.
    """
    check(topics, Boolean(), name="topics", owner="fednlp_partitions")
    labels = _train_labels(data)
    features, groups = None, None
    if topics and data.X.is_floating_point():
        features = data.X[_train_ids(data)].numpy()
    elif topics and "speeches" in data.info:
        from .tasks import speech_features

        features, groups = speech_features(data), np.asarray(data.info["speech"])[_train_ids(data)]
    n = len(labels)
    parts = {
        "iid": iid_partition(n, n_clients=n_clients, seed=seed),
        f"dirichlet (alpha {alpha:g})": dirichlet_partition(labels, n_clients=n_clients, alpha=alpha, seed=seed),
        f"dirichlet, min size {min_partition_size}": dirichlet_partition(
            labels, n_clients=n_clients, alpha=alpha, seed=seed, min_partition_size=min_partition_size, min_size_method="top_up"),
        f"quantity (alpha {alpha:g})": quantity_partition(n, n_clients=n_clients, alpha=alpha, seed=seed),
        f"quantity, min size {min_partition_size}": quantity_partition(n, n_clients=n_clients, alpha=alpha, seed=seed,
                                                                     min_size=min_partition_size),
    }
    if features is not None:
        parts["k-means topics"] = kmeans_partition(np.asarray(features), n_clients=n_clients, seed=seed, groups=groups)
        parts[f"k-means topics, min size {min_partition_size}"] = kmeans_partition(
            np.asarray(features), n_clients=n_clients, seed=seed, groups=groups, min_partition_size=min_partition_size)
    return parts


def _train_ids(data: FederatedData) -> np.ndarray:
    return np.arange(data.train.n_samples) if data.train.indices is None else data.train.indices


def _train_labels(data: FederatedData) -> np.ndarray:
    return data.y[_train_ids(data)].numpy()


def partition_study(data: FederatedData, *, n_clients: int, alpha: float = 0.1, min_partition_size: int = 10,
                    seed: int = 0, topics: bool = True) -> tuple[pd.DataFrame, dict]:
    """FedNLP's partitions of ``data``'s training samples side by side (:func:`fednlp_partitions`).

    Returns the :func:`~workbench.federated.partition.partition_stats` table (one row per partition) and the
    client sizes of each partition (for a figure).
    """
    parts = fednlp_partitions(data, n_clients=n_clients, alpha=alpha, min_partition_size=min_partition_size, seed=seed,
                              topics=topics)
    labels = _train_labels(data)
    table = pd.DataFrame([partition_stats(p, labels, name=name) for name, p in parts.items()])
    return table, {name: p.sizes for name, p in parts.items()}


def with_partition(data: FederatedData, partition, *, name: str, seed: int = 0) -> FederatedData:
    """``data`` with its training samples dealt to devices by ``partition`` (positions into the training samples,
    as :func:`fednlp_partitions` gives) and its test samples dealt at random over the same devices.

    The pooled test set, and so every ``test_*`` metric, is unchanged; only the devices differ.

    Examples
    --------
    >>> import torch
    >>> from workbench.federated.partition import Partition
    >>> data = FederatedData(torch.zeros(6, 1), torch.arange(6), train=Partition.from_sizes([2, 2]),
    ...                      test=Partition([0, 1, 2], np.array([4, 5])), n_classes=6)
    >>> d = with_partition(data, Partition.from_sizes([1, 0, 3]), name="skewed")
    >>> d.train.sizes.tolist(), d.test.n_clients, d.name
    ([1, 0, 3], 3, 'data-skewed')
    """
    ids = _train_ids(data)
    positions = np.arange(partition.n_samples) if partition.indices is None else partition.indices
    if partition.n_samples != len(ids) or len(np.unique(positions)) != len(ids):
        raise ValueError(f"The 'partition' parameter of with_partition must deal each of the {len(ids)} training "
                         f"samples once. Got {partition.n_samples} positions instead.")
    test_ids = data.test_indices()
    dealt = Partition.from_assignment(np.random.default_rng(seed).permutation(len(test_ids)) % partition.n_clients,
                                      n_clients=partition.n_clients)  # round robin over a shuffle: sizes differ by <= 1
    test = Partition(dealt.offsets, test_ids[dealt.indices])
    return FederatedData(data.X, data.y, train=Partition(partition.offsets, ids[positions], partition.names), test=test,
                         n_classes=data.n_classes, task=data.task, name=f"{data.name}-{name}", info=data.info)


#: The partitions of :func:`partition_seed_study`: record name -> name in :func:`fednlp_partitions` (``{m}`` is the
#: minimum partition size).
SEED_PARTITIONS = {"dirichlet": "dirichlet, min size {m}", "quantity": "quantity, min size {m}",
                   "topics": "k-means topics, min size {m}"}


def partition_seed_study(data: FederatedData, config: FedStudyConfig, *, seeds, partitions=None,
                         alpha: float = 0.1, min_partition_size: int = 10, strategies=None, natural: pd.DataFrame | None = None,
                         model_fn=None, progress: bool = True) -> pd.DataFrame:
    """Does the ranking of the strategies hold on FedNLP's partitions? The static setting over ``seeds`` on the
    ``data``'s natural devices and on each of ``partitions`` (:data:`SEED_PARTITIONS`: label-Dirichlet, quantity
    skew, k-means topics, each with ``min_partition_size``, made with seed ``config.seed``; ``n_clients`` from the
    config; default: all of them, the topics only if ``config.topics``).

    ``strategies`` default to uniform and activity (those of them in ``config.strategies``); ``seeds=None`` is
    ``[config.seed]``, as in :func:`seed_study`. ``natural``: a :func:`seed_study` table whose ``static`` rows stand in for the natural devices (not run twice). Returns the
    rows of :func:`seed_study` with ``setting`` = ``natural`` or the partition's record name, so
    :func:`seed_intervals` gives each partition's paired differences.

    Examples
    --------
    >>> partition_seed_study(None, FedStudyConfig(), seeds=[0, 1], partitions=["labels"])
    Traceback (most recent call last):
    ...
    workbench.validation.InvalidParameterError: The 'partitions' parameter of partition_seed_study must be a non-empty list or tuple of one of ('dirichlet', 'quantity', 'topics'). Got ['labels'] instead.
    """
    from tqdm.auto import tqdm

    from .tasks import make_model_fn

    owner = "partition_seed_study"
    if partitions is None:
        partitions = [key for key in SEED_PARTITIONS if config.topics or key != "topics"]
    partitions = check(list(partitions), Seq(Options(tuple(SEED_PARTITIONS)), min_len=1), name="partitions", owner=owner)
    seeds = [config.seed] if seeds is None else check(list(seeds), Seq(Interval(int, None, None), min_len=1),
                                                      name="seeds", owner=owner)
    strategies = _among(config, ("uniform", "activity")) if strategies is None else list(strategies)
    model_fn = model_fn or make_model_fn(data)
    if natural is not None and set(seeds) <= set(natural.loc[natural["setting"] == "static", "seed"]):
        rows = natural[(natural["setting"] == "static") & natural["seed"].isin(seeds) & natural["strategy"].isin(strategies)]
        tables = [rows.assign(setting="natural")]
    else:
        tables = [seed_study(data, config, seeds=seeds, strategies=strategies, settings=("static",), model_fn=model_fn,
                             progress=progress).assign(setting="natural")]
    made = fednlp_partitions(data, n_clients=config.n_clients, alpha=alpha, min_partition_size=min_partition_size,
                             seed=config.seed, topics="topics" in partitions)
    rows = []
    jobs = [(key, s, seed) for key in partitions for s in strategies for seed in seeds]
    devices = {key: with_partition(data, made[SEED_PARTITIONS[key].format(m=min_partition_size)], name=key,
                                   seed=config.seed) for key in partitions}
    for key, s, seed in tqdm(jobs, desc="partition seeds", unit="run", disable=not progress):
        res = run_fedavg(devices[key], model_fn=model_fn, config=config.fed_config(s, seed=seed), progress=False,
                         simulator=config.simulator)
        rows.append(_final_row(key, s, res, seed=seed))
    return pd.concat([*tables, pd.DataFrame(rows)], ignore_index=True)


def client_privacy_study(data: FederatedData, config: FedStudyConfig, *, strategies=None,
                         noise_multiplier: float | None = None, clip: float | None = None, delta: float = 1e-5, run: bool = True,
                         model_fn=None, progress: bool = True) -> tuple[pd.DataFrame, pd.DataFrame]:
    """DP-FedAvg with client-level DP: every device's epsilon under each selection strategy, and the utility.

    A device's sampling rate is its inclusion probability per round
    (:func:`~workbench.federated.privacy.inclusion_probabilities`, static setting); its epsilon composes
    ``config.rounds`` rounds at that rate (:func:`~workbench.federated.privacy.per_client_epsilon`). With
    ``run``, each strategy also trains with DP-FedAvg (clip ``clip``, noise ``noise_multiplier``; default: the
    config's ``dp_clip`` and ``dp_noise``).
    ``strategies`` default to uniform, tempered and activity (those of them in ``config.strategies``).

    Returns
    -------
    clients : DataFrame
        One row per (strategy, device): ``n_train``, ``group`` (activity group), ``sample_rate``, ``epsilon``.
    summary : DataFrame
        One row per strategy: median and maximum epsilon, median epsilon of the heavy users, and (with ``run``)
        the DP model's final metrics.
    """
    from tqdm.auto import tqdm

    from .tasks import make_model_fn

    strategies = _among(config, ("uniform", "tempered", "activity")) if strategies is None else list(strategies)
    noise_multiplier = config.dp_noise if noise_multiplier is None else noise_multiplier
    clip = config.dp_clip if clip is None else clip
    sizes = data.train.sizes
    groups = activity_groups(sizes)
    client_rows, summary = [], []
    for s in tqdm(list(strategies), desc="client privacy", unit="strategy", disable=not progress):
        q = inclusion_probabilities(s, sizes, k=config.clients_per_round)
        eps = per_client_epsilon(noise_multiplier=noise_multiplier, sample_rates=q, rounds=config.rounds, delta=delta)
        client_rows.append(pd.DataFrame({"strategy": s, "client": np.arange(len(sizes)), "n_train": sizes, "group": groups,
                                         "sample_rate": q, "epsilon": eps}))
        held = sizes > 0
        row = {"strategy": s, "epsilon_median": float(np.median(eps[held])), "epsilon_max": float(eps.max()),
               "heavy_users_epsilon_median": float(np.median(eps[held & (groups == "heavy")])),
               "light_users_epsilon_median": float(np.median(eps[held & (groups == "light")]))}
        if run:
            fed = config.fed_config(s, dp_clip=clip, dp_noise_multiplier=noise_multiplier, dp_delta=delta)
            res = run_fedavg(data, model_fn=model_fn or make_model_fn(data), config=fed, progress=False,
                             simulator=config.simulator)
            row.update({k: v for k, v in res.final.items() if k.startswith("test_")})
        summary.append(row)
    return pd.concat(client_rows, ignore_index=True), pd.DataFrame(summary)


def metric_key_of(config: FedStudyConfig, setting: str, strategy: str) -> str:
    """The record's name of a run's headline metric, e.g. ``static/activity/test_perplexity``."""
    return f"{setting}/{strategy}/{config.metric}"


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
