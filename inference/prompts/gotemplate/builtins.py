"""Template functions: Go's builtins (and, or, not, len, index, print, printf, println, eq, ne, lt,
le, gt, ge), `FuncError` for a function's bad arguments, and `Functions`, the table a template is
parsed and run with: the builtins plus a caller's own, as Go's ``template.Funcs``, arities worked out once.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from inference.prompts.gotemplate.formatting import format_value, go_sprint, go_sprintf, go_type, truthy


class FuncError(Exception):
    """Raised by a template function for bad arguments; reported as Go's ``error calling f: ...``."""


def _kind(value: Any) -> str:
    for kind, name in ((bool, "bool"), (int, "int"), (float, "float"), (str, "string")):
        if isinstance(value, kind):
            return name
    return "nil" if value is None else "other"


def go_eq(first: Any, *others: Any) -> bool:
    """eq a b c...: a equals any of the others; basic kinds only, a mix of kinds is an error."""
    if not others:
        raise FuncError("missing argument for comparison")
    for other in others:
        k1, k2 = _kind(first), _kind(other)
        if k1 != k2:
            if "nil" not in (k1, k2):
                raise FuncError("incompatible types for comparison")
            continue
        if k1 == "other" and isinstance(first, list | tuple | Mapping):
            raise FuncError(f"non-comparable type {go_type(first)}")
        if first == other:
            return True
    return False


def _ordered(a: Any, b: Any) -> tuple[Any, Any]:
    k1, k2 = _kind(a), _kind(b)
    if k1 not in ("int", "float", "string") or k2 not in ("int", "float", "string"):
        raise FuncError("invalid type for comparison")
    if k1 != k2:
        raise FuncError("incompatible types for comparison")
    return a, b


def go_len(value: Any) -> int:
    if value is None:
        return 0  # a nil slice or map
    if isinstance(value, str):
        return len(value.encode())
    if isinstance(value, list | tuple | Mapping):
        return len(value)
    raise FuncError(f"len of type {go_type(value)}")


def go_index(value: Any, *keys: Any) -> Any:
    for key in keys:
        if value is None:
            return None  # indexing a nil map yields the zero value
        if isinstance(value, Mapping):
            value = value.get(key)
        elif isinstance(value, list | tuple | str):
            if not isinstance(key, int) or isinstance(key, bool):
                raise FuncError(f"cannot index slice/array with type {go_type(key)}")
            items = value.encode() if isinstance(value, str) else value
            if not 0 <= key < len(items):
                raise FuncError(f"index out of range: {key}")
            value = items[key]
        else:
            raise FuncError(f"can't index item of type {go_type(value)}")
    return value


_BUILTINS: Mapping[str, Callable[..., Any]] = MappingProxyType({
    "and": lambda first, *rest: first,  # short-circuited by the executor; here for the parser
    "or": lambda first, *rest: first,
    "not": lambda v: not truthy(v),
    "len": go_len,
    "index": go_index,
    "print": go_sprint,
    "printf": go_sprintf,
    "println": lambda *a: " ".join(map(format_value, a)) + "\n",
    "eq": go_eq,
    "ne": lambda a, b: not go_eq(a, b),
    "lt": lambda a, b: _ordered(a, b)[0] < b,
    "le": lambda a, b: _ordered(a, b)[0] <= b,
    "gt": lambda a, b: _ordered(a, b)[0] > b,
    "ge": lambda a, b: _ordered(a, b)[0] >= b,
})


@dataclass(frozen=True)
class _Func:
    call: Callable[..., Any]
    least: int
    most: int | None  # None: variadic


@dataclass(frozen=True)
class Functions:
    """Go's builtins plus a caller's functions (like ``template.Funcs``), arities worked out once."""

    table: Mapping[str, _Func]

    @classmethod
    def with_extra(cls, extra: Mapping[str, Callable[..., Any]] | None = None) -> Functions:
        table = {}
        for name, fn in {**_BUILTINS, **(extra or {})}.items():
            params = inspect.signature(fn).parameters.values()
            variadic = any(p.kind is p.VAR_POSITIONAL for p in params)
            positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
            least = sum(1 for p in positional if p.default is p.empty)
            table[name] = _Func(fn, least, None if variadic else len(positional))
        return cls(table)
