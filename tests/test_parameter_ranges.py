"""The shipped notebooks declare ranges for their parameters, so the runner refuses out-of-range values before
anything runs (issue 12: `-p EPOCH_SCALE -1` used to become one epoch and a normal completed run; `-p MAX_MIA_AUC 2`
made notebook 09's membership rule pass every update; `-p LAYERS 9` failed 30 s into notebook 01b)."""
import re
from pathlib import Path

import pytest

from workbench import batch
from workbench.notebook_params import check_notebook_metadata, check_values, constraint_for
from workbench.validation import InvalidParameterError

NOTEBOOKS = Path(__file__).parents[1] / "notebooks"
ALL = sorted(NOTEBOOKS.glob("*.ipynb"))


@pytest.mark.parametrize("stem, name, value, accepts", [
    ("00_data_tour", "N_IMAGES", -3, "an int >= 1"),
    ("00_data_tour", "SIZE", "huge", "one of ('tiny', 'small', 'full')"),
    ("01_dp_vs_non_dp", "EPSILONS", [-1.0], "a non-empty list or tuple of a float > 0"),
    ("01_dp_vs_non_dp", "EPSILONS", [], "a non-empty list or tuple of a float > 0"),
    ("01_dp_vs_non_dp", "SWEEP_MODELS", ["cnn"], "a non-empty list or tuple of one of ('bag', 'gru', 'linear', 'mlp')"),
    ("01_dp_vs_non_dp", "ACCOUNTING_POINTS", 0, "an int >= 1"),
    ("01b_dp_finetuning_transformer", "LAYERS", 9, "an int in [1, 6]"),
    ("01b_dp_finetuning_transformer", "PART", "everything", "one of ('all', 'last_layers', 'bias', 'head')"),
    ("04_intrinsic_bias_ceat", "MINILM_LAYERS", [0, 9], "a non-empty list or tuple of an int in [0, 6]"),
    ("04_intrinsic_bias_ceat", "N_SEAT_TEMPLATES", 7, "an int in [1, 6]"),
    ("05_extrinsic_bias", "LAYERS", [9], "a non-empty list or tuple of an int in [0, 6]"),
    ("05_extrinsic_bias", "HIDDEN", [64, 0], "a list or tuple of an int >= 1"),
    ("06_model_update_flips", "EPOCH_SCALE", -1, "a float > 0"),
    ("06_model_update_flips", "DISTANCE", "cosine", "one of ('kl', 'l2')"),
    ("07_backward_compatible_embeddings", "OLD_N_CLASSES", 11, "an int in [2, 10]"),
    ("07_backward_compatible_embeddings", "OLD_FRACTION", 0.0, "a float in (0, 1]"),
    ("09_update_scorecard", "MAX_MIA_AUC", 2.0, "a float in [0, 1]"),
    ("09_update_scorecard", "N_BOOT", 5, "an int >= 10"),
])
def test_out_of_range_values_are_refused_before_anything_runs(stem, name, value, accepts, tmp_path):
    message = f"The '{name}' parameter of notebook {stem} must be {accepts}. Got {value!r} instead."
    with pytest.raises(batch.BatchError, match=re.escape(message)):
        batch.run_notebooks([NOTEBOOKS / f"{stem}.ipynb"], parameters={name: value}, output=tmp_path)
    assert not any(tmp_path.iterdir()), "nothing may run (or be written) for a refused value"


@pytest.mark.parametrize("path", ALL, ids=lambda p: p.stem)
def test_declared_ranges_accept_the_defaults_and_smoke_parameters(path):
    # every default written in the parameters cell and every smoke value is checked against the declared ranges,
    # and every range names a parameter the cell defines (a misspelt name would otherwise check nothing)
    check_notebook_metadata(defaults=batch.notebook_parameters(path), ranges=batch.parameter_ranges(path),
                            smoke=batch.smoke_parameters(path), notebook=path.stem)


#: Where the package keeps what a notebook parameter may name, so a new engine or model is not refused by a stale list.
REGISTRIES = {
    "ENGINE": ("workbench.privacy.dp", "ENGINES"), "TIMING_ENGINES": ("workbench.privacy.dp", "ENGINES"),
    "SWEEP_MODELS": ("workbench.privacy.data", "MODEL_FAMILIES"), "PART": ("workbench.privacy.trainable", "PARTS"),
    "TESTS": ("workbench.fairness.studies.intrinsic", "CALISKAN_2017_GLOVE"),
    "ENCODERS": ("workbench.fairness.studies.intrinsic", "ENCODER_DEPTH"),
    "MINILM_POOLING": ("workbench.fairness.contextual", "WORD_POOLINGS"),
    "SMOLLM2_POOLING": ("workbench.fairness.contextual", "WORD_POOLINGS"),
    "SOURCES": ("workbench.fairness.contexts", "CONTEXT_SOURCES"),
    "DATASET": ("workbench.compatibility.data", "DATASETS"), "HEAD": ("workbench.compatibility.bct", "HEADS"),
    "SIMILARITY": ("workbench.compatibility.bct", "SIMILARITIES"),
}
MINE = ("01_dp_vs_non_dp", "01b_dp_finetuning_transformer", "04_intrinsic_bias_ceat", "05_extrinsic_bias",
        "07_backward_compatible_embeddings", "09_update_scorecard")
OPTION_RANGES = [(p.stem, name, spec["options"]) for p in ALL if p.stem in MINE
                 for name, spec in batch.parameter_ranges(p).items() if "options" in spec and name in REGISTRIES]


@pytest.mark.parametrize("stem, name, options", OPTION_RANGES, ids=[f"{s}-{n}" for s, n, _ in OPTION_RANGES])
def test_declared_options_match_the_package(stem, name, options):
    import importlib

    module, attr = REGISTRIES[name]
    package = getattr(importlib.import_module(module), attr)
    assert sorted(options) == sorted(package), f"{stem}'s {name} options drifted from {module}.{attr}"


def test_option_ranges_are_checked_against_the_package():
    stems = {s for s, _, _ in OPTION_RANGES}
    assert {"01_dp_vs_non_dp", "01b_dp_finetuning_transformer", "04_intrinsic_bias_ceat",
            "07_backward_compatible_embeddings"} <= stems


def test_range_keys_type_min_len_and_optional():
    defaults = {"HIDDEN": "[]", "EPSILONS": "[1.0]", "STEPS": "20", "LIMIT": "None", "OUTPUT_DIR": "None"}
    ranges = {"HIDDEN": {"type": "int", "min": 1}, "EPSILONS": {"min": 0, "exclusive": True, "min_len": 1},
              "STEPS": {"min": 1, "optional": True}, "LIMIT": {"type": "int", "min": 0}}
    ok = check_values({"HIDDEN": [], "EPSILONS": ["1e-1", 8], "STEPS": None, "LIMIT": None}, defaults=defaults,
                      ranges=ranges, notebook="nb")
    assert ok == {"HIDDEN": [], "EPSILONS": [0.1, 8.0], "STEPS": None, "LIMIT": None}
    assert check_values({"HIDDEN": [64, 32], "LIMIT": 3}, defaults=defaults, ranges=ranges, notebook="nb") == \
        {"HIDDEN": [64, 32], "LIMIT": 3}
    for name, value, accepts in [("HIDDEN", [64, 1.5], "a list or tuple of an int >= 1"),
                                 ("EPSILONS", [], "a non-empty list or tuple of a float > 0"),
                                 ("STEPS", 0, "an int >= 1 or None"),
                                 ("LIMIT", 2.5, "an int >= 0 or None")]:
        with pytest.raises(InvalidParameterError, match=re.escape(f"The '{name}' parameter of notebook nb must be "
                                                                  f"{accepts}. Got {value!r} instead.")):
            check_values({name: value}, defaults=defaults, ranges=ranges, notebook="nb")
    with pytest.raises(InvalidParameterError, match=re.escape("The 'STEPS' parameter of notebook nb must be an int >= 1. "
                                                              "Got None instead.")):
        check_values({"STEPS": None}, defaults=defaults, ranges={"STEPS": {"min": 1}}, notebook="nb")
    assert constraint_for([], {"type": "float", "min": 0}).describe() == "a list or tuple of a float >= 0"


@pytest.mark.parametrize("ranges, smoke, match", [
    ({"N_IMAGE": {"min": 1}}, {}, r"declares parameter_ranges for \['N_IMAGE'\], which its parameters cell does not define"),
    ({"N": {"type": "integer"}}, {}, r"'type' in the range of 'N' \(notebook nb\) must be one of \('int', 'float', 'str', 'bool'\)"),
    ({"N": {"min_len": -1}}, {}, r"'min_len' in the range of 'N' \(notebook nb\) must be an int >= 0"),
    ({"N": {"optional": "yes"}}, {}, r"'optional' in the range of 'N' \(notebook nb\) must be true or false"),
    ({}, {"N_IMAGE": 2}, r"smoke_parameters set \['N_IMAGE'\], which its parameters cell does not define"),
    ({"N": {"min": 5}}, {}, r"The 'N' parameter of notebook nb must be an int >= 5\. Got 3 instead\."),
    ({"N": {"min": 1}}, {"N": 0}, r"The 'N' parameter of notebook nb must be an int >= 1\. Got 0 instead\."),
])
def test_malformed_notebook_metadata_is_named(ranges, smoke, match):
    with pytest.raises(InvalidParameterError, match=match):
        check_notebook_metadata(defaults={"N": "3", "OUTPUT_DIR": "None"}, ranges=ranges, smoke=smoke, notebook="nb")


@pytest.mark.parametrize("ranges, smoke, match", [
    ({"N": {"keys": {"a": {"min": 1}}}}, {}, r"declares key ranges for 'N' , which its parameters cell does not define as keys"),
    ({"D": {"keys": {"b": {"min": 1}}}}, {}, r"declares key ranges for 'D' \['b'\]"),
    ({"D": {"keys": [1]}}, {}, r"'keys' in the range of 'D' \(notebook nb\) must map the dict's keys to ranges"),
    ({"D": {"keys": {"a": {"type": "integer"}}}}, {}, r"""'type' in the range of "D\['a'\]" \(notebook nb\)"""),
    ({"D": {"keys": {"a": {"min": 5}}}}, {}, r"""The "D\['a'\]" parameter of notebook nb must be an int >= 5\. Got 3 instead\."""),
    ({}, {"D": {"a": 1, "c": 2}}, r"The 'D' parameter of notebook nb must be a dict with keys among \['a', 'x'\]"),
    ({}, {"D": {"x": 2}}, r"""The "D\['x'\]" parameter of notebook nb must be an instance of str\. Got 2 instead\."""),
])
def test_dict_parameters_are_checked_key_by_key(ranges, smoke, match):
    """A dict parameter takes some of its default's keys, each of its default value's type and declared range."""
    defaults = {"N": "3", "D": '{"a": 3, "x": "text"}'}
    with pytest.raises(InvalidParameterError, match=match):
        check_notebook_metadata(defaults=defaults, ranges=ranges, smoke=smoke, notebook="nb")
    assert check_values({"D": {"a": "1e1"}}, defaults=defaults, ranges={"D": {"keys": {"a": {"type": "float"}}}},
                        notebook="nb") == {"D": {"a": 10.0}}


#: Where the package keeps the defaults of a notebook's grouped parameters (dict literals): a partial dict given with
#: -p keeps these for the keys it leaves out, so they must be the values the parameters cell shows.
GROUPS = {
    "01_dp_vs_non_dp": ("workbench.privacy.studies", "DP_GROUPS"),
    "02_privacy_attacks": ("workbench.privacy.studies", "ATTACK_GROUPS"),
    "04_intrinsic_bias_ceat": ("workbench.fairness.studies", "INTRINSIC_GROUPS"),
    "06_model_update_flips": ("workbench.compatibility.studies", "FLIP_GROUPS"),
    "07_backward_compatible_embeddings": ("workbench.compatibility.studies", "BCT_GROUPS"),
    "09_update_scorecard": ("workbench.scorecard.studies", "SCORECARD_GROUPS"),
}


@pytest.mark.parametrize("stem", sorted(GROUPS))
def test_grouped_parameters_show_the_package_defaults(stem):
    import ast
    import importlib

    module, attr = GROUPS[stem]
    groups = getattr(importlib.import_module(module), attr)
    path = NOTEBOOKS / f"{stem}.ipynb"
    defaults = {name: ast.literal_eval(text) for name, text in batch.notebook_parameters(path).items()}
    shown = {name: value for name, value in defaults.items() if isinstance(value, dict)}
    assert shown == groups, f"{stem}'s dict parameters differ from {module}.{attr}"
    for name, value in batch.smoke_parameters(path).items():
        if name in groups:
            assert isinstance(value, dict) and set(value) <= set(groups[name]), f"{stem}'s smoke {name} has unknown keys"
