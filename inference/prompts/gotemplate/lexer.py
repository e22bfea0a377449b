"""Lexing Go template text: text runs, ``{{ }}`` actions with trim markers and comments, and the
tokens inside an action (literals with Go's escapes and number syntax, fields, variables, keywords).

Also owns `located_error`, the TemplateError naming line, column and action that every stage raises.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from inference.errors import TemplateError

_SPACE = " \t\r\n"
_KEYWORDS = frozenset({"if", "else", "end", "range", "with", "define", "template", "block", "break", "continue"})
_TOKEN = re.compile(
    r"""(?P<decl>:=)|(?P<assign>=)|(?P<pipe>\|)|(?P<lparen>\()|(?P<rparen>\))|(?P<comma>,)
    |(?P<str>"(?:[^"\\\n]|\\.)*")|(?P<raw>`[^`]*`)|(?P<char>'(?:[^'\\\n]|\\[^'\n]+)')
    |(?P<num>[+-]?(?:0[xX][0-9a-fA-F_]+|(?:\d[\d_]*(?:\.[\d_]*)?|\.\d[\d_]*)(?:[eE][+-]?\d+)?)(?![\w.]))
    |(?P<var>\$\w*)|(?P<field>\.[^\W\d]\w*)|(?P<dot>\.(?!\w))|(?P<ident>[^\W\d]\w*)""",
    re.VERBOSE,
)
_ESCAPE = re.compile(r"\\(?:([abfnrtv\\'\"])|x([0-9a-fA-F]{2})|([0-7]{3})|u([0-9a-fA-F]{4})|U([0-9a-fA-F]{8})|(.))")
_SIMPLE_ESCAPES = MappingProxyType(dict(zip("abfnrtv\\'\"", "\a\b\f\n\r\t\v\\'\"", strict=True)))


@dataclass(frozen=True, slots=True)
class Token:
    kind: str  # text left right eof kw bool nil ident field var dot str num pipe lparen rparen comma decl assign
    value: Any
    pos: int
    space: bool = False  # whitespace precedes it inside the action


def located_error(src: str, pos: int, message: str) -> TemplateError:
    """A TemplateError for ``pos`` in ``src``: line, column, the message and the action around it."""
    line = src.count("\n", 0, pos) + 1
    column = pos - (src.rfind("\n", 0, pos) + 1) + 1
    start = src.rfind("{{", 0, pos + 2)
    start = pos if start < 0 else start
    end = src.find("}}", pos)
    snippet = src[start : (end + 2 if end >= 0 else len(src))]
    snippet = " ".join(snippet.split())
    snippet = snippet if len(snippet) <= 60 else snippet[:57] + "..."
    return TemplateError(f"line {line}, column {column}: {message} (at {snippet!r})")


def lex(src: str) -> list[Token]:
    """All tokens of ``src``, ending with an ``eof`` token; raises TemplateError on bad syntax."""
    toks: list[Token] = []
    pos, trim_next = 0, False
    while True:
        start = src.find("{{", pos)
        text = src[pos : len(src) if start < 0 else start]
        text = text.lstrip(_SPACE) if trim_next else text
        trim = start >= 0 and src[start + 2 : start + 3] == "-" and src[start + 3 : start + 4] in tuple(_SPACE)
        text = text.rstrip(_SPACE) if trim else text
        if text:
            toks.append(Token("text", text, pos))
        if start < 0:
            toks.append(Token("eof", None, len(src)))
            return toks
        inner = start + (4 if trim else 2)
        if src.startswith("/*", inner):
            close = src.find("*/", inner + 2)
            if close < 0:
                raise located_error(src, start, "unclosed comment")
            pos, trim_next = _right_delim(src, close + 2)
            if pos < 0:
                raise located_error(src, start, "comment ends before closing delimiter")
        else:
            toks.append(Token("left", None, start))
            pos, trim_next = _lex_action(src, inner, toks, start)


def _right_delim(src: str, pos: int) -> tuple[int, bool]:
    """Position after ``}}`` or `` -}}`` at ``pos`` and whether it trims, or (-1, False)."""
    if src[pos : pos + 1] in tuple(_SPACE) and src.startswith("-}}", pos + 1):
        return pos + 4, True
    return (pos + 2, False) if src.startswith("}}", pos) else (-1, False)


def _lex_action(src: str, pos: int, toks: list[Token], start: int) -> tuple[int, bool]:
    space = False
    while True:
        after, trim = _right_delim(src, pos)
        if after >= 0:
            toks.append(Token("right", None, pos))
            return after, trim
        if pos >= len(src):
            raise located_error(src, start, "unclosed action")
        if src[pos] in _SPACE:
            pos, space = pos + 1, True
            continue
        match = _TOKEN.match(src, pos)
        if match is None:
            quoted = src[pos] in "\"'`"
            message = "unterminated quoted string" if quoted else f"unexpected {src[pos]!r} in action"
            raise located_error(src, pos, message)
        kind, text = match.lastgroup or "", match.group()
        value: Any = text
        if kind in ("str", "raw"):
            kind, value = "str", (text[1:-1] if kind == "raw" else _unescape(src, pos, text[1:-1]))
        elif kind == "char":
            kind, value = "num", ord(_unescape(src, pos, text[1:-1])[:1] or "\0")
        elif kind == "num":
            value = _number(src, pos, text)
        elif kind == "field":
            value = text[1:]
        elif kind == "ident" and text in _KEYWORDS:
            kind = "kw"
        elif kind == "ident" and text in ("true", "false", "nil"):
            kind, value = ("nil", None) if text == "nil" else ("bool", text == "true")
        toks.append(Token(kind, value, pos, space))
        pos, space = match.end(), False


def _unescape(src: str, pos: int, body: str) -> str:
    def one(m: re.Match[str]) -> str:
        if m.group(6) is not None:
            raise located_error(src, pos, f"unknown escape sequence \\{m.group(6)}")
        if m.group(1):
            return _SIMPLE_ESCAPES[m.group(1)]
        digits = next(g for g in m.groups()[1:5] if g)
        return chr(int(digits, 8 if m.group(3) else 16))

    return _ESCAPE.sub(one, body)


def _number(src: str, pos: int, text: str) -> int | float:
    try:
        return int(text, 8) if re.fullmatch(r"[+-]?0[0-7_]+", text) else int(text, 0)  # 017 is octal
    except ValueError:
        try:
            return float(text.replace("_", ""))
        except ValueError:
            raise located_error(src, pos, f"bad number syntax: {text!r}") from None
