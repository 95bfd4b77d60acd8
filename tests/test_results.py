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
    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / "record.json").write_text("{not json")
    table = results.collect(tmp_path)
    assert len(table) == 2
    assert sorted(table["parameters.EPSILON"]) == [1.0, 8.0]
    assert table["metrics.roc.auc"].tolist() == [0.5, 0.5]
    assert results.collect(tmp_path / "nb" / "eps=1.0")["metrics.acc"].tolist() == [0.1]
    assert results.collect(tmp_path / "empty").empty


def test_bad_arguments():
    with pytest.raises(ValueError, match="'status' parameter of save_record"):
        results.save_record("/tmp/x", status="done")
    with pytest.raises(ValueError, match="'name' parameter of save_figure"):
        results.save_figure(object(), output_dir="/tmp", name="../escape")
    assert math.isnan(float("nan")) and results.to_jsonable(float("inf")) is None
