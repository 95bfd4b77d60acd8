"""Registries: the one way a study turns a name (``"fedadam"``, ``"activity"``) into an object.

Extension points are explicit dicts of small factories; :func:`make_registered` builds one entry with the same
errors everywhere: an unknown name lists the accepted ones, bad keyword parameters name the entry.

Examples
--------
>>> from dataclasses import dataclass
>>> @dataclass
... class Uniform:
...     k: int = 1
>>> REG = {"uniform": Uniform}
>>> make_registered(REG, "uniform", {"k": 2}, owner="make_strategy", kind="selection strategy", base=Uniform)
Uniform(k=2)
>>> make_registered(REG, "oldest", {}, owner="make_strategy", kind="selection strategy", base=Uniform)
Traceback (most recent call last):
...
ValueError: The 'name' parameter of make_strategy must be one of ['uniform']. Got 'oldest' instead.
>>> make_registered(REG, "uniform", {"q": 1}, owner="make_strategy", kind="selection strategy", base=Uniform)
Traceback (most recent call last):
...
ValueError: Bad parameters {'q': 1} for selection strategy 'uniform': ...
"""
from __future__ import annotations

from typing import Any, Callable, Mapping

__all__ = ["make_registered"]


def make_registered(registry: Mapping[str, Callable[..., Any]], name, params: Mapping[str, Any], *, owner: str, kind: str,
                    base: type | tuple[type, ...]) -> Any:
    """Build ``registry[name](**params)``; an instance of ``base`` passes through unchanged.

    Parameters
    ----------
    registry : mapping of str to callable
        The accepted names and their factories.
    name : str or instance of ``base``
        What to build.
    params : mapping
        Keyword parameters of the factory.
    owner : str
        The public function the user called (named in the error).
    kind : str
        What the registry holds, e.g. "server strategy" (named in the error).
    base : type or tuple of types
        Instances of these are returned as they are.

    Raises
    ------
    ValueError
        Unknown name (listing the accepted ones) or parameters the factory does not take; an
        ``InvalidParameterError`` raised by the factory's own checks keeps its message.
    """
    if isinstance(name, base):
        return name
    if not isinstance(name, str) or name not in registry:
        raise ValueError(f"The 'name' parameter of {owner} must be one of {sorted(registry)}. Got {name!r} instead.")
    try:
        return registry[name](**params)
    except TypeError as exc:
        if isinstance(exc, ValueError):  # InvalidParameterError is both: keep its message
            raise
        raise ValueError(f"Bad parameters {dict(params)} for {kind} {name!r}: {exc}") from None
