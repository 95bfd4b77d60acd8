"""Every notebook in notebooks/: committed clean, parameterized, and executed with its smoke parameters
through the batch runner with a real Jupyter kernel."""
import json
from pathlib import Path

import pytest

from workbench import batch

NOTEBOOKS = sorted((Path(__file__).parents[1] / "notebooks").glob("*.ipynb"))


def test_there_are_notebooks():
    assert NOTEBOOKS, "notebooks/ holds no notebooks"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_is_committed_clean_and_parameterized(path):
    nb = json.loads(path.read_text())
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    assert all(not c.get("outputs") and c.get("execution_count") is None for c in code), "strip outputs"
    tagged = [c for c in code if "parameters" in c.get("metadata", {}).get("tags", [])]
    assert len(tagged) == 1, "exactly one cell tagged 'parameters'"
    params = batch.notebook_parameters(path)
    assert "SEED" in params and "OUTPUT_DIR" in params
    assert set(batch.smoke_parameters(path)) <= set(params), "smoke parameters must be declared parameters"
    assert nb["cells"][0]["cell_type"] == "markdown", "start with a title and what the reader will learn"


@pytest.mark.notebook
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs_with_smoke_parameters(path, tmp_path):
    (result,) = batch.run_notebooks([path], smoke=True, output=tmp_path, timeout=600)
    assert result.status == "completed", f"{result.spec.name} failed in cell {result.failing_cell}: {result.error}"
    record = json.loads((result.spec.output_dir / "record.json").read_text())
    assert record["metrics"], "the notebook should record its metrics with save_record"
