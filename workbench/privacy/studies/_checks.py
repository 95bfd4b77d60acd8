"""Validation helpers of the study configs and functions: each raises a ``ValueError`` naming the owner, the
parameter and the accepted values."""
from __future__ import annotations

import math

import numpy as np


def _int_at_least(owner: str, name: str, value, low: int) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
        raise ValueError(f"The '{name}' parameter of {owner} must be an int >= {low}. Got {value!r} instead.")


def _positive(owner: str, name: str, value) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
        raise ValueError(f"The '{name}' parameter of {owner} must be a finite number > 0. Got {value!r} instead.")


def _in_open_unit(owner: str, name: str, value) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < 1:
        raise ValueError(f"The '{name}' parameter of {owner} must be in (0, 1). Got {value!r} instead.")
