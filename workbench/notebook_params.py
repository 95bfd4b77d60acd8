"""Check notebook parameter values before anything runs: against each parameter's default and declared range.

A value passed with ``-p`` or from a grid must have the type of the parameter's default in the notebook's
``parameters`` cell (an ``int`` default takes ints, a ``float`` default any finite-or-infinite number, a ``bool``
default ``true``/``false``, a ``str`` default text, a list default a list whose items have the default items'
type; a ``None`` default takes anything). On top of that a notebook may declare ranges in its metadata, next to
its smoke parameters::

    nb.metadata["workbench"]["parameter_ranges"] = {
        "N_IMAGES": {"min": 1},                        # an int >= 1
        "EPOCH_SCALE": {"min": 0, "exclusive": True},  # a float > 0 ("exclusive": true excludes both bounds,
                                                       #  "min" or "max" only that one)
        "DELTA": {"min": 0, "max": 1, "exclusive": "min"},
        "ENGINE": {"options": ["fast", "opacus-ghost", "opacus-hooks"]},
    }

For a list parameter (``EPSILONS = [1.0, 8.0]``) the range applies to every item. Where the default does not show
the type (``HIDDEN = []``, ``LIMIT = None``), ``"type"`` names it: ``{"type": "int", "min": 1}`` (``"int"``,
``"float"``, ``"str"`` or ``"bool"``; for a list, the type of each item). ``"min_len": 1`` makes a list parameter
non-empty (``EPSILONS = []`` would leave nothing to run). A ``None`` default also takes ``None``, and
``"optional": true`` lets a parameter with another default take ``None`` too (``MAX_STEPS = 20``, where ``None``
means no cap). A dict parameter (``DATA = {"alpha": 0.5, "topics": True}``) takes a dict with some of its default's
keys (the rest keep their defaults in the notebook), each value of its default value's type; ``"keys"`` declares
ranges for them: ``{"keys": {"alpha": {"min": 0, "exclusive": True}}}``. An unknown key is an error naming the
accepted ones. A range for a name the parameters cell does not define is an error (a typo would otherwise check
nothing). A failing value raises :class:`~workbench.validation.InvalidParameterError` naming the parameter, the
notebook and what it accepts. :func:`check_notebook_metadata` checks a notebook's own defaults and smoke parameters
against its ranges (the test suite runs it on every shipped notebook).

Examples
--------
>>> defaults = {"N_IMAGES": "24", "SIZE": '"full"', "EPSILONS": "[0.5, 8.0]", "OUTPUT_DIR": "None"}
>>> check_values({"N_IMAGES": 3, "EPSILONS": [1, 2.5]}, defaults=defaults, ranges={"N_IMAGES": {"min": 1}},
...              notebook="00_data_tour")
{'N_IMAGES': 3, 'EPSILONS': [1.0, 2.5]}
>>> check_values({"N_IMAGES": -3}, defaults=defaults, ranges={"N_IMAGES": {"min": 1}}, notebook="00_data_tour")
Traceback (most recent call last):
...
workbench.validation.InvalidParameterError: The 'N_IMAGES' parameter of notebook 00_data_tour must be an int >= 1. Got -3 instead.
>>> check_values({"N_IMAGES": "abc"}, defaults=defaults, ranges={}, notebook="00_data_tour")
Traceback (most recent call last):
...
workbench.validation.InvalidParameterError: The 'N_IMAGES' parameter of notebook 00_data_tour must be an int. Got 'abc' instead.
>>> check_values({"HIDDEN": [64, 1.5]}, defaults={"HIDDEN": "[]"}, ranges={"HIDDEN": {"type": "int", "min": 1}},
...              notebook="05_extrinsic_bias")
Traceback (most recent call last):
...
workbench.validation.InvalidParameterError: The 'HIDDEN' parameter of notebook 05_extrinsic_bias must be a list or tuple of an int >= 1. Got [64, 1.5] instead.
"""
from __future__ import annotations

import ast
import math
import re
from typing import Any, Mapping

from .validation import Boolean, InstanceOf, Interval, InvalidParameterError, Options, Seq, check

__all__ = ["RANGE_KEYS", "RANGE_TYPES", "check_values", "check_ranges_spec", "check_notebook_metadata", "constraint_for"]

#: The keys a ``parameter_ranges`` entry may hold.
RANGE_KEYS = ("min", "max", "exclusive", "options", "type", "min_len", "optional", "keys")
#: The values of a range's ``"type"`` key, each with a sample value of that type.
RANGE_TYPES = {"int": 0, "float": 0.0, "str": "", "bool": False}
_NUMBER = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$|^[+-]?(inf|infinity|nan)$", re.IGNORECASE)


def _default_value(text: str | None) -> Any:
    """The Python value of a default written in the parameters cell (``...`` when it is not a literal)."""
    if text is None:
        return None
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return ...


def _as_number(value: Any) -> Any:
    """Text that spells a number (``"1e-5"``, as a caller of the Python API may pass it; the runner's YAML already
    reads it as a number) becomes that number."""
    if isinstance(value, str) and _NUMBER.match(value.strip()):
        number = float(value)
        return int(number) if re.fullmatch(r"[+-]?\d+", value.strip()) else number
    return value


def _interval(kind, spec: Mapping[str, Any]) -> Interval:
    exclusive = spec.get("exclusive", False)
    lo_open = exclusive is True or exclusive in ("min", "both")
    hi_open = exclusive is True or exclusive in ("max", "both")
    closed = {(False, False): "both", (False, True): "left", (True, False): "right", (True, True): "neither"}[(lo_open, hi_open)]
    return Interval(kind, spec.get("min"), spec.get("max"), closed=closed, allow_inf=kind is float)


def constraint_for(default: Any, spec: Mapping[str, Any] | None = None):
    """The constraint a value must meet, from the parameter's default value and its declared range (or ``None``
    when anything goes)."""
    spec = dict(spec or {})
    spec.pop("optional", None)  # None is allowed by check_values, not by the constraint
    min_len = spec.pop("min_len", 0)
    if "type" in spec:  # the declared type stands in for the default's (an empty list or None shows none)
        sample = RANGE_TYPES[spec.pop("type")]
        default = [sample] if isinstance(default, (list, tuple)) else sample
    if isinstance(default, (list, tuple)):
        kinds = {type(v) for v in default}
        if "options" in spec or kinds == {int, float}:
            inner = Options(tuple(spec["options"])) if "options" in spec else _interval(float, spec)
        elif len(kinds) == 1 and kinds <= {int, float, str, bool}:
            inner = constraint_for(default[0], spec)
        elif spec.get("min") is not None or spec.get("max") is not None:
            inner = _interval(float, spec)
        else:
            return InstanceOf(list, tuple)
        return Seq(inner, min_len=min_len)
    if "options" in spec:
        item = Options(tuple(spec["options"]))
    elif isinstance(default, bool):
        item = Boolean()
    elif isinstance(default, int):
        item = _interval(int, spec)
    elif isinstance(default, float):
        item = _interval(float, spec)
    elif isinstance(default, str):
        item = InstanceOf(str)
    elif isinstance(default, dict):
        item = InstanceOf(dict)
    elif spec.get("min") is not None or spec.get("max") is not None:  # a None default with a range: a number
        item = _interval(float, spec)
    else:
        return None
    return item


def check_ranges_spec(ranges: Any, *, notebook: str) -> dict[str, dict]:
    """Validate a notebook's ``parameter_ranges`` metadata itself (a mapping of names to range mappings)."""
    if ranges in (None, {}):
        return {}
    if not isinstance(ranges, Mapping):
        raise InvalidParameterError(f"The 'parameter_ranges' metadata of notebook {notebook} must map parameter names "
                                    f"to ranges like {{'N': {{'min': 1}}}}. Got {ranges!r} instead.")
    for name, spec in ranges.items():
        if not isinstance(spec, Mapping) or set(spec) - set(RANGE_KEYS):
            raise InvalidParameterError(f"The range of {name!r} in notebook {notebook}'s 'parameter_ranges' metadata "
                                        f"may only hold the keys {RANGE_KEYS}. Got {spec!r} instead.")
        if "type" in spec and spec["type"] not in RANGE_TYPES:
            raise InvalidParameterError(f"'type' in the range of {name!r} (notebook {notebook}) must be one of "
                                        f"{tuple(RANGE_TYPES)}. Got {spec['type']!r} instead.")
        if spec.get("min_len", 0) is True or not isinstance(spec.get("min_len", 0), int) or spec.get("min_len", 0) < 0:
            raise InvalidParameterError(f"'min_len' in the range of {name!r} (notebook {notebook}) must be an int >= 0. "
                                        f"Got {spec.get('min_len')!r} instead.")
        if spec.get("optional", False) not in (True, False):
            raise InvalidParameterError(f"'optional' in the range of {name!r} (notebook {notebook}) must be true or false. "
                                        f"Got {spec.get('optional')!r} instead.")
        if spec.get("exclusive", False) not in (True, False, "min", "max", "both"):
            raise InvalidParameterError(f"'exclusive' in the range of {name!r} (notebook {notebook}) must be true, false, "
                                        f"'min', 'max' or 'both'. Got {spec.get('exclusive')!r} instead.")
        if "keys" in spec:
            if not isinstance(spec["keys"], Mapping):
                raise InvalidParameterError(f"'keys' in the range of {name!r} (notebook {notebook}) must map the dict's keys "
                                            f"to ranges like {{'alpha': {{'min': 0}}}}. Got {spec['keys']!r} instead.")
            check_ranges_spec({f"{name}[{k!r}]": v for k, v in spec["keys"].items()}, notebook=notebook)
    return {str(k): dict(v) for k, v in ranges.items()}


def check_values(values: Mapping[str, Any], *, defaults: Mapping[str, str | None], ranges: Mapping[str, Any] | None,
                 notebook: str) -> dict[str, Any]:
    """Check each value against its parameter's default type and declared range; return the values normalised
    (number-like text as numbers, ints as floats where the default is a float, tuples as lists).

    Parameters
    ----------
    values : mapping
        Parameter name -> value to check (names are assumed known: unknown names are rejected earlier).
    defaults : mapping
        Parameter name -> default as written in the ``parameters`` cell (papermill's inspection).
    ranges : mapping, optional
        The notebook's ``parameter_ranges`` metadata.
    notebook : str
        The notebook's name, for messages.
    """
    ranges = check_ranges_spec(ranges, notebook=notebook)
    undeclared = sorted(set(ranges) - set(defaults))
    if undeclared:
        raise InvalidParameterError(f"Notebook {notebook} declares parameter_ranges for {undeclared}, which its parameters "
                                    f"cell does not define; its parameters are {sorted(defaults)}.")
    for name, spec in ranges.items():
        default = _default_value(defaults.get(name))
        extra = sorted(set(spec.get("keys") or {}) - set(default)) if isinstance(default, dict) else []
        if spec.get("keys") and not isinstance(default, dict) or extra:
            raise InvalidParameterError(f"Notebook {notebook} declares key ranges for {name!r} {extra or ''}, which its "
                                        "parameters cell does not define as keys of a dict literal.")
    return {name: _check_value(name, value, default=_default_value(defaults.get(name)), spec=ranges.get(name, {}),
                               notebook=notebook) for name, value in values.items()}


def _check_value(name: str, value: Any, *, default: Any, spec: Mapping[str, Any], notebook: str) -> Any:
    """One value against its default's type and its range (a dict's keys one by one); the value normalised."""
    constraint = constraint_for(default, {k: v for k, v in spec.items() if k != "keys"}) if default is not ... else None
    if constraint is None:
        return value
    optional = default is None or bool(spec.get("optional", False))
    numeric = isinstance(constraint.item if isinstance(constraint, Seq) else constraint, Interval)
    candidate = value
    if numeric:  # number-like text ("1e-5") counts as the number it spells
        candidate = [_as_number(v) for v in value] if isinstance(value, (list, tuple)) else _as_number(value)
    alternatives = (constraint, None) if optional else (constraint,)
    checked = check(candidate, *alternatives, name=name, owner=f"notebook {notebook}")
    if isinstance(checked, float) and math.isnan(checked):  # pragma: no cover - Interval never passes NaN
        raise InvalidParameterError(f"The {name!r} parameter of notebook {notebook} must not be NaN.")
    if isinstance(default, dict) and isinstance(checked, dict):  # a partial dict: known keys, each value checked
        if set(checked) - set(default):
            raise InvalidParameterError(f"The {name!r} parameter of notebook {notebook} must be a dict with keys among "
                                        f"{sorted(default)}. Got {checked!r} instead.")
        keys = spec.get("keys") or {}
        return {k: _check_value(f"{name}[{k!r}]", v, default=default[k], spec=keys.get(k, {}), notebook=notebook)
                for k, v in checked.items()}
    return list(checked) if isinstance(checked, tuple) else checked


def check_notebook_metadata(*, defaults: Mapping[str, str | None], ranges: Mapping[str, Any] | None,
                            smoke: Mapping[str, Any] | None, notebook: str) -> None:
    """Check that a notebook's declared ranges accept its own defaults and smoke parameters.

    Raises :class:`~workbench.validation.InvalidParameterError` when a range is malformed or names an undefined
    parameter, when a smoke parameter is not defined in the parameters cell, or when a default (a literal in the
    parameters cell) or a smoke value is outside its range.

    Examples
    --------
    >>> check_notebook_metadata(defaults={"N": "24", "OUTPUT_DIR": "None"}, ranges={"N": {"min": 1}},
    ...                         smoke={"N": 2}, notebook="00_data_tour")
    >>> check_notebook_metadata(defaults={"N": "0"}, ranges={"N": {"min": 1}}, smoke={}, notebook="00_data_tour")
    Traceback (most recent call last):
    ...
    workbench.validation.InvalidParameterError: The 'N' parameter of notebook 00_data_tour must be an int >= 1. Got 0 instead.
    """
    smoke = dict(smoke or {})
    unknown = sorted(set(smoke) - set(defaults))
    if unknown:
        raise InvalidParameterError(f"Notebook {notebook}'s smoke_parameters set {unknown}, which its parameters cell does "
                                    f"not define; its parameters are {sorted(defaults)}.")
    literal = {name: value for name, value in ((n, _default_value(t)) for n, t in defaults.items()) if value is not ...}
    check_values(literal, defaults=defaults, ranges=ranges, notebook=notebook)
    check_values(smoke, defaults=defaults, ranges=ranges, notebook=notebook)
