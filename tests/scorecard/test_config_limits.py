"""Issue 12: notebook 09's thresholds and chain sizes refuse values that make a meaningless study (a rule with
``max_mia_auc=2`` passes every model; more trainable than kept blocks), with the validation module's wording."""
from __future__ import annotations

import numpy as np
import pytest

from workbench.scorecard import default_rules
from workbench.scorecard.chain import ChainConfig
from workbench.validation import InvalidParameterError


@pytest.mark.parametrize("name", ["max_mia_auc", "max_group_nfr", "max_accuracy_drop"])
@pytest.mark.parametrize("value", [1.5, 2, -0.1, float("nan"), "0.5"])
def test_fraction_thresholds_lie_in_0_1(name, value):
    with pytest.raises(InvalidParameterError) as info:
        default_rules(**{name: value})
    assert str(info.value) == f"The {name!r} parameter of default_rules must be a float in [0, 1]. Got {value!r} instead."


def test_threshold_limits_are_accepted_and_gap_growth_stays_open_ended():
    rules = default_rules(max_mia_auc=1, max_group_nfr=0, max_accuracy_drop=np.float32(1.0), max_gap_growth=1.5)
    assert [r.threshold for r in rules] == [-1.0, 0.0, 1.5, 1.0]
    with pytest.raises(InvalidParameterError, match=r"'max_gap_growth' parameter of default_rules must be a float >= 0. Got -1"):
        default_rules(max_gap_growth=-1)


@pytest.mark.parametrize("encoder_layers, trainable_layers", [(1, 2), (2, 3), (5, 6)])
def test_trainable_layers_at_most_encoder_layers(encoder_layers, trainable_layers):
    with pytest.raises(InvalidParameterError) as info:
        ChainConfig(encoder_layers=encoder_layers, trainable_layers=trainable_layers)
    assert str(info.value) == (f"The 'trainable_layers' parameter of ChainConfig must be an int in [1, {encoder_layers}] "
                               f"(at most encoder_layers={encoder_layers}). Got {trainable_layers} instead.")


def test_trainable_layers_limits_accepted():
    assert ChainConfig(encoder_layers=6, trainable_layers=np.int64(6)).trainable_layers == 6
    assert ChainConfig(encoder_layers=1, trainable_layers=1).trainable_layers == 1  # notebook 09's smoke values
    with pytest.raises(InvalidParameterError, match=r"'trainable_layers' parameter of ChainConfig must be an int >= 1. Got 0"):
        ChainConfig(trainable_layers=0)
    with pytest.raises(InvalidParameterError, match=r"'encoder_layers' parameter of ChainConfig must be an int in \[1, 6\]. Got 7"):
        ChainConfig(encoder_layers=7, trainable_layers=7)
