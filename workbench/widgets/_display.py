"""Put figures and tables into an ``ipywidgets.Output`` without output capture.

``with out: clear_output(); display(x)`` relies on a front end to route the captured messages; under papermill
(no front end) nbclient emulates it and batch runs were seen to hang at times. Setting the widget's ``outputs``
state directly works the same in JupyterLab and in batch.
"""
from __future__ import annotations

import json

__all__ = ["show"]


def _output(item) -> dict:
    if hasattr(item, "to_plotly_json"):  # plotly figures: their mime bundle (they have no plain repr)
        title = getattr(getattr(item.layout, "title", None), "text", None) or "figure"
        data = {"application/vnd.plotly.v1+json": json.loads(item.to_json()), "text/plain": f"<plotly figure: {title}>"}
        return {"output_type": "display_data", "data": data, "metadata": {}}
    if isinstance(item, str):
        return {"output_type": "stream", "name": "stdout", "text": item if item.endswith("\n") else item + "\n"}
    from IPython.core.formatters import format_display_data

    data, metadata = format_display_data(item)
    return {"output_type": "display_data", "data": data, "metadata": metadata}


def show(out, *items) -> None:
    """Replace the contents of ``out`` (an ``ipywidgets.Output``) with ``items``.

    Items may be plotly figures, anything IPython can display (DataFrames, ``IPython.display.HTML``...) or text.

    Examples
    --------
    >>> import ipywidgets, plotly.graph_objects as go
    >>> out = ipywidgets.Output()
    >>> show(out, go.Figure(layout_title_text="t"), "done")
    >>> [o["output_type"] for o in out.outputs]
    ['display_data', 'stream']
    >>> show(out)
    >>> out.outputs
    ()
    """
    out.outputs = tuple(_output(item) for item in items)
