"""Issue 12: notebook 06/07 configs refuse sizes the dataset cannot give, naming the parameter (never a silent
shrink: ``dataset="digits", n_train=5000`` used to train on 1,097 images; ``old_n_classes=11`` completed on a
10-class dataset), and the study functions check the loaded data before any training."""
from __future__ import annotations

import numpy as np
import pytest

from workbench.compatibility import bct
from workbench.compatibility.data import ImageSplit, load_image_split
from workbench.compatibility.studies import DATASET_SIZES, BCTStudyConfig, FlipStudyConfig, bct_study, flip_study
from workbench.validation import InvalidParameterError

TINY_BCT = dict(old_hidden=(4,), new_hidden=(4,), embedding_dim=2, old_epochs=1, new_epochs=1, lambda_sweep=())


@pytest.mark.parametrize("kwargs, message", [
    (dict(dataset="digits", n_train=5000, n_test=700),
     "The 'n_train' parameter of BCTStudyConfig must be an int in [1, 1097] (the images 'digits' holds, 1797, less n_test=700). "
     "Got 5000 instead."),
    (dict(dataset="digits", n_train=100, n_test=1000),
     "The 'n_test' parameter of BCTStudyConfig must be an int in [2, 898] (the test images 'digits' holds). Got 1000 instead."),
    (dict(n_train=60001), "The 'n_train' parameter of BCTStudyConfig must be an int in [1, 60000] (the training images "
                          "'fashion_mnist' holds). Got 60001 instead."),
    (dict(n_test=10001, n_queries=10), "The 'n_test' parameter of BCTStudyConfig must be an int in [2, 10000]"),
    (dict(old_n_classes=11), "The 'old_n_classes' parameter of BCTStudyConfig must be an int in [2, 10] (the classes of "
                             "'fashion_mnist'). Got 11 instead."),
    (dict(dataset="digits", n_train=100, n_test=100, old_n_classes=11), "'old_n_classes' parameter of BCTStudyConfig must be an int in [2, 10]"),
    (dict(n_test=6000, n_queries=6000), "The 'n_queries' parameter of BCTStudyConfig must be an int in [1, 3000] (at most half of "
                                        "n_test=6000). Got 6000 instead."),
    (dict(n_test=100, n_queries=51), "'n_queries' parameter of BCTStudyConfig must be an int in [1, 50]"),
])
def test_bct_config_refuses_what_the_dataset_cannot_give(kwargs, message):
    with pytest.raises(InvalidParameterError) as info:
        BCTStudyConfig(**kwargs)
    assert message in str(info.value)


@pytest.mark.parametrize("kwargs, message", [
    (dict(dataset="digits", n_train=5000, n_test=500), "The 'n_train' parameter of FlipStudyConfig must be an int in [1, 1297]"),
    (dict(dataset="digits", n_train=100, n_test=900), "The 'n_test' parameter of FlipStudyConfig must be an int in [1, 898]"),
    (dict(n_train=70000), "The 'n_train' parameter of FlipStudyConfig must be an int in [1, 60000]"),
    (dict(n_test=20000), "The 'n_test' parameter of FlipStudyConfig must be an int in [1, 10000]"),
])
def test_flip_config_refuses_what_the_dataset_cannot_give(kwargs, message):
    with pytest.raises(InvalidParameterError, match="parameter of FlipStudyConfig") as info:
        FlipStudyConfig(**kwargs)
    assert message in str(info.value)


def test_the_limits_themselves_are_accepted():
    """The largest sizes each dataset gives pass, and so do the notebooks' defaults and smoke values."""
    BCTStudyConfig(dataset="digits", n_train=1797 - 898, n_test=898, n_queries=449, old_n_classes=10)
    BCTStudyConfig(n_train=60000, n_test=10000, n_queries=5000)
    FlipStudyConfig(dataset="digits", n_train=1797 - 898, n_test=898)
    FlipStudyConfig(n_train=60000, n_test=10000)
    BCTStudyConfig(), FlipStudyConfig()  # notebook defaults
    BCTStudyConfig(dataset="digits", n_train=1000, n_test=700, n_queries=200)  # notebook 07's smoke values
    FlipStudyConfig(dataset="digits", n_train=1000, n_test=500)  # notebook 06's smoke values
    # a type error is still reported as such, before the dataset's limits
    with pytest.raises(InvalidParameterError, match="'old_n_classes' parameter of BCTStudyConfig must be an int >= 2. Got 'ten'"):
        BCTStudyConfig(old_n_classes="ten")


def test_dataset_sizes_match_the_loaders():
    """DATASET_SIZES is what load_image_split actually gives: asking for the limits yields exactly them."""
    digits = load_image_split("digits", n_train=10**6, n_test=10**6)
    assert len(digits.y_test) == DATASET_SIZES["digits"]["test"]
    assert len(digits.y_train) + len(digits.y_test) == DATASET_SIZES["digits"]["images"] and digits.n_classes == 10
    from workbench.datasets import load_fashion_mnist

    for split in ("train", "test"):
        data = load_fashion_mnist(split=split, size="full")
        assert len(data.labels) == DATASET_SIZES["fashion_mnist"][split]
        assert len(data.classes) == DATASET_SIZES["fashion_mnist"]["classes"]


@pytest.fixture
def no_training(monkeypatch):
    """Fail the test if any model is trained: the checks must come first."""
    from workbench.compatibility import pc_training

    def refuse(*args, **kwargs):
        raise AssertionError("trained before checking the data")

    monkeypatch.setattr(bct, "train_embedding_model", refuse)
    monkeypatch.setattr(pc_training, "run_update", refuse)


def _five_classes(split: ImageSplit) -> ImageSplit:
    tr, te = split.y_train < 5, split.y_test < 5
    return ImageSplit(split.X_train[tr], split.y_train[tr], split.X_test[te], split.y_test[te], split.images_test[te], split.classes[:5])


def test_bct_study_checks_the_loaded_data_before_training(no_training):
    data = load_image_split("digits", n_train=50, n_test=40)
    cfg = BCTStudyConfig(dataset="digits", n_train=100, n_test=40, n_queries=10, **TINY_BCT)
    with pytest.raises(InvalidParameterError, match=r"The 'n_train' parameter of BCTStudyConfig must be an int in \[1, 50\] "
                                                    r"\(the training images of the data given\). Got 100 instead."):
        bct_study(data, config=cfg)
    cfg = BCTStudyConfig(dataset="digits", n_train=50, n_test=80, n_queries=10, **TINY_BCT)
    with pytest.raises(InvalidParameterError, match=r"'n_test' parameter of BCTStudyConfig must be an int in \[1, 40\]"):
        bct_study(data, config=cfg)
    small = _five_classes(load_image_split("digits", n_train=200, n_test=100))
    cfg = BCTStudyConfig(dataset="digits", n_train=len(small.y_train), n_test=len(small.y_test), n_queries=10, old_n_classes=8, **TINY_BCT)
    with pytest.raises(InvalidParameterError, match=r"The 'old_n_classes' parameter of BCTStudyConfig must be an int in \[2, 5\] "
                                                    r"\(the classes of the data given\). Got 8 instead."):
        bct_study(small, config=cfg)
    with pytest.raises(InvalidParameterError, match="'data' parameter of bct_study must be an instance of ImageSplit"):
        bct_study((data.X_train, data.y_train), config=cfg)


def test_flip_study_checks_the_loaded_data_before_training(no_training):
    data = load_image_split("digits", n_train=50, n_test=40)
    cfg = FlipStudyConfig(dataset="digits", n_train=60, n_test=40)
    with pytest.raises(InvalidParameterError, match=r"The 'n_train' parameter of FlipStudyConfig must be an int in \[1, 50\]"):
        flip_study(data, config=cfg)


def test_bct_study_runs_at_the_loaded_limits():
    """The check accepts data that holds exactly what the config asks (and a study then runs)."""
    from workbench.training import torch_threads

    cfg = BCTStudyConfig(dataset="digits", n_train=40, n_test=20, n_queries=10, old_n_classes=10, **TINY_BCT)
    with torch_threads(1):
        study = bct_study(cfg.load_data(), config=cfg)
    assert study.split.n_gallery == 10 and np.isfinite(study.matrix["map"]).all()
