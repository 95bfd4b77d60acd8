"""Client partitions of a dataset, stored compactly as index ranges into shared arrays.

A :class:`Partition` holds one ``int64`` array of sample indices ordered by client and an ``offsets``
array (client ``i`` owns ``indices[offsets[i]:offsets[i + 1]]``). When the samples of each client are
contiguous (synthetic devices, benchmarks) ``indices`` is ``None`` and client ``i`` owns the range
``offsets[i]:offsets[i + 1]`` itself, so a million simulated devices cost one 8 MB offsets array.

Partitioners (see :data:`PARTITIONERS`): ``iid``, ``dirichlet`` (label skew, optionally with a minimum
partition size as ``flwr_datasets``' ``DirichletPartitioner``), ``quantity`` (size skew), ``kmeans``
(clusters of sentence features as topic-like partitions, as in FedNLP) and ``natural`` (one client per
existing group, e.g. a Shakespeare speaker). All are deterministic per seed and assign every sample to
exactly one client. :func:`partition_stats` summarises a partition in one row (sizes, label skew).

Examples
--------
>>> p = iid_partition(10, n_clients=3, seed=0)
>>> p.sizes.tolist()
[4, 3, 3]
>>> sorted(np.concatenate([p.client(i) for i in range(3)]).tolist()) == list(range(10))
True
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np
import pandas as pd

from workbench.validation import Interval, InvalidParameterError, Options, check

__all__ = [
    "Partition",
    "iid_partition",
    "dirichlet_partition",
    "quantity_partition",
    "natural_partition",
    "kmeans_partition",
    "shuffled_like",
    "partition_stats",
    "PARTITIONERS",
    "make_partition",
]


@dataclass(frozen=True, eq=False)
class Partition:
    """Samples of each client, as ranges of ``indices`` (or of the sample ids themselves).

    Parameters
    ----------
    offsets : int64 array, shape (n_clients + 1,)
        Non-decreasing, starting at 0; client ``i`` owns positions ``offsets[i]:offsets[i + 1]``.
    indices : int64 array, optional
        Sample ids ordered by client. ``None`` means the identity (positions are the sample ids).
    names : sequence, optional
        A name per client (e.g. ``"Hamlet/HAMLET"``); default: the client number.

    Examples
    --------
    >>> p = Partition.from_sizes([2, 0, 3])
    >>> p.n_clients, p.n_samples, p.client(2).tolist()
    (3, 5, [2, 3, 4])
    """

    offsets: np.ndarray
    indices: np.ndarray | None = None
    names: np.ndarray | None = None

    def __post_init__(self):
        offsets = np.asarray(self.offsets, dtype=np.int64)
        if offsets.ndim != 1 or len(offsets) < 1 or offsets[0] != 0 or np.any(np.diff(offsets) < 0):
            raise ValueError("The 'offsets' parameter of Partition must be a non-decreasing 1-D array starting at 0.")
        object.__setattr__(self, "offsets", offsets)
        if self.indices is not None:
            indices = np.asarray(self.indices, dtype=np.int64)
            if indices.shape != (offsets[-1],):
                raise ValueError(
                    f"The 'indices' parameter of Partition must hold offsets[-1] = {offsets[-1]} entries. "
                    f"Got {indices.shape} instead."
                )
            object.__setattr__(self, "indices", indices)
        if self.names is not None:
            names = np.asarray(self.names)
            if len(names) != len(offsets) - 1:
                raise ValueError(f"The 'names' parameter of Partition must have one name per client ({len(offsets) - 1}). Got {len(names)} instead.")
            object.__setattr__(self, "names", names)

    @classmethod
    def from_sizes(cls, sizes: Sequence[int], *, names=None) -> "Partition":
        """Contiguous clients: client ``i`` owns the next ``sizes[i]`` sample ids (no index array)."""
        sizes = np.asarray(sizes, dtype=np.int64)
        if sizes.ndim != 1 or np.any(sizes < 0):
            raise ValueError("The 'sizes' parameter of Partition.from_sizes must be a 1-D array of counts >= 0.")
        return cls(np.concatenate([[0], np.cumsum(sizes)]), None, names)

    @classmethod
    def from_assignment(cls, client_of_sample: np.ndarray, *, n_clients: int, names=None) -> "Partition":
        """Build from a client number per sample (samples keep their order within a client)."""
        assign = np.asarray(client_of_sample, dtype=np.int64)
        if assign.size and (assign.min() < 0 or assign.max() >= n_clients):
            raise ValueError(f"The 'client_of_sample' parameter must hold client numbers in [0, {n_clients}).")
        order = np.argsort(assign, kind="stable")
        counts = np.bincount(assign, minlength=n_clients)
        return cls(np.concatenate([[0], np.cumsum(counts)]), order, names)

    @property
    def n_clients(self) -> int:
        return len(self.offsets) - 1

    @property
    def n_samples(self) -> int:
        return int(self.offsets[-1])

    @property
    def sizes(self) -> np.ndarray:
        """Samples per client (int64 array)."""
        return np.diff(self.offsets)

    def sample_ids(self) -> np.ndarray:
        """Every client's sample ids, client after client (``indices``, or ``0 .. n_samples - 1`` without them)."""
        return np.arange(self.n_samples, dtype=np.int64) if self.indices is None else self.indices

    def __len__(self) -> int:
        return self.n_clients

    def client(self, i: int, start: int = 0, stop: int | None = None) -> np.ndarray:
        """Sample ids of client ``i`` (optionally only its positions ``start:stop``, in its own order)."""
        if not 0 <= i < self.n_clients:
            raise IndexError(f"Client {i} out of range for a partition of {self.n_clients} clients.")
        lo, hi = int(self.offsets[i]), int(self.offsets[i + 1])
        stop = hi - lo if stop is None else min(stop, hi - lo)
        lo, hi = lo + start, lo + max(stop, start)
        return np.arange(lo, hi, dtype=np.int64) if self.indices is None else self.indices[lo:hi]

    def assignment(self) -> np.ndarray:
        """Client number of each sample id (int64 array of length n_samples)."""
        out = np.empty(self.n_samples, dtype=np.int64)
        owner = np.repeat(np.arange(self.n_clients), self.sizes)
        if self.indices is None:
            return owner
        out[self.indices] = owner
        return out

    def split(self, fraction: float) -> tuple["Partition", "Partition"]:
        """Split every client into its first ``1 - fraction`` samples (train) and the rest (test).

        Clients with a single sample keep it for training.
        """
        if not 0 <= fraction < 1:
            raise ValueError(f"The 'fraction' parameter of Partition.split must be in [0, 1). Got {fraction!r} instead.")
        sizes = self.sizes
        n_test = np.floor(sizes * fraction).astype(np.int64)
        n_train = sizes - n_test
        starts = self.offsets[:-1]
        pos = np.arange(self.n_samples, dtype=np.int64)
        rel = pos - np.repeat(starts, sizes)
        is_train = rel < np.repeat(n_train, sizes)
        ids = pos if self.indices is None else self.indices
        return (Partition(np.concatenate([[0], np.cumsum(n_train)]), ids[is_train], self.names),
                Partition(np.concatenate([[0], np.cumsum(n_test)]), ids[~is_train], self.names))

    def summary(self, labels: np.ndarray | None = None, *, n_classes: int | None = None) -> pd.DataFrame:
        """One row per client: ``client``, ``name``, ``n_samples`` and, given labels, ``label_<c>`` counts.

        Examples
        --------
        >>> Partition.from_sizes([1, 2]).summary(np.array([0, 1, 1]))[["n_samples", "label_0", "label_1"]].values.tolist()
        [[1, 1, 0], [2, 0, 2]]
        """
        df = pd.DataFrame({
            "client": np.arange(self.n_clients),
            "name": self.names if self.names is not None else np.arange(self.n_clients).astype(str),
            "n_samples": self.sizes,
        })
        if labels is not None:
            labels = np.asarray(labels, dtype=np.int64)
            k = int(n_classes if n_classes is not None else labels.max() + 1 if labels.size else 0)
            ids = self.sample_ids()
            owner = np.repeat(np.arange(self.n_clients), self.sizes)
            counts = np.zeros((self.n_clients, k), dtype=np.int64)
            np.add.at(counts, (owner, labels[ids]), 1)
            for c in range(k):
                df[f"label_{c}"] = counts[:, c]
        return df

    def nbytes(self) -> int:
        """Memory held by the partition's arrays."""
        return int(self.offsets.nbytes + (0 if self.indices is None else self.indices.nbytes))


_SEED = Interval(int, None, None)
_ALPHA = Interval(float, 0, None, closed="neither")


def _check_counts(n_samples, n_clients, fn: str, *, min_size: int = 1) -> tuple[int, int]:
    """``n_samples >= 0``, ``1 <= n_clients`` and enough samples for ``min_size`` per client (named errors)."""
    n_samples = check(n_samples, Interval(int, 0, None), name="n_samples", owner=fn)
    n_clients = check(n_clients, Interval(int, 1, None), name="n_clients", owner=fn)
    if n_clients * min_size > n_samples:
        raise InvalidParameterError(
            f"The 'n_clients' parameter of {fn} must be an int in [1, {n_samples // max(min_size, 1)}]: {n_samples} samples "
            f"cannot give {n_clients} clients {min_size} sample(s) each. Got {n_clients} instead.")
    return n_samples, n_clients


def _split_sizes(total: int, proportions: np.ndarray) -> np.ndarray:
    """Integer sizes summing to ``total`` proportional to ``proportions`` (largest remainder)."""
    share = proportions / proportions.sum() * total
    sizes = np.floor(share).astype(np.int64)
    short = total - sizes.sum()
    if short:
        sizes[np.argsort(-(share - sizes), kind="stable")[:short]] += 1
    return sizes


def iid_partition(n_samples: int, *, n_clients: int, seed: int = 0) -> Partition:
    """Shuffle the samples and deal them into ``n_clients`` near-equal clients.

    Examples
    --------
    >>> iid_partition(7, n_clients=2, seed=1).sizes.tolist()
    [4, 3]
    >>> iid_partition(-5, n_clients=2)
    Traceback (most recent call last):
    ...
    workbench.validation.InvalidParameterError: The 'n_samples' parameter of iid_partition must be an int >= 0. Got -5 instead.
    """
    n_samples, n_clients = _check_counts(n_samples, n_clients, "iid_partition")
    seed = check(seed, _SEED, name="seed", owner="iid_partition")
    order = np.random.default_rng(seed).permutation(n_samples).astype(np.int64)
    sizes = np.full(n_clients, n_samples // n_clients, dtype=np.int64)
    sizes[: n_samples % n_clients] += 1
    return Partition(np.concatenate([[0], np.cumsum(sizes)]), order)


def dirichlet_partition(labels, *, n_clients: int, alpha: float, seed: int = 0, min_partition_size: int = 0,
                        min_size_method: str = "resample", max_attempts: int = 10) -> Partition:
    """Label skew: each class is split across clients with proportions drawn from Dirichlet(alpha).

    Small ``alpha`` (e.g. 0.01) puts almost all of a class on one client; large ``alpha`` (e.g. 1e4)
    gives every client about the same share of every class (close to IID). Samples of a class are
    shuffled before being dealt; within a client they keep increasing sample-id order.

    ``min_partition_size``: every client holds at least that many samples (``0``: no floor; a client can then
    end up nearly empty at small alpha). ``min_size_method="resample"`` is ``flwr_datasets``'
    ``DirichletPartitioner`` rule: draw all proportions again (up to ``max_attempts`` times, one seed
    stream) until the floor holds, else raise. At small alpha with many clients no draw may ever satisfy it;
    ``"top_up"`` keeps the first draw and moves random samples from the largest clients to the ones below
    the floor (the moved samples keep their labels, so most of the label skew survives; always succeeds).

    Examples
    --------
    >>> y = np.repeat([0, 1], 50)
    >>> p = dirichlet_partition(y, n_clients=2, alpha=1e6, seed=0)
    >>> p.summary(y)[["label_0", "label_1"]].values.tolist()
    [[25, 25], [25, 25]]
    >>> y = np.repeat([0, 1, 2], 100)
    >>> int(dirichlet_partition(y, n_clients=10, alpha=0.1, seed=0).sizes.min())
    2
    >>> int(dirichlet_partition(y, n_clients=10, alpha=0.1, seed=0, min_partition_size=10, min_size_method="top_up").sizes.min())
    10
    >>> int(dirichlet_partition(y, n_clients=10, alpha=0.3, seed=0, min_partition_size=10, max_attempts=100).sizes.min())
    11
    """
    fn = "dirichlet_partition"
    labels = np.asarray(labels)
    min_partition_size = check(min_partition_size, Interval(int, 0, None), name="min_partition_size", owner=fn)
    _, n_clients = _check_counts(len(labels), n_clients, fn, min_size=max(min_partition_size, 1))
    alpha = check(alpha, _ALPHA, name="alpha", owner=fn)
    seed = check(seed, _SEED, name="seed", owner=fn)
    max_attempts = check(max_attempts, Interval(int, 1, None), name="max_attempts", owner=fn)
    method = check(min_size_method, Options(("resample", "top_up")), name="min_size_method", owner=fn)
    rng = np.random.default_rng(seed)
    for _ in range(max_attempts if method == "resample" else 1):
        assign = np.empty(len(labels), dtype=np.int64)
        for c in np.unique(labels):
            members = np.flatnonzero(labels == c)
            members = members[rng.permutation(len(members))]
            # Dirichlet via normalised Gammas, in log space (tiny alphas would underflow to all zeros).
            g = _log_gamma(rng, alpha, n_clients)
            prop = np.exp(g - g.max())
            sizes = _split_sizes(len(members), prop)
            assign[members] = np.repeat(np.arange(n_clients), sizes)
        if method == "top_up":
            _top_up(assign, n_clients, min_partition_size, rng)
        part = Partition.from_assignment(assign, n_clients=n_clients)
        if part.sizes.min() >= min_partition_size:
            return part
    raise ValueError(f"dirichlet_partition: no draw in {max_attempts} gave every one of {n_clients} clients at least "
                     f"min_partition_size={min_partition_size} samples (smallest: {int(part.sizes.min())}). "
                     "Use min_size_method='top_up', raise 'alpha' or 'max_attempts', or lower 'min_partition_size'.")


def _top_up(assign: np.ndarray, n_clients: int, floor: int, rng: np.random.Generator) -> None:
    """Move random samples from the largest clients to clients below ``floor`` (in place)."""
    sizes = np.bincount(assign, minlength=n_clients)
    while sizes.min() < floor:
        small, big = int(np.argmin(sizes)), int(np.argmax(sizes))
        move = min(floor - sizes[small], sizes[big] - floor)
        donors = np.flatnonzero(assign == big)
        assign[rng.choice(donors, size=move, replace=False)] = small
        sizes[small] += move
        sizes[big] -= move


def _log_gamma(rng: np.random.Generator, alpha: float, n: int) -> np.ndarray:
    """log of ``n`` Gamma(alpha, 1) draws, stable for tiny alpha: G(alpha) = G(alpha + 1) * U^(1/alpha)."""
    return np.log(rng.gamma(alpha + 1.0, size=n)) + np.log(rng.random(n)) / alpha


def quantity_partition(n_samples: int, *, n_clients: int, alpha: float = 1.0, seed: int = 0,
                       min_size: int = 1) -> Partition:
    """Quantity skew: IID samples, client sizes proportional to a Dirichlet(alpha) draw.

    Every client gets at least ``min_size`` samples (when ``n_samples`` allows it).

    Examples
    --------
    >>> p = quantity_partition(100, n_clients=4, alpha=1e6, seed=0)
    >>> p.sizes.tolist()
    [25, 25, 25, 25]
    """
    fn = "quantity_partition"
    min_size = check(min_size, Interval(int, 0, None), name="min_size", owner=fn)
    n_samples, n_clients = _check_counts(n_samples, n_clients, fn)
    alpha = check(alpha, _ALPHA, name="alpha", owner=fn)
    seed = check(seed, _SEED, name="seed", owner=fn)
    rng = np.random.default_rng(seed)
    base = min(min_size, n_samples // n_clients)
    g = _log_gamma(rng, alpha, n_clients)
    sizes = base + _split_sizes(n_samples - base * n_clients, np.exp(g - g.max()))
    order = rng.permutation(n_samples).astype(np.int64)
    return Partition(np.concatenate([[0], np.cumsum(sizes)]), order)


def natural_partition(groups, *, order: str = "size", names: bool = True) -> Partition:
    """One client per distinct value of ``groups`` (e.g. ``client_id`` of Shakespeare speeches).

    Parameters
    ----------
    groups : array-like
        The group of each sample; samples keep their order within a client (their "time" order).
    order : {"size", "first"}
        Clients sorted by decreasing size (ties by first appearance) or by first appearance.

    Examples
    --------
    >>> p = natural_partition(["a", "b", "b", "c", "b"])
    >>> p.names.tolist(), p.sizes.tolist(), p.client(0).tolist()
    (['b', 'a', 'c'], [3, 1, 1], [1, 2, 4])
    """
    order = check(order, Options(("size", "first")), name="order", owner="natural_partition")
    codes, uniques = pd.factorize(pd.Series(groups), sort=False)  # codes by first appearance
    codes = np.asarray(codes, dtype=np.int64)
    counts = np.bincount(codes, minlength=len(uniques))
    rank = np.argsort(-counts, kind="stable") if order == "size" else np.arange(len(uniques))
    new_code = np.empty_like(rank)
    new_code[rank] = np.arange(len(rank))
    return Partition.from_assignment(new_code[codes], n_clients=len(uniques),
                                     names=np.asarray(uniques, dtype=object)[rank] if names else None)


def shuffled_like(partition: Partition, *, seed: int = 0) -> Partition:
    """The same client sizes with the samples dealt at random: an IID control for a non-IID partition.

    Comparing a natural (or Dirichlet) partition with ``shuffled_like`` of it isolates the effect of
    *what* each client holds from the effect of *how much* it holds.

    Examples
    --------
    >>> p = natural_partition(["a", "a", "b", "a", "c"])
    >>> q = shuffled_like(p, seed=0)
    >>> q.sizes.tolist() == p.sizes.tolist(), sorted(q.indices.tolist())
    (True, [0, 1, 2, 3, 4])
    """
    ids = partition.sample_ids()
    return Partition(partition.offsets, np.random.default_rng(seed).permutation(ids), partition.names)


def kmeans_partition(features, *, n_clients: int, alpha: float | None = None, n_clusters: int | None = None,
                     seed: int = 0, min_partition_size: int = 0, groups=None) -> Partition:
    """Topic-like non-IID partition: k-means clusters of sentence features (FedNLP's feature-level skew).

    With ``alpha=None`` every client is one cluster (``n_clusters = n_clients``): clients differ in *what
    they talk about* and in size. With ``alpha`` set, the cluster ids play the labels' part in
    :func:`dirichlet_partition` over ``n_clusters`` clusters (default 10), as FedNLP does.
    ``min_partition_size``: every client ends with at least that many samples (small clients are topped up with
    random samples of the largest ones, so a few samples leave their topic).

    ``groups`` (optional, one int per sample): the row of ``features`` each sample takes its features from, so
    samples of one group (e.g. the character windows of one Shakespeare speech, featurised once per speech) are
    clustered together; without it, row ``i`` of ``features`` is sample ``i``. Rows that no sample uses are
    left out of the clustering.

    Examples
    --------
    >>> X = np.concatenate([np.random.default_rng(0).normal(m, 0.1, size=(20, 2)) for m in (0, 5, 10)])
    >>> p = kmeans_partition(X, n_clients=3, seed=0)
    >>> sorted(p.sizes.tolist()), len(set(p.assignment()[:20].tolist()))  # one blob per client
    ([20, 20, 20], 1)
    >>> g = np.repeat(np.arange(60), 3)  # 180 samples, 3 per feature row
    >>> p = kmeans_partition(X, n_clients=3, seed=0, groups=g, min_partition_size=55)
    >>> p.n_samples, int(p.sizes.min()) >= 55
    (180, True)
    """
    from sklearn.cluster import KMeans

    fn = "kmeans_partition"
    X = np.asarray(features, dtype=np.float64)
    if X.ndim != 2:
        raise ValueError(f"The 'features' parameter of {fn} must be a 2-D array (samples x features). Got shape {X.shape}.")
    if groups is None:
        rows = None
        n_samples = len(X)
    else:
        groups = np.asarray(groups)
        if groups.ndim != 1 or not np.issubdtype(groups.dtype, np.integer) or (len(groups) and (groups.min() < 0 or groups.max() >= len(X))):
            raise InvalidParameterError(f"The 'groups' parameter of {fn} must be a 1-D array of row numbers of 'features' "
                                        f"(ints in [0, {len(X) - 1}]).")
        used, rows = np.unique(groups, return_inverse=True)  # cluster only the rows some sample uses
        X = X[used]
        n_samples = len(groups)
    min_partition_size = check(min_partition_size, Interval(int, 0, None), name="min_partition_size", owner=fn)
    _, n_clients = _check_counts(n_samples, n_clients, fn, min_size=max(min_partition_size, 1))
    seed = check(seed, _SEED, name="seed", owner=fn)
    alpha = check(alpha, _ALPHA, None, name="alpha", owner=fn)
    k = n_clients if alpha is None else check(10 if n_clusters is None else n_clusters, Interval(int, 1, len(X)),
                                              name="n_clusters", owner=fn)
    if k > len(X):
        raise InvalidParameterError(f"The 'n_clients' parameter of {fn} must be <= the {len(X)} feature rows to cluster "
                                    f"when 'alpha' is None (one cluster per client). Got {n_clients} instead.")
    from threadpoolctl import threadpool_limits

    with threadpool_limits(1):  # small problems: OpenMP threads only contend (28 s instead of 2 s on a busy machine)
        clusters = KMeans(n_clusters=k, n_init=4, random_state=seed).fit_predict(X).astype(np.int64)
    if rows is not None:
        clusters = clusters[rows]
    if alpha is None:
        _top_up(clusters, n_clients, min_partition_size, np.random.default_rng(seed))
        return Partition.from_assignment(clusters, n_clients=n_clients)
    return dirichlet_partition(clusters, n_clients=n_clients, alpha=alpha, seed=seed, min_partition_size=min_partition_size,
                               min_size_method="top_up")


def partition_stats(partition: Partition, labels=None, *, name: str = "") -> dict:
    """One row describing a partition: sizes (min, median, max, share of the largest 10%), empty and tiny
    (< 10 samples) clients and, given labels, the mean total-variation distance between a client's label
    mix and the pooled one (0 = IID labels, near 1 = one class per client).

    Examples
    --------
    >>> y = np.repeat([0, 1], 50)
    >>> partition_stats(dirichlet_partition(y, n_clients=2, alpha=1e6), y)["label_skew_tv"]
    0.0
    """
    sizes = partition.sizes
    top = np.sort(sizes)[::-1][: max(1, len(sizes) // 10)]
    row = {"partition": name, "n_clients": partition.n_clients, "n_samples": partition.n_samples,
           "min_size": int(sizes.min()), "median_size": float(np.median(sizes)), "max_size": int(sizes.max()),
           "top10pct_share": float(top.sum() / max(sizes.sum(), 1)), "empty_clients": int((sizes == 0).sum()),
           "clients_under_10": int((sizes < 10).sum())}
    if labels is not None:
        counts = partition.summary(np.asarray(labels)).filter(like="label_").to_numpy(dtype=np.float64)
        pooled = counts.sum(0) / counts.sum()
        mix = counts[sizes > 0] / sizes[sizes > 0, None]
        row["label_skew_tv"] = round(float(0.5 * np.abs(mix - pooled).sum(1).mean()), 12)
    return row


#: Partitioner name -> function. ``make_partition(name, ...)`` forwards keyword arguments.
PARTITIONERS: dict[str, Callable[..., Partition]] = {
    "iid": iid_partition,
    "dirichlet": dirichlet_partition,
    "quantity": quantity_partition,
    "natural": natural_partition,
    "kmeans": kmeans_partition,
}


def make_partition(name: str, data, **kwargs) -> Partition:
    """Run a registered partitioner: ``data`` is ``n_samples`` (iid, quantity), labels (dirichlet), groups
    (natural) or features (kmeans).

    Examples
    --------
    >>> make_partition("iid", 6, n_clients=3).sizes.tolist()
    [2, 2, 2]
    >>> make_partition("topics", 6)
    Traceback (most recent call last):
    ...
    ValueError: The 'name' parameter of make_partition must be one of ['dirichlet', 'iid', 'kmeans', 'natural', 'quantity']. Got 'topics' instead.
    """
    if name not in PARTITIONERS:
        raise ValueError(f"The 'name' parameter of make_partition must be one of {sorted(PARTITIONERS)}. Got {name!r} instead.")
    return PARTITIONERS[name](data, **kwargs)
