"""The base of every JSON request body: JSON's own types, taken strictly.

A number field takes a number (an integer for an int field), a boolean field a boolean, a string
field a string: `"max_tokens": "5"`, `"temperature": true` or `"stream": 1` are a 400 naming the
field, as the OpenAI API and LocalAI answer them, and as the OpenAPI document says. (Multipart
forms, whose fields are all text, are read laxly: see protocol.transcriptions.)
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field


class RequestBody(BaseModel):
    model_config = ConfigDict(strict=True)


def integral(value: Any) -> Any:
    """JSON has one number type: 2.0 is the integer 2, as JSON Schema counts it; 2.5 stays a float
    (and is refused by the int check after this)."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


# An integer field: a JSON integer, or a number with no fractional part; never a boolean or a string.
JsonInt = Annotated[int, BeforeValidator(integral)]
# Bounded ones, for optional fields: the bounds sit inside, before the conversion, so that the
# schema states them (`JsonInt | None = Field(None, ge=1)` would leave them out).
PositiveInt = Annotated[int, Field(ge=1), BeforeValidator(integral)]
NonNegativeInt = Annotated[int, Field(ge=0), BeforeValidator(integral)]

# A model name as the catalog takes it (inference.catalog.paths.unsafe_reason): no NUL byte, not an
# absolute path (`/x`, `\x`, `C:x`), no `..` component. The catalog's UnsafePath names the rule broken.
_PART = r"[^/\\\x00]"
_SEGMENT = rf"(|\.|\.\.{_PART}+|\.[^/\\\x00.]{_PART}*|[^/\\\x00.]{_PART}*)"
_FIRST = rf"(\.|\.\.{_PART}+|\.[^/\\\x00.]{_PART}*|[A-Za-z]|[A-Za-z][^:/\\\x00]{_PART}*|[^/\\\x00.A-Za-z]{_PART}*)"
MODEL_NAME_PATTERN = rf"^{_FIRST}([/\\]{_SEGMENT})*$"
ModelName = Annotated[str, Field(min_length=1, json_schema_extra={"pattern": MODEL_NAME_PATTERN})]

# Python's white space (str.isspace: what str.strip() and str.split() take away), spelled out for
# schema patterns, whose `\s` is ECMAScript's: that one adds U+FEFF and lacks U+001C-U+001F, U+0085.
SPACE = "\t\n\x0b\x0c\r\x1c-\x1f \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"
NOT_BLANK = f"[^{SPACE}]"  # a pattern: some character that is not white space
