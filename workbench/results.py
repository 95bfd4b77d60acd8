"""Run records: a run's config, metrics, history, timings, seed and library versions as one JSON file.

Records are written atomically (write to a temporary file in the same folder, then rename), so an
interrupted run never leaves a half-written record and a finished record is never lost. The batch
runner treats a folder holding a ``record.json`` whose ``status`` is "completed" as done.

Examples
--------
>>> import tempfile
>>> out = tempfile.mkdtemp()
>>> path = save_record(out, config={"epochs": 2}, metrics={"accuracy": 0.9}, seed=0)
>>> load_record(out)["metrics"]["accuracy"]
0.9
>>> table = collect(out)
>>> float(table.loc[0, "metrics.accuracy"]), int(table.loc[0, "config.epochs"])
(0.9, 2)
"""
from __future__ import annotations

import dataclasses
import datetime as _dt
import json
import math
import os
import platform
import tempfile
from importlib import metadata
from pathlib import Path
from typing import Any, Mapping

import pandas as pd

__all__ = [
    "RECORD_NAME",
    "save_record",
    "load_record",
    "collect",
    "save_figure",
    "atomic_write_text",
    "library_versions",
    "to_jsonable",
    "default_output_dir",
    "metric_key",
    "METRIC_KEY_PATTERN",
    "STATUSES",
    "record_problem",
    "legacy_metric_key",
]

RECORD_NAME = "record.json"
#: The values a record's ``status`` may take ("interrupted": stopped by Ctrl-C; the batch runner redoes it).
STATUSES = ("completed", "failed", "running", "interrupted")
#: Metric names in run records: lower-case words joined by "_", levels joined by "/", numbers may hold a ".";
#: e.g. ``dp/epsilon_8/accuracy``, ``lira_online/tpr_at_fpr_0.001``, ``non_dp/seconds_per_epoch``.
METRIC_KEY_PATTERN = r"^[a-z0-9_.]+(/[a-z0-9_.]+)*$"
_UMASK = os.umask(0)
os.umask(_UMASK)
_LIBRARIES = ("workbench", "torch", "opacus", "numpy", "pandas", "scikit-learn", "transformers", "papermill", "plotly")


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` to ``path`` so that readers see either the old file or the new one, never a mix."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes 0600; give the file the usual permissions
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def to_jsonable(value: Any) -> Any:
    """Convert dataclasses, numpy/torch scalars and arrays, paths and NaN into plain JSON values."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Mapping):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [to_jsonable(v) for v in value]
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, (str, int, bool)) or value is None:
        return value
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if hasattr(value, "tolist"):  # numpy / torch arrays and scalars
        return to_jsonable(value.tolist())
    if hasattr(value, "item"):
        return to_jsonable(value.item())
    return str(value)


def metric_key(*parts: Any) -> str:
    """Build a metric name in the records' one naming scheme from its parts (levels, outermost first).

    Each part is lower-cased; spaces and hyphens become "_"; parts are joined by "/". Raises ``ValueError``
    when the result still does not match :data:`METRIC_KEY_PATTERN`.

    Examples
    --------
    >>> metric_key("non-DP", "Accuracy")
    'non_dp/accuracy'
    >>> metric_key("lira online", "tpr_at_fpr", 0.001)
    'lira_online/tpr_at_fpr/0.001'
    >>> metric_key("auc (%)")
    Traceback (most recent call last):
    ...
    ValueError: Metric name 'auc_(%)' does not follow the naming scheme: lower-case words joined by '_', levels by '/', e.g. 'dp/epsilon_8/accuracy'.
    """
    import re

    text = "/".join(str(p).strip().lower().replace(" ", "_").replace("-", "_") for p in parts)
    if not re.match(METRIC_KEY_PATTERN, text):
        raise ValueError(f"Metric name {text!r} does not follow the naming scheme: lower-case words joined by '_', "
                         "levels by '/', e.g. 'dp/epsilon_8/accuracy'.")
    return text


def _flat_metrics(metrics: Mapping[str, Any], prefix: tuple = ()) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in metrics.items():
        if isinstance(value, Mapping):
            out.update(_flat_metrics(value, prefix + (key,)))
        else:
            out[metric_key(*prefix, key)] = value
    return out


def library_versions() -> dict[str, str | None]:
    """Installed versions of the libraries that shape a run's numbers."""
    versions = {"python": platform.python_version()}
    for name in _LIBRARIES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def save_record(
    output_dir: str | os.PathLike,
    *,
    config: Any = None,
    metrics: Mapping[str, Any] | None = None,
    history: Any = None,
    timings: Mapping[str, float] | None = None,
    seed: int | None = None,
    parameters: Mapping[str, Any] | None = None,
    notebook: str | None = None,
    status: str = "completed",
    extra: Mapping[str, Any] | None = None,
    tables: Mapping[str, Any] | None = None,
) -> Path:
    """Save one run's record atomically as ``<output_dir>/record.json`` and return its path.

    Parameters
    ----------
    output_dir : path-like
        The run's folder (created if needed).
    config : dataclass or mapping, optional
        The validated configuration of the run.
    metrics : mapping, optional
        Final scalar metrics (these become ``metrics.*`` columns in :func:`collect`). Names follow one scheme
        (:func:`metric_key`): nested mappings are flattened with "/", names are lower-cased and spaces or
        hyphens become "_"; a name that still breaks the scheme raises ``ValueError``.
    history : list of mappings or object with ``to_records()``, optional
        Per-epoch (or per-round) metrics.
    timings : mapping, optional
        Seconds spent in named phases.
    seed : int, optional
    parameters : mapping, optional
        The notebook parameters the run was executed with.
    notebook : str, optional
        Name of the notebook that produced the run.
    status : {"completed", "failed", "running", "interrupted"}
    extra : mapping, optional
        Anything else worth keeping (JSON-convertible).
    tables : mapping of str to DataFrame or list of row mappings, optional
        Named tidy tables (e.g. a scorecard), stored as lists of row dicts under ``record["tables"]``; the HTML
        report shows them.
    """
    if status not in STATUSES:
        raise ValueError(f"The 'status' parameter of save_record must be one of {STATUSES}. Got {status!r} instead.")
    if history is not None and hasattr(history, "to_records"):
        history = history.to_records()
    record = {
        "status": status,
        "notebook": notebook,
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "seed": seed,
        "parameters": parameters or {},
        "config": config if config is not None else {},
        "metrics": _flat_metrics(metrics or {}),
        "history": history or [],
        "timings": timings or {},
        "versions": library_versions(),
        "extra": extra or {},
        "tables": {str(k): (v.to_dict(orient="records") if hasattr(v, "to_dict") else list(v)) for k, v in (tables or {}).items()},
    }
    text = json.dumps(to_jsonable(record), indent=2, sort_keys=False, allow_nan=False)
    return atomic_write_text(Path(output_dir) / RECORD_NAME, text + "\n")


def load_record(path: str | os.PathLike) -> dict:
    """Load a record from its file or from the run folder holding it."""
    path = Path(path)
    if path.is_dir():
        path = path / RECORD_NAME
    return json.loads(path.read_text(encoding="utf-8"))


def record_problem(record: Any) -> str | None:
    """Why a loaded record cannot be used (wrong shape), or ``None`` when it is fine.

    Examples
    --------
    >>> record_problem({"status": "completed", "metrics": {"auc": 0.5}}) is None
    True
    >>> record_problem({"status": "completed", "metrics": [0.5]})
    "'metrics' is a list, not a mapping of names to values"
    >>> record_problem([1, 2])
    'the file holds a list, not a record (a JSON object)'
    """
    if not isinstance(record, Mapping):
        return f"the file holds a {type(record).__name__}, not a record (a JSON object)"
    for section in ("parameters", "config", "metrics", "timings", "extra", "tables"):
        value = record.get(section)
        if value is not None and not isinstance(value, Mapping):
            return f"{section!r} is a {type(value).__name__}, not a mapping of names to values"
    status = record.get("status")
    if status is not None and status not in STATUSES:
        return f"'status' is {status!r}, not one of {STATUSES}"
    return None


def legacy_metric_key(name: str) -> str:
    """A metric name from a record written before the one naming scheme, in that scheme where it is clear.

    Lower-cases, turns spaces and hyphens into "_", turns a "." between words into "/" (a "." inside a number
    stays) and drops "_" at either end of a level. Names already in the scheme come back unchanged.

    Examples
    --------
    >>> legacy_metric_key("non-DP.accuracy"), legacy_metric_key("_lira_online/AUC_"), legacy_metric_key("tpr_at_fpr_0.001")
    ('non_dp/accuracy', 'lira_online/auc', 'tpr_at_fpr_0.001')
    """
    import re

    text = str(name).strip().lower().replace(" ", "_").replace("-", "_")
    text = re.sub(r"(?<=[a-z_])\.(?=[a-z_])|(?<=\d)\.(?=[a-z_])|(?<=[a-z_])\.(?=\d+[a-z_])", "/", text)
    return "/".join(level.strip("_") or level for level in text.split("/"))


def _broken_row(path: Path, reason: str) -> dict:
    return {"run_dir": str(path.parent), "notebook": path.parent.parent.name, "status": "broken", "error": reason}


def collect(runs_dir: str | os.PathLike) -> pd.DataFrame:
    """One row per ``record.json`` found under ``runs_dir`` (recursively).

    Columns: ``run_dir``, ``notebook``, ``status``, ``seed``, ``created`` and the flattened ``parameters.*``,
    ``config.*``, ``metrics.*`` and ``timings.*`` entries. Metric columns use the one naming scheme
    (``metrics.dp/epsilon_8/accuracy``); records written before it (nested metric mappings, "." or "-" in
    names) are read into the same columns (:func:`legacy_metric_key`). A record that cannot be read (truncated,
    not JSON, JSON of the wrong shape) is never dropped: its row has status ``"broken"`` and the reason in
    ``error``. Empty DataFrame if there is no record.
    """
    runs_dir = Path(runs_dir)
    rows = []
    for path in sorted(runs_dir.rglob(RECORD_NAME)):
        try:
            rec = load_record(path)
        except (OSError, UnicodeDecodeError) as exc:
            rows.append(_broken_row(path, f"unreadable: {exc}"))
            continue
        except json.JSONDecodeError as exc:
            rows.append(_broken_row(path, f"not valid JSON (truncated or corrupt): {exc}"))
            continue
        problem = record_problem(rec)
        if problem:
            rows.append(_broken_row(path, problem))
            continue
        row = {"run_dir": str(path.parent), **{k: rec.get(k) for k in ("notebook", "status", "seed", "created")}}
        for section in ("parameters", "config", "timings"):
            row.update(_flatten(rec.get(section) or {}, prefix=f"{section}."))
        for key, value in _flatten(rec.get("metrics") or {}, prefix="", sep="/").items():
            row[f"metrics.{legacy_metric_key(key)}"] = value
        rows.append(row)
    return pd.DataFrame(rows)


def _flatten(d: Mapping[str, Any], *, prefix: str, sep: str = ".") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in d.items():
        if isinstance(value, Mapping):
            out.update(_flatten(value, prefix=f"{prefix}{key}{sep}", sep=sep))
        else:
            out[f"{prefix}{key}"] = value
    return out


def default_output_dir(notebook: str) -> Path:
    """Where an interactively run notebook writes its record: ``<project>/runs/<notebook>/interactive``.

    Notebooks use it when their ``OUTPUT_DIR`` parameter is ``None``; the batch runner always injects
    its own ``OUTPUT_DIR``. ``<project>`` is the source checkout holding this package, else the
    current folder (or its parent when that is a ``notebooks`` folder).
    """
    root = Path(__file__).resolve().parents[1]
    if not (root / "pyproject.toml").exists():
        root = Path.cwd().parent if Path.cwd().name == "notebooks" else Path.cwd()
    return root / "runs" / notebook / "interactive"


def save_figure(fig: Any, *, output_dir: str | os.PathLike, name: str) -> Path:
    """Save a plotly figure as ``<output_dir>/figures/<name>.json`` (the HTML report embeds it).

    Takes any object with ``to_json()`` so this module never imports plotly.
    """
    if not name or any(c in name for c in "/\\"):
        raise ValueError(f"The 'name' parameter of save_figure must be a plain file name. Got {name!r} instead.")
    return atomic_write_text(Path(output_dir) / "figures" / f"{name}.json", fig.to_json())
