"""Validation shorthands kept for :mod:`.training` (notebook 01's study, which still calls them): each is one
:func:`workbench.validation.check`, so the messages follow the one wording. New code calls ``check`` directly."""
from __future__ import annotations

from workbench.validation import Interval, check


def _int_at_least(owner: str, name: str, value, low: int) -> int:
    return check(value, Interval(int, low, None), name=name, owner=owner)


def _positive(owner: str, name: str, value) -> float:
    return check(value, Interval(float, 0, None, closed="neither"), name=name, owner=owner)


def _in_open_unit(owner: str, name: str, value) -> float:
    return check(value, Interval(float, 0, 1, closed="neither"), name=name, owner=owner)
