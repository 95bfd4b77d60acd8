"""The papermill batch runner end to end, with a real kernel, on a small fixture notebook and on a real one."""
import json
import os
import socket
from pathlib import Path

import pytest

from workbench import batch
from workbench.results import collect, load_record

FIXTURES = Path(__file__).parent / "fixtures" / "notebooks"
ARITH = FIXTURES / "arith.ipynb"
SLEEPY = FIXTURES / "sleepy.ipynb"  # declares parameter_ranges: TAG >= 0


def test_expand_grid_is_the_cartesian_product():
    runs = batch.expand_grid({"A": [1, 2, 3], "B": ["x", "y"], "C": 0})
    assert len(runs) == 6 and all(r["C"] == 0 for r in runs)
    assert {(r["A"], r["B"]) for r in runs} == {(a, b) for a in (1, 2, 3) for b in "xy"}
    assert batch.expand_grid({}) == [{}]
    with pytest.raises(batch.BatchError, match="empty list"):
        batch.expand_grid({"A": []})


def test_grid_file_parsing_and_errors(tmp_path):
    good = tmp_path / "g.yaml"
    good.write_text("A: [1, 2]\nB: 3\n")
    assert batch.load_grid(good) == [{"A": 1, "B": 3}, {"A": 2, "B": 3}]
    listed = tmp_path / "l.yaml"
    listed.write_text("- {A: 1}\n- {A: [5, 6], B: 0}\n")
    assert batch.load_grid(listed) == [{"A": 1}, {"A": 5, "B": 0}, {"A": 6, "B": 0}]
    for text, message in (("A: [1,\n", "not valid YAML"), ("", "is empty"), ("- 1\n", "must hold a mapping")):
        bad = tmp_path / "bad.yaml"
        bad.write_text(text)
        with pytest.raises(batch.BatchError, match=message):
            batch.load_grid(bad)
    with pytest.raises(batch.BatchError, match="does not exist"):
        batch.load_grid(tmp_path / "missing.yaml")


def test_run_ids_are_deterministic_and_safe():
    assert batch.run_id({"B": 2, "A": 1}) == batch.run_id({"A": 1, "B": 2}) == "A=1,B=2"
    long_id = batch.run_id({"TEXT": "a/b c" * 30})
    assert "/" not in long_id and " " not in long_id and len(long_id) < 60
    assert batch.run_id({"TEXT": "a/b c" * 30}) != batch.run_id({"TEXT": "a/b d" * 30})


def test_unknown_parameters_are_rejected_before_anything_runs(tmp_path):
    with pytest.raises(batch.BatchError, match=r"Unknown parameter\(s\) \['EPOCHS'\].*accepts \['A', 'B', 'FAIL'\]"):
        batch.run_notebooks([ARITH], parameters={"EPOCHS": 1}, output=tmp_path)
    with pytest.raises(batch.BatchError, match="set by the runner"):
        batch.run_notebooks([ARITH], parameters={"OUTPUT_DIR": "x"}, output=tmp_path)
    with pytest.raises(batch.BatchError, match="does not exist"):
        batch.run_notebooks([tmp_path / "nope.ipynb"], output=tmp_path)
    assert not any(tmp_path.iterdir())


def test_notebook_without_parameters_cell_is_rejected(tmp_path):
    nb = json.loads(ARITH.read_text())
    for cell in nb["cells"]:
        cell.get("metadata", {}).pop("tags", None)
    path = tmp_path / "untagged.ipynb"
    path.write_text(json.dumps(nb))
    with pytest.raises(batch.BatchError, match="no cell tagged 'parameters'"):
        batch.run_notebooks([path], output=tmp_path / "runs")


def test_unwritable_output_is_reported(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(batch.BatchError, match="not writable"):
        batch.run_notebooks([ARITH], output=blocker / "runs")


def test_grid_with_one_failing_run_then_resume(tmp_path):
    out = tmp_path / "runs"
    grid = batch.expand_grid({"A": [1, 2], "FAIL": [False, True]})
    grid = [g for g in grid if not (g["A"] == 2 and g["FAIL"])]  # three runs, one of them fails
    seen = []
    results = batch.run_notebooks([ARITH], grid=grid, parameters={"B": 10}, output=out, jobs=2, on_result=seen.append)
    by_id = {r.spec.run_id: r for r in results}
    assert len(results) == len(seen) == 3
    assert by_id["A=1,B=10,FAIL=False"].status == "completed"
    assert by_id["A=1,B=10,FAIL=False"].metrics == {"sum": 11}
    assert by_id["A=2,B=10,FAIL=False"].metrics == {"sum": 12}
    failed = by_id["A=1,B=10,FAIL=True"]
    assert failed.status == "failed" and failed.error == "ValueError: asked to fail" and failed.failing_cell == 4
    rec = load_record(out / "arith" / "A=1,B=10,FAIL=True")
    assert rec["status"] == "failed" and rec["extra"]["runner"]["error"] == "ValueError: asked to fail"
    assert (out / "arith" / "A=2,B=10,FAIL=False" / "notebook.ipynb").exists()
    # two runs at a time share the cores instead of each starting one thread per core
    threads = load_record(out / "arith" / "A=2,B=10,FAIL=False")["extra"]["omp_threads"]
    assert threads == os.environ.get("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // 2)))
    assert (out / "arith" / "A=2,B=10,FAIL=False" / "figures" / "inputs.json").exists()

    # resume: the completed runs are skipped (their outputs untouched), the failed one is tried again
    done = out / "arith" / "A=1,B=10,FAIL=False" / "notebook.ipynb"
    stamp = done.stat().st_mtime_ns
    again = batch.run_notebooks([ARITH], grid=grid, parameters={"B": 10}, output=out, jobs=2)
    assert sorted(r.status for r in again) == ["failed", "skipped", "skipped"]
    assert done.stat().st_mtime_ns == stamp
    table = collect(out)
    assert sorted(table.status) == ["completed", "completed", "failed"]
    text = batch.summary_table(again)
    assert "2 skipped" in text and "1 failed" in text and "cell 4: ValueError: asked to fail" in text


def test_interrupted_run_is_redone(tmp_path):
    """A run whose record was never finished by the runner (a crash mid-run) is executed again."""
    out = tmp_path / "runs"
    spec = batch.plan_runs([ARITH], parameters={"A": 5}, output=out)[0]
    spec.output_dir.mkdir(parents=True)
    (spec.output_dir / "record.json").write_text(json.dumps({"status": "running"}))
    (result,) = batch.run_notebooks([ARITH], parameters={"A": 5}, output=out)
    assert result.status == "completed" and result.metrics == {"sum": 7}


def test_smoke_parameters_come_from_notebook_metadata(tmp_path):
    assert batch.smoke_parameters(ARITH) == {"B": 5}
    (result,) = batch.run_notebooks([ARITH], smoke=True, parameters={"A": 1}, output=tmp_path)
    assert result.spec.run_id == "A=1,B=5" and result.metrics == {"sum": 6}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_dask_executor_on_a_local_cluster(tmp_path):
    """The distributed path: a real Dask scheduler and worker on 127.0.0.1."""
    from distributed import LocalCluster

    with LocalCluster(n_workers=1, threads_per_worker=2, processes=True, host="127.0.0.1",
                      scheduler_port=_free_port(), dashboard_address=None) as cluster:
        results = batch.run_notebooks([ARITH], grid=[{"A": 1}, {"A": 2}], output=tmp_path, executor="dask",
                                      address=cluster.scheduler_address)
    assert [r.status for r in results] == ["completed", "completed"]
    assert [r.metrics["sum"] for r in results] == [3, 4]
    with pytest.raises(batch.BatchError, match="scheduler address"):
        batch.run_notebooks([ARITH], output=tmp_path, executor="dask")
    with pytest.raises(batch.BatchError, match="'executor' parameter"):
        batch.run_notebooks([ARITH], output=tmp_path, executor="slurm")


def test_parameter_values_are_checked_against_defaults_and_declared_ranges(tmp_path):
    """Before anything runs: the type of each default (int A, bool FAIL, str LOG) and the notebook's ranges."""
    cases = [
        ({"A": "abc"}, ARITH, r"The 'A' parameter of notebook arith must be an int\. Got 'abc' instead\."),
        ({"A": 1.5}, ARITH, r"'A' parameter of notebook arith must be an int\. Got 1\.5"),
        ({"FAIL": "yes"}, ARITH, r"'FAIL' parameter of notebook arith must be a bool"),
        ({"TAG": -3}, SLEEPY, r"The 'TAG' parameter of notebook sleepy must be an int >= 0\. Got -3 instead\."),
        ({"LOG": 5}, SLEEPY, r"'LOG' parameter of notebook sleepy must be an instance of str"),
    ]
    for params, nb, message in cases:
        with pytest.raises(batch.BatchError, match=message):
            batch.run_notebooks([nb], parameters=params, output=tmp_path)
    with pytest.raises(batch.BatchError, match=r"'TAG' parameter of notebook sleepy must be an int >= 0\. Got -1"):
        batch.plan_runs([SLEEPY], grid=[{"TAG": 1}, {"TAG": -1}], output=tmp_path)
    assert not any(tmp_path.iterdir())  # nothing ran, nothing was written
    # number-like text (YAML 1.1 reads "1e3" as text) and ints for float parameters are accepted and normalised
    (spec,) = batch.plan_runs([ARITH], parameters={"A": "1000"}, output=tmp_path)
    assert spec.parameters == {"A": 1000}


def test_parameter_ranges_metadata_format_is_checked(tmp_path):
    from workbench.notebook_params import check_values, constraint_for

    assert constraint_for(1.0, {"min": 0, "exclusive": True}).describe() == "a float > 0"
    assert constraint_for(3, {"min": 1, "max": 5}).describe() == "an int in [1, 5]"
    assert constraint_for("fast", {"options": ["fast", "opacus"]}).describe() == "one of ('fast', 'opacus')"
    assert constraint_for([0.5, 8.0], {"min": 0, "exclusive": "min"}).describe() == "a list or tuple of a float > 0"
    assert constraint_for(None) is None  # a None default takes anything
    with pytest.raises(ValueError, match=r"'EPSILONS' parameter of notebook nb must be a list or tuple of a float > 0"):
        check_values({"EPSILONS": [1.0, -2.0]}, defaults={"EPSILONS": "[0.5, 8.0]"},
                     ranges={"EPSILONS": {"min": 0, "exclusive": True}}, notebook="nb")
    with pytest.raises(ValueError, match="may only hold the keys"):
        check_values({"N": 1}, defaults={"N": "1"}, ranges={"N": {"minimum": 1}}, notebook="nb")
    with pytest.raises(ValueError, match="'exclusive' in the range of 'N'"):
        check_values({"N": 1}, defaults={"N": "1"}, ranges={"N": {"min": 1, "exclusive": "left"}}, notebook="nb")
    every = sorted(FIXTURES.parent.parent.parent.glob("notebooks/*.ipynb"))
    for nb in every:  # the shipped notebooks' own ranges (if declared) accept their defaults and smoke parameters
        batch.plan_runs([nb], smoke=True, output=tmp_path)


def test_plain_mistakes_get_named_errors(tmp_path):
    with pytest.raises(batch.BatchError, match=r"'timeout' parameter of run_notebooks must be a float > 0 or None\. Got -5"):
        batch.run_notebooks([ARITH], timeout=-5, output=tmp_path)
    with pytest.raises(batch.BatchError, match="'jobs' parameter of run_notebooks must be an int >= 1"):
        batch.run_notebooks([ARITH], jobs=0, output=tmp_path)
    with pytest.raises(batch.BatchError, match="'grid' parameter is an empty list"):
        batch.run_notebooks([ARITH], grid=[], output=tmp_path)
    with pytest.raises(batch.BatchError, match="'grid' parameter must be a list of parameter mappings"):
        batch.run_notebooks([ARITH], grid={"A": [1, 2]}, output=tmp_path)
    for text in ("[]\n", "{}\n"):
        (tmp_path / "g.yaml").write_text(text)
        with pytest.raises(batch.BatchError, match="holds no parameters"):
            batch.load_grid(tmp_path / "g.yaml")
    with pytest.raises(batch.BatchError, match="is a folder"):
        batch.load_grid(tmp_path)
    with pytest.raises(batch.BatchError, match="is given more than once"):
        batch.plan_runs([ARITH, str(ARITH)], output=tmp_path)
    # one path as a plain string is one notebook (not a sequence of one-letter notebooks)
    assert [s.notebook.name for s in batch.plan_runs(str(ARITH), output=tmp_path)] == ["arith.ipynb"]
    with pytest.raises(batch.BatchError, match=r"Notebook x\.ipynb does not exist"):
        batch.run_notebooks("x.ipynb", output=tmp_path)
    broken = tmp_path / "broken.ipynb"
    broken.write_text('{"cells": [')
    with pytest.raises(batch.BatchError, match="is not a valid .ipynb file"):
        batch.run_notebooks([broken], output=tmp_path)
    for address in ("tcp://scheduler", "scheduler:8786", None):
        with pytest.raises(batch.BatchError, match="scheduler address"):
            batch.run_notebooks([ARITH], executor="dask", address=address, output=tmp_path)
    assert batch.parse_value("1e-5") == 1e-5


def test_a_held_run_is_left_alone_and_a_stale_claim_is_taken_over(tmp_path):
    from workbench import runlock

    (spec,) = batch.plan_runs([ARITH], parameters={"A": 7}, output=tmp_path)
    with runlock.claim(spec.output_dir) as held:  # "another runner" holds the run
        assert held.acquired and runlock.holder(spec.output_dir)["pid"] == os.getpid()
        result = batch.execute_run(spec)
        assert result.status == "locked" and f"process {os.getpid()}" in result.error
        assert not (spec.output_dir / "notebook.ipynb").exists()
    (spec.output_dir / ".lock").write_text('{"pid": 999999, "host": "gone", "started": "then"}')  # a dead holder's claim
    again = runlock.claim(spec.output_dir)
    assert again.acquired and again.took_over["pid"] == 999999
    again.release()


def test_shipped_grid_files_plan_against_the_notebooks_their_comments_name(tmp_path):
    """grids/**/*.yaml are used by the README's and the notebooks' commands: each must expand and pass the parameter checks."""
    import re

    grids = sorted((FIXTURES.parents[2] / "grids").rglob("*.yaml"))
    assert len(grids) >= 3
    for grid in grids:
        text = grid.read_text()
        (target,) = set(re.findall(r"run (notebooks/\S*)", text))
        specs = batch.plan_runs([FIXTURES.parents[2] / target], grid=batch.load_grid(grid), smoke="--smoke" in text,
                                output=tmp_path)
        assert len(specs) >= 2, grid.name


CRASHY = Path(__file__).parent / "fixtures" / "notebooks" / "crashy.ipynb"


@pytest.mark.slow
def test_a_worker_killed_under_its_run_fails_that_run_and_the_sweep_goes_on(tmp_path):
    """The out-of-memory killer's case: run 2's worker dies (SIGKILL). That run fails with a message saying so;
    the other runs, including the one the broken pool took down beside it, complete; no traceback."""
    results = batch.run_notebooks([CRASHY], grid=[{"TAG": t} for t in (1, 2, 3, 4)], parameters={"KILL_TAG": 2},
                                  jobs=2, output=tmp_path)
    status = {r.spec.parameters["TAG"]: r.status for r in results}
    assert status == {1: "completed", 2: "failed", 3: "completed", 4: "completed"}, results
    (dead,) = [r for r in results if r.status == "failed"]
    assert "worker process ended abruptly (signal SIGKILL)" in dead.error
    assert load_record(dead.spec.output_dir)["status"] == "failed"


def test_a_dict_parameter_from_the_command_line_reaches_the_notebook_as_a_dict(tmp_path):
    """``-p DATA '{alpha: 0.05}'`` (as notebook 03 documents) is a dict, numbers in it included, and the runner's
    checks accept it for a dict parameter; text with a colon but no braces stays text."""
    assert batch.parse_value("{alpha: 0.05, topics: false}") == {"alpha": 0.05, "topics": False}
    assert batch.parse_value("{lr: 1e-5, steps: [1e-3, 2]}") == {"lr": 1e-5, "steps": [1e-3, 2]}
    assert batch.parse_value("note: draft") == "note: draft"
    nb03 = Path(__file__).parents[1] / "notebooks" / "03_federated_sampling.ipynb"
    (spec,) = batch.plan_runs([nb03], parameters={"DATA": batch.parse_value("{alpha: 0.05}")}, output=tmp_path)
    assert spec.parameters["DATA"] == {"alpha": 0.05}
    grid = tmp_path / "grid.yaml"
    grid.write_text("LR: [1e-4, 3e-3]\nDISTILL: {lr: 1e-5}\n")
    assert batch.load_grid(grid) == [{"LR": 1e-4, "DISTILL": {"lr": 1e-5}}, {"LR": 3e-3, "DISTILL": {"lr": 1e-5}}]
