"""Go's text/template language, the subset LocalAI model configs use, in pure Python.

The package: `lexer`, `parser` and `execute` (`parse_template`, `GoTemplate.render`) for one
template, `builtins` for Go's builtin functions (callers add their own, as Go's `Funcs` does; LocalAI
adds sprig's) and `formatting` for fmt's printing of values. This module re-exports the API. Data follows
Go's reflection rules: a dataclass is a struct (its fields are the Go field names), a Mapping a map,
a list or tuple a slice, None nil.

Supported: text; actions ``{{ }}`` (may span lines); trim markers ``{{- `` and `` -}}``, which strip
all adjacent spaces, tabs, CRs and newlines exactly as Go does; comments ``{{/* */}}``; ``.`` and
``$``; field chains ``.A.B`` on dot, ``$var`` and ``(pipeline)``; ``$x := p`` and ``$x = p``;
``if``/``else if``/``else``; ``with``/``else with``/``else``; ``range`` over slices, maps (sorted
keys), ints and nil, with one or two variables, ``else``, ``break`` and ``continue``; pipelines
``p | f``; parenthesised pipelines; literals: "strings" with Go escapes, `raw strings`, 'c'haracters,
numbers, true, false, nil. Builtins: and, or (short-circuit), not, len, index, print, printf
(%v %s %d %q %t %f %e %g %x %X %c %%, flags, width, precision), println, eq (several operands), ne,
lt, le, gt, ge. Not supported, each a `TemplateError` naming line, column and action: define,
template, block, method calls, and the builtins slice, call, html, js, urlquery.

Like Go, a missing map key renders as ``<no value>``; unlike LocalAI's silent fallback, a field that
the data does not have, a call of an undefined function or a failing function is an error.
"""

from inference.prompts.gotemplate.builtins import FuncError, Functions
from inference.prompts.gotemplate.execute import GoTemplate, parse_template
from inference.prompts.gotemplate.formatting import (
    format_value,
    go_quote,
    go_sprint,
    go_sprintf,
    go_type,
    truthy,
)

__all__ = [
    "FuncError",
    "Functions",
    "GoTemplate",
    "format_value",
    "go_quote",
    "go_sprint",
    "go_sprintf",
    "go_type",
    "parse_template",
    "truthy",
]
