"""Per-notebook overhead of the workbench batch runner against a bare ``papermill.execute_notebook`` call.

Both execute the same small notebook (tests/fixtures/notebooks/arith.ipynb) with a real kernel, alternating,
in one process; the difference is what the runner adds (planning and parameter validation, the skip check,
the record merge). Results go to benchmarks/results/batch_overhead.json.

    .venv/bin/python benchmarks/batch_overhead.py [--repeats 9]

Both figures are medians over the paired (bare, runner) executions: the difference and the ratio.
"""
from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import papermill

from workbench import batch
from workbench.results import atomic_write_text, library_versions

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = ROOT / "tests" / "fixtures" / "notebooks" / "arith.ipynb"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=9)
    args = parser.parse_args()
    bare, runner, resume = [], [], []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        for i in range(args.repeats):
            out = tmp / f"bare{i}"
            out.mkdir()
            t = time.perf_counter()
            papermill.execute_notebook(str(NOTEBOOK), str(out / "nb.ipynb"), parameters={"A": i, "OUTPUT_DIR": str(out)},
                                       progress_bar=False, cwd=str(NOTEBOOK.parent))
            bare.append(time.perf_counter() - t)
            t = time.perf_counter()
            (res,) = batch.run_notebooks([NOTEBOOK], parameters={"A": i}, output=tmp / "runs")
            runner.append(time.perf_counter() - t)
            assert res.status == "completed"
            t = time.perf_counter()
            (res,) = batch.run_notebooks([NOTEBOOK], parameters={"A": i}, output=tmp / "runs")
            resume.append(time.perf_counter() - t)
            assert res.status == "skipped"
    result = {
        "notebook": str(NOTEBOOK.relative_to(ROOT)),
        "repeats": args.repeats,
        "bare_papermill_s": statistics.median(bare),
        "workbench_runner_s": statistics.median(runner),
        "overhead_s": statistics.median(r - b for r, b in zip(runner, bare)),
        "overhead_ratio": statistics.median(r / b for r, b in zip(runner, bare)),
        "resume_skip_s": statistics.median(resume),
        "versions": library_versions(),
    }
    atomic_write_text(ROOT / "benchmarks" / "results" / "batch_overhead.json", json.dumps(result, indent=2) + "\n")
    print("| | median seconds per notebook |\n|---|---|")
    print(f"| bare papermill.execute_notebook | {result['bare_papermill_s']:.2f} |")
    print(f"| workbench runner (plan, validate, execute, record) | {result['workbench_runner_s']:.2f} |")
    print(f"| runner overhead | {result['overhead_s']:+.2f} ({result['overhead_ratio']:.2f}x) |")
    print(f"| resuming a completed run (skip) | {result['resume_skip_s']:.3f} |")


if __name__ == "__main__":
    main()
