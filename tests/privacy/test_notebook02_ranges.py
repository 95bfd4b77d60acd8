"""Notebook 02 declares ranges for every parameter (issue 13), so out-of-range values of its studies, the MiniLM ones
included, are refused by the batch runner before anything runs."""
import re
from pathlib import Path

import pytest

from workbench import batch

NOTEBOOK = Path(__file__).parents[2] / "notebooks" / "02_privacy_attacks.ipynb"


def test_every_parameter_of_notebook_02_has_a_range():
    # the grouped parameters (dict literals) are checked key by key by attack_study_parameters, in the notebook's
    # configuration cell (before anything trains); every other parameter by the runner, before anything runs
    from workbench.privacy import studies as S

    grouped = set(S.ATTACK_GROUPS)
    assert set(batch.parameter_ranges(NOTEBOOK)) == set(batch.notebook_parameters(NOTEBOOK)) - {"SEED", "OUTPUT_DIR"} - grouped
    assert grouped <= set(batch.notebook_parameters(NOTEBOOK))
    assert {g: set(keys) for g, keys in S.ATTACK_GROUP_CHECKS.items()} == {g: set(keys) for g, keys in S.ATTACK_GROUPS.items()}


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
