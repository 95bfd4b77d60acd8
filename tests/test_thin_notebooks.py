"""Notebooks orchestrate and teach; the computation lives in the package (issue 11). The rule, as CONTRIBUTING
states it: at most 80 code lines in a notebook, the parameters cell included (comment lines count, blank lines do
not); no code cell over 15 lines, the parameters cell included (rarely changed values go in dict literals); the
parameters cell holds only `NAME = literal` assignments, one per line (plus comments), including SEED and
OUTPUT_DIR = None, and every name in it is one the batch runner can set with `-p NAME value`."""
import ast
import json
from pathlib import Path

import pytest

NOTEBOOKS = Path(__file__).parents[1] / "notebooks"
THIN = sorted(p.stem for p in NOTEBOOKS.glob("*.ipynb"))  # every notebook, so a new one is held to the same rule
MAX_LINES, MAX_CELL_LINES = 80, 15


def _code_cells(stem):
    nb = json.loads((NOTEBOOKS / f"{stem}.ipynb").read_text())
    for cell in nb["cells"]:
        if cell["cell_type"] == "code":
            source = "".join(cell["source"])
            lines = [line for line in source.splitlines() if line.strip()]
            yield "parameters" in cell.get("metadata", {}).get("tags", []), lines, source


def _parameters_source(stem):
    sources = [source for is_parameters, _, source in _code_cells(stem) if is_parameters]
    assert len(sources) == 1, f"{stem} must have exactly one code cell tagged 'parameters'; it has {len(sources)}"
    return sources[0]


def parameter_assignments(source):
    """``{name: value}`` of a parameters cell, or AssertionError saying which line breaks the rule."""
    values = {}
    for node in ast.parse(source).body:
        where = f"line {node.lineno}: {ast.get_source_segment(source, node)!r}"
        assert isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name), \
            f"the parameters cell holds only NAME = literal assignments; {where}"
        name = node.targets[0].id
        assert name.isupper(), f"parameter names are UPPER_CASE; {where}"
        assert name not in values, f"{name} is assigned twice; {where}"
        assert node.lineno == node.end_lineno, f"one parameter per line; {where}"
        try:
            values[name] = ast.literal_eval(node.value)
        except ValueError:
            raise AssertionError(f"parameter values are literals (numbers, text, True/False, None, lists, dicts); {where}") from None
    return values


def test_every_notebook_is_checked():
    assert {"01_dp_vs_non_dp", "01b_dp_finetuning_transformer", "02_privacy_attacks", "03_federated_sampling",
            "08_counterfactual_distillation", "09_update_scorecard"} <= set(THIN)


@pytest.mark.parametrize("stem", THIN)
def test_notebook_is_thin(stem):
    cells = list(_code_cells(stem))
    total = sum(len(lines) for _, lines, _ in cells)  # the parameters cell counts too
    assert total <= MAX_LINES, f"{stem} has {total} code lines (at most {MAX_LINES}, the parameters cell included)"
    long = [lines[0] for _, lines, _ in cells if len(lines) > MAX_CELL_LINES]   # the parameters cell too
    assert not long, f"code cells over {MAX_CELL_LINES} lines start with {long}"


@pytest.mark.parametrize("stem", THIN)
def test_parameters_cell_holds_only_literal_assignments(stem):
    values = parameter_assignments(_parameters_source(stem))
    assert "SEED" in values and isinstance(values["SEED"], int), f"{stem}'s parameters cell must set SEED"
    assert "OUTPUT_DIR" in values and values["OUTPUT_DIR"] is None, f"{stem}'s parameters cell must set OUTPUT_DIR = None"


@pytest.mark.parametrize("stem", THIN)
def test_every_parameter_can_be_set_from_the_command_line(stem):
    # papermill's inspection is what the runner accepts with -p; an '=' in a comment makes it miss a parameter
    from workbench.batch import notebook_parameters

    assigned = set(parameter_assignments(_parameters_source(stem)))
    assert set(notebook_parameters(NOTEBOOKS / f"{stem}.ipynb")) == assigned


@pytest.mark.parametrize("source, message", [
    ("SEED = 0\nimport numpy\n", "only NAME = literal assignments; line 2"),
    ("SEED = 0\nN = len([1, 2])\n", "values are literals"),
    ("SEED = 0\nn = 3\n", "UPPER_CASE"),
    ("SEED = 0\nSEED = 1\n", "assigned twice"),
    ("SEED = 0\nSIZES = [\n    1,\n    2,\n]\n", "one parameter per line"),
    ("A = B = 1\n", "only NAME = literal assignments"),
])
def test_the_parameters_rule_rejects(source, message):
    with pytest.raises(AssertionError, match=message):
        parameter_assignments(source)
