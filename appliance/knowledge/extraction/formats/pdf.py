"""PDF via pypdfium2: the text of each page as positioned lines, then paragraphs and headings by layout.

The page count is checked before any page is read. A password-protected file is `encrypted_file`, a
file PDFium cannot open `invalid_file`, and a PDF whose pages carry no text layer (a scan) `no_text`.
Progress is reported after each page.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from pathlib import Path

import pypdfium2 as pdfium
import pypdfium2.raw as pdfium_c

from appliance.knowledge.document import ExtractedDocument
from appliance.knowledge.extraction.formats.blocks import clean_inline
from appliance.knowledge.extraction.errors import ExtractionFailed, damaged
from appliance.knowledge.extraction.limits import ExtractionLimits
from appliance.knowledge.extraction.formats.pdf_layout import Line, OutlineEntry, layout

logger = logging.getLogger(__name__)

MAX_OUTLINE_ENTRIES = 10_000
_LINES = re.compile(r"[^\r\n]+")


def extract(path: Path, limits: ExtractionLimits, progress: Callable[[int, int | None], None]) -> ExtractedDocument:
    pdf = _open(path)
    try:
        total = len(pdf)
        if total > limits.max_pages:
            raise ExtractionFailed(
                "too_many_pages",
                f"The PDF has {total} pages; at most {limits.max_pages} can be indexed. Split it into smaller files.",
            )
        if total == 0:
            raise damaged("a PDF")
        outline = _outline(pdf, total)
        title = clean_inline(pdf.get_metadata_value("Title") or "") or None
        pages: list[list[Line]] = []
        for index in range(total):
            pages.append(_page_lines(pdf, index))
            progress(index + 1, total)
    except pdfium.PdfiumError:
        raise damaged("a PDF") from None
    finally:
        pdf.close()
    if not any(line.text.strip() for lines in pages for line in lines):
        raise ExtractionFailed(
            "no_text",
            "The PDF has no text layer (it looks scanned or made of images). Run OCR on it and upload the result.",
        )
    return ExtractedDocument(blocks=layout(pages, outline), pages=total, title=title, format="pdf")


def _open(path: Path) -> pdfium.PdfDocument:
    try:
        return pdfium.PdfDocument(str(path))
    except pdfium.PdfiumError as exc:
        if exc.err_code in (pdfium_c.FPDF_ERR_PASSWORD, pdfium_c.FPDF_ERR_SECURITY):
            raise ExtractionFailed(
                "encrypted_file", "The PDF is protected by a password. Remove the password and upload it again."
            ) from None
        raise damaged("a PDF") from None


def _outline(pdf: pdfium.PdfDocument, total: int) -> list[OutlineEntry]:
    entries = []
    try:
        for bookmark in pdf.get_toc(max_depth=6):
            if len(entries) >= MAX_OUTLINE_ENTRIES:
                break
            title = clean_inline(bookmark.get_title())
            dest = bookmark.get_dest()
            index = dest.get_index() if dest is not None else None
            if title and index is not None and 0 <= index < total:
                entries.append(OutlineEntry(title=title, level=min(6, bookmark.level + 1), page=index + 1))
    except pdfium.PdfiumError:  # a broken outline costs the headings, not the text
        logger.debug("pdf outline unreadable")
    return entries


def _page_lines(pdf: pdfium.PdfDocument, index: int) -> list[Line]:
    page = pdf[index]
    textpage = page.get_textpage()
    try:
        count = textpage.count_chars()
        if count <= 0:
            return []
        text = textpage.get_text_range()
        base = _first_text_index(textpage, count)
        return [_line(textpage, match, base) for match in _LINES.finditer(text) if match.group().strip()]
    finally:
        textpage.close()
        page.close()


def _first_text_index(textpage: pdfium.PdfTextPage, count: int) -> int:
    """The text index of the first character get_text_range returned (chars before it were excluded)."""
    for char_index in range(min(count, 64)):
        text_index = pdfium_c.FPDFText_GetTextIndexFromCharIndex(textpage, char_index)
        if text_index >= 0:
            return text_index
    return 0


def _line(textpage: pdfium.PdfTextPage, match: re.Match[str], base: int) -> Line:
    """A line of text with the box and font size of its first visible character."""
    line = match.group()
    offset = match.start() + (len(line) - len(line.lstrip()))
    char_index = pdfium_c.FPDFText_GetCharIndexFromTextIndex(textpage, base + offset)
    if char_index < 0:
        return Line(text=line)
    try:
        _, bottom, _, top = textpage.get_charbox(char_index, loose=True)
    except pdfium.PdfiumError:
        return Line(text=line)
    size = float(pdfium_c.FPDFText_GetFontSize(textpage, char_index))
    return Line(text=line, top=top, bottom=bottom, size=size)
