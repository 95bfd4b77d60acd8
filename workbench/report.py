"""Static HTML report of a runs folder: study cards with a headline figure and a finding, sweeps plotted against
their varied parameter, every metric of every run in a table, and a page per run.

What a notebook can add to its record for the report (all optional, in ``save_record(..., extra={...})``):

``finding``
    One sentence saying what the run shows, e.g. ``"Focal distillation cuts negative flips from 4.3% to 0.8%."``
    The index shows it on the study's card.
``headline_figure``
    The name of the figure (as given to ``save_figure``) to show on the card; default: the first one saved.
``headline_metric``
    The metric plotted against the varied parameter of a sweep and listed first; default: the first metric.

Tables saved with ``save_record(..., tables={"scorecard": df})`` are shown on the run's page. Records that
cannot be read are listed as broken with the reason. Plotly's JavaScript is copied once next to the index, so
the pages work offline.
"""
from __future__ import annotations

import html
import json
import math
import os
from pathlib import Path

from .results import atomic_write_text, collect, load_record

__all__ = ["write_report", "run_label", "varied_parameters"]

_STYLE = """
body{font-family:system-ui,-apple-system,Segoe UI,sans-serif;margin:1.5rem 2rem;color:#222;max-width:1600px}
h1{margin-bottom:.2rem} h2{margin-top:2.2rem;border-bottom:1px solid #ddd;padding-bottom:.2rem}
.cards{display:grid;grid-template-columns:repeat(auto-fill,minmax(420px,1fr));gap:1rem;margin:1rem 0;align-items:start}
.card{border:1px solid #ddd;border-radius:8px;padding:.8rem 1rem;background:#fff;box-shadow:0 1px 3px #0001}
.card h3{margin:.1rem 0 .4rem} .card .finding{font-size:.95rem;margin:.3rem 0 .5rem} .card .nofinding{color:#888}
.card .counts{font-size:.85rem;color:#555} .card .fig{height:260px}
.scroll{overflow-x:auto;max-width:100%;border:1px solid #eee}
table{border-collapse:collapse;font-size:.85rem}
th,td{border:1px solid #ddd;padding:.25rem .5rem;text-align:left;vertical-align:top;white-space:nowrap}
th{background:#f4f4f4;position:sticky;top:0} td.num{text-align:right;font-variant-numeric:tabular-nums}
th.metric{background:#e8f0fe} th.param{background:#f7f3e8}
td.run{position:sticky;left:0;background:#fff;font-weight:500;white-space:normal;min-width:9rem;max-width:22rem;word-break:break-word}
.failed,.broken,.interrupted{color:#b00020;font-weight:600} .completed{color:#1b5e20}
code{background:#f4f4f4;padding:0 .2rem}
"""


def _page(title: str, body: str, *, plotly_src: str | None = None) -> str:
    script = f'<script src="{plotly_src}"></script>' if plotly_src else ""
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
            f"<style>{_STYLE}</style>{script}</head><body>{body}</body></html>\n")


def _is_blank(value) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


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


def _cell(value) -> str:
    numeric = isinstance(value, (int, float)) and not isinstance(value, bool)
    return f"<td class='num'>{_fmt(value)}</td>" if numeric else f"<td>{_fmt(value)}</td>"


def _copy_plotly_js(folder: Path) -> Path:
    from plotly.offline import get_plotlyjs

    target = folder / "plotly.min.js"
    if not target.exists():
        atomic_write_text(target, get_plotlyjs())
    return target


def run_label(parameters: dict) -> str:
    """A run's name from its parameters, in full (``BETA=1.0, SEED=0``); ``defaults`` when none were set.

    Examples
    --------
    >>> run_label({"SEED": 0, "BETA": 1.0}), run_label({})
    ('BETA=1.0, SEED=0', 'defaults')
    """
    items = [(k, v) for k, v in sorted(parameters.items()) if not _is_blank(v)]
    return ", ".join(f"{k}={v}" for k, v in items) if items else "defaults"


def varied_parameters(rows: list[dict]) -> list[str]:
    """Parameter names whose value differs between the given runs' parameter mappings.

    Examples
    --------
    >>> varied_parameters([{"BETA": 0.0, "SEED": 0}, {"BETA": 5.0, "SEED": 0}])
    ['BETA']
    """
    names = sorted({k for r in rows for k in r})
    return [n for n in names if len({json.dumps(r.get(n), sort_keys=True, default=str) for r in rows}) > 1]


def _figure_html(fig_file: Path, *, height: int | None = None) -> str:
    import plotly.io as pio

    try:
        fig = pio.from_json(fig_file.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return f"<p class='failed'>Figure {html.escape(fig_file.name)} could not be read.</p>"
    if height:
        fig.update_layout(height=height, margin=dict(l=40, r=10, t=30, b=30))
    return fig.to_html(full_html=False, include_plotlyjs=False, config={"displaylogo": False})


def _table_html(rows: list, *, limit: int = 200) -> str:
    rows = [r for r in rows if isinstance(r, dict)][:limit]
    if not rows:
        return "<p>(empty table)</p>"
    cols = list(dict.fromkeys(k for r in rows for k in r))
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in cols)
    body = "".join("<tr>" + "".join(_cell(r.get(c)) for c in cols) + "</tr>" for r in rows)
    return f"<div class='scroll'><table><tr>{head}</tr>{body}</table></div>"


def _run_page(run_dir: Path, *, index: Path, plotly_js: Path) -> Path:
    rec = load_record(run_dir)
    rel_js = os.path.relpath(plotly_js, run_dir)
    extra = rec.get("extra") or {}
    title = f"{rec.get('notebook') or run_dir.parent.name}: {run_label(rec.get('parameters') or {})}"
    parts = [f"<h1>{html.escape(title)}</h1>",
             f"<p><a href='{os.path.relpath(index, run_dir)}'>&larr; all runs</a> · "
             f"<a href='notebook.ipynb'>executed notebook</a> · status <span class='{rec.get('status')}'>{rec.get('status')}</span></p>"]
    if extra.get("finding"):
        parts.append(f"<p class='finding'><b>Finding.</b> {html.escape(str(extra['finding']))}</p>")
    runner = extra.get("runner") or {}
    if runner.get("error"):
        parts.append(f"<p class='failed'>Failed in cell {runner.get('failing_cell')}: <code>{html.escape(str(runner['error']))}</code></p>")
    for section in ("metrics", "parameters", "timings"):
        values = rec.get(section) or {}
        if values:
            rows = "".join(f"<tr><th>{html.escape(str(k))}</th>{_cell(v)}</tr>" for k, v in values.items())
            parts.append(f"<h2>{section}</h2><table>{rows}</table>")
    for name, rows in (rec.get("tables") or {}).items():
        parts.append(f"<h2>table: {html.escape(str(name))}</h2>" + _table_html(rows if isinstance(rows, list) else []))
    for fig_file in sorted((run_dir / "figures").glob("*.json")):
        parts.append(f"<h2>{html.escape(fig_file.stem)}</h2>" + _figure_html(fig_file))
    out = run_dir / "report.html"
    atomic_write_text(out, _page(title, "\n".join(parts), plotly_src=rel_js))
    return out


def _top_level(table):
    """Drop records nested inside another run's folder (e.g. the points of a sweep a notebook records itself);
    they stay reachable from that run's folder."""
    if table.empty:
        return table
    run_dirs = {Path(d) for d in table["run_dir"]}
    nested = [any(parent in run_dirs for parent in Path(d).parents) for d in table["run_dir"]]
    return table[[not n for n in nested]]


def _records(group) -> list[tuple[dict, dict]]:
    """(row, record) pairs of a notebook's runs, most recent first; records that vanished are skipped."""
    out = []
    for _, row in group.iterrows():
        try:
            out.append((row.to_dict(), load_record(row["run_dir"])))
        except (OSError, ValueError):
            continue
    return sorted(out, key=lambda pair: str(pair[1].get("created") or ""), reverse=True)


def _headline(pairs) -> tuple[dict | None, Path | None]:
    """The most recent completed run with a finding (else the most recent completed run) and its headline figure."""
    done = [(row, rec) for row, rec in pairs if rec.get("status") == "completed"]
    if not done:
        return None, None
    row, rec = next(((r, c) for r, c in done if (c.get("extra") or {}).get("finding")), done[0])
    figures = sorted((Path(row["run_dir"]) / "figures").glob("*.json"))
    wanted = (rec.get("extra") or {}).get("headline_figure")
    chosen = next((f for f in figures if f.stem == wanted), figures[0] if figures else None)
    return rec, chosen


def _sweep_figure(points: list[dict], *, varied: list[str], metric: str) -> str:
    """The headline metric against the first varied (numeric) parameter, one line per value of the others."""
    import plotly.graph_objects as go

    numeric = [v for v in varied if all(isinstance(p["params"].get(v), (int, float)) and not isinstance(p["params"].get(v), bool)
                                        for p in points)]
    x_name = numeric[0] if numeric else varied[0]
    others = [v for v in varied if v != x_name]
    fig = go.Figure()
    series: dict[str, list] = {}
    for p in points:
        if _is_blank(p["value"]):
            continue
        key = run_label({k: p["params"].get(k) for k in others}) if others else metric
        series.setdefault(key, []).append((p["params"].get(x_name), p["value"]))
    for key, xy in series.items():
        xy.sort(key=lambda t: (str(type(t[0])), t[0]))
        fig.add_trace(go.Scatter(x=[str(x) if not numeric else x for x, _ in xy], y=[y for _, y in xy],
                                 mode="lines+markers", name=key))
    fig.update_layout(height=320, margin=dict(l=50, r=10, t=40, b=40), title=f"{metric} against {x_name}",
                      xaxis_title=x_name, yaxis_title=metric, showlegend=bool(others))
    return fig.to_html(full_html=False, include_plotlyjs=False, config={"displaylogo": False})


def _section(notebook: str, group, pairs, *, index: Path, plotly_js: Path) -> tuple[str, str]:
    """The study's card (for the top of the index) and its section (sweep figure + table of every run)."""
    anchor = "nb-" + "".join(c if c.isalnum() else "-" for c in notebook)
    params = {row["run_dir"]: rec.get("parameters") or {} for row, rec in pairs}
    varied = varied_parameters(list(params.values())) if len(params) > 1 else []
    metric_cols = [c for c in group.columns if c.startswith("metrics.") and group[c].notna().any()]
    headline_rec, headline_fig = _headline(pairs)
    wanted = ((headline_rec or {}).get("extra") or {}).get("headline_metric")
    if wanted and f"metrics.{wanted}" in metric_cols:
        metric_cols.remove(f"metrics.{wanted}")
        metric_cols.insert(0, f"metrics.{wanted}")
    param_cols = [c for c in group.columns if c.startswith("parameters.") and group[c].notna().any()]
    param_cols = sorted(param_cols, key=lambda c: c.split(".", 1)[1] not in varied)  # varied ones first

    counts = group["status"].value_counts().to_dict()
    count_text = ", ".join(f"{n} {s}" for s, n in sorted(counts.items()))
    finding = ((headline_rec or {}).get("extra") or {}).get("finding")
    card = [f"<div class='card'><h3><a href='#{anchor}'>{html.escape(notebook)}</a></h3>",
            f"<p class='finding'>{html.escape(str(finding))}</p>" if finding else
            "<p class='finding nofinding'>No finding recorded (a notebook states one with save_record(..., extra={'finding': ...})).</p>",
            f"<p class='counts'>{len(group)} run(s): {count_text}</p>"]
    if headline_fig is not None:
        card.append(f"<div class='fig'>{_figure_html(headline_fig, height=260)}</div>")
    card.append("</div>")

    body = [f"<h2 id='{anchor}'>{html.escape(notebook)}</h2>"]
    if varied and metric_cols:
        metric = metric_cols[0]
        points = [{"params": params[row["run_dir"]], "value": row.get(metric)} for row, _ in pairs
                  if row.get("status") == "completed"]
        if len(points) > 1:
            body.append(_sweep_figure(points, varied=varied, metric=metric.split(".", 1)[1]))
    head = ("<th>run</th><th>status</th>"
            + "".join(f"<th class='metric'>{html.escape(c.split('.', 1)[1])}</th>" for c in metric_cols)
            + "".join(f"<th class='param'>{html.escape(c.split('.', 1)[1])}</th>" for c in param_cols)
            + "<th>seconds</th>")
    rows = []
    for row, rec in pairs:
        run_dir = Path(row["run_dir"])
        page = _run_page(run_dir, index=index, plotly_js=plotly_js)
        link = os.path.relpath(page, index.parent)
        label = run_label(params[row["run_dir"]])
        rows.append(f"<tr><td class='run'><a href='{link}' title='{html.escape(str(run_dir))}'>{html.escape(label)}</a></td>"
                    f"<td class='{row['status']}'>{row['status']}</td>"
                    + "".join(_cell(row.get(c)) for c in metric_cols)
                    + "".join(_cell(row.get(c)) for c in param_cols)
                    + _cell(row.get("timings.wall_seconds")) + "</tr>")
    body.append(f"<div class='scroll'><table><tr>{head}</tr>{''.join(rows)}</table></div>")
    return "".join(card), "\n".join(body)


def write_report(runs_dir: str | os.PathLike, *, output: str | os.PathLike | None = None) -> Path:
    """Write ``index.html`` (study cards, sweep figures, a table per notebook, broken records) and a
    ``report.html`` per run; return the index path.

    Examples
    --------
    >>> import tempfile
    >>> from workbench.results import save_record
    >>> root = Path(tempfile.mkdtemp())
    >>> _ = save_record(root / "nb" / "default", notebook="nb", metrics={"auc": 0.5}, extra={"finding": "Chance."})
    >>> index = write_report(root)
    >>> index.name, "Chance." in index.read_text()
    ('index.html', True)
    """
    root = Path(runs_dir)
    if root.is_file():
        raise NotADirectoryError(f"{root} is a file; give the runs folder (the --output of `python -m workbench run`).")
    if not root.is_dir():
        raise FileNotFoundError(f"Runs folder {root} does not exist; run notebooks first (python -m workbench run ...).")
    index = Path(output) if output else root / "index.html"
    everything = collect(root)
    plotly_js = _copy_plotly_js(index.parent)
    broken = everything[everything["status"] == "broken"] if not everything.empty else everything  # nested ones too
    table = _top_level(everything[everything["status"] != "broken"]) if not everything.empty else everything
    parts = ["<h1>Trustworthy ML Workbench: runs</h1>",
             f"<p>{len(table)} run(s) under <code>{html.escape(str(root))}</code>"
             + (f"; <a href='#broken' class='broken'>{len(broken)} broken record(s)</a>" if len(broken) else "") + ".</p>"]
    if table.empty:
        parts.append("<p>No run records found.</p>")
    else:
        cards, sections = [], []
        for notebook, group in table.groupby(table["notebook"].fillna("(unknown)"), sort=True):
            pairs = _records(group)
            card, section = _section(str(notebook), group, pairs, index=index, plotly_js=plotly_js)
            cards.append(card)
            sections.append(section)
        parts.append("<div class='cards'>" + "".join(cards) + "</div>")
        parts.extend(sections)
    if len(broken):
        items = "".join(f"<li><code>{html.escape(str(r['run_dir']))}</code>: {html.escape(str(r.get('error')))}</li>"
                        for _, r in broken.iterrows())
        parts.append(f"<h2 id='broken' class='broken'>Broken records</h2><p>These record.json files could not be read; "
                     f"rerun them (delete the folder, then run the same command) or fix the file.</p><ul>{items}</ul>")
    rel_js = os.path.relpath(plotly_js, index.parent)
    atomic_write_text(index, _page("Workbench runs", "\n".join(parts), plotly_src=rel_js))
    return index
