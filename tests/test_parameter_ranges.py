"""The shipped notebooks declare ranges for their parameters, so the runner refuses out-of-range values before
anything runs (issue 12: `-p EPOCH_SCALE -1` used to become one epoch and a normal completed run)."""
import re
from pathlib import Path

import pytest

from workbench import batch

NOTEBOOKS = Path(__file__).parents[1] / "notebooks"


@pytest.mark.parametrize("stem, name, value, accepts", [
    ("06_model_update_flips", "EPOCH_SCALE", -1, "a float > 0"),
    ("06_model_update_flips", "DISTANCE", "cosine", "one of ('kl', 'l2')"),
    ("00_data_tour", "N_IMAGES", -3, "an int >= 1"),
    ("00_data_tour", "SIZE", "huge", "one of ('tiny', 'small', 'full')"),
])
def test_out_of_range_values_are_refused_before_anything_runs(stem, name, value, accepts, tmp_path):
    message = f"The '{name}' parameter of notebook {stem} must be {accepts}. Got {value!r} instead."
    with pytest.raises(batch.BatchError, match=re.escape(message)):
        batch.run_notebooks([NOTEBOOKS / f"{stem}.ipynb"], parameters={name: value}, output=tmp_path)
    assert not any(tmp_path.iterdir()), "nothing may run (or be written) for a refused value"


@pytest.mark.parametrize("path", sorted(NOTEBOOKS.glob("*.ipynb")), ids=lambda p: p.stem)
def test_declared_ranges_accept_the_defaults(path, tmp_path):
    (spec,) = batch.plan_runs([path], output=tmp_path)
    assert spec.parameters is not None
