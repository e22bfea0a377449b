"""The shared way every extractor writes blocks: cleaned text, one list item or table row per line.

`BlockList` drops empty blocks and invisible characters, so every format yields the same plain-text
conventions the chunker and the citations rely on.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from appliance.knowledge.document import Block, BlockKind

# C0 controls except tab/newline, DEL, soft hyphen, zero-width characters and the BOM.
_INVISIBLE = re.compile("[\x00-\x08\x0b-\x1f\x7f\u00ad\u200b-\u200d\u2060\ufeff]")
_SPACES = re.compile(r"\s+")
_LINE_SPACES = re.compile(r"[^\S\n]+")
_BLANK_LINES = re.compile(r"\n\s*\n+")


def clean_inline(text: str) -> str:
    """One line of prose: invisible characters dropped, every run of whitespace a single space."""
    return _SPACES.sub(" ", _INVISIBLE.sub("", text)).strip()


def clean_lines(text: str) -> str:
    """Text whose line breaks matter: spaces collapsed within lines, blank lines dropped."""
    text = _INVISIBLE.sub("", text.replace("\r\n", "\n").replace("\r", "\n"))
    lines = (_LINE_SPACES.sub(" ", line).strip() for line in text.split("\n"))
    return "\n".join(line for line in lines if line)


def clean_code(text: str) -> str:
    """Code keeps its indentation; only line endings, invisible characters and edge blank lines change."""
    text = _INVISIBLE.sub("", text.replace("\r\n", "\n").replace("\r", "\n"))
    return "\n".join(line.rstrip() for line in text.split("\n")).strip("\n")


def split_paragraphs(text: str) -> list[str]:
    """Paragraphs separated by blank lines (lines within one are kept)."""
    return [part for part in _BLANK_LINES.split(text.replace("\r\n", "\n").replace("\r", "\n")) if part.strip()]


class BlockList:
    """Blocks in document order; empty ones never get in."""

    def __init__(self, page: int | None = None) -> None:
        self._blocks: list[Block] = []
        self.page = page  # stamped on each block added while set (paged formats)

    def __len__(self) -> int:
        return len(self._blocks)

    def add(self, kind: BlockKind, text: str, level: int = 0) -> None:
        if text:
            self._blocks.append(Block(kind=kind, text=text, level=level, page=self.page))

    def heading(self, text: str, level: int) -> None:
        self.add("heading", clean_inline(text), max(1, min(6, level)))

    def paragraph(self, text: str) -> None:
        self.add("paragraph", clean_inline(text))

    def lines(self, text: str) -> None:
        """A paragraph whose line breaks are kept (plain text, addresses, poems)."""
        self.add("paragraph", clean_lines(text))

    def items(self, items: Iterable[str]) -> None:
        """A list block from already-marked lines ("- item", "1. item", "  - nested")."""
        self.add("list", "\n".join(line for line in (item.rstrip() for item in items) if line.strip()))

    def table(self, rows: Iterable[Iterable[str]]) -> None:
        lines = []
        for row in rows:
            cells = [clean_inline(cell) for cell in row]
            if any(cells):
                lines.append(" | ".join(cells))
        self.add("table", "\n".join(lines))

    def code(self, text: str) -> None:
        self.add("code", clean_code(text))

    def extend(self, blocks: Iterable[Block]) -> None:
        self._blocks.extend(block for block in blocks if block.text)

    def blocks(self) -> tuple[Block, ...]:
        return tuple(self._blocks)


def list_item(marker: str, text: str, depth: int = 0) -> str:
    """One list line: "- item" or "3. item", indented two spaces per nesting level."""
    return f"{'  ' * depth}{marker} {clean_inline(text)}" if clean_inline(text) else ""
