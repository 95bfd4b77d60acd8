"""Run records: atomic writes, JSON conversion, collection into a DataFrame."""
import dataclasses
import json
import math
import os

import numpy as np
import pytest
import torch

from workbench import results


@dataclasses.dataclass(frozen=True)
class Cfg:
    epsilon: float = 1.0
    layers: tuple = (64, 32)


def test_record_round_trip_with_numpy_torch_and_dataclasses(tmp_path):
    path = results.save_record(tmp_path, config=Cfg(), metrics={"acc": np.float32(0.5), "loss": torch.tensor(2.0),
                               "bad": float("nan")}, history=[{"epoch": 1, "loss": np.float64(1.5)}], seed=3,
                               timings={"fit": 1.25})
    rec = results.load_record(path)
    assert rec["status"] == "completed" and rec["seed"] == 3
    assert rec["config"] == {"epsilon": 1.0, "layers": [64, 32]}
    assert rec["metrics"] == {"acc": 0.5, "loss": 2.0, "bad": None}
    assert rec["history"] == [{"epoch": 1, "loss": 1.5}]
    assert rec["versions"]["torch"] == torch.__version__.split("+")[0] or rec["versions"]["torch"].startswith("2.")
    assert oct(os.stat(path).st_mode & 0o777) != oct(0o600)  # readable by others like any file


def test_a_crash_mid_write_leaves_the_previous_record_intact(tmp_path, monkeypatch):
    results.save_record(tmp_path, metrics={"acc": 0.9})
    before = (tmp_path / "record.json").read_bytes()

    def crash(fd):
        raise KeyboardInterrupt("killed while writing")

    monkeypatch.setattr(os, "fsync", crash)
    with pytest.raises(KeyboardInterrupt):
        results.save_record(tmp_path, metrics={"acc": 0.1})
    assert (tmp_path / "record.json").read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["record.json"]  # no temporary file left behind


def test_a_killed_writer_process_leaves_the_previous_record_intact(tmp_path):
    """A real crash: a child process is killed (SIGKILL) between writing and renaming."""
    import subprocess
    import sys

    results.save_record(tmp_path, metrics={"acc": 0.9})
    before = (tmp_path / "record.json").read_bytes()
    code = (
        "import os, signal, workbench.results as r\n"
        "real = os.replace\n"
        "os.replace = lambda *a: os.kill(os.getpid(), signal.SIGKILL)\n"
        f"r.save_record({str(tmp_path)!r}, metrics={{'acc': 0.1}})\n"
    )
    proc = subprocess.run([sys.executable, "-c", code])
    assert proc.returncode == -9
    assert (tmp_path / "record.json").read_bytes() == before
    assert json.loads(before)["metrics"]["acc"] == 0.9


def test_collect_flattens_every_record(tmp_path):
    for eps in (1.0, 8.0):
        results.save_record(tmp_path / "nb" / f"eps={eps}", notebook="nb", parameters={"EPSILON": eps},
                            metrics={"acc": eps / 10, "roc": {"auc": 0.5}}, timings={"wall_seconds": 1.0})
    table = results.collect(tmp_path)
    assert len(table) == 2
    assert sorted(table["parameters.EPSILON"]) == [1.0, 8.0]
    assert table["metrics.roc/auc"].tolist() == [0.5, 0.5]
    assert results.collect(tmp_path / "nb" / "eps=1.0")["metrics.acc"].tolist() == [0.1]
    assert results.collect(tmp_path / "empty").empty


def test_broken_records_are_listed_with_the_reason_never_dropped(tmp_path):
    results.save_record(tmp_path / "nb" / "good", notebook="nb", metrics={"acc": 0.5})
    bad = {
        "truncated": '{"status": "completed", "metrics": {"acc": 0.',
        "a_list": "[1, 2, 3]",
        "metrics_list": json.dumps({"status": "completed", "metrics": [0.5]}),
        "odd_status": json.dumps({"status": 3}),
        "binary": b"\xff\xfe\x00",
    }
    for name, text in bad.items():
        (tmp_path / "nb" / name).mkdir()
        path = tmp_path / "nb" / name / "record.json"
        path.write_bytes(text) if isinstance(text, bytes) else path.write_text(text)
    table = results.collect(tmp_path).set_index("run_dir")
    assert len(table) == 6 and (table.status == "broken").sum() == 5
    reason = {os.path.basename(d): e for d, e in table.error.dropna().items()}
    assert "not valid JSON (truncated or corrupt)" in reason["truncated"]
    assert reason["a_list"] == "the file holds a list, not a record (a JSON object)"
    assert reason["metrics_list"] == "'metrics' is a list, not a mapping of names to values"
    assert "'status' is 3" in reason["odd_status"] and "unreadable" in reason["binary"]
    assert table.loc[str(tmp_path / "nb" / "good"), "metrics.acc"] == 0.5


def test_records_written_before_the_naming_scheme_land_in_the_same_columns(tmp_path):
    """Old records (nested metric mappings, "." and "-" in names, "_" prefixes) are read in the one scheme."""
    old = {"status": "completed", "notebook": "01", "metrics": {"non-DP": {"accuracy": 0.6}, "dp.epsilon_8.accuracy": 0.5,
                                                               "_lira_online/tpr_at_fpr_0.001": 0.08}}
    (tmp_path / "01" / "old").mkdir(parents=True)
    (tmp_path / "01" / "old" / "record.json").write_text(json.dumps(old))
    results.save_record(tmp_path / "01" / "new", notebook="01",
                        metrics={"non_dp/accuracy": 0.7, "dp/epsilon_8/accuracy": 0.55, "lira_online/tpr_at_fpr_0.001": 0.1})
    table = results.collect(tmp_path)
    metric_columns = sorted(c for c in table.columns if c.startswith("metrics."))
    assert metric_columns == ["metrics.dp/epsilon_8/accuracy", "metrics.lira_online/tpr_at_fpr_0.001", "metrics.non_dp/accuracy"]
    assert table["metrics.non_dp/accuracy"].tolist() == [0.7, 0.6] or table["metrics.non_dp/accuracy"].tolist() == [0.6, 0.7]
    assert table[metric_columns].notna().all().all()


def test_bad_arguments(tmp_path):
    with pytest.raises(ValueError, match="'status' parameter of save_record"):
        results.save_record("/tmp/x", status="done")
    results.save_record(tmp_path, status="interrupted")  # the runner marks runs stopped by Ctrl-C
    with pytest.raises(ValueError, match="'name' parameter of save_figure"):
        results.save_figure(object(), output_dir="/tmp", name="../escape")
    assert math.isnan(float("nan")) and results.to_jsonable(float("inf")) is None
