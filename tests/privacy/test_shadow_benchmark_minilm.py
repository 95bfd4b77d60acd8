"""benchmarks/shadow_models.py --minilm runs end to end on a tiny setting and writes well-formed results (no timing
asserted: the numbers are for a quiet machine)."""
import importlib.util
import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore::UserWarning")
def test_minilm_shadow_benchmark_runs_and_writes_both_ways(tmp_path):
    spec = importlib.util.spec_from_file_location("shadow_models", ROOT / "benchmarks" / "shadow_models.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    out = tmp_path / "minilm.json"
    result = bench.main(["--minilm", "--layers", "1", "--pool", "16", "--shadows", "2", "--epochs", "1", "--output", str(out)])
    saved = json.loads(out.read_text())
    [row] = saved["rows"]
    assert row == json.loads(json.dumps(result["rows"][0])) and row["shadows"] == 2 and row["pool"] == 16
    assert row["full_seconds_per_shadow"] > 0 and row["cached_seconds_per_shadow"] > 0 and row["cache_seconds"] > 0
    assert row["speedup_per_shadow"] == pytest.approx(row["full_seconds_per_shadow"] / row["cached_seconds_per_shadow"])
