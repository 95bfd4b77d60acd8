"""`import workbench` stays light: no torch, transformers, plotly or papermill at package import."""
import json
import subprocess
import sys

HEAVY = ("torch", "transformers", "plotly", "papermill", "opacus", "pandas", "sklearn")


def test_package_import_loads_no_heavy_library():
    code = ("import sys, json, workbench; "
            f"print(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert json.loads(proc.stdout) == []


def test_public_names_resolve_lazily():
    import workbench

    assert callable(workbench.run_notebooks) and callable(workbench.save_record)
    assert set(workbench.__all__) >= {"save_record", "collect", "fit", "run_notebooks"}
