"""Trustworthy ML Workbench: privacy, federated learning, fairness and model-update studies.

The package is organised by study (``privacy``, ``federated``, ``fairness``, ``compatibility``) on top
of a shared data layer (``datasets``), training loop (``training``), run records (``results``) and a
papermill batch runner (``batch``). Importing ``workbench`` is light: torch, transformers and plotly
load only when a submodule that needs them is imported.

Examples
--------
>>> import workbench
>>> workbench.__version__
'0.1.0'
"""
from importlib import import_module as _import_module

__version__ = "0.1.0"

# Curated public names, resolved lazily so `import workbench` stays fast.
_LAZY = {
    "save_record": "workbench.results",
    "load_record": "workbench.results",
    "collect": "workbench.results",
    "save_figure": "workbench.results",
    "TrainConfig": "workbench.training",
    "fit": "workbench.training",
    "evaluate": "workbench.training",
    "run_notebooks": "workbench.batch",
    "expand_grid": "workbench.batch",
}
__all__ = sorted(_LAZY) + ["__version__"]


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(_import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'workbench' has no attribute {name!r}")


def __dir__():
    return __all__
