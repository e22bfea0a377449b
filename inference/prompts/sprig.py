"""The sprig functions LocalAI registers for its templates (the common ones), and Go's
encoding/json (`go_json`) that sprig's ``toJson`` and the plain prompt rendering write with.
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Callable, Mapping
from decimal import Decimal
from types import MappingProxyType
from typing import Any

from inference.prompts.gotemplate import FuncError, format_value, go_quote, go_type, truthy

_JSON_SPECIAL = re.compile("[\"\\\\\x00-\x1f<>&\u2028\u2029]")
_JSON_ESCAPES = MappingProxyType(
    {'"': '\\"', "\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t", "\b": "\\b", "\f": "\\f"}
)


def go_json(value: Any) -> str:
    """encoding/json.Marshal: compact, map keys sorted, struct fields by json tag, HTML escaped."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return _json_float(value)
    if isinstance(value, str):
        return '"' + _JSON_SPECIAL.sub(lambda m: _JSON_ESCAPES.get(m[0], f"\\u{ord(m[0]):04x}"), value) + '"'
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        members = []
        for f in dataclasses.fields(value):
            item = getattr(value, f.name)
            if not (f.metadata.get("omitempty") and not truthy(item)):
                members.append(go_json(f.metadata.get("json", f.name)) + ":" + go_json(item))
        return "{" + ",".join(members) + "}"
    if isinstance(value, Mapping):
        return "{" + ",".join(go_json(str(k)) + ":" + go_json(value[k]) for k in sorted(value, key=str)) + "}"
    if isinstance(value, list | tuple):
        return "[" + ",".join(go_json(item) for item in value) + "]"
    raise ValueError(f"json: unsupported type: {type(value).__name__}")


def _json_float(value: float) -> str:
    if not math.isfinite(value):
        raise ValueError(f"json: unsupported value: {format_value(value)}")
    if value and not 1e-6 <= abs(value) < 1e21:
        return re.sub(r"e-0(\d)$", r"e-\1", repr(value))
    text = format(Decimal(repr(value)), "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


def _string(value: Any) -> str:
    if isinstance(value, str):
        return value
    raise FuncError(f"wrong type for value; expected string; got {go_type(value)}")


def _integer(value: Any) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    raise FuncError(f"wrong type for value; expected int; got {go_type(value)}")


def _int64(value: Any) -> int:
    """sprig's lenient cast to int64: numbers truncate, numeric strings parse, anything else is 0."""
    if isinstance(value, int | float):
        return int(value)
    try:
        return int(value, 0) if isinstance(value, str) else 0
    except ValueError:
        return 0


def _strval(value: Any) -> str:
    return value if isinstance(value, str) else format_value(value)


def _strslice(value: Any) -> list[str]:
    items = value if isinstance(value, list | tuple) else [value]
    return [_strval(item) for item in items if item is not None]


def _to_json(value: Any) -> str:
    try:
        return go_json(value)
    except (ValueError, RecursionError):
        return ""  # sprig ignores Marshal's error


def _indent(spaces: Any, text: Any) -> str:
    pad = " " * _integer(spaces)
    return pad + _string(text).replace("\n", "\n" + pad)


SPRIG_FUNCTIONS: Mapping[str, Callable[..., Any]] = MappingProxyType(
    {
        "toJson": _to_json,
        "toString": _strval,
        "trim": lambda s: _string(s).strip(),
        "trimAll": lambda cutset, s: _string(s).strip(_string(cutset)),
        "trimPrefix": lambda prefix, s: _string(s).removeprefix(_string(prefix)),
        "trimSuffix": lambda suffix, s: _string(s).removesuffix(_string(suffix)),
        "upper": lambda s: _string(s).upper(),
        "lower": lambda s: _string(s).lower(),
        "title": lambda s: re.sub(r"(?<!\w)\w", lambda m: m[0].upper(), _string(s)),
        "contains": lambda substr, s: _string(substr) in _string(s),
        "hasPrefix": lambda prefix, s: _string(s).startswith(_string(prefix)),
        "hasSuffix": lambda suffix, s: _string(s).endswith(_string(suffix)),
        "replace": lambda old, new, s: _string(s).replace(_string(old), _string(new)),
        "repeat": lambda count, s: _string(s) * _integer(count),
        "join": lambda sep, items: _string(sep).join(_strslice(items)),
        "splitList": lambda sep, s: _string(s).split(_string(sep)),
        "quote": lambda *items: " ".join(go_quote(_strval(i)) for i in items if i is not None),
        "squote": lambda *items: " ".join(f"'{_strval(i)}'" for i in items if i is not None),
        "indent": _indent,
        "nindent": lambda spaces, text: "\n" + _indent(spaces, text),
        "default": lambda fallback, *given: given[0] if given and truthy(given[0]) else fallback,
        "empty": lambda value: not truthy(value),
        "coalesce": lambda *items: next((i for i in items if truthy(i)), None),
        "ternary": lambda if_true, if_false, condition: if_true if condition is True else if_false,
        "first": lambda items: items[0] if items else None,
        "last": lambda items: items[-1] if items else None,
        "list": lambda *items: list(items),
        "add": lambda *numbers: sum(_int64(n) for n in numbers),
        "add1": lambda number: _int64(number) + 1,
        "sub": lambda a, b: _int64(a) - _int64(b),
        "mul": lambda a, *rest: math.prod(_int64(n) for n in (a, *rest)),
    }
)
