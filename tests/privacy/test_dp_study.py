"""Notebook 01/01b's study helpers: record metric names in the one scheme, fine-tuning timings per engine."""
import math

import pandas as pd
import pytest
import torch

from workbench.models import MLP
from workbench.privacy.studies.training import dp_study_metrics, finetune_timings
from workbench.results import METRIC_KEY_PATTERN
from workbench.training import TrainConfig

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


def test_dp_study_metrics_follow_the_naming_scheme():
    sweep = pd.DataFrame({"model": ["bag", "bag", "minilm_all"], "epsilon_target": [None, 0.5, 8.0],
                          "epsilon": [None, 0.49, 7.95], "val_accuracy": [0.64, 0.5, 0.7]})
    timing = pd.DataFrame({"model": ["bag", "bag"], "engine": ["non-DP", "opacus-ghost"], "slowdown": [1.0, 4.2]})
    m = dp_study_metrics(sweep, timing=timing)
    assert list(m) == ["bag/non_dp/val_accuracy", "bag/non_dp/epsilon", "bag/eps_0.5/val_accuracy", "bag/eps_0.5/epsilon",
                       "minilm_all/eps_8/val_accuracy", "minilm_all/eps_8/epsilon", "slowdown/bag/non_dp",
                       "slowdown/bag/opacus_ghost"]
    import re

    assert all(re.match(METRIC_KEY_PATTERN, k) and "." not in k.replace("0.5", "") for k in m)
    assert m["bag/eps_0.5/epsilon"] == 0.49 and math.isnan(m["bag/non_dp/epsilon"]) and m["slowdown/bag/opacus_ghost"] == 4.2


def test_finetune_timings_rows_and_errors():
    X = torch.randn(48, 3)
    y = (X[:, 0] > 0).long()
    t = finetune_timings(lambda: MLP(in_features=3, out_features=2), (X, y), engines=["fast", "opacus-hooks"],
                         config=TrainConfig(batch_size=16), samples=32, model="mlp")
    assert t.engine.tolist() == ["non-DP", "fast", "opacus-hooks"] and t.slowdown[0] == 1.0
    assert (t.seconds_per_epoch > 0).all() and (t.note == "").all()
    with pytest.raises(ValueError, match="'engines' parameter of finetune_timings"):
        finetune_timings(lambda: MLP(in_features=3, out_features=2), (X, y), engines=["jax"], config=TrainConfig())
