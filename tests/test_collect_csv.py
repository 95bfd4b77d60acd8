"""``collect --csv`` to a path it cannot write (issue 12): a named reason, exit code 2, and no table printed first
(the check runs before the records are collected)."""
import subprocess
import sys

import pytest


def cli(*args):
    return subprocess.run([sys.executable, "-m", "workbench", *map(str, args)], capture_output=True, text=True)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    from workbench.results import save_record

    root = tmp_path_factory.mktemp("collect") / "runs"
    save_record(root / "nb" / "default", notebook="nb", metrics={"auc": 0.5})
    return root


def test_parent_that_is_a_file_is_named(runs, tmp_path):
    afile = tmp_path / "afile.txt"
    afile.write_text("x")
    proc = cli("collect", runs, "--csv", afile / "all.csv")
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.strip() == f"error: cannot write {afile / 'all.csv'}: {afile} is a file, not a folder; choose another path for --csv."
    assert proc.stdout == ""  # the table is not printed before the error
    assert "File exists" not in proc.stderr and "Traceback" not in proc.stderr


def test_deeper_parent_that_is_a_file_is_named(runs, tmp_path):
    afile = tmp_path / "afile.txt"
    afile.write_text("x")
    proc = cli("collect", runs, "--csv", afile / "a" / "b" / "all.csv")
    assert proc.returncode == 2 and f"{afile} is a file, not a folder" in proc.stderr and proc.stdout == ""


def test_existing_folder_is_refused_with_a_suggestion(runs, tmp_path):
    proc = cli("collect", runs, "--csv", tmp_path)
    assert proc.returncode == 2
    assert proc.stderr.strip() == f"error: cannot write {tmp_path}: it is a folder, not a file; give a file name, e.g. --csv {tmp_path / 'all.csv'}."
    assert proc.stdout == ""


def test_uncreatable_parent_is_refused_before_printing(runs):
    proc = cli("collect", runs, "--csv", "/proc/workbench-no-such-folder/all.csv")
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.startswith("error: cannot write /proc/workbench-no-such-folder/all.csv: cannot create the folder "
                                  "/proc/workbench-no-such-folder (") and "choose another path" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_writable_paths_still_work(runs, tmp_path):
    target = tmp_path / "new" / "deeper" / "all.csv"
    proc = cli("collect", runs, "--csv", target)
    assert proc.returncode == 0, proc.stderr
    assert "0.5" in proc.stdout and f"wrote {target}" in proc.stdout and target.read_text().count("\n") == 2
    assert sorted(p.name for p in target.parent.iterdir()) == ["all.csv"]  # no write probe left behind
    proc = cli("collect", runs, "--csv", target)  # overwriting an existing file is fine
    assert proc.returncode == 0 and target.read_text().count("\n") == 2
