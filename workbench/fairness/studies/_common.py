"""Helpers shared by the fairness study modules."""
from __future__ import annotations

import dataclasses

import pandas as pd


def config_parameters(config) -> dict:
    """A study config's fields under the notebook's parameter names (upper case), tuples as lists.

    Examples
    --------
    >>> @dataclasses.dataclass(frozen=True)
    ... class C:
    ...     layers: tuple = (2, 4)
    ...     seed: int = 0
    >>> config_parameters(C())
    {'LAYERS': [2, 4], 'SEED': 0}
    """
    return {f.name.upper(): (list(v) if isinstance(v, tuple) else v)
            for f in dataclasses.fields(config) for v in [getattr(config, f.name)]}


def word_sets_table(tests) -> pd.DataFrame:
    """One row per WEAT test: the names of its four word sets, their sizes and an example of each.

    Examples
    --------
    >>> from workbench.datasets import load_weat_tests
    >>> word_sets_table(load_weat_tests(["C1"])).loc["C1", ["X", "A", "sizes"]].tolist()
    ['flowers', 'pleasant_5', '25/25/25/25']
    """
    return pd.DataFrame([
        {"test": t.name, "X": t.set_names[0], "Y": t.set_names[1], "A": t.set_names[2], "B": t.set_names[3],
         "sizes": f"{len(t.X)}/{len(t.Y)}/{len(t.A)}/{len(t.B)}", "example": f"{t.X[0]} / {t.Y[0]} ~ {t.A[0]} / {t.B[0]}"}
        for t in tests.values()]).set_index("test")
