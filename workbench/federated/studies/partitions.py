"""FedNLP's partitions in notebook 03: side by side (:func:`partition_study`) and trained on, uniform vs activity
selection over seeds (:func:`partition_seed_study`)."""
from __future__ import annotations

import functools

import numpy as np
import pandas as pd

from workbench.validation import Boolean, Interval, Options, Seq, check

from ..partition import (Partition, dirichlet_partition, iid_partition, kmeans_partition, partition_stats,
                         quantity_partition)
from ..simulation import FederatedData
from .config import FedStudyConfig
from .runs import _among
from .seeds import seed_study

__all__ = ["fednlp_partitions", "partition_study", "with_partition", "SEED_PARTITIONS", "partition_seed_study"]


def fednlp_partitions(data: FederatedData, *, n_clients: int, alpha: float = 0.1, min_partition_size: int = 10,
                      seed: int = 0, topics: bool = True, names=None) -> dict:
    """FedNLP's partitions of ``data``'s training samples, by name: IID, label-Dirichlet and quantity skew (each
    without and with a minimum partition size) and, with ``topics``, k-means topic clusters (without and with the
    minimum size) of MiniLM features: the tweets' own features, or for Shakespeare the features of the speech each
    sample comes from (:func:`~workbench.federated.tasks.speech_features`, cached after the first run; a speech's
    samples stay together).

    Each :class:`~workbench.federated.partition.Partition` holds *positions* into the training samples
    (``0 .. data.train.n_samples - 1``); :func:`with_partition` turns one into devices to train on. ``names``: build
    only these (default: all), e.g. to skip the k-means fits that are not needed.
    """
    check(topics, Boolean(), name="topics", owner="fednlp_partitions")
    labels = _train_labels(data)
    n, m = len(labels), min_partition_size

    @functools.cache
    def topics_of():  # kmeans_partition's features (and groups): read once, only if a topic partition is built
        if data.X.is_floating_point():
            return {"features": data.X[data.train.sample_ids()].numpy()}
        from ..tasks import speech_features

        return {"features": speech_features(data), "groups": np.asarray(data.info["speech"])[data.train.sample_ids()]}

    builders = {
        "iid": lambda: iid_partition(n, n_clients=n_clients, seed=seed),
        f"dirichlet (alpha {alpha:g})": lambda: dirichlet_partition(labels, n_clients=n_clients, alpha=alpha, seed=seed),
        f"dirichlet, min size {m}": lambda: dirichlet_partition(labels, n_clients=n_clients, alpha=alpha, seed=seed,
                                                                min_partition_size=m, min_size_method="top_up"),
        f"quantity (alpha {alpha:g})": lambda: quantity_partition(n, n_clients=n_clients, alpha=alpha, seed=seed),
        f"quantity, min size {m}": lambda: quantity_partition(n, n_clients=n_clients, alpha=alpha, seed=seed, min_size=m),
    }
    if topics and (data.X.is_floating_point() or "speeches" in data.info):
        builders["k-means topics"] = lambda: kmeans_partition(**topics_of(), n_clients=n_clients, seed=seed)
        builders[f"k-means topics, min size {m}"] = lambda: kmeans_partition(**topics_of(), n_clients=n_clients,
                                                                             seed=seed, min_partition_size=m)
    wanted = builders if names is None else [name for name in builders if name in set(names)]
    return {name: builders[name]() for name in wanted}


def _train_labels(data: FederatedData) -> np.ndarray:
    return data.y[data.train.sample_ids()].numpy()


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
    ids = data.train.sample_ids()
    positions = partition.sample_ids()
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
    from ..tasks import make_model_fn

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
    names = {key: SEED_PARTITIONS[key].format(m=min_partition_size) for key in partitions}
    made = fednlp_partitions(data, n_clients=config.n_clients, alpha=alpha, min_partition_size=min_partition_size,
                             seed=config.seed, names=names.values())
    for key, name in names.items():
        devices = with_partition(data, made[name], name=key, seed=config.seed)
        tables.append(seed_study(devices, config, seeds=seeds, strategies=strategies, settings=("static",),
                                 model_fn=model_fn, progress=progress).assign(setting=key))
    return pd.concat(tables, ignore_index=True)
