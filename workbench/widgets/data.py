"""An interactive browser for the data tour: pick a class, see examples of it."""
from __future__ import annotations

import ipywidgets as widgets
import numpy as np

from ..plots.data import image_grid_figure
from ._display import show as show_in

__all__ = ["image_browser"]


def image_browser(data, *, n: int = 16, seed: int = 0) -> widgets.Widget:
    """A class dropdown and a grid of ``n`` random images of the chosen class from an ImageData."""
    rng = np.random.default_rng(seed)
    choose = widgets.Dropdown(options=[(name, i) for i, name in enumerate(data.classes)], description="class")
    out = widgets.Output()

    def show(_=None):
        rows = np.flatnonzero(data.labels == choose.value)
        pick = rng.choice(rows, size=min(n, rows.size), replace=False)
        show_in(out, image_grid_figure(data.images[pick], data.labels[pick], data.classes,
                                       title=f"{data.classes[choose.value]}: {rows.size} images"))

    choose.observe(show, names="value")
    show()
    return widgets.VBox([choose, out])
