"""Executing a parsed template: `GoTemplate` (built by `parse_template`) renders data by Go's
reflection rules — a dataclass is a struct, a Mapping a map, a list or tuple a slice, None nil — with
Go's variable scoping, range/break/continue, short-circuit and/or, and Go's error messages.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from inference.errors import TemplateError
from inference.prompts.gotemplate.builtins import FuncError, Functions
from inference.prompts.gotemplate.formatting import format_value, go_type, truthy
from inference.prompts.gotemplate.lexer import located_error
from inference.prompts.gotemplate.parser import Node, Pipe, Term, parse_nodes

_NO_ARG = object()  # no value piped into a command
_MISSING = object()  # a missing map key (Go's invalid value) inside a field chain; None outside


class _Break(Exception):
    pass


class _Continue(Exception):
    pass


@dataclass(frozen=True)
class GoTemplate:
    """One parsed template. Immutable: `render` may run in several threads at once."""

    source: str
    nodes: tuple[Node, ...]
    functions: Functions

    def render(self, data: Any) -> str:
        """Execute with ``data`` as dot and ``$``; raises TemplateError where Go's Execute fails."""
        run = _Run(self, data)
        run.walk(self.nodes, data)
        return "".join(run.out)


def parse_template(source: str, functions: Functions | None = None) -> GoTemplate:
    """Parse Go template text; undefined functions and variables are errors here, as in Go."""
    functions = functions or Functions.with_extra()
    return GoTemplate(source, parse_nodes(source, functions), functions)


class _Run:
    """The state of one execution: output and the variable stack."""

    def __init__(self, template: GoTemplate, data: Any) -> None:
        self.src, self.table = template.source, template.functions.table
        self.out: list[str] = []
        self.vars: list[tuple[str, Any]] = [("$", data)]

    def fail(self, pos: int, message: str) -> TemplateError:
        return located_error(self.src, pos, message)

    def walk(self, nodes: tuple[Node, ...], dot: Any) -> None:
        for node in nodes:
            if node.kind == "text":
                self.out.append(node.value)
            elif node.kind == "action":
                value = self.pipe(node.value, dot)
                if not node.value.decl:
                    self.out.append("<no value>" if value is None else format_value(value))
            elif node.kind == "break":
                raise _Break
            elif node.kind == "continue":
                raise _Continue
            else:
                scope = len(self.vars)
                try:
                    self.control(node, dot)
                finally:
                    del self.vars[scope:]

    def control(self, node: Node, dot: Any) -> None:
        pipe: Pipe = node.value
        if node.kind != "range":
            value = self.pipe(pipe, dot)
            if not truthy(value):
                self.walk(node.orelse, dot)
            else:
                self.walk(node.body, value if node.kind == "with" else dot)
            return
        value = self.pipe(pipe, dot)  # Go binds the declared variables to the collection first
        if value is None:
            items: list[tuple[Any, Any]] = []
        elif isinstance(value, Mapping):
            items = [(key, value[key]) for key in sorted(value, key=str)]
        elif isinstance(value, list | tuple):
            items = list(enumerate(value))
        elif isinstance(value, int) and not isinstance(value, bool):
            items = [(i, i) for i in range(value)]
        else:
            raise self.fail(pipe.pos, f"range can't iterate over {format_value(value)}")
        if not items:
            self.walk(node.orelse, dot)
        for key, item in items:
            self.bind(pipe, (key, item)[-len(pipe.decl) :] if pipe.decl else (), rebind=True)
            scope = len(self.vars)
            try:
                self.walk(node.body, item)
            except _Continue:
                continue
            except _Break:
                break
            finally:
                del self.vars[scope:]

    def pipe(self, pipe: Pipe, dot: Any) -> Any:
        value: Any = _NO_ARG
        for cmd in pipe.cmds:
            value = self.command(cmd, dot, value)
        self.bind(pipe, (value,) * len(pipe.decl))
        return value

    def bind(self, pipe: Pipe, values: tuple[Any, ...], *, rebind: bool = False) -> None:
        for name, value in zip(pipe.decl, values, strict=True):
            if pipe.assign or rebind:
                at = max(i for i, (known, _) in enumerate(self.vars) if known == name)
                self.vars[at] = (name, value)
            else:
                self.vars.append((name, value))

    def command(self, cmd: tuple[Term, ...], dot: Any, final: Any) -> Any:
        head = cmd[0]
        if head.kind == "func":
            return self.call(head, cmd[1:], dot, final)
        if len(cmd) > 1 or final is not _NO_ARG:
            what = "." + ".".join(head.names) if head.names else format_value(self.arg(head, dot))
            raise self.fail(head.pos, f"can't give argument to non-function {what}")
        if head.kind == "nil":
            raise self.fail(head.pos, "nil is not a command")
        return self.arg(head, dot)

    def arg(self, term: Term, dot: Any) -> Any:
        if term.kind == "const":
            return term.value
        if term.kind == "var":
            value = next(v for name, v in reversed(self.vars) if name == term.value)
        elif term.kind == "sub":
            value = self.pipe(term.value, dot)
        elif term.kind == "func":
            value = self.call(term, (), dot, _NO_ARG)
        else:  # dot, field, nil
            value = None if term.kind == "nil" else dot
        for name in term.names:
            value = self.field(value, name, term.pos)
        return None if value is _MISSING else value

    def field(self, value: Any, name: str, pos: int) -> Any:
        if isinstance(value, Mapping):
            return value.get(name, _MISSING)
        if value is _MISSING:  # a field of a missing key is missing too, as in Go
            return _MISSING
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            if name in value.__dataclass_fields__:
                return getattr(value, name)
        elif value is None:
            raise self.fail(pos, f"nil pointer evaluating interface {{}}.{name}")
        raise self.fail(pos, f"can't evaluate field {name} in type {go_type(value)}")

    def call(self, term: Term, args: tuple[Term, ...], dot: Any, final: Any) -> Any:
        name = term.value
        thunks = [lambda a=a: self.arg(a, dot) for a in args]
        thunks += [] if final is _NO_ARG else [lambda: final]
        func = self.table[name]
        if len(thunks) < func.least or (func.most is not None and len(thunks) > func.most):
            want = f"at least {func.least}" if func.most is None else str(func.most)
            raise self.fail(term.pos, f"wrong number of args for {name}: want {want} got {len(thunks)}")
        if name in ("and", "or"):  # short-circuit: stop at the first false (and) or true (or) operand
            for thunk in thunks:
                value = thunk()
                if truthy(value) == (name == "or"):
                    break
            return value
        values = [thunk() for thunk in thunks]
        try:
            return func.call(*values)
        except (FuncError, TypeError, ValueError, KeyError, IndexError, AttributeError, ArithmeticError) as exc:
            raise self.fail(term.pos, f"error calling {name}: {exc}") from None
