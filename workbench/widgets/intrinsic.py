"""Interactive panel of the intrinsic bias study (notebook 04): pick a test, an encoder and a layer; see the
CEAT forest plot, the numbers of the meta-analysis, and how many contexts each of the test's words had."""
from __future__ import annotations

import html
from typing import Mapping

import ipywidgets as widgets
import pandas as pd
from IPython.display import HTML

from ..plots.intrinsic import forest_figure
from ..validation import Interval, check
from ._display import show as show_in

__all__ = ["intrinsic_panel", "result_summary_html"]


def result_summary_html(result) -> str:
    """One line of HTML with a CEAT result's numbers (no computation).

    Examples
    --------
    >>> from workbench.fairness.association import ceat_from_pools
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> r = ceat_from_pools(*[[rng.normal(size=(3, 4)) for _ in range(3)] for _ in range(4)], n_samples=20, test="T")
    >>> "tau" in result_summary_html(r)
    True
    """
    m = result.meta
    return (
        f"<b>{html.escape(str(result.test))}</b> · {html.escape(str(result.encoder))} · layer {result.layer}: "
        f"combined d = <b>{m.effect:+.3f}</b> (95% CI {m.ci_low:+.3f} to {m.ci_high:+.3f}), SE {m.se:.4f}, "
        f"one-sided p = {m.p_value:.3g}; Q = {m.q:.1f} (df {m.df}), tau² = {m.tau2:.4f}, I² = {m.i2:.3f}; "
        f"N = {result.n_samples} samples"
    )


def intrinsic_panel(results: Mapping[tuple[str, str, int], object], *, counts: pd.DataFrame | None = None,
                    tests: Mapping[str, object] | None = None, max_rows: int = 30) -> widgets.Widget:
    """Dropdowns for test, encoder and layer over precomputed CEAT results.

    Parameters
    ----------
    results : mapping (test, encoder, layer) -> CeatResult
        Computed beforehand (the panel only displays; it never encodes).
    counts : pandas.DataFrame, optional
        ``Contexts.counts()`` (index = word): shown for the selected test's words, fewest first.
    tests : mapping name -> WeatTest, optional
        To show the word sets of the selected test.
    max_rows : int
        Samples shown in the forest plot.

    Returns
    -------
    ipywidgets.VBox
        Controls on top, an output area below; it is filled once on creation, so batch runs show the
        first combination without waiting for input.
    """
    if not results:
        raise ValueError("The 'results' parameter of intrinsic_panel must hold at least one (test, encoder, layer) result.")
    max_rows = check(max_rows, Interval(int, 1, None), name="max_rows", owner="intrinsic_panel")
    keys = list(results)
    test = widgets.Dropdown(options=list(dict.fromkeys(k[0] for k in keys)), value=keys[0][0], description="test")
    encoder = widgets.Dropdown(options=list(dict.fromkeys(k[1] for k in keys)), value=keys[0][1], description="encoder")
    layer = widgets.Dropdown(options=sorted({k[2] for k in keys if k[1] == keys[0][1]}), value=keys[0][2], description="layer")
    out = widgets.Output()

    def sync_layers(_=None):
        options = sorted({k[2] for k in keys if k[0] == test.value and k[1] == encoder.value})
        if options and list(layer.options) != options:
            layer.options = options
            layer.value = options[-1]

    def show(_=None):
        key = (test.value, encoder.value, layer.value)
        if key not in results:
            show_in(out, f"No result for test {key[0]}, encoder {key[1]}, layer {key[2]}.")
            return
        r = results[key]
        items = [HTML(result_summary_html(r)), forest_figure(r, max_rows=max_rows)]
        if tests is not None and key[0] in tests:
            t = tests[key[0]]
            items.append(HTML("<br>".join(
                f"<b>{name}</b> ({html.escape(set_name)}): {html.escape(', '.join(words))}"
                for name, set_name, words in zip("XYAB", t.set_names, (t.X, t.Y, t.A, t.B)))))
        if counts is not None:
            words = list(r.contexts_per_word)
            items.append(counts.reindex([w for w in words if w in counts.index]).sort_values("n_contexts").head(15))
        show_in(out, *items)

    def on_change(change):
        if change["owner"] is not layer:
            sync_layers()
        show()

    for w in (test, encoder, layer):
        w.observe(on_change, names="value")
    sync_layers()
    show()
    return widgets.VBox([widgets.HBox([test, encoder, layer]), out])
