"""Batch runner: execute parameterized notebooks with papermill, in parallel, resumably.

Each run is one notebook with one set of parameters, executed into ``<output>/<notebook>/<run-id>/``
(the executed ``notebook.ipynb`` plus the ``record.json`` of :mod:`workbench.results`). The run id is
derived from the parameters, so the same run always lands in the same folder and a folder whose record
says "completed" is never redone: an interrupted sweep resumes where it stopped.

Parameters come from ``-p NAME VALUE`` pairs (fixed) and from a grid file (YAML mapping; list values
expand to the Cartesian product). Unknown parameter names are rejected before anything runs, using
papermill's inspection of the notebook's ``parameters`` cell.

Parameter values are checked before anything runs, too: against the type of each parameter's default and
against the ranges a notebook declares in ``metadata.workbench.parameter_ranges``
(see :mod:`workbench.notebook_params`).

Executors: ``"local"`` (worker processes on this machine, ``jobs`` at a time) and ``"dask"`` (a Dask
distributed cluster at ``address``; workers must see the same file system, e.g. a shared disk).

Interruption: a run folder is claimed with a lock (:mod:`workbench.runlock`) while it runs, so two runners never
execute the same run at once, and a lock left by a killed runner is taken over. Local workers die with the
runner (``kill -9`` included) and their kernels with them. Ctrl-C (or ``SIGTERM``) stops the sweep: no new run
starts, the running ones are stopped with their kernels and marked "interrupted", and :class:`SweepInterrupted`
carries what finished, what was interrupted and what never started.

Examples
--------
>>> expand_grid({"EPSILON": [1.0, 8.0], "SEED": 0, "MODEL": ["a", "b"]})  # doctest: +NORMALIZE_WHITESPACE
[{'EPSILON': 1.0, 'SEED': 0, 'MODEL': 'a'}, {'EPSILON': 1.0, 'SEED': 0, 'MODEL': 'b'},
 {'EPSILON': 8.0, 'SEED': 0, 'MODEL': 'a'}, {'EPSILON': 8.0, 'SEED': 0, 'MODEL': 'b'}]
>>> run_id({"SEED": 0, "EPSILON": 1.0})
'EPSILON=1.0,SEED=0'
>>> run_id({})
'default'
"""
from __future__ import annotations

import functools
import hashlib
import itertools
import json
import os
import re
import sys
import time
import traceback
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence

from ._cores import usable_cores
from .results import RECORD_NAME, load_record, save_record, to_jsonable

__all__ = [
    "RunSpec",
    "RunResult",
    "BatchError",
    "SweepInterrupted",
    "parameter_ranges",
    "expand_grid",
    "load_grid",
    "parse_value",
    "run_id",
    "notebook_parameters",
    "smoke_parameters",
    "find_notebooks",
    "plan_runs",
    "execute_run",
    "run_notebooks",
    "summary_table",
    "EXECUTORS",
]

#: Names of the executors :func:`run_notebooks` accepts.
EXECUTORS = ("local", "dask")
#: Parameters the runner injects itself (a notebook may declare them; users may not set them).
RESERVED = ("OUTPUT_DIR",)
_MAX_READABLE_ID = 80


class BatchError(ValueError):
    """Bad input to the batch runner (missing notebook, unknown parameter, malformed grid, ...)."""


class SweepInterrupted(KeyboardInterrupt):
    """The sweep was stopped (Ctrl-C or ``SIGTERM``). ``results`` holds one :class:`RunResult` per planned run, in
    plan order: finished ones as they ended, the runs stopped mid-way with status "interrupted" and the runs that
    never started with status "not started"."""

    def __init__(self, results):
        super().__init__("sweep interrupted")
        self.results = list(results)

    def count(self, status: str) -> int:
        return sum(r.status == status for r in self.results)


@dataclass(frozen=True)
class RunSpec:
    """One planned run: a notebook, its parameters and the folder it writes to."""

    notebook: Path
    parameters: Mapping[str, Any]
    run_id: str
    output_dir: Path

    @property
    def name(self) -> str:
        return f"{self.notebook.stem}/{self.run_id}"


@dataclass(frozen=True)
class RunResult:
    """What happened to one run.

    ``status`` is "completed", "failed", "skipped" (completed earlier), "locked" (another runner is executing it
    right now; left alone), "interrupted" (stopped by Ctrl-C; redone on resume) or "not started".
    """

    spec: RunSpec
    status: str
    seconds: float = 0.0
    error: str | None = None
    failing_cell: int | None = None
    metrics: Mapping[str, Any] = field(default_factory=dict)


# --------------------------------------------------------------------------------------------- planning
def expand_grid(grid: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Expand a mapping whose list values are alternatives into the list of all combinations.

    Scalars (and mappings) are held fixed; an empty mapping gives one empty combination.
    """
    if not isinstance(grid, Mapping):
        raise BatchError(f"A parameter grid must be a mapping of NAME: value or NAME: [values]. Got {type(grid).__name__}.")
    names = list(grid)
    choices = []
    for name in names:
        value = grid[name]
        if isinstance(value, (list, tuple)):
            if not value:
                raise BatchError(f"Grid parameter {name!r} has an empty list of values; give at least one value.")
            choices.append(list(value))
        else:
            choices.append([value])
    return [dict(zip(names, combo)) for combo in itertools.product(*choices)]


@functools.lru_cache(maxsize=None)
def _yaml_loader():
    """``yaml.SafeLoader`` that also reads ``1e-5`` as a number (YAML 1.1, PyYAML's dialect, wants ``1.0e-5``), in
    grid files, ``-p`` values and inside their lists and dicts alike (made once; yaml is imported only when needed)."""
    import yaml

    class Loader(yaml.SafeLoader):
        pass

    Loader.add_implicit_resolver("tag:yaml.org,2002:float", re.compile(r"^[-+]?(\d+\.?\d*|\.\d+)[eE][-+]?\d+$"),
                                 list("-+0123456789."))
    return Loader


def _yaml_load(text: str):
    import yaml

    return yaml.load(text, Loader=_yaml_loader())


def load_grid(path: str | os.PathLike) -> list[dict[str, Any]]:
    """Read a YAML grid file and expand it (see :func:`expand_grid`).

    The file holds a mapping of parameter names to a value or a list of values, for example::

        EPSILON: [0.5, 1, 8]
        SEED: [0, 1]
        EPOCHS: 3

    A list of such mappings is also accepted: their expansions are concatenated.
    """
    import yaml

    path = Path(path)
    if path.is_dir():
        raise BatchError(f"Grid file {path} is a folder; give a YAML file such as grids/06_beta_seed.yaml.")
    if not path.is_file():
        raise BatchError(f"Grid file {path} does not exist.")
    try:
        data = _yaml_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise BatchError(f"Grid file {path} is not valid YAML: {exc}") from None
    if data is None:
        raise BatchError(f"Grid file {path} is empty; it must map parameter names to values or lists of values.")
    blocks = data if isinstance(data, list) else [data]
    if not blocks or blocks == [{}]:
        raise BatchError(f"Grid file {path} holds no parameters ({data!r}); it must map parameter names to values or "
                         "lists of values, e.g. 'SEED: [0, 1]'. To run the defaults, leave out --grid.")
    runs = []
    for block in blocks:
        if not isinstance(block, Mapping) or not all(isinstance(k, str) for k in block):
            raise BatchError(
                f"Grid file {path} must hold a mapping of parameter names to values or lists of values "
                f"(or a list of such mappings). Found {type(block).__name__}: {block!r}."
            )
        runs.extend(expand_grid(block))
    return runs


def parse_value(text: str) -> Any:
    """Parse a ``-p NAME VALUE`` value as YAML (numbers, booleans, null, lists, ``{key: value}`` dicts), else keep
    the string. Only a value written in braces is a dict: ``"note: draft"`` stays text.

    Examples
    --------
    >>> parse_value("3"), parse_value("0.5"), parse_value("true"), parse_value("[1, 2]"), parse_value("uniform")
    (3, 0.5, True, [1, 2], 'uniform')
    >>> parse_value("1e-5")
    1e-05
    >>> parse_value("{alpha: 0.05, topics: false}"), parse_value("note: draft")
    ({'alpha': 0.05, 'topics': False}, 'note: draft')
    """
    import yaml

    try:
        value = _yaml_load(text)
    except yaml.YAMLError:
        return text
    if isinstance(value, dict):
        return value if text.strip().startswith("{") else text
    return text if value is None and text.strip().lower() not in ("null", "none", "~") else value


def run_id(parameters: Mapping[str, Any]) -> str:
    """A readable, deterministic folder name for a set of parameters (sorted ``NAME=value`` pairs).

    Long or unusual values are replaced by a short hash so the name stays a safe folder name.
    """
    if not parameters:
        return "default"
    items = sorted(parameters.items())
    readable = ",".join(f"{k}={_short(v)}" for k, v in items)
    if len(readable) <= _MAX_READABLE_ID and re.fullmatch(r"[\w.=,+\-\[\]]+", readable):
        return readable
    digest = hashlib.sha256(json.dumps(to_jsonable(dict(items)), sort_keys=True).encode()).hexdigest()[:10]
    head = re.sub(r"[^\w.=,+\-]+", "_", readable)[:40].rstrip("_,")
    return f"{head}-{digest}"


def _short(value: Any) -> str:
    if isinstance(value, (list, tuple)):
        return "[" + "+".join(_short(v) for v in value) + "]"
    return str(value)


def find_notebooks(paths: Sequence[str | os.PathLike]) -> list[Path]:
    """Notebook files from paths that are notebooks or folders of notebooks (sorted, checkpoints ignored).

    A single path (``"x.ipynb"``) is accepted as well as a list of them; a notebook named twice is an error.
    """
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    if not isinstance(paths, (list, tuple)) or not paths:
        raise BatchError(f"The 'notebooks' parameter must be a path or a non-empty list of paths. Got {paths!r} instead.")
    found: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            nbs = sorted(q for q in p.glob("*.ipynb") if not q.name.startswith("."))
            if not nbs:
                raise BatchError(f"Folder {p} holds no notebooks (*.ipynb).")
            found.extend(nbs)
        elif p.suffix == ".ipynb" and p.is_file():
            found.append(p)
        elif p.suffix != ".ipynb" and p.exists():
            raise BatchError(f"{p} is not a notebook (.ipynb) or a folder of notebooks.")
        else:
            raise BatchError(f"Notebook {p} does not exist.")
    seen: dict[Path, Path] = {}
    for nb in found:
        if nb.resolve() in seen:
            raise BatchError(f"Notebook {nb} is given more than once (also as {seen[nb.resolve()]}); name each notebook once "
                             "and use --grid for several parameter sets.")
        seen[nb.resolve()] = nb
    return found


def _read_notebook(notebook: Path) -> dict:
    try:
        nb = json.loads(notebook.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise BatchError(f"Notebook {notebook} is not a valid .ipynb file (not JSON: {exc}).") from None
    if not isinstance(nb, dict) or not isinstance(nb.get("cells"), list):
        raise BatchError(f"Notebook {notebook} is not a valid .ipynb file (no list of cells).")
    return nb


def notebook_parameters(notebook: str | os.PathLike) -> dict[str, Any]:
    """The parameters a notebook declares in its ``parameters``-tagged cell: name -> default (as source text)."""
    import papermill

    notebook = Path(notebook)
    _read_notebook(notebook)
    try:
        info = papermill.inspect_notebook(str(notebook))
    except Exception as exc:  # noqa: BLE001 - nbformat/papermill errors on a malformed notebook
        raise BatchError(f"Notebook {notebook} could not be read ({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}).") from None
    if not info and not _has_parameters_cell(notebook):
        raise BatchError(f"Notebook {notebook} has no cell tagged 'parameters'; tag the cell holding its parameters.")
    return {name: spec.get("default") for name, spec in info.items()}


def _has_parameters_cell(notebook: Path) -> bool:
    nb = _read_notebook(notebook)
    return any("parameters" in c.get("metadata", {}).get("tags", []) for c in nb.get("cells", []))


def _workbench_metadata(notebook: str | os.PathLike) -> dict:
    meta = _read_notebook(Path(notebook)).get("metadata", {}).get("workbench", {})
    return meta if isinstance(meta, dict) else {}


def smoke_parameters(notebook: str | os.PathLike) -> dict[str, Any]:
    """Parameters that make a notebook finish in seconds (``metadata.workbench.smoke_parameters``)."""
    return dict(_workbench_metadata(notebook).get("smoke_parameters", {}))


def parameter_ranges(notebook: str | os.PathLike) -> dict[str, dict]:
    """The ranges a notebook declares for its parameters (``metadata.workbench.parameter_ranges``; format in
    :mod:`workbench.notebook_params`)."""
    return dict(_workbench_metadata(notebook).get("parameter_ranges", {}))


def plan_runs(
    notebooks: Sequence[str | os.PathLike],
    *,
    parameters: Mapping[str, Any] | None = None,
    grid: Sequence[Mapping[str, Any]] | None = None,
    output: str | os.PathLike = "runs",
    smoke: bool = False,
) -> list[RunSpec]:
    """Plan every (notebook, parameter set) run, validating parameter names first.

    ``parameters`` are fixed values; ``grid`` is a list of parameter sets (from :func:`load_grid`);
    grid values override fixed ones. With ``smoke=True`` each notebook's smoke parameters are the base.
    Raises :class:`BatchError` before anything runs if a notebook is missing or a name is unknown.
    """
    from .notebook_params import check_values
    from .validation import InvalidParameterError

    notebooks = find_notebooks(notebooks)
    if parameters is not None and not isinstance(parameters, Mapping):
        raise BatchError(f"The 'parameters' parameter must be a mapping of NAME: value. Got {parameters!r} instead.")
    parameters = dict(parameters or {})
    if grid is not None:
        if isinstance(grid, Mapping) or not isinstance(grid, (list, tuple)) or not all(isinstance(g, Mapping) for g in grid):
            raise BatchError("The 'grid' parameter must be a list of parameter mappings (expand a mapping of lists with "
                             f"expand_grid). Got {grid!r} instead."[:300])
        if not grid:
            raise BatchError("The 'grid' parameter is an empty list: no run to do. Leave it out (None) to run the defaults.")
    combos = list(grid) if grid else [{}]
    reserved = sorted(set(parameters).union(*combos) & set(RESERVED))
    if reserved:
        raise BatchError(f"Parameter(s) {reserved} are set by the runner (the run's folder); do not pass them.")
    specs = []
    for nb in notebooks:
        declared = notebook_parameters(nb)
        ranges = parameter_ranges(nb)
        base = smoke_parameters(nb) if smoke else {}
        for combo in combos:
            params = {**base, **parameters, **combo}
            unknown = sorted(set(params) - set(declared))
            if unknown:
                raise BatchError(
                    f"Unknown parameter(s) {unknown} for notebook {nb.name}; it accepts "
                    f"{sorted(n for n in declared if n not in RESERVED)}."
                )
            try:
                params = check_values(params, defaults=declared, ranges=ranges, notebook=nb.stem)
            except InvalidParameterError as exc:
                raise BatchError(str(exc)) from None
            rid = run_id(params)
            specs.append(RunSpec(nb.resolve(), params, rid, Path(output).resolve() / nb.stem / rid))
    names = [s.name for s in specs]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise BatchError(f"The grid produces the same run more than once: {duplicates[:3]}.")
    return specs


def _check_writable(folder: Path) -> None:
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / f".write-test-{os.getpid()}"
        probe.write_text("ok")
        probe.unlink()
    except OSError as exc:
        raise BatchError(f"Output directory {folder} is not writable ({exc.strerror or exc}). Choose another with --output.") from None


# -------------------------------------------------------------------------------------------- execution
def _completed(spec: RunSpec) -> dict | None:
    path = spec.output_dir / RECORD_NAME
    if not path.exists():
        return None
    try:
        rec = load_record(path)
    except (OSError, json.JSONDecodeError):
        return None
    return rec if rec.get("status") == "completed" and rec.get("extra", {}).get("runner", {}).get("finished") else None


_KERNELS: set[int] = set()  # process ids of the kernels this process started


def _kernel_manager_class():
    """A kernel manager talking to the kernel over IPC (Unix sockets) instead of TCP ports.

    Kernels started at the same moment by parallel runs can race for the same free TCP ports and then hang;
    socket files named after a unique prefix in the temp folder cannot collide (and are not sent in clear over
    the network, which silences the kernel's TCP warning).
    """
    import tempfile
    import uuid

    from jupyter_client.manager import AsyncKernelManager

    class IPCKernelManager(AsyncKernelManager):
        def __init__(self, **kwargs):
            if os.name == "posix":
                kwargs.setdefault("transport", "ipc")
                kwargs.setdefault("ip", os.path.join(tempfile.gettempdir(), f"workbench-kernel-{uuid.uuid4().hex[:12]}"))
            super().__init__(**kwargs)

        async def _async_launch_kernel(self, kernel_cmd, **kw):
            await super()._async_launch_kernel(kernel_cmd, **kw)
            process = getattr(self.provisioner, "process", None)
            if process is not None:  # remembered so Ctrl-C can stop it (see _run_here)
                _KERNELS.add(process.pid)

    return IPCKernelManager


def execute_run(spec: RunSpec, *, kernel_name: str | None = None, timeout: float | None = None, force: bool = False) -> RunResult:
    """Execute one run (or skip it when already completed). Never raises for a failing notebook.

    The executed notebook is written to ``<output_dir>/notebook.ipynb`` cell by cell; afterwards the run's
    record gets the parameters, wall time and outcome (failures keep the failing cell and the error).
    """
    done = None if force else _completed(spec)
    if done is not None:
        return _skipped(spec, done)
    from . import runlock

    with runlock.claim(spec.output_dir) as held:
        if not held.acquired:
            return RunResult(spec, "locked", error=f"being executed by {held.describe_holder()}; left alone")
        done = None if force else _completed(spec)  # another runner may have finished it meanwhile
        if done is not None:
            return _skipped(spec, done)
        return _execute_claimed(spec, kernel_name=kernel_name, timeout=timeout)


def _skipped(spec: RunSpec, done: dict) -> RunResult:
    return RunResult(spec, "skipped", float((done.get("timings") or {}).get("wall_seconds", 0.0)), metrics=done.get("metrics") or {})


def _execute_claimed(spec: RunSpec, *, kernel_name: str | None, timeout: float | None) -> RunResult:
    import papermill
    from papermill.exceptions import PapermillExecutionError

    record_path = spec.output_dir / RECORD_NAME
    stale = record_path.exists()
    if stale:  # an earlier, unfinished or failed attempt: start clean so a new record is not confused with it
        record_path.unlink()
    params = {**spec.parameters, "OUTPUT_DIR": str(spec.output_dir)}
    start = time.perf_counter()
    error, cell = None, None
    try:
        papermill.execute_notebook(
            str(spec.notebook),
            str(spec.output_dir / "notebook.ipynb"),
            parameters=params,
            kernel_name=kernel_name,
            progress_bar=False,
            cwd=str(spec.notebook.parent),
            execution_timeout=timeout,
            kernel_manager_class=_kernel_manager_class(),
        )
    except PapermillExecutionError as exc:
        error, cell = f"{exc.ename}: {exc.evalue}", exc.exec_count
    except Exception as exc:  # kernel died, timeout, unreadable notebook...: report, don't stop the sweep
        error = f"{type(exc).__name__}: {exc}".strip()
    seconds = time.perf_counter() - start
    return _finish(spec, seconds=seconds, error=error, cell=cell)


def _finish(spec: RunSpec, *, seconds: float, error: str | None, cell: int | None, interrupted: bool = False) -> RunResult:
    """Merge the runner's bookkeeping into the run's record (written atomically)."""
    try:
        rec = load_record(spec.output_dir)
    except (OSError, json.JSONDecodeError):
        rec = {}
    if not isinstance(rec, dict):
        rec = {}
    status = "interrupted" if interrupted else "failed" if error else "completed"
    runner = {"finished": not interrupted, "status": status, "error": error, "failing_cell": cell,
              "executed_notebook": "notebook.ipynb"}
    save_record(
        spec.output_dir,
        config=rec.get("config"),
        metrics=rec.get("metrics"),
        history=rec.get("history"),
        timings={**(rec.get("timings") or {}), "wall_seconds": round(seconds, 3)},
        seed=rec.get("seed", spec.parameters.get("SEED")),
        parameters=dict(spec.parameters),
        notebook=spec.notebook.stem,
        status=status,
        extra={**(rec.get("extra") or {}), "runner": runner, "run_id": spec.run_id},
        tables=rec.get("tables"),
    )
    return RunResult(spec, status, seconds, error, cell, rec.get("metrics") or {})


def mark_interrupted(spec: RunSpec, *, wait: float = 10.0) -> RunResult:
    """Record that a run was stopped mid-way (its record says "interrupted"; a resumed sweep runs it again).

    The run's claim was held by the worker this runner has just killed; the operating system releases it as that
    process is torn down, which can lag behind the kill on a busy machine. So the claim is retried for up to
    ``wait`` seconds; a claim still held after that belongs to another runner, whose record is its own.
    """
    from . import runlock

    error = "interrupted by the user (Ctrl-C)"
    deadline = time.monotonic() + wait
    try:
        while True:
            with runlock.claim(spec.output_dir) as held:
                if held.acquired:
                    return _finish(spec, seconds=0.0, error=error, cell=None, interrupted=True)
            if time.monotonic() >= deadline:
                return RunResult(spec, "interrupted", error=f"{error}; left alone: held by {held.describe_holder()}")
            time.sleep(0.05)
    except (OSError, ValueError):  # the folder is gone or the notebook's record cannot be merged: say so anyway
        return RunResult(spec, "interrupted", error=error)


def _execute_quietly(spec: RunSpec, kernel_name: str | None, timeout: float | None, force: bool) -> RunResult:
    """Worker entry point (must be a module-level function to be sent to processes / Dask workers)."""
    try:
        return execute_run(spec, kernel_name=kernel_name, timeout=timeout, force=force)
    except Exception as exc:  # noqa: BLE001 - report any runner bug as a failed run, keep the sweep going
        return RunResult(spec, "failed", 0.0, f"runner error: {exc}\n{traceback.format_exc(limit=3)}")


def run_notebooks(
    notebooks: Sequence[str | os.PathLike],
    *,
    parameters: Mapping[str, Any] | None = None,
    grid: Sequence[Mapping[str, Any]] | None = None,
    output: str | os.PathLike = "runs",
    jobs: int = 1,
    executor: str = "local",
    address: str | None = None,
    smoke: bool = False,
    kernel_name: str | None = None,
    timeout: float | None = None,
    force: bool = False,
    on_result: Callable[[RunResult], None] | None = None,
) -> list[RunResult]:
    """Plan and execute every run; return one :class:`RunResult` per run, in plan order.

    Parameters
    ----------
    notebooks : sequence of paths
        Notebooks or folders of notebooks.
    parameters : mapping, optional
        Fixed parameter values for every run.
    grid : list of mappings, optional
        Parameter sets, e.g. from :func:`load_grid`.
    output : path
        Root folder; each run writes to ``<output>/<notebook>/<run-id>/``.
    jobs : int
        Runs at a time with the local executor (>= 1).
    executor : {"local", "dask"}
        ``"dask"`` submits runs to the Dask scheduler at ``address`` (e.g. ``"tcp://10.0.0.5:8786"``).
    smoke : bool
        Start from each notebook's smoke parameters (fast runs for tests and demos).
    kernel_name : str, optional
        Jupyter kernel; default: the notebook's own kernelspec.
    timeout : float, optional
        Seconds allowed per cell.
    force : bool
        Re-execute runs that already completed.
    on_result : callable, optional
        Called with each result as it arrives (progress reporting).
    """
    from .validation import Interval, InvalidParameterError, check

    if executor not in EXECUTORS:
        raise BatchError(f"The 'executor' parameter must be one of {EXECUTORS}. Got {executor!r} instead.")
    if executor == "dask":
        _check_address(address)
    try:
        jobs = check(jobs, Interval(int, 1, None), name="jobs", owner="run_notebooks")
        timeout = check(timeout, Interval(float, 0, None, closed="neither", allow_inf=True), None, name="timeout",
                        owner="run_notebooks")
    except InvalidParameterError as exc:
        raise BatchError(str(exc)) from None
    specs = plan_runs(notebooks, parameters=parameters, grid=grid, output=output, smoke=smoke)
    _check_writable(Path(output))
    args = (kernel_name, timeout, force)
    results: dict[int, RunResult] = {}

    def record(i: int, res: RunResult) -> None:
        results[i] = res
        if on_result is not None:
            on_result(res)

    pending = list(range(len(specs)))
    try:
        with _terminate_as_interrupt():
            if not force:  # resolve finished runs without starting any worker
                for i in list(pending):
                    done = _completed(specs[i])
                    if done is not None:
                        record(i, _skipped(specs[i], done))
                        pending.remove(i)
            if not pending:
                pass
            elif executor == "dask":
                _run_dask(specs, pending, args, address, record)
            elif jobs == 1 and len(pending) == 1:  # one run: in this process (no worker to start)
                _run_here(specs, pending[0], args, record)
            else:
                _run_processes(specs, pending, args, jobs, record)
    except KeyboardInterrupt as exc:
        stopped = getattr(exc, "stopped", ())
        for i in range(len(specs)):
            if i not in results:
                results[i] = mark_interrupted(specs[i]) if i in stopped else RunResult(specs[i], "not started")
        raise SweepInterrupted([results[i] for i in range(len(specs))]) from None
    return [results[i] for i in range(len(specs))]


def _check_address(address: str | None) -> None:
    if not address:
        raise BatchError("The dask executor needs the scheduler address (--cluster tcp://HOST:PORT).")
    if not re.fullmatch(r"(tcp|tls|ucx|ws|wss)://[^\s:/]+:\d{1,5}/?", str(address)):
        raise BatchError(f"The scheduler address must look like tcp://HOST:PORT (with the port, e.g. tcp://10.0.0.5:8786). "
                         f"Got {address!r} instead.")


class _terminate_as_interrupt:
    """While active (in the main thread), ``SIGTERM`` stops the sweep like Ctrl-C does."""

    def __enter__(self):
        import signal
        import threading

        self._previous = None
        if threading.current_thread() is threading.main_thread():
            def handler(signum, frame):
                raise KeyboardInterrupt

            self._previous = signal.signal(signal.SIGTERM, handler)
        return self

    def __exit__(self, *exc):
        import signal

        if self._previous is not None:
            signal.signal(signal.SIGTERM, self._previous)


_THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")


def _share_cores(jobs: int) -> None:
    """In a worker process: give each of ``jobs`` parallel kernels its share of the cores.

    Kernels inherit this environment; without it every kernel's torch/BLAS starts one thread per core and
    parallel runs oversubscribe the machine (measured: a notebook taking 80 s alone took 290 s beside another).
    A value the user already set wins.
    """
    threads = str(max(1, usable_cores() // jobs))
    for name in _THREAD_VARIABLES:
        os.environ.setdefault(name, threads)


def _worker_init(jobs: int, runner_pid: int) -> None:
    """Set up a worker process: its share of the cores, death with the runner, Ctrl-C left to the runner."""
    import signal

    from ._processes import die_with_parent

    die_with_parent(runner_pid)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the runner decides what Ctrl-C stops (and stops us itself)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    _share_cores(jobs)


def _run_here(specs, i, args, record) -> None:
    """Run one run in this process; on Ctrl-C stop the kernel it started and mark the run as stopped."""
    import signal
    import threading

    from ._processes import descendants, stop_tree

    def stop_kernels():
        mine = set(descendants(os.getpid()))
        stop_tree([pid for pid in _KERNELS if pid in mine])

    def on_interrupt(signum, frame):  # kill the kernel first, so it never sees its run being torn down
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        stop_kernels()
        raise KeyboardInterrupt

    main = threading.current_thread() is threading.main_thread()
    previous = {sig: signal.signal(sig, on_interrupt) for sig in (signal.SIGINT, signal.SIGTERM)} if main else {}
    try:
        record(i, _execute_quietly(specs[i], *args))
    except KeyboardInterrupt as exc:
        stop_kernels()
        exc.stopped = {i}
        raise
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


#: What a run whose worker process died under it is told (the pool is replaced and the sweep goes on).
WORKER_DIED = ("its worker process ended abruptly ({how}), most likely killed by the operating system for lack "
               "of memory; run it alone, or with fewer --jobs")


def _run_processes(specs, pending, args, jobs, record) -> None:
    """Run ``pending`` in worker processes (spawned, ``jobs`` at a time; one worker for ``jobs=1``).

    A worker that dies under its run (the out-of-memory killer, ``kill -9``) fails that run, with
    :data:`WORKER_DIED` as its error; the runs the broken pool took down with it, or never started, go on in a
    new pool. On Ctrl-C: no further run starts, the workers and their kernels are stopped, and the indices of the
    runs that were executing are attached to the ``KeyboardInterrupt`` (as ``stopped``).
    """
    pending = list(pending)
    while pending:
        pending = _run_pool(specs, pending, args, jobs, record)


def _run_pool(specs, pending, args, jobs, record) -> list[int]:
    """One process pool over ``pending``; returns the runs to redo in a new pool if this one broke."""
    import multiprocessing
    import signal
    from concurrent.futures.process import BrokenProcessPool

    from . import runlock
    from ._processes import stop_tree

    ctx = multiprocessing.get_context("spawn")  # fork + kernels + threads do not mix
    workers = min(jobs, len(pending))
    pool = ProcessPoolExecutor(max_workers=workers, mp_context=ctx, initializer=_worker_init, initargs=(workers, os.getpid()))
    futures: dict[Future, int] = {}
    interrupted = False
    try:
        futures = {pool.submit(_execute_quietly, specs[i], *args): i for i in pending}
        processes = dict(getattr(pool, "_processes", None) or {})  # spawned on submit; kept to read exit codes
        remaining = set(futures)
        while remaining:
            done, remaining = wait(remaining, return_when=FIRST_COMPLETED)
            for fut in done:
                try:
                    result = fut.result()
                except BrokenProcessPool:
                    continue
                record(futures[fut], result)
        broken = [i for fut, i in futures.items() if fut.exception() is not None]
        if broken:
            pool.shutdown(wait=True)
            return _after_broken_pool(specs, broken, processes, record)
        return []
    except KeyboardInterrupt as exc:
        interrupted = True
        previous = signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not cut the clean-up short
        try:
            running = {i for fut, i in futures.items() if not fut.done() and runlock.holder(specs[i].output_dir)}
            worker_pids = list(getattr(pool, "_processes", None) or {})
            manager = getattr(pool, "_executor_manager_thread", None)  # (shutdown forgets it)
            pool.shutdown(wait=False, cancel_futures=True)  # queued runs never start (cancelled by the pool itself)
            stop_tree(worker_pids)  # the running ones stop, kernels included
            # The pool's manager thread notices its dead workers and winds down; waited for (bounded), so that
            # the interpreter's exit does not have to.
            if manager is not None:
                manager.join(timeout=10)
        finally:
            signal.signal(signal.SIGINT, previous)
        exc.stopped = running
        raise
    finally:
        if not interrupted:
            pool.shutdown(wait=True, cancel_futures=True)


def _after_broken_pool(specs, broken, processes, record) -> list[int]:
    """Sort the runs of a broken pool: a run whose worker died on its own (not terminated by the pool as it broke)
    failed; the others are returned to be redone. If no culprit can be told apart, they all fail, so a pool that
    keeps breaking cannot loop."""
    import signal

    from . import runlock
    from ._processes import stop_tree

    stop_tree(list(processes))  # kernels of workers the pool terminated go too
    redo, failed = [], []
    for i in broken:
        with runlock.claim(specs[i].output_dir) as held:  # the dead worker's claim, read by taking it over once
            claim = held.took_over if held.acquired else None
        proc = processes.get(claim.get("pid")) if claim else None
        code = proc.exitcode if proc is not None else None
        if proc is not None and code not in (-signal.SIGTERM, None):
            how = f"signal {signal.Signals(-code).name}" if code < 0 else f"exit code {code}"
            failed.append((i, WORKER_DIED.format(how=how)))
        else:
            redo.append(i)
    if not failed:
        failed, redo = [(i, WORKER_DIED.format(how="the process pool broke")) for i in redo], []
    for i, error in failed:
        with runlock.claim(specs[i].output_dir) as held:  # (another runner may have taken it over meanwhile)
            record(i, _finish(specs[i], seconds=0.0, error=error, cell=None) if held.acquired
                   else RunResult(specs[i], "failed", error=error))
    return redo


def _run_dask(specs, pending, args, address, record) -> None:
    try:
        from distributed import Client, as_completed
    except ImportError:  # pragma: no cover - dask[distributed] is a dependency
        raise BatchError("The dask executor needs dask.distributed: pip install 'dask[distributed]'.") from None
    try:
        client = Client(address, timeout="10s")
    except (OSError, TimeoutError) as exc:
        raise BatchError(f"Could not reach the Dask scheduler at {address}: {exc}") from None
    try:
        futures = {client.submit(_execute_quietly, specs[i], *args, pure=False, key=f"run-{i}-{specs[i].run_id}"): i for i in pending}
        for fut in as_completed(list(futures)):
            record(futures[fut], fut.result())
    finally:
        client.close()


# -------------------------------------------------------------------------------------------- reporting
def summary_table(results: Iterable[RunResult], *, max_metrics: int = 3) -> str:
    """A plain-text table of runs: name, status, seconds, a few metrics or the error."""
    results = list(results)
    rows = [("run", "status", "seconds", "metrics / error")]
    for r in results:
        if r.status in ("failed", "locked", "interrupted"):
            where = f"cell {r.failing_cell}: " if r.failing_cell is not None else ""
            detail = where + (r.error or "").splitlines()[0] if r.error else where
        else:
            detail = ", ".join(f"{k}={_fmt(v)}" for k, v in list(r.metrics.items())[:max_metrics] if not isinstance(v, (dict, list)))
        rows.append((r.spec.name, r.status, f"{r.seconds:.1f}", detail[:100]))
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    lines = ["  ".join(row[i].ljust(widths[i]) for i in range(3)) + "  " + row[3] for row in rows]
    lines.insert(1, "-" * min(120, max(len(line) for line in lines)))
    counts = {s: sum(r.status == s for r in results) for s in ("completed", "skipped", "failed")}
    locked = sum(r.status == "locked" for r in results)
    lines.append(f"{counts['completed']} completed, {counts['skipped']} skipped (already done), {counts['failed']} failed"
                 + (f", {locked} locked (being executed by another runner; run the command again once it is done)" if locked else ""))
    return "\n".join(lines)


def _fmt(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


if __name__ == "__main__":  # pragma: no cover
    sys.exit("Use `python -m workbench run ...`.")
