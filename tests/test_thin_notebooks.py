"""Notebooks orchestrate and teach; the computation lives in the package (issue 11): at most 80 code lines in a
notebook and no code cell over 15 lines (the parameters cell, literals only, aside). Blank lines do not count."""
import json
from pathlib import Path

import pytest

NOTEBOOKS = Path(__file__).parents[1] / "notebooks"
THIN = ["00_data_tour", "04_intrinsic_bias_ceat", "05_extrinsic_bias", "06_model_update_flips", "07_backward_compatible_embeddings"]


def _code_cells(stem):
    nb = json.loads((NOTEBOOKS / f"{stem}.ipynb").read_text())
    for cell in nb["cells"]:
        if cell["cell_type"] == "code":
            lines = [line for line in "".join(cell["source"]).splitlines() if line.strip()]
            yield "parameters" in cell.get("metadata", {}).get("tags", []), lines


@pytest.mark.parametrize("stem", THIN)
def test_notebook_is_thin(stem):
    cells = list(_code_cells(stem))
    assert sum(len(lines) for _, lines in cells) <= 80
    long = [lines[0] for is_parameters, lines in cells if not is_parameters and len(lines) > 15]
    assert not long, f"code cells over 15 lines start with {long}"
