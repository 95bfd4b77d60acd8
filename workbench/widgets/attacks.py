"""Interactive panels of the privacy-attacks study: browse precomputed attack results and canary outcomes.

The panels only compose results already computed by :mod:`workbench.privacy.attacks` /
:mod:`workbench.privacy.canaries` with figures from :mod:`workbench.plots.attacks`, so displaying them never
trains anything and never blocks a batch run.
"""
from __future__ import annotations

from typing import Mapping, Sequence

__all__ = ["attack_panel", "canary_panel"]


def _show(area, figure) -> None:
    """Replace what ``area`` (an ``ipywidgets.Output``) shows by ``figure`` (see :mod:`._display`)."""
    from ._display import show

    show(area, figure)


def attack_panel(results: Mapping[str, Mapping], *, bounds: Mapping[str, tuple] | None = None):
    """A model selector (e.g. "non-DP", "eps=1") and a log-scale toggle over ROC curves.

    Parameters
    ----------
    results : {model label: {attack name: AttackResult}}
    bounds : {model label: (fpr, tpr_bound)}, optional
        The DP region's edge drawn with the model's curves.

    Examples
    --------
    >>> import numpy as np
    >>> from workbench.privacy.attacks import evaluate_scores
    >>> r = evaluate_scores(np.arange(4.0), is_member=[0, 0, 1, 1], name="loss")
    >>> type(attack_panel({"non-DP": {"loss": r}})).__name__
    'VBox'
    """
    import ipywidgets as w

    from workbench.plots.attacks import roc_figure

    if not results:
        raise ValueError("The 'results' parameter of attack_panel must hold at least one model's results.")
    labels = list(results)
    model = w.Dropdown(options=labels, value=labels[0], description="model")
    log = w.Checkbox(value=True, description="log-log axes")
    fig = w.Output()  # plotly's FigureWidget needs anywidget; an Output area redraws a plain figure instead
    table = w.HTML()

    def refresh(*_):
        src = roc_figure(results[model.value], log=log.value, title=f"ROC of the attacks on {model.value}")
        if bounds and model.value in bounds:
            import numpy as np

            fpr, tpr = (np.asarray(a, float) for a in bounds[model.value])
            if log.value:
                fpr, tpr = np.maximum(fpr, 1e-4), np.maximum(tpr, 1e-4)
            src.add_scatter(x=fpr, y=tpr, mode="lines", name="DP bound", line=dict(dash="dot", color="black"))
        _show(fig, src)
        rows = "".join(
            f"<tr><td>{name}</td><td>{r.auc:.3f}</td><td>{r.tpr_at[0.001]:.3f}</td><td>{r.tpr_at[0.01]:.3f}</td></tr>"
            for name, r in results[model.value].items()
        )
        table.value = f"<table><tr><th>attack</th><th>AUC</th><th>TPR@0.1%FPR</th><th>TPR@1%FPR</th></tr>{rows}</table>"

    model.observe(refresh, "value")
    log.observe(refresh, "value")
    refresh()
    return w.VBox([w.HBox([model, log]), fig, table])


def canary_panel(rows: Sequence[dict], *, max_exposure: float | None = None):
    """Repetitions slider + variant checkboxes over canary results.

    ``rows``: one dict per (variant, canary) with ``variant``, ``repetitions``, ``exposure``,
    ``extrapolated``, ``digit_accuracy``, ``extracted``, ``true``.

    Examples
    --------
    >>> rows = [{"variant": "non-DP", "repetitions": 1, "exposure": 2.0, "extrapolated": 2.1,
    ...          "digit_accuracy": 0.25, "extracted": "1234", "true": "1299"}]
    >>> type(canary_panel(rows, max_exposure=13.3)).__name__
    'VBox'
    """
    import ipywidgets as w

    from workbench.plots.attacks import exposure_figure

    if not rows:
        raise ValueError("The 'rows' parameter of canary_panel must not be empty.")
    variants = list(dict.fromkeys(r["variant"] for r in rows))
    reps = sorted({r["repetitions"] for r in rows})
    boxes = [w.Checkbox(value=True, description=v, indent=False) for v in variants]
    slider = w.SelectionSlider(options=reps, value=reps[-1], description="repetitions")
    fig = w.Output()
    detail = w.HTML()

    def refresh(*_):
        chosen = {b.description for b in boxes if b.value}
        src = exposure_figure([r for r in rows if r["variant"] in chosen], max_exposure=max_exposure)
        _show(fig, src)
        sel = [r for r in rows if r["repetitions"] == slider.value and r["variant"] in chosen]
        body = "".join(
            f"<tr><td>{r['variant']}</td><td>{r['exposure']:.2f}</td><td>{r['extrapolated']:.2f}</td>"
            f"<td>{r['true']}</td><td>{r['extracted']}</td><td>{r['digit_accuracy']:.2f}</td></tr>" for r in sel
        )
        detail.value = (f"<b>canary inserted {slider.value}x</b><table><tr><th>variant</th><th>exposure</th><th>extrapolated</th>"
                        f"<th>secret</th><th>extracted</th><th>digits right</th></tr>{body}</table>")

    for b in boxes:
        b.observe(refresh, "value")
    slider.observe(refresh, "value")
    refresh()
    return w.VBox([w.HBox(boxes), slider, fig, detail])
