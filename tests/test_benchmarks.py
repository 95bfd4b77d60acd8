"""The benchmark scripts run end to end on tiny settings and write well-formed results (no timing asserted)."""
import importlib.util
import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def load(name):
    spec = importlib.util.spec_from_file_location(name, ROOT / "benchmarks" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_dp_overhead_runs_and_writes_paired_ratios(tmp_path):
    bench = load("dp_overhead")
    out = tmp_path / "dp.json"
    result = bench.main(["--tweets", "300", "--models", "bag", "linear", "--engines", "non-DP", "fast", "fast-1-core",
                         "opacus-ghost", "--batch-sizes", "32", "--rounds", "2", "--warmup", "1",
                         "--min-trial-seconds", "0", "--output", str(out)])
    saved = json.loads(out.read_text())
    assert saved["rows"] == json.loads(json.dumps(result["rows"]))
    assert saved["noise"]["values"] == max(r["parameters"] for r in saved["rows"]) and saved["noise"]["speedup"] > 0
    rows = {(r["model"], r["engine"]): r for r in saved["rows"]}
    assert set(rows) == {(m, e) for m in ("bag", "linear") for e in ("non-DP", "fast", "fast-1-core", "opacus-ghost")}
    for (model, engine), row in rows.items():
        assert len(row["all_seconds"]) == 2 and len(row["all_cpu_seconds"]) == 2 and row["error"] is None
        assert row["slowdown_vs_non_dp"] > 0 and row["seconds_per_epoch"] > 0 and row["cpu_seconds_per_epoch"] > 0
        if engine == "non-DP":
            assert row["slowdown_vs_non_dp"] == 1.0
    table = bench.markdown_table(saved["rows"])
    assert "| 32 | bag | " in table and "fast-1-core" in table
