"""Smoke test of benchmarks/dp_transformer.py in its quickest mode: every engine runs on MiniLM, paired ratios written."""
import importlib.util
import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_dp_transformer_benchmark_quick_mode_writes_paired_ratios(tmp_path):
    spec = importlib.util.spec_from_file_location("dp_transformer", ROOT / "benchmarks" / "dp_transformer.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    out = tmp_path / "dp_transformer.json"
    result = bench.main(["--quick", "--output", str(out)])
    saved = json.loads(out.read_text())
    assert saved["rows"] == json.loads(json.dumps(result["rows"]))
    assert saved["settings"]["torch_threads"] == 1 and saved["settings"]["layers"] == 1
    assert {(r["part"], r["engine"]) for r in saved["rows"]} == {(p, e) for p in ("all", "bias") for e in bench.ENGINES}
    for r in saved["rows"]:
        assert r["error"] is None and r["seconds_per_step"] > 0, r
        assert r["slowdown_vs_non_dp"] == (1.0 if r["engine"] == "non-DP" else pytest.approx(r["seconds_per_step"] /
                                           next(x["seconds_per_step"] for x in saved["rows"]
                                                if x["engine"] == "non-DP" and x["part"] == r["part"])))
    fast_all = next(r for r in saved["rows"] if r["engine"] == "fast" and r["part"] == "all")
    assert fast_all["noise_share_of_step"] > 0 and fast_all["trainable_parameters"] > 10_000_000
    assert "| all |" in bench.markdown_table(saved["rows"])
