"""The labels that name a model in every study table: :data:`NON_DP` and ``eps=<epsilon>``."""
from __future__ import annotations

#: Label of the model trained without DP in every study table.
NON_DP = "non-DP"


def _epsilon_label(epsilon: float) -> str:
    return f"eps={epsilon:g}"
