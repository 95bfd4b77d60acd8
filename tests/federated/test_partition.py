"""Partition invariants: every sample exactly once, determinism, the alpha extremes, compact storage."""
import numpy as np
import pandas as pd
import pytest

from workbench.federated.partition import (PARTITIONERS, Partition, dirichlet_partition, iid_partition, kmeans_partition,
                                           make_partition, partition_stats,
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
    with pytest.raises(ValueError, match=r"must be one of \['dirichlet', 'iid', 'kmeans', 'natural', 'quantity'\]"):
        make_partition("pathological", 10)
    with pytest.raises(ValueError, match="non-decreasing"):
        Partition(np.array([0, 3, 2]))
    assert sorted(PARTITIONERS) == ["dirichlet", "iid", "kmeans", "natural", "quantity"]


def test_issue_12_bad_inputs_name_the_parameter():
    with pytest.raises(ValueError, match="The 'n_samples' parameter of iid_partition must be an int >= 0. Got -5 instead."):
        iid_partition(n_samples=-5, n_clients=2)
    # more clients than samples: a named error instead of 80-90% empty clients
    for call in (lambda: iid_partition(5, n_clients=10), lambda: quantity_partition(5, n_clients=10),
                 lambda: dirichlet_partition(np.zeros(5), n_clients=10, alpha=1.0)):
        with pytest.raises(ValueError, match="'n_clients' parameter of .* must be an int in \\[1, 5\\]"):
            call()
    with pytest.raises(TypeError, match="'n_clients' parameter of iid_partition must be an int >= 1. Got '3' instead"):
        iid_partition(10, n_clients="3")
    assert iid_partition(np.int64(10), n_clients=np.int32(3)).sizes.tolist() == [4, 3, 3]
    with pytest.raises(ValueError, match="'min_size_method' parameter of dirichlet_partition must be one of"):
        dirichlet_partition(LABELS, n_clients=3, alpha=1.0, min_size_method="balance")


def test_dirichlet_minimum_partition_size():
    labels = np.random.default_rng(0).integers(0, 3, size=2400)  # tweets-sized: 3 classes, 100 clients
    plain = dirichlet_partition(labels, n_clients=100, alpha=0.1, seed=0)
    assert plain.sizes.min() < 10  # the problem: at alpha 0.1 some clients hold almost nothing
    topped = dirichlet_partition(labels, n_clients=100, alpha=0.1, seed=0, min_partition_size=10, min_size_method="top_up")
    assert topped.sizes.min() >= 10
    assert_exact_cover(topped, len(labels))
    assert partition_stats(topped, labels)["label_skew_tv"] > 0.4  # still strongly label-skewed (IID is ~0)
    assert partition_stats(iid_partition(len(labels), n_clients=100, seed=0), labels)["label_skew_tv"] < 0.15
    # flwr_datasets' rule: whole draws again until every client meets the floor (or a named error)
    small = np.repeat([0, 1, 2], 100)
    resampled = dirichlet_partition(small, n_clients=10, alpha=0.3, seed=0, min_partition_size=10, max_attempts=100)
    assert resampled.sizes.min() >= 10 and dirichlet_partition(small, n_clients=10, alpha=0.3, seed=0).sizes.min() < 10
    with pytest.raises(ValueError, match="no draw in 10 gave every one of 100 clients"):
        dirichlet_partition(labels, n_clients=100, alpha=0.1, seed=0, min_partition_size=10)
    # the floor only changes the draw when it has to: min_partition_size=0 is the old partition
    assert np.array_equal(dirichlet_partition(labels, n_clients=100, alpha=0.1, seed=0, min_partition_size=0).indices, plain.indices)


def test_kmeans_partition_groups_similar_features():
    rng = np.random.default_rng(0)
    centers = rng.normal(size=(4, 8)) * 5
    topic = rng.integers(0, 4, size=400)
    X = centers[topic] + rng.normal(size=(400, 8))
    p = kmeans_partition(X, n_clients=4, seed=0)
    assert_exact_cover(p, 400)
    owner = p.assignment()
    purity = sum(np.bincount(topic[owner == c]).max() for c in range(4)) / 400
    assert purity > 0.95  # each client is (almost) one topic
    mixed = kmeans_partition(X, n_clients=20, alpha=0.5, n_clusters=4, seed=0, min_partition_size=5)
    assert mixed.n_clients == 20 and mixed.sizes.min() >= 5
    assert_exact_cover(mixed, 400)


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


def test_kmeans_partition_with_groups_keeps_groups_together_and_meets_the_floor():
    """Samples share their group's feature row (a Shakespeare speech): a group lands on one client; with a floor,
    every client holds at least that many samples; every sample is assigned exactly once; same seed, same partition."""
    rng = np.random.default_rng(1)
    centers = rng.normal(size=(5, 6)) * 4
    topic = rng.integers(0, 5, size=120)                    # 120 groups (speeches) in 5 topics
    rows = centers[topic] + rng.normal(size=(130, 6))[:120]
    features = np.concatenate([rows, rng.normal(size=(10, 6)) * 50])  # 10 rows no sample uses (ignored)
    groups = np.repeat(np.arange(120), rng.integers(1, 30, size=120))  # uneven group sizes
    n = len(groups)
    p = kmeans_partition(features, n_clients=5, seed=0, groups=groups)
    assert_exact_cover(p, n)
    owner = p.assignment()
    assert all(len(set(owner[groups == g])) == 1 for g in range(120))  # a group is never split without a floor
    purity = sum(np.bincount(topic[groups][owner == c]).max() for c in range(5)) / n
    assert purity > 0.95
    floor = n // 5 - 5
    assert p.sizes.min() < floor  # the floor below has work to do
    q = kmeans_partition(features, n_clients=5, seed=0, groups=groups, min_partition_size=floor)
    assert_exact_cover(q, n) and q.sizes.min() >= floor
    moved = (q.assignment() != owner).mean()
    assert 0 < moved < 0.2  # only the top-up moved samples
    again = kmeans_partition(features, n_clients=5, seed=0, groups=groups, min_partition_size=floor)
    assert np.array_equal(again.indices, q.indices) and np.array_equal(again.offsets, q.offsets)
    with pytest.raises(ValueError, match="'groups' parameter of kmeans_partition"):
        kmeans_partition(features, n_clients=5, groups=np.array([0, 200]))
    with pytest.raises(ValueError, match="'n_clients' parameter of kmeans_partition must be <= the 3 feature rows"):
        kmeans_partition(features, n_clients=5, groups=np.array([0, 1, 2] * 10))


def test_shakespeare_samples_know_their_speech():
    """With stride 1, the targets of one speech's samples spell out that speech (and its closing newline)."""
    from workbench.federated.tasks import shakespeare_task

    data = shakespeare_task(n_plays=1, context=4, stride=1, test_fraction=0.2)
    speech, speeches, vocab = data.info["speech"], data.info["speeches"], data.info["vocab"]
    assert len(speech) == len(data.y) and speech.min() >= 0 and speech.max() < len(speeches)
    lut = {c: c for c in vocab[2:]}
    y = data.y.numpy()
    for j in np.random.default_rng(0).choice(np.unique(speech), size=40, replace=False):
        spelled = "".join(vocab[i] if i > 1 else "?" for i in y[speech == j])
        assert spelled == "".join(lut.get(c, "?") for c in speeches[j].lower() + "\n")
