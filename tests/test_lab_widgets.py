"""The live widget check's own contract (the check itself runs in `make test` after pytest: `make test-widgets`):
it covers every notebook in notebooks/, runs each with its smoke parameters, and says plainly when it cannot run."""
import importlib.util
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "check_lab_widgets.py"


def _script():
    spec = importlib.util.spec_from_file_location("check_lab_widgets", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_without_a_browser_it_says_so_and_does_not_fail_the_suite(tmp_path):
    proc = subprocess.run([sys.executable, str(SCRIPT), "--out", str(tmp_path), "--if-available", "--chromium",
                           str(tmp_path / "no-chromium")], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert "Live widget check NOT RUN: missing" in proc.stdout and "no-chromium" in proc.stdout
    proc = subprocess.run([sys.executable, str(SCRIPT), "--out", str(tmp_path), "--chromium", str(tmp_path / "none")],
                          capture_output=True, text=True)
    assert proc.returncode == 1 and "NOT RUN" in proc.stderr  # asked for explicitly: a missing browser is a failure


def test_every_notebook_is_covered_with_its_smoke_parameters(tmp_path):
    module = _script()
    every = sorted(p.name for p in (ROOT / "notebooks").glob("*.ipynb"))
    assert sorted(p.name for p in module.select_notebooks([])) == every  # new notebooks are picked up as they land
    nb = ROOT / "notebooks" / every[0]
    copy = module.smoke_copy(nb, tmp_path, tmp_path / "runs")
    cells = json.loads(copy.read_text())["cells"]
    smoke = json.loads(nb.read_text())["metadata"]["workbench"]["smoke_parameters"]
    injected = "".join(next(c["source"] for c in cells if c.get("id", "").startswith("smoke-")))
    assert all(f"{k} = {v!r}" in injected for k, v in smoke.items()) and "OUTPUT_DIR" in injected
