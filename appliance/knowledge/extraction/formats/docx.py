"""Word (.docx) via python-docx: headings from the Title and Heading N styles, lists, tables, in order.

The zip's central directory is checked before anything is unpacked: too many members, too many bytes
in all, or a member compressed beyond any real document's ratio is a `zip_bomb`. zipfile never
inflates a member past the size the directory declares, so the check bounds the work.
"""

from __future__ import annotations

import re
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path

import docx
from docx.document import Document
from docx.table import Table
from docx.text.paragraph import Paragraph

from appliance.knowledge.document import ExtractedDocument
from appliance.knowledge.extraction.formats.blocks import BlockList, clean_inline, list_item
from appliance.knowledge.extraction.errors import ExtractionFailed, damaged
from appliance.knowledge.extraction.limits import ExtractionLimits

MAX_MEMBERS = 10_000
# Real documents' XML deflates by 5-30x; zeros or repeated bytes by ~1000x.
MAX_RATIO = 200
RATIO_FLOOR = 4 * 2**20  # small members may compress well without meaning harm
_HEADING_STYLE = re.compile(r"^heading\s*(\d)$", re.IGNORECASE)


def check_archive(path: Path, limits: ExtractionLimits) -> None:
    """Refuse a zip bomb or a zip that is not a Word document, reading only the central directory."""
    try:
        with zipfile.ZipFile(path) as archive:
            members = archive.infolist()
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError, EOFError):
        raise damaged("a Word document") from None
    bomb = ExtractionFailed(
        "zip_bomb",
        "The Word document unpacks to far more data than a real document holds; it was not opened.",
    )
    if len(members) > MAX_MEMBERS:
        raise bomb
    if sum(info.file_size for info in members) > limits.max_uncompressed_bytes:
        raise bomb
    for info in members:
        if info.file_size > RATIO_FLOOR and info.file_size > MAX_RATIO * max(info.compress_size, 1):
            raise bomb
    if not any(info.filename == "word/document.xml" for info in members):
        raise damaged("a Word document")


def extract(path: Path, limits: ExtractionLimits, progress: Callable[[int, int | None], None]) -> ExtractedDocument:
    check_archive(path, limits)
    try:
        document = docx.Document(str(path))
        blocks, style_title = _blocks(document)
        title = clean_inline(document.core_properties.title or "") or style_title
    except ExtractionFailed:
        raise
    except Exception:  # python-docx and lxml raise many kinds for a malformed package
        raise damaged("a Word document") from None
    return ExtractedDocument(blocks=blocks.blocks(), pages=None, title=title or None, format="docx")


def _blocks(document: Document) -> tuple[BlockList, str | None]:
    blocks = BlockList()
    items: list[str] = []
    numbered = False  # the list being collected uses a "List Number" style: items get 1., 2., ...
    title: str | None = None
    for part in document.iter_inner_content():
        if isinstance(part, Table):
            blocks.items(items)
            items = []
            blocks.table(_rows(part))
            continue
        text = part.text
        if not text.strip():
            continue
        style = (part.style.name if part.style is not None else "") or ""
        heading = _heading_level(style)
        depth = None if heading else _list_depth(part, style)  # numbered headings stay headings
        if depth is not None:
            is_numbered = style.lower().startswith("list number")
            if items and depth == 0 and is_numbered != numbered:  # a bullet list ends, a numbered one starts
                blocks.items(items)
                items = []
            if depth == 0:
                numbered = is_numbered
            count = sum(1 for line in items if not line.startswith(" ")) + 1
            items.append(list_item(f"{count}." if is_numbered and depth == 0 else "-", text, depth))
            continue
        blocks.items(items)
        items = []
        if heading:
            if style.lower() == "title" and title is None:
                title = clean_inline(text)
            blocks.heading(text, heading)
        else:
            blocks.paragraph(text)
    blocks.items(items)
    return blocks, title


def _heading_level(style: str) -> int:
    if style.lower() == "title":
        return 1
    match = _HEADING_STYLE.match(style.strip())
    return min(6, max(1, int(match.group(1)))) if match else 0


def _list_depth(paragraph: Paragraph, style: str) -> int | None:
    """The nesting level of a list paragraph (numbering or a List style), None for other paragraphs."""
    properties = paragraph._p.pPr
    numbering = properties.numPr if properties is not None else None
    if numbering is not None and numbering.numId is not None and numbering.numId.val != 0:
        level = numbering.ilvl.val if numbering.ilvl is not None else 0
        return max(0, min(8, int(level)))
    if style.lower().startswith("list"):
        match = re.search(r"(\d)$", style)
        return int(match.group(1)) - 1 if match else 0
    return None


def _rows(table: Table) -> Iterator[list[str]]:
    for row in table.rows:
        cells: list[str] = []
        previous = None
        for cell in row.cells:
            if cell._tc is previous:  # a merged cell repeats across the columns it spans
                continue
            previous = cell._tc
            cells.append(cell.text)
        yield cells
