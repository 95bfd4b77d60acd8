"""benchmarks/scorecard_speed.py runs end to end on tiny settings and writes well-formed results (no timing asserted)."""
import importlib.util
import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_scorecard_speed_benchmark_runs(tmp_path):
    spec = importlib.util.spec_from_file_location("scorecard_speed", ROOT / "benchmarks" / "scorecard_speed.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    out = tmp_path / "r.json"
    result = bench.main(["--n", "300", "--boot", "20", "--members", "50", "--repeats", "1", "--naive-boot", "2", "--output", str(out)])
    saved = json.loads(out.read_text())
    assert saved["settings"]["n"] == 300 and saved["settings"]["n_boot"] == 20
    assert saved["seconds"]["scorecard_median"] > 0 and saved["seconds"]["naive_evaluation_rows_extrapolated"] > 0
    assert result["speedup_evaluation_rows_vs_naive"] > 0 and result["speedup_privacy_vs_naive"] > 0
    assert saved["seconds"]["naive_privacy_extrapolated"] > 0
