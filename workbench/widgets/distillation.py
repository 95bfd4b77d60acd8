"""Interactive panel of the counterfactual-distillation study: pick a prompt pair (and a gap measure) and see the
five models' continuations side by side, with the gap figure. Panels only compose: the generations come from
:func:`workbench.distillation.distillation_study`, the figures from :mod:`workbench.plots.distillation`; building
the panel computes nothing, so notebooks run in batch."""
from __future__ import annotations

import pandas as pd

__all__ = ["continuations_panel"]


def continuations_panel(generations: pd.DataFrame, gaps: pd.DataFrame, *, pair_id: int = 0):
    """Dropdowns for the prompt pair and the gap measure; the continuations table and the gap figure below.

    Returns
    -------
    ipywidgets.VBox
        ``.children``: the controls row, the table output and the figure output (the tests drive the dropdowns).
    """
    import ipywidgets as w
    from IPython.display import HTML

    from ..plots.distillation import MEASURE_LABELS, continuations_html, gap_figure
    from ._display import show

    pairs = generations.drop_duplicates("pair_id").sort_values("pair_id")
    options = [(f"{p.pair_id}: {p.profession}", int(p.pair_id)) for p in pairs.itertuples()]
    if pair_id not in {v for _, v in options}:
        raise ValueError(f"The 'pair_id' parameter of continuations_panel must be one of {[v for _, v in options]}. Got {pair_id!r} instead.")
    pick = w.Dropdown(options=options, value=pair_id, description="prompt pair")
    measure = w.Dropdown(options=[(v, k) for k, v in MEASURE_LABELS.items() if k in set(gaps["measure"])],
                         value="sentiment_gap", description="gap", layout=w.Layout(width="420px"))
    table, figure = w.Output(), w.Output()

    def redraw_table(_=None):
        show(table, HTML(continuations_html(generations, pair_id=pick.value)))

    def redraw_figure(_=None):
        show(figure, gap_figure(gaps, measure=measure.value))

    pick.observe(redraw_table, names="value")
    measure.observe(redraw_figure, names="value")
    redraw_table()
    redraw_figure()
    return w.VBox([w.HBox([pick, measure]), table, figure])
