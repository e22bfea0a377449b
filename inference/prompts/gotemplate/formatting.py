"""Values as Go's fmt and strconv see them: type names, template truth, ``%v`` (fmt.Sprint) of one
value, strconv.Quote, and the print/printf formatting (fmt.Sprint, fmt.Sprintf with Go's verbs,
flags, width, precision and its MISSING/EXTRA markers).
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

_VERB = re.compile(r"%([-+# 0]*)(\d+)?(?:\.(\d*))?([a-zA-Z%])")


def go_type(value: Any) -> str:
    """The Go type name a value stands for, for error messages."""
    if value is None:
        return "<nil>"
    for kind, name in ((bool, "bool"), (int, "int"), (float, "float64"), (str, "string")):
        if isinstance(value, kind):
            return name
    if isinstance(value, Mapping):
        return "map[string]interface {}"
    if isinstance(value, list | tuple):
        return "[]interface {}"
    return type(value).__name__


def truthy(value: Any) -> bool:
    """Go's template truth: false, 0, "", nil and empty slices and maps are false; structs are true."""
    if value is None:
        return False
    if isinstance(value, bool | int | float | str | list | tuple | Mapping):
        return bool(value)
    return True


def format_value(value: Any) -> str:
    """``fmt.Sprint`` of one value (Go's %v): nil is <nil>, slices [a b], maps map[k:v], structs {a b}."""
    if value is None:
        return "<nil>"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return _format_float(value)
    if isinstance(value, int | str):
        return str(value)
    if isinstance(value, Mapping):
        items = sorted(value.items(), key=lambda kv: str(kv[0]))
        return "map[" + " ".join(f"{format_value(k)}:{format_value(v)}" for k, v in items) + "]"
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return "{" + " ".join(format_value(getattr(value, f.name)) for f in dataclasses.fields(value)) + "}"
    if isinstance(value, list | tuple):
        return "[" + " ".join(format_value(v) for v in value) + "]"
    return str(value)


def _format_float(value: float) -> str:
    """fmt's %v of a float64: shortest digits, in exponent form below 1e-4 and from 1e6."""
    if not math.isfinite(value):
        return "NaN" if math.isnan(value) else ("+Inf" if value > 0 else "-Inf")
    sign, digits, exponent = Decimal(repr(value)).normalize().as_tuple()
    text = "".join(map(str, digits)).rstrip("0") or "0"
    point = len(digits) + int(exponent)  # decimal point position relative to the first digit
    if value == 0:
        return "-0" if sign else "0"
    if point - 1 < -4 or point - 1 >= 6:
        mantissa = text[0] + ("." + text[1:] if len(text) > 1 else "")
        exp = point - 1
        return f"{'-' if sign else ''}{mantissa}e{'-' if exp < 0 else '+'}{abs(exp):02d}"
    return ("-" if sign else "") + format(Decimal(repr(abs(value))), "f").rstrip("0").rstrip(".")


def go_quote(text: str) -> str:
    """strconv.Quote: a double-quoted Go string literal (printf %q, sprig's quote)."""
    out = []
    for ch in text:
        if ch in '"\\':
            out.append("\\" + ch)
        elif ch in "\a\b\f\n\r\t\v":
            out.append("\\" + "abfnrtv"["\a\b\f\n\r\t\v".index(ch)])
        elif ch.isprintable():
            out.append(ch)
        else:
            code = ord(ch)
            out.append(f"\\x{code:02x}" if code < 0x80 else (f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"))
    return '"' + "".join(out) + '"'


def go_sprint(*args: Any) -> str:
    """fmt.Sprint: a space between two operands when neither is a string."""
    out = []
    for i, arg in enumerate(args):
        if i and not isinstance(arg, str) and not isinstance(args[i - 1], str):
            out.append(" ")
        out.append(format_value(arg))
    return "".join(out)


def go_sprintf(fmt: str, *args: Any) -> str:
    """fmt.Sprintf for the common verbs; Go's %!v(MISSING) and %!(EXTRA ...) markers included."""
    used = 0

    def verb(match: re.Match[str]) -> str:
        nonlocal used
        flags, width, precision, letter = match.groups()
        if letter == "%":
            return "%"
        if used >= len(args):
            return f"%!{letter}(MISSING)"
        value = args[used]
        used += 1
        text, numeric = _format_verb(letter, value, None if precision is None else int(precision or 0))
        text = "+" + text if "+" in flags and numeric and not text.startswith("-") else text
        if not width or len(text) >= int(width):
            return text
        if "-" in flags:
            return text.ljust(int(width))
        if "0" in flags and numeric:
            sign = text[0] if text[:1] in "+-" else ""
            return sign + text[len(sign) :].rjust(int(width) - len(sign), "0")
        return text.rjust(int(width))

    text = _VERB.sub(verb, fmt)
    if used < len(args):
        text += "%!(EXTRA " + ", ".join(f"{go_type(a)}={format_value(a)}" for a in args[used:]) + ")"
    return text


def _format_verb(letter: str, value: Any, precision: int | None) -> tuple[str, bool]:
    is_int = isinstance(value, int) and not isinstance(value, bool)
    if letter == "v":
        return format_value(value), False
    if letter == "s" and not isinstance(value, bool | int | float):
        text = value if isinstance(value, str) else format_value(value)
        return (text if precision is None else text[:precision]), False
    if letter == "q" and isinstance(value, str):
        return go_quote(value), False
    if letter == "t" and isinstance(value, bool):
        return format_value(value), False
    if letter == "d" and is_int:
        return str(value), True
    if letter in "xX" and (is_int or isinstance(value, str)):
        text = format(value, "x") if is_int else value.encode().hex()
        return (text.upper() if letter == "X" else text), is_int
    if letter == "c" and is_int:
        return chr(value), False
    if letter in "feEgG" and isinstance(value, float):
        if letter in "gG" and precision is None:
            return _format_float(value), True
        return format(value, f".{6 if precision is None else precision}{letter}"), True
    return f"%!{letter}({go_type(value)}={format_value(value)})", False
