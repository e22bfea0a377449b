"""OpenAI attribute filters: checked once into a predicate, then applied to files' attributes.

Comparison ``{"type": "eq"|"ne"|"gt"|"gte"|"lt"|"lte"|"in"|"nin", "key", "value"}`` and compound
``{"type": "and"|"or", "filters": [...]}``, nested freely (up to ``MAX_DEPTH``). Rules: a file
without the key matches no comparison (``ne`` and ``nin`` included); booleans equal only booleans
and are never ordered; numbers compare with numbers and strings with strings (ordering across
kinds is false). A malformed filter raises InvalidInput naming the offending part; fields
unknown here are ignored, like the API's models do.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

from stores.errors import InvalidInput

Predicate = Callable[[Mapping[str, Any]], bool]

COMPARISONS = ("eq", "ne", "gt", "gte", "lt", "lte", "in", "nin")
COMPOUNDS = ("and", "or")
MAX_DEPTH = 16


def compile_filter(spec: Any, *, param: str = "filters") -> Predicate:
    """The predicate for ``spec`` over an attributes mapping; InvalidInput when ``spec`` is malformed."""
    return _compile(spec, param, 0)


def _compile(spec: Any, where: str, depth: int) -> Predicate:
    if depth > MAX_DEPTH:
        raise InvalidInput(f"{where}: filters nest deeper than {MAX_DEPTH} levels", param=where)
    if not isinstance(spec, Mapping):
        raise InvalidInput(f"{where} must be an object with a 'type', got {type(spec).__name__}", param=where)
    kind = spec.get("type")
    if kind in COMPOUNDS:
        children = spec.get("filters")
        if not isinstance(children, list) or not children:
            raise InvalidInput(f"{where}.filters must be a non-empty list of filters", param=f"{where}.filters")
        parts = [_compile(child, f"{where}.filters[{i}]", depth + 1) for i, child in enumerate(children)]
        if kind == "and":
            return lambda attrs: all(part(attrs) for part in parts)
        return lambda attrs: any(part(attrs) for part in parts)
    if kind in COMPARISONS:
        key = spec.get("key")
        if not isinstance(key, str) or not key:
            raise InvalidInput(f"{where}.key must be a non-empty string", param=f"{where}.key")
        if "value" not in spec:
            raise InvalidInput(f"{where}.value is required", param=f"{where}.value")
        return _comparison(kind, key, spec["value"], f"{where}.value")
    expected = ", ".join(repr(name) for name in COMPARISONS + COMPOUNDS)
    raise InvalidInput(f"{where}.type must be one of {expected}, got {kind!r}", param=f"{where}.type")


def _scalar(value: Any, where: str) -> str | float | bool:
    if isinstance(value, bool | str):
        return value
    if isinstance(value, int | float) and math.isfinite(value):
        return value
    raise InvalidInput(f"{where} must be a string, a finite number or a boolean, got {value!r}", param=where)


def _comparison(kind: str, key: str, value: Any, where: str) -> Predicate:
    if kind in ("in", "nin"):
        if not isinstance(value, list):
            raise InvalidInput(f"{where} must be a list for {kind!r}", param=where)
        options = [_scalar(item, f"{where}[{i}]") for i, item in enumerate(value)]
        if kind == "in":
            return lambda attrs: key in attrs and any(_equal(attrs[key], option) for option in options)
        return lambda attrs: key in attrs and not any(_equal(attrs[key], option) for option in options)
    target = _scalar(value, where)
    if kind == "eq":
        return lambda attrs: key in attrs and _equal(attrs[key], target)
    if kind == "ne":
        return lambda attrs: key in attrs and not _equal(attrs[key], target)
    if isinstance(target, bool):
        raise InvalidInput(f"{where}: {kind!r} compares numbers or strings, not booleans", param=where)
    test = _ORDER[kind]
    return lambda attrs: key in attrs and _comparable(attrs[key], target) and test(attrs[key], target)


_ORDER: dict[str, Callable[[Any, Any], bool]] = {
    "gt": lambda a, b: a > b,
    "gte": lambda a, b: a >= b,
    "lt": lambda a, b: a < b,
    "lte": lambda a, b: a <= b,
}


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _equal(actual: Any, expected: Any) -> bool:
    if isinstance(actual, bool) or isinstance(expected, bool):
        return isinstance(actual, bool) and isinstance(expected, bool) and actual == expected
    if _is_number(actual) and _is_number(expected):
        return bool(actual == expected)
    return isinstance(actual, str) and isinstance(expected, str) and actual == expected


def _comparable(actual: Any, target: Any) -> bool:
    if _is_number(target):
        return _is_number(actual)
    return isinstance(actual, str)


def check_attributes(attributes: Any, *, param: str = "attributes") -> dict[str, Any]:
    """A copy of ``attributes`` when it is a mapping of string keys to scalars (else InvalidInput)."""
    if attributes is None:
        return {}
    if not isinstance(attributes, Mapping):
        raise InvalidInput(f"{param} must be an object", param=param)
    checked: dict[str, Any] = {}
    for key, value in attributes.items():
        if not isinstance(key, str) or not key:
            raise InvalidInput(f"{param}: keys must be non-empty strings, got {key!r}", param=param)
        checked[key] = _scalar(value, f"{param}.{key}")
    return checked
