"""Issue 12: notebook 05's config refuses layers MiniLM does not have (layer 9 used to pass the config, and the
error came later, blaming 'main_layer'), and says that 'main_layer' must be one of the 'layers'."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from workbench.fairness.studies import ENCODER_DEPTH, ExtrinsicStudyConfig, extrinsic_study_metrics
from workbench.validation import InvalidParameterError


@pytest.mark.parametrize("layers", [[9], [2, 7], (6, -1), [], 6, ["6"]])
def test_layers_outside_the_encoder_are_blamed_on_layers(layers):
    with pytest.raises(InvalidParameterError) as info:
        ExtrinsicStudyConfig(layers=layers, main_layer=6)
    assert str(info.value).startswith("The 'layers' parameter of ExtrinsicStudyConfig must be a non-empty list or tuple of an int "
                                      f"in [0, {ENCODER_DEPTH['minilm']}]. Got ")


def test_a_layer_9_with_main_layer_9_is_refused_by_the_config():
    with pytest.raises(InvalidParameterError, match=r"'layers' parameter of ExtrinsicStudyConfig .* in \[0, 6\]. Got \[9\] instead."):
        ExtrinsicStudyConfig(layers=[9], main_layer=9)


def test_main_layer_must_be_one_of_layers_and_the_message_says_so():
    with pytest.raises(InvalidParameterError) as info:
        ExtrinsicStudyConfig(layers=[2, 4], main_layer=6)
    assert str(info.value) == ("The 'main_layer' parameter of ExtrinsicStudyConfig must be one of (2, 4) (its 'layers'). "
                               "Got 6 instead.")


def test_every_layer_of_the_encoder_is_accepted():
    cfg = ExtrinsicStudyConfig(layers=list(range(ENCODER_DEPTH["minilm"] + 1)), main_layer=np.int64(0))
    assert cfg.layers == (0, 1, 2, 3, 4, 5, 6) and cfg.main_layer == 0 and type(cfg.main_layer) is int
    assert ExtrinsicStudyConfig().layers == (2, 4, 6)  # notebook 05's defaults
    assert ExtrinsicStudyConfig(layers=[6], main_layer=6).main_layer == 6  # and its smoke values


def test_metrics_main_layer_names_the_table_layers():
    table = pd.DataFrame({"layer": [4, 4], "variant": ["baseline", "cda"], "intrinsic_weat": [0.1, 0.1],
                          "gender_probe_accuracy": [1.0, 1.0], "gender_gap": [0.1, 0.0]})
    with pytest.raises(InvalidParameterError, match=r"The 'main_layer' parameter of extrinsic_study_metrics must be one of \(4,\). "
                                                    r"Got 6 instead."):
        extrinsic_study_metrics(table, main_layer=6, correlations=pd.Series(dtype=float))
    assert extrinsic_study_metrics(table, main_layer=np.int64(4), correlations=pd.Series(dtype=float))["cda/gender_gap"] == 0.0
