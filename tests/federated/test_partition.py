"""Partition invariants: every sample exactly once, determinism, the alpha extremes, compact storage."""
import numpy as np
import pandas as pd
import pytest

from workbench.federated.partition import (PARTITIONERS, Partition, dirichlet_partition, iid_partition, make_partition,
                                           natural_partition, quantity_partition, shuffled_like)

RNG = np.random.default_rng(123)
LABELS = RNG.integers(0, 5, size=5000)


def assert_exact_cover(p: Partition, n: int):
    ids = np.concatenate([p.client(i) for i in range(p.n_clients)])
    assert ids.size == n
    assert np.array_equal(np.sort(ids), np.arange(n)), "every sample must belong to exactly one client"
    assert p.sizes.sum() == n


@pytest.mark.parametrize("make", [
    lambda: iid_partition(5000, n_clients=37, seed=1),
    lambda: dirichlet_partition(LABELS, n_clients=20, alpha=0.1, seed=2),
    lambda: dirichlet_partition(LABELS, n_clients=20, alpha=1e-4, seed=2),
    lambda: dirichlet_partition(LABELS, n_clients=20, alpha=1e5, seed=2),
    lambda: quantity_partition(5000, n_clients=50, alpha=0.3, seed=3),
    lambda: natural_partition(RNG.integers(0, 300, size=5000)),
])
def test_every_sample_assigned_exactly_once(make):
    assert_exact_cover(make(), 5000)


def test_assignment_is_the_inverse_of_client():
    p = dirichlet_partition(LABELS, n_clients=9, alpha=0.5, seed=0)
    owner = p.assignment()
    for i in range(p.n_clients):
        assert np.all(owner[p.client(i)] == i)


@pytest.mark.parametrize("name,data,kw", [
    ("iid", 1000, {"n_clients": 10}),
    ("dirichlet", LABELS, {"n_clients": 10, "alpha": 0.3}),
    ("quantity", 1000, {"n_clients": 10, "alpha": 0.3}),
])
def test_deterministic_per_seed(name, data, kw):
    a, b = make_partition(name, data, seed=7, **kw), make_partition(name, data, seed=7, **kw)
    c = make_partition(name, data, seed=8, **kw)
    assert np.array_equal(a.indices, b.indices) and np.array_equal(a.offsets, b.offsets)
    assert not (np.array_equal(a.indices, c.indices) and np.array_equal(a.offsets, c.offsets))


def test_dirichlet_large_alpha_is_close_to_iid():
    labels = np.repeat(np.arange(4), 2500)  # 10,000 samples, balanced
    p = dirichlet_partition(labels, n_clients=10, alpha=1e5, seed=0)
    counts = p.summary(labels)[[f"label_{c}" for c in range(4)]].to_numpy()
    # Dirichlet(1e5) proportions are 1/10 +- ~0.001: each client holds 250 +- a few of every class.
    assert np.all(np.abs(counts - 250) <= 5), counts
    assert np.all(np.abs(p.sizes - 1000) <= 10)


def test_dirichlet_small_alpha_puts_each_class_on_one_client():
    labels = np.repeat(np.arange(5), 1000)
    p = dirichlet_partition(labels, n_clients=20, alpha=1e-3, seed=0)
    counts = p.summary(labels)[[f"label_{c}" for c in range(5)]].to_numpy()
    share_of_top_client = counts.max(axis=0) / counts.sum(axis=0)
    assert np.all(share_of_top_client > 0.99), share_of_top_client
    assert (p.sizes == 0).sum() >= 15  # at most 5 clients hold anything


def test_dirichlet_moderate_alpha_matches_the_dirichlet_mean_and_variance():
    # Proportion of a class on a client ~ Beta(alpha, (K-1) alpha): mean 1/K, var (K-1)/(K^2 (K alpha + 1)).
    labels = np.repeat(np.arange(2), 20000)
    K, alpha = 10, 1.0
    shares = []
    for seed in range(30):
        counts = dirichlet_partition(labels, n_clients=K, alpha=alpha, seed=seed).summary(labels)[["label_0", "label_1"]].to_numpy()
        shares.append(counts / 20000)
    shares = np.concatenate(shares).ravel()
    assert abs(shares.mean() - 1 / K) < 1e-6  # exact: every class is fully dealt out
    expected_var = (K - 1) / (K**2 * (K * alpha + 1))
    assert abs(shares.var() / expected_var - 1) < 0.2, (shares.var(), expected_var)


def test_quantity_extremes():
    even = quantity_partition(1000, n_clients=8, alpha=1e6, seed=0)
    assert even.sizes.max() - even.sizes.min() <= 1
    skewed = quantity_partition(1000, n_clients=8, alpha=1e-3, seed=0, min_size=1)
    assert skewed.sizes.min() >= 1 and skewed.sizes.max() >= 990


def test_natural_partition_matches_group_counts_and_keeps_time_order():
    groups = np.array(["x", "y", "x", "z", "y", "x"])
    p = natural_partition(groups)
    assert p.names.tolist() == ["x", "y", "z"]
    assert p.sizes.tolist() == [3, 2, 1]
    assert p.client(0).tolist() == [0, 2, 5]  # first appearance order within a client
    vc = pd.Series(RNG.integers(0, 50, 3000)).astype(str)
    q = natural_partition(vc.to_numpy())
    assert dict(zip(q.names, q.sizes)) == vc.value_counts().to_dict()


def test_split_keeps_each_clients_last_samples_for_test():
    p = Partition.from_sizes([10, 1, 5])
    train, test = p.split(0.2)
    assert train.sizes.tolist() == [8, 1, 4] and test.sizes.tolist() == [2, 0, 1]
    assert test.client(0).tolist() == [8, 9] and train.client(2).tolist() == [11, 12, 13, 14]
    both = np.sort(np.concatenate([train.indices, test.indices]))
    assert np.array_equal(both, np.arange(16))


def test_summary_label_counts_match_direct_count():
    p = dirichlet_partition(LABELS, n_clients=7, alpha=0.5, seed=4)
    df = p.summary(LABELS)
    for i in range(p.n_clients):
        direct = np.bincount(LABELS[p.client(i)], minlength=5)
        assert df.loc[i, [f"label_{c}" for c in range(5)]].tolist() == direct.tolist()
    assert df["n_samples"].tolist() == p.sizes.tolist()


def test_a_million_devices_fit_in_a_few_megabytes():
    sizes = np.random.default_rng(0).zipf(2.0, size=1_000_000).clip(max=10_000)
    p = Partition.from_sizes(sizes)
    assert p.n_clients == 1_000_000 and p.indices is None
    assert p.nbytes() <= 8 * (1_000_000 + 1)
    i = 765_432
    ids = p.client(i)
    assert ids.size == sizes[i] and ids[0] == sizes[:i].sum()


def test_bad_input_raises_clear_errors():
    with pytest.raises(ValueError, match="'n_clients'"):
        iid_partition(10, n_clients=0)
    with pytest.raises(ValueError, match="'alpha'"):
        dirichlet_partition(LABELS, n_clients=3, alpha=0)
    with pytest.raises(ValueError, match=r"must be one of \['dirichlet', 'iid', 'natural', 'quantity'\]"):
        make_partition("pathological", 10)
    with pytest.raises(ValueError, match="non-decreasing"):
        Partition(np.array([0, 3, 2]))
    assert sorted(PARTITIONERS) == ["dirichlet", "iid", "natural", "quantity"]


def test_shuffled_like_keeps_sizes_and_mixes_labels():
    labels = np.repeat(np.arange(4), 500)
    skewed = dirichlet_partition(labels, n_clients=8, alpha=0.05, seed=0)
    control = shuffled_like(skewed, seed=1)
    assert control.sizes.tolist() == skewed.sizes.tolist()
    assert_exact_cover(control, 2000)
    def max_share(p):
        counts = p.summary(labels)[[f"label_{c}" for c in range(4)]].to_numpy()
        big = p.sizes >= 50
        return (counts[big].max(axis=1) / p.sizes[big]).mean()
    assert max_share(control) < 0.45  # 0.25 + sampling noise when labels are mixed
    assert max_share(skewed) > max_share(control) + 0.3
