"""Notebook 08 declares its parameter ranges; the options come from the package's registries, so they cannot drift."""
import ast
import re
from pathlib import Path

import pytest

from workbench import batch

NB = Path(__file__).parents[2] / "notebooks" / "08_counterfactual_distillation.ipynb"


def test_declared_options_are_the_package_registries():
    from workbench.datasets.corpus import CORPUS_SOURCES
    from workbench.distillation.role_reversal import CDA_MODES, PERTURBATIONS
    from workbench.distillation.student import LAYER_SELECTIONS

    ranges = batch.parameter_ranges(NB)
    for name, registry in {"SOURCES": CORPUS_SOURCES, "CDA_MODE": CDA_MODES, "PERTURBATION": PERTURBATIONS,
                           "LAYER_SELECTION": LAYER_SELECTIONS}.items():
        assert sorted(ranges[name]["options"]) == sorted(registry), name
    assert "two_sided" in ranges["CDA_MODE"]["options"]


@pytest.mark.parametrize("name, value, accepts", [
    ("N_TRAIN", 0, "an int >= 1"),
    ("CDA_MODE", "both", "one of ('one_sided', 'substitute', 'two_sided')"),
    ("SEQ_LEN", 8, "an int in [16, 512]"),
    ("SOURCES", [], "a non-empty list or tuple of one of ('imdb', 'tweets', 'wiki', 'xsum')"),
])
def test_out_of_range_values_are_refused_before_anything_runs(name, value, accepts, tmp_path):
    message = f"The '{name}' parameter of notebook {NB.stem} must be {accepts}. Got {value!r} instead."
    with pytest.raises(batch.BatchError, match=re.escape(message)):
        batch.run_notebooks([NB], parameters={name: value}, output=tmp_path)
    assert not any(tmp_path.iterdir())


def test_parameters_cell_is_short_and_distill_keys_are_config_fields():
    from dataclasses import fields

    from workbench.distillation import DistillationStudyConfig

    defaults = batch.notebook_parameters(NB)
    assert len(defaults) <= 15
    distill = ast.literal_eval(defaults["DISTILL"])
    config = DistillationStudyConfig(**distill)
    assert set(distill) <= {f.name for f in fields(DistillationStudyConfig)}
    assert (config.temperature, config.alpha, config.lr) == (distill["temperature"], distill["alpha"], distill["lr"])
