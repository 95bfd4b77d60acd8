"""benchmarks/shadow_models.py runs end to end on a tiny setting and writes well-formed results (no timing asserted)."""
import importlib.util
import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_shadow_benchmark_runs_and_writes_its_breakdown(tmp_path):
    spec = importlib.util.spec_from_file_location("shadow_models", ROOT / "benchmarks" / "shadow_models.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    out = tmp_path / "shadows.json"
    result = bench.main(["--synthetic", "--pool", "40", "--shadows", "2", "--epochs", "1", "--heads", "linear", "mlp", "bag",
                         "--output", str(out)])
    saved = json.loads(out.read_text())
    assert saved["rows"] == json.loads(json.dumps(result["rows"]))
    assert [r["head"] for r in saved["rows"]] == ["linear", "mlp", "bag"]
    for r in saved["rows"][:2]:
        assert r["shadows"] == 2 and r["total_seconds"] >= r["train_seconds"] > 0 and r["score_seconds"] > 0
        assert r["parameters"] == (384 * 3 + 3 if r["head"] == "linear" else 384 * 256 + 256 + 256 * 3 + 3)
        assert r["profile"] and {"function", "calls", "own_seconds", "share"} <= set(r["profile"][0])
    assert saved["rows"][2]["pool"] < 40 and saved["rows"][2]["parameters"] > 0   # token ids of the training split
    assert "| linear | no | 2 |" in bench.markdown_table(saved["rows"])
