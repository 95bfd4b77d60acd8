"""Interactive panel of the extrinsic bias study: pick a layer and a training variant, see the
prediction-sensitivity vs counterfactual-gap scatter and the most sensitive examples."""
from __future__ import annotations

import html
from typing import Mapping

import ipywidgets as widgets
import pandas as pd
from IPython.display import HTML

from ..plots.extrinsic import pair_gap_figure, sensitivity_scatter
from ..validation import Interval, check
from ._display import show as show_in

__all__ = ["extrinsic_panel", "top_examples"]

_VIEWS = {
    "gender pairs": ("gender_pairs", "female_sentence", "male_sentence", "female - male"),
    "race pairs (names)": ("race_pairs", "african_american_sentence", "european_american_sentence", "African American - European American"),
}


def top_examples(pairs: pd.DataFrame, *, by: str = "sensitivity", n: int = 10, a: str = "female_sentence",
                 b: str = "male_sentence") -> pd.DataFrame:
    """The ``n`` pairs with the largest ``by`` (no computation beyond sorting), as a display table.

    Examples
    --------
    >>> p = pd.DataFrame({"female_sentence": ["a", "b"], "male_sentence": ["c", "d"], "gap": [0.1, -0.3],
    ...                   "abs_gap": [0.1, 0.3], "sensitivity": [0.2, 0.1]})
    >>> top_examples(p, n=1)["female_sentence"].tolist()
    ['a']
    """
    cols = [c for c in (a, b, "gap", "abs_gap", "sensitivity") if c in pairs.columns]
    return pairs.sort_values(by, ascending=False).head(n)[cols].reset_index(drop=True)


def extrinsic_panel(audits: Mapping[tuple[int, str], object], *, n_top: int = 10) -> widgets.Widget:
    """Dropdowns for layer, training variant and pair kind; a scatter of prediction sensitivity against the
    counterfactual gap, the gap distribution, and a table of the most sensitive pairs.

    Parameters
    ----------
    audits : mapping (layer, variant) -> :class:`workbench.fairness.classifier.CorpusAudit`
        Precomputed audits (the panel only displays; it never trains or encodes).
    n_top : int
        Rows in the table of most sensitive examples.
    """
    if not audits:
        raise ValueError("The 'audits' parameter of extrinsic_panel must hold at least one (layer, variant) audit.")
    n_top = check(n_top, Interval(int, 1, None), name="n_top", owner="extrinsic_panel")
    keys = list(audits)
    layer = widgets.Dropdown(options=sorted({k[0] for k in keys}), value=keys[-1][0], description="layer")
    variant = widgets.Dropdown(options=list(dict.fromkeys(k[1] for k in keys)), value=keys[-1][1], description="variant")
    view = widgets.Dropdown(options=list(_VIEWS), value="gender pairs", description="pairs")
    rank = widgets.Dropdown(options=[("prediction sensitivity", "sensitivity"), ("counterfactual |gap|", "abs_gap")],
                            value="sensitivity", description="rank by")
    out = widgets.Output()

    def render() -> list:
        key = (layer.value, variant.value)
        if key not in audits:
            return [HTML(f"No audit for layer {key[0]} / variant {html.escape(str(key[1]))}.")]
        attr, a, b, label = _VIEWS[view.value]
        pairs = getattr(audits[key], attr)
        if pairs is None or len(pairs) == 0:
            return [HTML("No pairs of this kind in the corpus sample.")]
        m = audits[key].metrics
        summary = HTML(
            f"<b>layer {key[0]}, {html.escape(str(key[1]))}</b>: mean gap {m.get('gender_gap', float('nan')):+.4f} (gender), "
            f"CTF {m.get('gender_ctf', float('nan')):.4f}, APS {m.get('aps', float('nan')):.4f}, "
            f"Spearman(PS, |gap|) {m.get('ps_vs_cf_spearman', float('nan')):.3f}")
        frame = pairs.assign(pair=pairs[a].astype(str) + " | " + pairs[b].astype(str))
        return [summary,
                sensitivity_scatter(frame, text="pair", color="emotion",
                                    title=f"Prediction sensitivity vs counterfactual gap ({label})"),
                pair_gap_figure(pairs, label=label),
                top_examples(pairs, by=rank.value, n=n_top, a=a, b=b)]

    def show(_=None):
        show_in(out, *render())

    for w in (layer, variant, view, rank):
        w.observe(show, names="value")
    show()
    return widgets.VBox([widgets.HBox([layer, variant]), widgets.HBox([view, rank]), out])
