"""The extracted document: ordered blocks of plain text with their kind, heading level and page.

Extraction produces it, chunking reads it, the library keeps it (as compact JSON) so a file can be
chunked again without extracting it again. `from_json` checks every field: the bytes come from a
child process that parsed an untrusted file, or from disk.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, get_args

import orjson

BlockKind = Literal["heading", "paragraph", "list", "table", "code"]
BLOCK_KINDS: frozenset[str] = frozenset(get_args(BlockKind))
BLOCK_SEPARATOR = "\n\n"
FORMATS = ("pdf", "docx", "html", "markdown", "text")


@dataclass(frozen=True)
class Block:
    kind: BlockKind
    text: str  # plain text; lists one item per line ("- item"), tables one row per line, cells joined by " | "
    level: int = 0  # heading level 1..6 for headings, 0 otherwise
    page: int | None = None  # 1-based page (PDF); None for formats without pages


@dataclass(frozen=True)
class ExtractedDocument:
    blocks: tuple[Block, ...]
    pages: int | None  # page count for paged formats, else None
    title: str | None
    format: str  # "pdf" | "docx" | "html" | "markdown" | "text"

    def text(self) -> str:
        """The block texts joined by a blank line: the text chunk spans point into."""
        return BLOCK_SEPARATOR.join(block.text for block in self.blocks)

    def spans(self) -> list[tuple[int, int]]:
        """Each block's (start, end) in text()."""
        spans = []
        position = 0
        for block in self.blocks:
            spans.append((position, position + len(block.text)))
            position += len(block.text) + len(BLOCK_SEPARATOR)
        return spans

    def to_json(self) -> bytes:
        return orjson.dumps(
            {
                "blocks": [[b.kind, b.text, b.level, b.page] for b in self.blocks],
                "pages": self.pages,
                "title": self.title,
                "format": self.format,
            }
        )

    @classmethod
    def from_json(cls, data: bytes) -> ExtractedDocument:
        """Parse `to_json` output; ValueError names the first field that is not what it should be."""
        raw = orjson.loads(data)
        if not isinstance(raw, dict):
            raise ValueError("extracted document: expected a JSON object")
        blocks = raw.get("blocks")
        if not isinstance(blocks, list):
            raise ValueError("extracted document: blocks must be a list")
        return cls(
            blocks=tuple(_block(item, index) for index, item in enumerate(blocks)),
            pages=_optional_int(raw.get("pages"), "pages"),
            title=_optional_str(raw.get("title"), "title"),
            format=_format(raw.get("format")),
        )


def _block(item: Any, index: int) -> Block:
    if not isinstance(item, list) or len(item) != 4:
        raise ValueError(f"extracted document: block {index} must be [kind, text, level, page]")
    kind, text, level, page = item
    if kind not in BLOCK_KINDS:
        raise ValueError(f"extracted document: block {index} has an unknown kind {kind!r}")
    if not isinstance(text, str):
        raise ValueError(f"extracted document: block {index} text must be a string")
    if type(level) is not int or not 0 <= level <= 6:
        raise ValueError(f"extracted document: block {index} level must be 0..6")
    page = _optional_int(page, f"block {index} page")
    return Block(kind=kind, text=text, level=level, page=page)


def _optional_int(value: Any, name: str) -> int | None:
    if value is None or (type(value) is int and value >= 0):
        return value
    raise ValueError(f"extracted document: {name} must be a non-negative integer or null")


def _optional_str(value: Any, name: str) -> str | None:
    if value is None or isinstance(value, str):
        return value
    raise ValueError(f"extracted document: {name} must be a string or null")


def _format(value: Any) -> str:
    if value in FORMATS:
        return value
    raise ValueError(f"extracted document: unknown format {value!r}")
