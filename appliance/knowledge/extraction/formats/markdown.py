"""Markdown via markdown-it-py (CommonMark plus tables): headings, paragraphs, lists, code and tables.

Inline markup is reduced to its text (link text, image alt text, code spans). A YAML front matter
block is dropped; its `title:` becomes the document title, else the first level-1 heading does.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from pathlib import Path

from markdown_it import MarkdownIt
from markdown_it.token import Token

from appliance.knowledge.document import ExtractedDocument
from appliance.knowledge.extraction.formats.blocks import BlockList, clean_inline, list_item
from appliance.knowledge.extraction.limits import ExtractionLimits
from appliance.knowledge.extraction.formats.text import decode_text

_FRONT_MATTER = re.compile(r"\A---[ \t]*\n(.*?\n)(?:---|\.\.\.)[ \t]*(?:\n|\Z)", re.DOTALL)
_FRONT_TITLE = re.compile(r"^title:[ \t]*(.+?)[ \t]*$", re.MULTILINE)
_TAGS = re.compile(r"<[^>]*>")
_LIST_OPEN = ("bullet_list_open", "ordered_list_open")
_LIST_CLOSE = ("bullet_list_close", "ordered_list_close")


def extract(path: Path, limits: ExtractionLimits, progress: Callable[[int, int | None], None]) -> ExtractedDocument:
    source, title = split_front_matter(decode_text(path.read_bytes()).replace("\r\n", "\n"))
    tokens = MarkdownIt("commonmark").enable("table").parse(source)
    blocks = BlockList()
    first_h1 = _Blocks(tokens, blocks).run()
    return ExtractedDocument(blocks=blocks.blocks(), pages=None, title=title or first_h1, format="markdown")


def split_front_matter(source: str) -> tuple[str, str | None]:
    match = _FRONT_MATTER.match(source)
    if match is None or match.group(1).count("\n") > 200:
        return source, None
    title = _FRONT_TITLE.search(match.group(1))
    value = title.group(1).strip("'\"").strip() if title else ""
    return source[match.end() :], value or None


def inline_text(token: Token) -> str:
    parts = []
    for child in token.children or ():
        if child.type in ("text", "code_inline"):
            parts.append(child.content)
        elif child.type in ("softbreak", "hardbreak"):
            parts.append(" ")
        elif child.type == "image":
            parts.append(child.content)  # the alt text
    return "".join(parts)


class _Blocks:
    """One pass over the token stream; lists and tables consume their whole subtree."""

    def __init__(self, tokens: Sequence[Token], blocks: BlockList) -> None:
        self.tokens = tokens
        self.out = blocks
        self.first_h1: str | None = None

    def run(self) -> str | None:
        tokens, i = self.tokens, 0
        while i < len(tokens):
            token = tokens[i]
            if token.type == "heading_open":
                text = clean_inline(inline_text(tokens[i + 1]))
                level = int(token.tag[1])
                if level == 1 and self.first_h1 is None and text:
                    self.first_h1 = text
                self.out.heading(text, level)
                i += 3
                continue
            if token.type == "paragraph_open":
                self.out.paragraph(inline_text(tokens[i + 1]))
                i += 3
                continue
            if token.type in _LIST_OPEN:
                lines, i = self._list(i, 0)
                self.out.items(lines)
                continue
            if token.type == "table_open":
                i = self._table(i)
                continue
            if token.type in ("fence", "code_block"):
                self.out.code(token.content)
            elif token.type == "html_block" and not token.content.lstrip().startswith("<!--"):
                self.out.paragraph(_TAGS.sub(" ", token.content))
            i += 1
        return self.first_h1

    def _list(self, i: int, depth: int) -> tuple[list[str], int]:
        """The lines of the list opening at tokens[i], and the index just past its close."""
        tokens = self.tokens
        ordered = tokens[i].type == "ordered_list_open"
        number = int(tokens[i].attrGet("start") or 1) if ordered else 0
        lines: list[str] = []
        i += 1
        while i < len(tokens) and tokens[i].type not in _LIST_CLOSE:
            if tokens[i].type != "list_item_open":
                i += 1
                continue
            marker = f"{number}." if ordered else "-"
            number += 1
            parts: list[str] = []
            nested: list[str] = []
            i += 1
            while i < len(tokens) and tokens[i].type != "list_item_close":
                token = tokens[i]
                if token.type in _LIST_OPEN:
                    sub, i = self._list(i, depth + 1)
                    nested.extend(sub)
                    continue
                if token.type == "inline":
                    parts.append(inline_text(token))
                elif token.type in ("fence", "code_block"):
                    parts.append(token.content)
                i += 1
            lines.append(list_item(marker, " ".join(parts), depth))
            lines.extend(nested)
            i += 1
        return lines, i + 1

    def _table(self, i: int) -> int:
        tokens = self.tokens
        rows: list[list[str]] = []
        while i < len(tokens) and tokens[i].type != "table_close":
            token = tokens[i]
            if token.type == "tr_open":
                rows.append([])
            elif token.type == "inline" and rows:
                rows[-1].append(inline_text(token))
            i += 1
        self.out.table(rows)
        return i + 1
