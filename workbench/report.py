"""Static HTML report of a runs folder: an index of every run's metrics and a page of figures per run.

Plotly's JavaScript is copied once next to the index, so the pages work offline.
"""
from __future__ import annotations

import html
import json
import os
from pathlib import Path

from .results import atomic_write_text, collect, load_record

__all__ = ["write_report"]

_STYLE = """
body{font-family:system-ui,-apple-system,Segoe UI,sans-serif;margin:2rem;color:#222}
table{border-collapse:collapse;margin:1rem 0;font-size:.9rem}
th,td{border:1px solid #ddd;padding:.3rem .6rem;text-align:left;vertical-align:top}
th{background:#f4f4f4} .failed{color:#b00020;font-weight:600} .completed{color:#1b5e20}
code{background:#f4f4f4;padding:0 .2rem}
"""


def _page(title: str, body: str, *, plotly_src: str | None = None) -> str:
    script = f'<script src="{plotly_src}"></script>' if plotly_src else ""
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
            f"<style>{_STYLE}</style>{script}</head><body>{body}</body></html>\n")


def _fmt(value) -> str:
    if isinstance(value, float):
        if value != value:  # NaN: metric not recorded by this run
            return ""
        if value.is_integer() and abs(value) < 1e15:
            return f"{int(value):,}"
        return f"{value:.4g}"
    if isinstance(value, (dict, list)):
        return html.escape(json.dumps(value)[:80])
    return html.escape("" if value is None else str(value))


def _copy_plotly_js(folder: Path) -> Path:
    from plotly.offline import get_plotlyjs

    target = folder / "plotly.min.js"
    if not target.exists():
        atomic_write_text(target, get_plotlyjs())
    return target


def _run_page(run_dir: Path, *, index: Path, plotly_js: Path) -> Path:
    import plotly.io as pio

    rec = load_record(run_dir)
    rel_js = os.path.relpath(plotly_js, run_dir)
    parts = [f"<h1>{html.escape(rec.get('notebook') or run_dir.parent.name)} / {html.escape(run_dir.name)}</h1>",
             f"<p><a href='{os.path.relpath(index, run_dir)}'>&larr; all runs</a> · "
             f"<a href='notebook.ipynb'>executed notebook</a> · status <span class='{rec.get('status')}'>{rec.get('status')}</span></p>"]
    runner = rec.get("extra", {}).get("runner", {})
    if runner.get("error"):
        parts.append(f"<p class='failed'>Failed in cell {runner.get('failing_cell')}: <code>{html.escape(runner['error'])}</code></p>")
    for section in ("parameters", "metrics", "timings"):
        values = rec.get(section) or {}
        if values:
            rows = "".join(f"<tr><th>{html.escape(k)}</th><td>{_fmt(v)}</td></tr>" for k, v in values.items())
            parts.append(f"<h2>{section}</h2><table>{rows}</table>")
    for fig_file in sorted((run_dir / "figures").glob("*.json")):
        try:
            fig = pio.from_json(fig_file.read_text(encoding="utf-8"))
        except (ValueError, json.JSONDecodeError):
            parts.append(f"<p class='failed'>Figure {html.escape(fig_file.name)} could not be read.</p>")
            continue
        parts.append(f"<h2>{html.escape(fig_file.stem)}</h2>" + fig.to_html(full_html=False, include_plotlyjs=False))
    out = run_dir / "report.html"
    atomic_write_text(out, _page(run_dir.name, "\n".join(parts), plotly_src=rel_js))
    return out


def _top_level(table):
    """Drop records nested inside another run's folder (e.g. the points of a sweep a notebook records itself);
    they stay reachable from that run's folder."""
    if table.empty:
        return table
    run_dirs = {Path(d) for d in table["run_dir"]}
    nested = [any(parent in run_dirs for parent in Path(d).parents) for d in table["run_dir"]]
    return table[[not n for n in nested]]


def write_report(runs_dir: str | os.PathLike, *, output: str | os.PathLike | None = None) -> Path:
    """Write ``index.html`` (one table per notebook) and a ``report.html`` per run; return the index path.

    Examples
    --------
    >>> import tempfile
    >>> from workbench.results import save_record
    >>> root = Path(tempfile.mkdtemp())
    >>> _ = save_record(root / "nb" / "default", notebook="nb", metrics={"auc": 0.5})
    >>> write_report(root).name
    'index.html'
    """
    root = Path(runs_dir)
    if not root.is_dir():
        raise FileNotFoundError(f"Runs folder {root} does not exist; run notebooks first (python -m workbench run ...).")
    index = Path(output) if output else root / "index.html"
    table = _top_level(collect(root))
    plotly_js = _copy_plotly_js(index.parent)
    parts = ["<h1>Trustworthy ML Workbench: runs</h1>", f"<p>{len(table)} run(s) under <code>{html.escape(str(root))}</code>.</p>"]
    if table.empty:
        parts.append("<p>No run records found.</p>")
    else:
        for notebook, group in table.groupby(table["notebook"].fillna("(unknown)"), sort=True):
            param_cols = [c for c in group.columns if c.startswith("parameters.") and group[c].notna().any()]
            metric_cols = [c for c in group.columns if c.startswith("metrics.") and group[c].notna().any()][:8]
            cols = param_cols + metric_cols + ["timings.wall_seconds"] * ("timings.wall_seconds" in group)
            head = "".join(f"<th>{html.escape(c.split('.', 1)[1])}</th>" for c in cols)
            rows = []
            for _, row in group.iterrows():
                run_dir = Path(row["run_dir"])
                page = _run_page(run_dir, index=index, plotly_js=plotly_js)
                link = os.path.relpath(page, index.parent)
                cells = "".join(f"<td>{_fmt(row[c])}</td>" for c in cols)
                rows.append(f"<tr><td><a href='{link}'>{html.escape(run_dir.name)}</a></td>"
                            f"<td class='{row['status']}'>{row['status']}</td>{cells}</tr>")
            parts.append(f"<h2>{html.escape(str(notebook))}</h2><table><tr><th>run</th><th>status</th>{head}</tr>{''.join(rows)}</table>")
    atomic_write_text(index, _page("Workbench runs", "\n".join(parts)))
    return index
