"""The command line, as a user runs it: help, run, collect, report, datasets, and its error messages."""
import subprocess
import sys
from pathlib import Path

ARITH = Path(__file__).parent / "fixtures" / "notebooks" / "arith.ipynb"


def cli(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "workbench", *map(str, args)], capture_output=True, text=True, cwd=cwd)


def test_help_lists_the_commands():
    proc = cli("--help")
    assert proc.returncode == 0
    for command in ("run", "collect", "report", "datasets"):
        assert command in proc.stdout


def test_run_collect_report_end_to_end(tmp_path):
    grid = tmp_path / "grid.yaml"
    grid.write_text("A: [1, 2]\n")
    proc = cli("run", ARITH, "--grid", grid, "-p", "B", "10", "--output", tmp_path / "runs", "--jobs", "2")
    assert proc.returncode == 0, proc.stderr
    assert "2 completed, 0 skipped" in proc.stdout and "sum=12" in proc.stdout
    proc = cli("collect", tmp_path / "runs", "--csv", tmp_path / "all.csv")
    assert proc.returncode == 0 and (tmp_path / "all.csv").read_text().count("\n") == 3
    proc = cli("report", tmp_path / "runs")
    assert proc.returncode == 0
    index = (tmp_path / "runs" / "index.html").read_text()
    assert "arith" in index and "A=1,B=10" in index
    page = (tmp_path / "runs" / "arith" / "A=1,B=10" / "report.html").read_text()
    assert "Plotly.newPlot" in page and "../../plotly.min.js" in page  # figure embedded, plotly served offline
    assert (tmp_path / "runs" / "plotly.min.js").stat().st_size > 1_000_000


def test_bad_input_gives_clear_messages_and_exit_code_2(tmp_path):
    cases = [
        (("run", tmp_path / "missing.ipynb"), "does not exist"),
        (("run", ARITH, "-p", "NOPE", "1", "--output", tmp_path), "Unknown parameter(s) ['NOPE']"),
        (("run", ARITH, "--grid", tmp_path / "none.yaml"), "Grid file"),
        (("run", ARITH, "--output", "/proc/forbidden"), "not writable"),
        (("collect", tmp_path / "nothing"), "does not exist"),
        (("report", tmp_path / "nothing"), "does not exist"),
        (("report", ARITH), "is a file; give the runs folder"),
        (("collect", ARITH), "is a file; give the runs folder"),
        (("run", ARITH, "--grid", tmp_path), "is a folder; give a YAML file"),
        (("run", ARITH, "-p", "A", "abc", "--output", tmp_path), "The 'A' parameter of notebook arith must be an int. Got 'abc'"),
        (("run", ARITH, "--timeout", "-5", "--output", tmp_path), "The 'timeout' parameter of run_notebooks must be"),
        (("run", ARITH, "--cluster", "tcp://localhost", "--output", tmp_path), "with the port"),
        (("run", ARITH, ARITH), "is given more than once"),
    ]
    malformed = tmp_path / "malformed.yaml"
    malformed.write_text("A: [1, 2\n")
    cases.append((("run", ARITH, "--grid", malformed), "not valid YAML"))
    for args, message in cases:
        proc = cli(*args)
        assert proc.returncode == 2, (args, proc.stdout, proc.stderr)
        assert message in proc.stderr, (args, proc.stderr)
        assert "Traceback" not in proc.stderr


def test_collect_lists_broken_records_and_reports_an_unwritable_csv_path(tmp_path):
    from workbench.results import save_record

    save_record(tmp_path / "runs" / "nb" / "default", notebook="nb", metrics={"auc": 0.5})
    (tmp_path / "runs" / "nb" / "odd").mkdir()
    (tmp_path / "runs" / "nb" / "odd" / "record.json").write_text("[1, 2]")  # valid JSON, wrong shape
    proc = cli("collect", tmp_path / "runs")
    assert proc.returncode == 0 and "Traceback" not in proc.stderr
    assert "broken record:" in proc.stderr and "holds a list, not a record" in proc.stderr and "0.5" in proc.stdout
    blocker = tmp_path / "file"
    blocker.write_text("x")
    proc = cli("collect", tmp_path / "runs", "--csv", blocker / "all.csv")
    assert proc.returncode == 2 and "cannot write" in proc.stderr and "Traceback" not in proc.stderr


def test_failed_run_exits_1_and_names_the_cell(tmp_path):
    proc = cli("run", ARITH, "-p", "FAIL", "true", "--output", tmp_path)
    assert proc.returncode == 1
    assert "cell 4: ValueError: asked to fail" in proc.stdout


def test_datasets_command_lists_every_source():
    proc = cli("datasets")
    assert proc.returncode == 0, proc.stdout
    for source in ("tweets", "shakespeare", "weat word sets", "fashion-mnist", "minilm encoder"):
        assert source in proc.stdout
    assert "MISSING" not in proc.stdout
