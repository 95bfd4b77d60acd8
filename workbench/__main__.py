"""Command line: ``python -m workbench {run,collect,report,datasets} ...``.

Examples
--------
::

    python -m workbench run notebooks/06_model_update_flips.ipynb --grid grids/06_beta_seed.yaml --jobs 2
    python -m workbench run notebooks/ --smoke                     # every notebook, fast parameters
    python -m workbench collect runs/ --csv runs/all.csv
    python -m workbench report runs/                               # writes runs/index.html
    python -m workbench datasets                                   # which data sources are installed
"""
from __future__ import annotations

import argparse
import os
import shlex
import sys
from pathlib import Path

EXIT_BAD_INPUT = 2
EXIT_RUN_FAILED = 1
EXIT_INTERRUPTED = 130


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m workbench",
        description="Trustworthy ML Workbench: run parameterized study notebooks, collect and report results.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    run = sub.add_parser("run", help="execute notebooks with papermill (grids, parallel, resumable)",
                         description="Execute notebooks into OUTPUT/<notebook>/<run-id>/. Parameter values are checked "
                                     "against each notebook before anything runs. Finished runs are skipped, so "
                                     "re-running a command resumes an interrupted sweep (Ctrl-C stops it cleanly); "
                                     "a run being executed by another runner is left alone.")
    run.add_argument("notebooks", nargs="+", help="notebook files or folders of notebooks")
    run.add_argument("-p", "--parameter", nargs=2, action="append", default=[], metavar=("NAME", "VALUE"),
                     help="fix a parameter (VALUE parsed as YAML: 3, 0.5, true, [1, 2], text); repeatable")
    run.add_argument("--grid", type=Path, help="YAML file: NAME: value or NAME: [values]; lists expand to all combinations")
    run.add_argument("--output", "-o", type=Path, default=Path("runs"), help="root folder of run outputs (default: runs)")
    run.add_argument("--jobs", "-j", type=int, default=1, help="runs at a time with the local executor (default: 1)")
    run.add_argument("--cluster", metavar="ADDRESS", help="run on a Dask cluster at this scheduler address (tcp://host:port)")
    run.add_argument("--smoke", action="store_true", help="start from each notebook's smoke parameters (seconds per notebook)")
    run.add_argument("--kernel", help="Jupyter kernel name (default: the notebook's kernelspec)")
    run.add_argument("--timeout", type=float, help="seconds allowed per cell")
    run.add_argument("--force", action="store_true", help="re-execute runs that already completed")

    col = sub.add_parser("collect", help="gather run records into one table")
    col.add_argument("runs_dir", type=Path)
    col.add_argument("--csv", type=Path, help="also write the table as CSV")

    rep = sub.add_parser("report", help="write a static HTML index of runs with their metrics and figures")
    rep.add_argument("runs_dir", type=Path)
    rep.add_argument("--output", "-o", type=Path, help="index file (default: RUNS_DIR/index.html)")

    sub.add_parser("datasets", help="list every offline data source, whether it is installed, and its size")
    return parser


def _resume_command(argv: list[str] | None) -> str:
    words = list(sys.argv[1:] if argv is None else argv)
    return "python -m workbench " + shlex.join(words)


def _interrupted_message(exc, argv) -> str:
    """One short paragraph: what finished, what was interrupted, what never started, and how to resume."""
    finished = [r for r in exc.results if r.status in ("completed", "failed", "skipped")]
    stopped = [r.spec.name for r in exc.results if r.status == "interrupted"]
    lines = [f"Interrupted. {len(finished)} run(s) finished (kept), {len(stopped)} interrupted"
             + (f" ({', '.join(stopped[:5])}{', ...' if len(stopped) > 5 else ''})" if stopped else "")
             + f", {exc.count('not started')} not started.",
             f"Resume with: {_resume_command(argv)}"]
    return "\n".join(lines)


def _cmd_run(args) -> int:
    from .batch import BatchError, SweepInterrupted, load_grid, parse_value, run_notebooks, summary_table

    params = {name: parse_value(value) for name, value in args.parameter}
    try:
        grid = load_grid(args.grid) if args.grid else None
        total = {"n": 0}

        def progress(result):
            total["n"] += 1
            where = f"cell {result.failing_cell}: " if result.failing_cell is not None else ""
            extra = f" ({where}{result.error.splitlines()[0]})" if result.error else ""
            print(f"[{total['n']}] {result.status:9s} {result.spec.name}  {result.seconds:.1f}s{extra}", flush=True)

        results = run_notebooks(
            args.notebooks, parameters=params, grid=grid, output=args.output, jobs=args.jobs,
            executor="dask" if args.cluster else "local", address=args.cluster, smoke=args.smoke,
            kernel_name=args.kernel, timeout=args.timeout, force=args.force, on_result=progress,
        )
    except BatchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except SweepInterrupted as exc:
        print("\n" + _interrupted_message(exc, args.argv), file=sys.stderr)
        return EXIT_INTERRUPTED
    except KeyboardInterrupt:
        print(f"\nInterrupted before any run started. Resume with: {_resume_command(args.argv)}", file=sys.stderr)
        return EXIT_INTERRUPTED
    print()
    print(summary_table(results))
    return EXIT_RUN_FAILED if any(r.status in ("failed", "locked") for r in results) else 0


def _cmd_collect(args) -> int:
    from .results import collect

    problem = _runs_dir_problem(args.runs_dir) or (_csv_problem(args.csv) if args.csv else None)
    if problem:
        print(f"error: {problem}", file=sys.stderr)
        return EXIT_BAD_INPUT
    table = collect(args.runs_dir)
    if table.empty:
        print(f"No run records under {args.runs_dir}.")
        return 0
    import pandas as pd

    with pd.option_context("display.max_columns", 12, "display.width", 160, "display.max_colwidth", 40):
        shown = [c for c in table.columns if c.split(".")[0] in ("notebook", "status", "parameters", "metrics")]
        print(table[shown].to_string(index=False))
    broken = table[table["status"] == "broken"] if "status" in table else table.iloc[:0]
    for row in broken.itertuples(index=False):
        print(f"broken record: {row.run_dir}: {row.error}", file=sys.stderr)
    if args.csv:
        try:
            args.csv.parent.mkdir(parents=True, exist_ok=True)
            table.to_csv(args.csv, index=False)
        except OSError as exc:
            print(f"error: cannot write {args.csv} ({exc.strerror or exc}); choose another path for --csv.", file=sys.stderr)
            return EXIT_BAD_INPUT
        print(f"\nwrote {args.csv}")
    return 0


def _csv_problem(path: Path) -> str | None:
    """Why ``collect --csv PATH`` could not write PATH (None: it can), found before any table is computed or printed:
    PATH is a folder, a parent component is a file, the parent cannot be created, or nothing can be written there.
    Creates the missing parent folders (as writing would)."""
    advice = "choose another path for --csv"
    if path.is_dir():
        return f"cannot write {path}: it is a folder, not a file; give a file name, e.g. --csv {path / 'all.csv'}."
    for parent in path.parents:
        if parent.exists():
            if not parent.is_dir():
                return f"cannot write {path}: {parent} is a file, not a folder; {advice}."
            break
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        return f"cannot write {path}: cannot create the folder {path.parent} ({exc.strerror or exc}); {advice}."
    try:
        if path.exists():
            with open(path, "a"):
                pass
        else:
            probe = path.parent / f".write-test-{os.getpid()}"
            probe.write_text("ok")
            probe.unlink()
    except OSError as exc:
        return f"cannot write {path} ({exc.strerror or exc}); {advice}."
    return None


def _runs_dir_problem(path: Path) -> str | None:
    if path.is_file():
        return f"{path} is a file; give the runs folder (the --output of `python -m workbench run`, default runs/)."
    if not path.is_dir():
        return f"runs folder {path} does not exist; run notebooks first (python -m workbench run ...)."
    return None


def _cmd_report(args) -> int:
    from .report import write_report

    problem = _runs_dir_problem(args.runs_dir)
    if problem:
        print(f"error: {problem}", file=sys.stderr)
        return EXIT_BAD_INPUT
    try:
        index = write_report(args.runs_dir, output=args.output)
    except OSError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    print(f"wrote {index}")
    return 0


def _cmd_datasets(args) -> int:
    from .datasets import describe_sources

    table = describe_sources()
    for row in table.itertuples(index=False):
        mark = "ok     " if row.present else "BROKEN " if "corrupt" in str(row.size).lower() else "MISSING"
        print(f"{mark} {row.source:16s} {row.size}\n        install: {row.install}")
    missing = int((~table.present).sum())
    print(f"\n{len(table) - missing} of {len(table)} sources present and readable.")
    return 0 if missing == 0 else EXIT_RUN_FAILED


def _dump_stacks_on_sigusr1() -> None:
    """``kill -USR1 <runner pid>`` prints every thread's stack to stderr: what a runner that seems stuck is doing."""
    import faulthandler
    import signal

    if hasattr(signal, "SIGUSR1"):
        faulthandler.register(signal.SIGUSR1, all_threads=True)


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    _dump_stacks_on_sigusr1()
    args = _parser().parse_args(argv)
    args.argv = argv
    return {"run": _cmd_run, "collect": _cmd_collect, "report": _cmd_report, "datasets": _cmd_datasets}[args.command](args)


if __name__ == "__main__":
    sys.exit(main())
