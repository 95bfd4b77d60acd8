"""One place for parameter validation: declarative constraints, one message wording everywhere.

In the spirit of scikit-learn's ``Interval`` / ``StrOptions``: a config or a public function states what each
parameter accepts, and :func:`check` (one value) or :func:`check_fields` (every field of a frozen dataclass)
enforces it. NumPy integers and floats are accepted wherever Python ones are, and come back as Python
``int`` / ``float`` so records and hashes never see ``np.int64``. Every failure raises
:class:`InvalidParameterError` (a ``ValueError`` *and* a ``TypeError``) worded as

    The 'epochs' parameter of TrainConfig must be an int >= 1. Got 0 instead.

Constraints
-----------
``Interval(int | float, low, high, closed=...)``  a number in a range (``None`` = unbounded; floats must be
                                                  finite unless ``allow_inf=True``; NaN never passes)
``Options({...})``                               one of a fixed set of values (strings, numbers, ...)
``Boolean()``                                    ``True`` / ``False`` (NumPy booleans too)
``InstanceOf(type, ...)``                        an instance of the given types
``Seq(constraint, min_len=..., kind=...)``       a list/tuple whose every item meets ``constraint``
``Callable()``                                   anything callable
``None``                                         ``None`` itself (list it to make a parameter optional)

Several constraints for one parameter mean "any of these".

Examples
--------
>>> from dataclasses import dataclass
>>> @dataclass(frozen=True)
... class Cfg:
...     epochs: int = 3
...     lr: float = 0.1
...     optimizer: str = "adam"
...     def __post_init__(self):
...         check_fields(self, epochs=Interval(int, 1, None), lr=Interval(float, 0, None, closed="neither"),
...                      optimizer=Options({"adam", "sgd"}))
>>> import numpy as np
>>> Cfg(epochs=np.int64(2)).epochs, type(Cfg(epochs=np.int64(2)).epochs).__name__
(2, 'int')
>>> Cfg(lr=-1)
Traceback (most recent call last):
...
workbench.validation.InvalidParameterError: The 'lr' parameter of Cfg must be a float > 0. Got -1 instead.
>>> check("abc", Interval(int, 0, None), name="n_rows", owner="load_tweets")
Traceback (most recent call last):
...
workbench.validation.InvalidParameterError: The 'n_rows' parameter of load_tweets must be an int >= 0. Got 'abc' instead.
"""
from __future__ import annotations

import dataclasses
import math
import numbers
from typing import Any, Iterable, Mapping

import numpy as np

__all__ = [
    "Because",
    "InvalidParameterError",
    "Interval",
    "Options",
    "Boolean",
    "InstanceOf",
    "Seq",
    "Callable",
    "check",
    "check_fields",
    "field_defaults",
    "fill_group",
    "fill_groups",
]


class InvalidParameterError(ValueError, TypeError):
    """A parameter failed its constraint. Subclasses both ``ValueError`` and ``TypeError``, so callers may
    catch either."""


def _fmt(x) -> str:
    if isinstance(x, float) and x.is_integer() and abs(x) < 1e15:
        return repr(x)
    return repr(x) if isinstance(x, str) else str(x)


class _Constraint:
    def accepts(self, value) -> bool:  # pragma: no cover - interface
        raise NotImplementedError

    def normalize(self, value):
        return value

    def describe(self) -> str:  # pragma: no cover - interface
        raise NotImplementedError


class Interval(_Constraint):
    """A real or integral number in a range.

    Parameters
    ----------
    kind : {int, float}
        ``int`` accepts Python and NumPy integers (not booleans); ``float`` accepts any real number (ints
        included) and returns a Python ``float``.
    low, high : float or None
        Bounds; ``None`` leaves that side open-ended.
    closed : {"both", "left", "right", "neither"}
        Which bounds are included.
    allow_inf : bool
        Whether ``inf`` is accepted for floats (never NaN).

    Examples
    --------
    >>> Interval(float, 0, 1, closed="neither").describe()
    'a float in (0, 1)'
    >>> Interval(int, 1, None).accepts(True)
    False
    """

    def __init__(self, kind, low=None, high=None, *, closed: str = "both", allow_inf: bool = False):
        if kind not in (int, float):
            raise ValueError(f"The 'kind' parameter of Interval must be int or float. Got {kind!r} instead.")
        if closed not in ("both", "left", "right", "neither"):
            raise ValueError(f"The 'closed' parameter of Interval must be one of ('both', 'left', 'right', 'neither'). Got {closed!r} instead.")
        self.kind, self.low, self.high, self.closed, self.allow_inf = kind, low, high, closed, allow_inf

    def _is_number(self, value) -> bool:
        if isinstance(value, (bool, np.bool_)):
            return False
        if self.kind is int:
            return isinstance(value, (numbers.Integral, np.integer))
        return isinstance(value, (numbers.Real, np.integer, np.floating))

    def accepts(self, value) -> bool:
        if not self._is_number(value):
            return False
        v = float(value)
        if math.isnan(v) or (math.isinf(v) and not (self.kind is float and self.allow_inf)):
            return False
        lo_ok = self.low is None or (v >= self.low if self.closed in ("both", "left") else v > self.low)
        hi_ok = self.high is None or (v <= self.high if self.closed in ("both", "right") else v < self.high)
        return lo_ok and hi_ok

    def normalize(self, value):
        return int(value) if self.kind is int else float(value)

    def describe(self) -> str:
        name = "an int" if self.kind is int else "a float"
        low_in = self.closed in ("both", "left")
        high_in = self.closed in ("both", "right")
        if self.low is None and self.high is None:
            return name + ("" if self.kind is int or not self.allow_inf else " (inf allowed)")
        if self.high is None:
            return f"{name} {'>=' if low_in else '>'} {_fmt(self.low)}"
        if self.low is None:
            return f"{name} {'<=' if high_in else '<'} {_fmt(self.high)}"
        return f"{name} in {'[' if low_in else '('}{_fmt(self.low)}, {_fmt(self.high)}{']' if high_in else ')'}"


class Options(_Constraint):
    """One of a fixed set of values.

    Examples
    --------
    >>> Options({"sgd", "adam"}).describe()
    "one of ('adam', 'sgd')"
    """

    def __init__(self, values: Iterable):
        self.values = tuple(sorted(values, key=repr)) if not isinstance(values, tuple) else values

    def accepts(self, value) -> bool:
        try:
            return any(isinstance(value, (bool, np.bool_)) == isinstance(v, bool) and bool(value == v) for v in self.values)
        except Exception:  # noqa: BLE001 - arrays and odd objects compare strangely: not an option
            return False

    def normalize(self, value):
        for v in self.values:
            if value == v:
                return v
        return value

    def describe(self) -> str:
        return f"one of {self.values!r}"


class Boolean(_Constraint):
    """``True`` or ``False`` (NumPy booleans become Python ``bool``)."""

    def accepts(self, value) -> bool:
        return isinstance(value, (bool, np.bool_))

    def normalize(self, value):
        return bool(value)

    def describe(self) -> str:
        return "a bool"


class InstanceOf(_Constraint):
    """An instance of one of the given types.

    Examples
    --------
    >>> InstanceOf(str).describe()
    'an instance of str'
    """

    def __init__(self, *types: type):
        self.types = types

    def accepts(self, value) -> bool:
        return isinstance(value, self.types)

    def describe(self) -> str:
        return "an instance of " + " or ".join(t.__name__ for t in self.types)


class Callable(_Constraint):
    """Anything callable."""

    def accepts(self, value) -> bool:
        return callable(value)

    def describe(self) -> str:
        return "a callable"


class Seq(_Constraint):
    """A list or tuple whose every item meets ``item`` (returned as a tuple of normalised items).

    Examples
    --------
    >>> Seq(Interval(int, 1, None), min_len=1).describe()
    'a non-empty list or tuple of an int >= 1'
    >>> check([np.int64(4), 8], Seq(Interval(int, 1, None)), name="hidden", owner="MLP")
    (4, 8)
    """

    def __init__(self, item: _Constraint, *, min_len: int = 0):
        self.item, self.min_len = item, min_len

    def accepts(self, value) -> bool:
        return isinstance(value, (list, tuple)) and len(value) >= self.min_len and all(self.item.accepts(v) for v in value)

    def normalize(self, value):
        return tuple(self.item.normalize(v) for v in value)

    def describe(self) -> str:
        size = "a non-empty " if self.min_len == 1 else (f"at least {self.min_len}-long " if self.min_len > 1 else "a ")
        return f"{size}list or tuple of {self.item.describe()}"


class Because(_Constraint):
    """Another constraint, with where its bounds come from added to the message (another field, the dataset).

    Examples
    --------
    >>> Because(Interval(int, 1, 2), "at most encoder_layers=2").describe()
    'an int in [1, 2] (at most encoder_layers=2)'
    >>> check(3, Because(Options({2, 4}), "its 'layers'"), name="main_layer", owner="Cfg")
    Traceback (most recent call last):
    ...
    workbench.validation.InvalidParameterError: The 'main_layer' parameter of Cfg must be one of (2, 4) (its 'layers'). Got 3 instead.
    """

    def __init__(self, constraint: _Constraint, why: str):
        self.constraint, self.why = constraint, why

    def accepts(self, value) -> bool:
        return self.constraint.accepts(value)

    def normalize(self, value):
        return self.constraint.normalize(value)

    def describe(self) -> str:
        return f"{self.constraint.describe()} ({self.why})"


def _describe_all(constraints) -> str:
    parts = ["None" if c is None else c.describe() for c in constraints]
    return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " or " + parts[-1]


def _show(value) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def check(value, *constraints, name: str, owner: str) -> Any:
    """Check one value against constraints (any may match) and return it normalised.

    Parameters
    ----------
    value : object
        The value to check.
    *constraints : constraint or None
        Accepted forms; ``None`` accepts ``None``.
    name : str
        The parameter's name, as the user wrote it.
    owner : str
        The config class or function the parameter belongs to.

    Returns
    -------
    object
        The value, with NumPy scalars turned into Python ones (``Interval``, ``Boolean``), sequences into tuples
        (``Seq``).

    Raises
    ------
    InvalidParameterError
        Naming the parameter, its owner and what it accepts.

    Examples
    --------
    >>> check(np.float32(0.5), Interval(float, 0, 1), name="delta", owner="f")
    0.5
    >>> check(None, Interval(int, 0, None), None, name="seed", owner="f") is None
    True
    >>> check(float("inf"), Interval(float, 0, None, closed="neither"), name="lr", owner="TrainConfig")
    Traceback (most recent call last):
    ...
    workbench.validation.InvalidParameterError: The 'lr' parameter of TrainConfig must be a float > 0. Got inf instead.
    """
    if not constraints:
        raise ValueError("check() needs at least one constraint.")
    for c in constraints:
        if c is None:
            if value is None:
                return None
        elif c.accepts(value):
            return c.normalize(value)
    raise InvalidParameterError(
        f"The {name!r} parameter of {owner} must be {_describe_all(constraints)}. Got {_show(value)} instead."
    )


def check_fields(obj, **constraints) -> None:
    """Check fields of a (frozen) dataclass instance in ``__post_init__`` and store the normalised values.

    Each keyword is a field name; its value is one constraint, ``None`` or a tuple of them (any may match).

    Examples
    --------
    >>> @dataclasses.dataclass(frozen=True)
    ... class C:
    ...     k: int = 1
    ...     def __post_init__(self):
    ...         check_fields(self, k=(Interval(int, 1, None), None))
    >>> C(k=None).k is None, C(k=np.int32(2)).k
    (True, 2)
    """
    owner = type(obj).__name__
    for field_name, spec in constraints.items():
        specs = spec if isinstance(spec, tuple) else (spec,)
        value = check(getattr(obj, field_name), *specs, name=field_name, owner=owner)
        if dataclasses.is_dataclass(obj):
            object.__setattr__(obj, field_name, value)
        else:
            setattr(obj, field_name, value)


def field_defaults(cls, fields: Iterable[str] | Mapping[str, str]) -> dict:
    """The defaults of some fields of dataclass ``cls``, as a notebook's dict literal shows them (tuples as lists):
    the ``defaults`` of :func:`fill_group` for a group of config fields. ``fields``: the field names, or a mapping
    of group keys to field names.

    Examples
    --------
    >>> @dataclasses.dataclass
    ... class Config:
    ...     epochs: int = 3
    ...     sizes: tuple = (1, 2)
    >>> field_defaults(Config, ["epochs", "sizes"]), field_defaults(Config, {"n": "epochs"})
    ({'epochs': 3, 'sizes': [1, 2]}, {'n': 3})
    """
    names = fields if isinstance(fields, Mapping) else {f: f for f in fields}
    defaults = {key: cls.__dataclass_fields__[f].default for key, f in names.items()}
    return {key: list(v) if isinstance(v, tuple) else v for key, v in defaults.items()}


def fill_group(value, defaults: Mapping[str, Any], *, name: str, owner: str) -> dict:
    """A grouped parameter (a notebook's dict literal, e.g. ``TRAINING = {"epochs": 3, "lr": 0.01}``) with the keys it
    leaves out filled from ``defaults``, so a partial dict changes only the values it names
    (``-p TRAINING '{lr: 0.1}'``). ``None`` gives the defaults.

    Only the keys are checked here; the values are checked by the config that receives them.

    Parameters
    ----------
    value : dict or None
        The dict as given (any subset of the keys of ``defaults``).
    defaults : mapping
        Every accepted key with its default value.
    name : str
        The parameter's name, as the user wrote it.
    owner : str
        The function or notebook the parameter belongs to.

    Returns
    -------
    dict
        ``defaults`` updated with ``value``, in the order of ``defaults``.

    Raises
    ------
    InvalidParameterError
        When ``value`` is not a dict or holds a key ``defaults`` lacks, naming the parameter and the accepted keys.

    Examples
    --------
    >>> fill_group({"lr": 0.1}, {"epochs": 3, "lr": 0.01}, name="TRAINING", owner="dp_study_parameters")
    {'epochs': 3, 'lr': 0.1}
    >>> fill_group({"learning_rate": 0.1}, {"epochs": 3, "lr": 0.01}, name="TRAINING", owner="dp_study_parameters")
    Traceback (most recent call last):
    ...
    workbench.validation.InvalidParameterError: The 'TRAINING' parameter of dp_study_parameters must be a dict with keys among ['epochs', 'lr']. Got {'learning_rate': 0.1} instead.
    """
    if value is None:
        return dict(defaults)
    if not isinstance(value, Mapping) or set(value) - set(defaults):
        raise InvalidParameterError(f"The {name!r} parameter of {owner} must be a dict with keys among "
                                    f"{sorted(defaults)}. Got {_show(value)} instead.")
    import copy

    return {key: copy.deepcopy(value.get(key, default)) for key, default in defaults.items()}


def fill_groups(parameters: Mapping[str, Any], groups: Mapping[str, Mapping[str, Any]], *, owner: str,
                constraints: Mapping[str, Mapping[str, Any]] | None = None) -> dict:
    """A notebook's parameters by name with every grouped one (a name in ``groups``) filled by :func:`fill_group`
    (missing or ``None``: all defaults) and, where ``constraints[group][key]`` names a constraint (or a tuple of
    them, any may match), its value checked by :func:`check` as the parameter ``GROUP['key']``. Sequences come back
    as lists, so the result can go into a run record as it is.

    Examples
    --------
    >>> groups = {"TRAINING": {"epochs": 3, "lr": 0.01}}
    >>> fill_groups({"SEED": 0, "TRAINING": {"lr": 0.1}}, groups, owner="notebook 99_demo")
    {'SEED': 0, 'TRAINING': {'epochs': 3, 'lr': 0.1}}
    >>> fill_groups({"TRAINING": {"epochs": 0}}, groups, owner="notebook 99_demo",
    ...             constraints={"TRAINING": {"epochs": Interval(int, 1, None)}})
    Traceback (most recent call last):
    ...
    workbench.validation.InvalidParameterError: The "TRAINING['epochs']" parameter of notebook 99_demo must be an int >= 1. Got 0 instead.
    """
    out = dict(parameters)
    for group, defaults in groups.items():
        values = fill_group(out.get(group), defaults, name=group, owner=owner)
        for key, spec in ((constraints or {}).get(group) or {}).items():
            checked = check(values[key], *(spec if isinstance(spec, tuple) else (spec,)), name=f"{group}[{key!r}]", owner=owner)
            values[key] = list(checked) if isinstance(checked, tuple) else checked
        out[group] = values
    return out
