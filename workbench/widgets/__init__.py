"""ipywidgets panels that compose computation (the study modules) with figures (``workbench.plots``).

One module per study; each exposes functions returning a displayable widget.
"""
