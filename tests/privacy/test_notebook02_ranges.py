"""Notebook 02 declares ranges for every parameter (issue 13), so out-of-range values of its studies, the MiniLM ones
included, are refused by the batch runner before anything runs."""
import re
from pathlib import Path

import pytest

from workbench import batch

NOTEBOOK = Path(__file__).parents[2] / "notebooks" / "02_privacy_attacks.ipynb"


def test_every_parameter_of_notebook_02_has_a_range():
    # every parameter is checked by the runner before anything runs; the grouped ones (dict literals) key by key,
    # and again by attack_study_parameters in the notebook's configuration cell
    from workbench.privacy import studies as S

    ranges = batch.parameter_ranges(NOTEBOOK)
    assert set(ranges) == set(batch.notebook_parameters(NOTEBOOK)) - {"SEED", "OUTPUT_DIR"}
    assert {g: set(ranges[g]["keys"]) for g in S.ATTACK_GROUPS} == {g: set(keys) for g, keys in S.ATTACK_GROUPS.items()}
    assert {g: set(keys) for g, keys in S.ATTACK_GROUP_CHECKS.items()} == {g: set(keys) for g, keys in S.ATTACK_GROUPS.items()}


@pytest.mark.parametrize("group, value, message", [
    ("CANARY", {"epochs": 0}, """The "CANARY['epochs']" parameter of notebook 02_privacy_attacks must be an int >= 1. Got 0 instead."""),
    ("CANARY", {"dropout": 1.0}, """The "CANARY['dropout']" parameter of notebook 02_privacy_attacks must be a float in [0, 1). Got 1.0 instead."""),
    ("TRAINING", {"epochs": 3}, "The 'TRAINING' parameter of notebook 02_privacy_attacks must be a dict with keys among"),
])
def test_grouped_values_are_refused_key_by_key_before_anything_runs(group, value, message, tmp_path):
    with pytest.raises(batch.BatchError, match=re.escape(message)):
        batch.run_notebooks([NOTEBOOK], parameters={group: value}, output=tmp_path)
    assert not any(tmp_path.iterdir())


@pytest.mark.parametrize("name, value, accepts", [
    ("MINILM_EPOCHS", 0, "an int >= 1"),
    ("MINILM_SHADOW_COUNTS", [4, 1], "a non-empty list or tuple of an int >= 2"),
    ("MINILM_SHADOW_COUNTS", [], "a non-empty list or tuple of an int >= 2"),
    ("MINILM_CANARY_EPSILONS", [0.0], "a list or tuple of a float > 0"),   # [] is fine: no DP model
    ("N_DIGITS", 8, "an int in [1, 7]"),
    ("DELTA", 1.0, "a float in (0, 1)"),
])
def test_out_of_range_values_are_refused_before_anything_runs(name, value, accepts, tmp_path):
    message = f"The '{name}' parameter of notebook 02_privacy_attacks must be {accepts}. Got {value!r} instead."
    with pytest.raises(batch.BatchError, match=re.escape(message)):
        batch.run_notebooks([NOTEBOOK], parameters={name: value}, output=tmp_path)
    assert not any(tmp_path.iterdir())
