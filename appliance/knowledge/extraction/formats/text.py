"""Plain text: decoded by BOM or as UTF-8 (Windows-1252 as the fallback), paragraphs on blank lines.

Binary data (NUL bytes outside UTF-16/32, or mostly control characters) is refused, not indexed as noise.
"""

from __future__ import annotations

import codecs
from collections.abc import Callable
from pathlib import Path

from appliance.knowledge.document import ExtractedDocument
from appliance.knowledge.extraction.formats.blocks import BlockList, split_paragraphs
from appliance.knowledge.extraction.errors import SUPPORTED, ExtractionFailed
from appliance.knowledge.extraction.limits import ExtractionLimits

BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32-le"),  # before UTF-16 LE: it starts with the same two bytes
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)
_CONTROL = frozenset(range(32)) - {9, 10, 12, 13}


def decode_text(data: bytes) -> str:
    """The text of a file that should be text, or ExtractionFailed('unsupported_file') for binary data."""
    for bom, encoding in BOMS:
        if data.startswith(bom):
            return _refuse_binary(data[len(bom) :].decode(encoding, errors="replace"))
    if b"\x00" in data:
        raise ExtractionFailed("unsupported_file", f"This looks like a binary file, not text. {SUPPORTED}")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return _refuse_binary(data.decode("cp1252", errors="replace"))


def _refuse_binary(text: str) -> str:
    """Decoded bytes that are mostly control or undecodable characters were never text."""
    sample = text[:65536]
    if sum(ord(char) in _CONTROL or char == "\ufffd" for char in sample) > len(sample) // 20:
        raise ExtractionFailed("unsupported_file", f"This looks like a binary file, not text. {SUPPORTED}")
    return text


def extract(path: Path, limits: ExtractionLimits, progress: Callable[[int, int | None], None]) -> ExtractedDocument:
    text = decode_text(path.read_bytes())
    blocks = BlockList()
    for paragraph in split_paragraphs(text):
        blocks.lines(paragraph)
    return ExtractedDocument(blocks=blocks.blocks(), pages=None, title=None, format="text")
