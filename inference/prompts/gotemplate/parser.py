"""Parsing a template's tokens into a tree: text, actions, if/with/range with their else branches,
pipelines of commands and operands. Like Go, an undefined function or variable, a misplaced
break/continue and an unsupported action (define, template, block) are parse errors.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from inference.errors import TemplateError
from inference.prompts.gotemplate.builtins import Functions
from inference.prompts.gotemplate.lexer import Token, lex, located_error


@dataclass(frozen=True, slots=True)
class Term:
    kind: str  # field (on dot) var dot sub const func
    value: Any  # var or func name, sub-pipeline, constant
    names: tuple[str, ...]  # field chain after the term
    pos: int


@dataclass(frozen=True, slots=True)
class Pipe:
    decl: tuple[str, ...]
    assign: bool  # "=" rather than ":="
    cmds: tuple[tuple[Term, ...], ...]
    pos: int


@dataclass(frozen=True, slots=True)
class Node:
    kind: str  # text action if with range break continue
    value: Any = None  # the text, or the pipeline
    body: tuple[Node, ...] = ()
    orelse: tuple[Node, ...] = ()
    pos: int = 0


def parse_nodes(source: str, functions: Functions) -> tuple[Node, ...]:
    """The tree of ``source``; raises TemplateError naming line, column and action."""
    parser = _Parser(source, functions)
    nodes, stop = parser.items()
    if stop is not None:
        raise parser.fail(stop, f"unexpected {{{{{stop.value}}}}}")
    return nodes


class _Parser:
    def __init__(self, src: str, functions: Functions) -> None:
        self.src, self.functions = src, functions
        self.toks = lex(src)
        self.at = 0
        self.vars = ["$"]
        self.range_depth = 0

    def fail(self, tok: Token, message: str) -> TemplateError:
        return located_error(self.src, tok.pos, message)

    def next(self) -> Token:
        self.at += 1
        return self.toks[self.at - 1]

    def peek(self, ahead: int = 0) -> Token:
        return self.toks[min(self.at + ahead, len(self.toks) - 1)]

    def expect_right(self, context: str) -> None:
        tok = self.next()
        if tok.kind != "right":
            raise self.fail(tok, f"unexpected {_describe(tok)} in {context}")

    def items(self) -> tuple[tuple[Node, ...], Token | None]:
        """Nodes up to EOF (None) or a consumed ``{{end`` / ``{{else`` keyword token."""
        nodes: list[Node] = []
        while (tok := self.next()).kind != "eof":
            if tok.kind == "text":
                nodes.append(Node("text", tok.value))
            elif (kw := self.peek()).kind != "kw":
                nodes.append(Node("action", self.pipeline("command", decl=True)))
            elif kw.value in ("end", "else"):
                return tuple(nodes), self.next()
            else:
                nodes.append(self.keyword(self.next()))
        return tuple(nodes), None

    def keyword(self, kw: Token) -> Node:
        if kw.value in ("if", "with", "range"):
            return self.control(kw)
        if kw.value in ("break", "continue"):
            if not self.range_depth:
                raise self.fail(kw, f"{{{{{kw.value}}}}} outside {{{{range}}}}")
            self.expect_right(kw.value)
            return Node(kw.value, pos=kw.pos)
        raise self.fail(kw, f"{{{{{kw.value}}}}} is not supported in LocalAI prompt templates")

    def control(self, kw: Token) -> Node:
        scope, kind = len(self.vars), kw.value
        pipe = self.pipeline(kind, decl=True, two=kind == "range")
        self.range_depth += kind == "range"
        body, stop = self.items()
        self.range_depth -= kind == "range"
        orelse: tuple[Node, ...] = ()
        if stop is not None and stop.value == "else":
            if kind != "range" and self.peek().kind == "kw" and self.peek().value == kind:
                orelse = (self.control(self.next()),)  # else if / else with: shares our {{end}}
                del self.vars[scope:]
                return Node(kind, pipe, body, orelse, kw.pos)
            self.expect_right("else")
            orelse, stop = self.items()
            if stop is not None and stop.value != "end":
                raise self.fail(stop, f"{{{{{kind}}}}} has a second {{{{else}}}}")
        if stop is None:
            raise self.fail(kw, f"unexpected EOF: {{{{{kind}}}}} has no matching {{{{end}}}}")
        self.expect_right("end")
        del self.vars[scope:]
        return Node(kind, pipe, body, orelse, kw.pos)

    def pipeline(self, context: str, *, decl: bool = False, two: bool = False, paren: bool = False) -> Pipe:
        first = self.peek()
        names: tuple[str, ...] = ()
        assign = False
        if decl and first.kind == "var":
            ahead = [self.peek(i).kind for i in range(1, 4)]
            if ahead[0] in ("decl", "assign"):
                names, assign, self.at = (first.value,), ahead[0] == "assign", self.at + 2
            elif ahead[0] == "comma" and two and ahead[1] == "var" and ahead[2] in ("decl", "assign"):
                names, assign = (first.value, self.peek(2).value), ahead[2] == "assign"
                self.at += 4
            elif ahead[0] == "comma":
                raise self.fail(first, f"too many declarations in {context}")
        for name in names:
            if assign and name not in self.vars:
                raise self.fail(first, f"undefined variable {name!r}")
        self.vars.extend(() if assign else names)
        cmds = []
        while True:
            cmds.append(self.command(context))
            tok = self.next()
            if tok.kind == "pipe":
                continue
            if tok.kind == ("rparen" if paren else "right"):
                break
            raise self.fail(tok, f"unexpected {_describe(tok)} in {context}")
        for stage, cmd in enumerate(cmds[1:], start=2):
            if cmd[0].kind in ("const", "dot", "nil"):
                raise located_error(self.src, cmd[0].pos, f"non executable command in pipeline stage {stage}")
        return Pipe(names, assign, tuple(cmds), first.pos)

    def command(self, context: str) -> tuple[Term, ...]:
        terms: list[Term] = []
        while (tok := self.peek()).kind not in ("pipe", "right", "rparen", "eof"):
            if terms and not tok.space:
                raise self.fail(tok, f"unexpected {_describe(tok)} in operand (missing space?)")
            terms.append(self.operand())
        if not terms:
            raise self.fail(self.peek(), f"missing value for {context}")
        return tuple(terms)

    def operand(self) -> Term:
        tok = self.next()
        kind, value = tok.kind, tok.value
        if kind == "field":
            kind, value, chain = "field", None, [tok.value]
        else:
            chain = []
            if kind == "var" and value not in self.vars:
                raise self.fail(tok, f"undefined variable {value!r}")
            if kind == "ident":
                if value not in self.functions.table:
                    raise self.fail(tok, f"function {value!r} not defined")
                kind = "func"
            elif kind == "lparen":
                kind, value = "sub", self.pipeline("parenthesized pipeline", paren=True)
            elif kind in ("str", "num", "bool", "nil"):
                kind = "nil" if kind == "nil" else "const"
            elif kind not in ("var", "dot"):
                raise self.fail(tok, f"unexpected {_describe(tok)} in operand")
        while self.peek().kind == "field" and not self.peek().space:
            if kind not in ("field", "var", "sub"):
                raise self.fail(self.peek(), f"unexpected .{self.peek().value} after {_describe(tok)}")
            chain.append(self.next().value)
        return Term(kind, value, tuple(chain), tok.pos)


def _describe(tok: Token) -> str:
    special = {"right": '"}}"', "eof": "end of template", "field": f"field .{tok.value}"}
    return special.get(tok.kind, repr(tok.value))
