"""Notebooks orchestrate and teach; the computation lives in the package (issue 11): at most 80 code lines in a
notebook and no code cell over 15 lines (the parameters cell, literals only, aside). Blank lines do not count."""
import json
from pathlib import Path

import pytest

NOTEBOOKS = Path(__file__).parents[1] / "notebooks"
THIN = sorted(p.stem for p in NOTEBOOKS.glob("*.ipynb"))  # every notebook, so a new one is held to the same rule


def _code_cells(stem):
    nb = json.loads((NOTEBOOKS / f"{stem}.ipynb").read_text())
    for cell in nb["cells"]:
        if cell["cell_type"] == "code":
            lines = [line for line in "".join(cell["source"]).splitlines() if line.strip()]
            yield "parameters" in cell.get("metadata", {}).get("tags", []), lines


def test_every_notebook_is_checked():
    assert {"01_dp_vs_non_dp", "01b_dp_finetuning_transformer", "02_privacy_attacks", "03_federated_sampling",
            "08_counterfactual_distillation", "09_update_scorecard"} <= set(THIN)


@pytest.mark.parametrize("stem", THIN)
def test_notebook_is_thin(stem):
    cells = list(_code_cells(stem))
    total = sum(len(lines) for _, lines in cells)
    assert total <= 80, f"{stem} has {total} code lines"
    long = [lines[0] for is_parameters, lines in cells if not is_parameters and len(lines) > 15]
    assert not long, f"code cells over 15 lines start with {long}"
