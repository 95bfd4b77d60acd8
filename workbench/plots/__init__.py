"""Plotly figure builders: data in, ``go.Figure`` out. No computation, no widgets.

One module per study (``plots.privacy``, ``plots.federated``, ...) plus shared builders in
``plots.common``.
"""
