"""The formats: `detect_format` here, one extractor module per format beside it (pdf, docx, html, ...).

Detection looks at magic bytes first, then the filename's extension, then the media type. A file that
claims a format by name but is damaged still gets that format, so its extractor can say `invalid_file`;
a file nothing recognises is `unsupported_file`. Only the first few KB are read (and, for zip files,
the central directory). The extractor modules import their parsing libraries at module level: only
the worker children import them.
"""

from __future__ import annotations

import codecs
import logging
import zipfile
from pathlib import Path, PurePath

from appliance.knowledge.extraction.errors import SUPPORTED, ExtractionFailed

logger = logging.getLogger(__name__)

HEAD_BYTES = 8192
DOCX_MEDIA_TYPE = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"

EXTENSIONS = {
    ".pdf": "pdf",
    ".docx": "docx",
    ".html": "html",
    ".htm": "html",
    ".xhtml": "html",
    ".md": "markdown",
    ".markdown": "markdown",
    ".mdown": "markdown",
    ".mkd": "markdown",
}
# Plain text under another name: notes, logs, data and source code are indexed as text.
TEXT_EXTENSIONS = frozenset(
    ".txt .text .log .csv .tsv .json .jsonl .xml .yaml .yml .toml .ini .cfg .conf .rst .tex .py .js .ts .tsx"
    " .jsx .java .c .h .cc .cpp .hpp .cs .go .rs .rb .php .sh .bash .sql .css .swift .kt .scala .lua .r .m".split()
)
MEDIA_TYPES = {
    "application/pdf": "pdf",
    DOCX_MEDIA_TYPE: "docx",
    "text/html": "html",
    "application/xhtml+xml": "html",
    "text/markdown": "markdown",
    "text/x-markdown": "markdown",
}
# Recognisable binary formats we refuse outright, with a hint where there is a better one.
REFUSED_MAGIC = (
    (
        b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1",
        "Word 97-2003 (.doc) and other legacy Office files are not supported; save it as .docx or PDF.",
    ),
    (b"\x89PNG\r\n\x1a\n", "Images are not supported; text must be extracted (OCR) first."),
    (b"\xff\xd8\xff", "Images are not supported; text must be extracted (OCR) first."),
    (b"GIF8", "Images are not supported; text must be extracted (OCR) first."),
    (b"{\\rtf", "RTF files are not supported; save it as .docx or PDF."),
)


def detect_format(path: Path, filename: str, media_type: str | None = None) -> str:
    """'pdf' | 'docx' | 'html' | 'markdown' | 'text', or ExtractionFailed('unsupported_file')."""
    with open(path, "rb") as handle:
        head = handle.read(HEAD_BYTES)
    suffix = PurePath(filename or "").suffix.lower()
    media = (media_type or "").split(";", 1)[0].strip().lower()

    if b"%PDF-" in head[:1024]:  # the spec lets junk precede the header
        return "pdf"
    if head.startswith((b"PK\x03\x04", b"PK\x05\x06")):
        if suffix == ".docx" or media == DOCX_MEDIA_TYPE or _zip_has_word_document(path):
            return "docx"
        raise ExtractionFailed("unsupported_file", f"This zip archive is not a Word document. {SUPPORTED}")
    for magic, message in REFUSED_MAGIC:
        if head.startswith(magic):
            raise ExtractionFailed("unsupported_file", f"{message} {SUPPORTED}")

    if suffix in EXTENSIONS:
        return EXTENSIONS[suffix]
    if suffix in TEXT_EXTENSIONS:
        return "text"
    if media in MEDIA_TYPES:
        return MEDIA_TYPES[media]
    if media.startswith("text/"):
        return "text"
    return _sniff_text(head)


def _zip_has_word_document(path: Path) -> bool:
    try:
        with zipfile.ZipFile(path) as archive:
            return "word/document.xml" in archive.NameToInfo
    except (zipfile.BadZipFile, OSError, ValueError):
        return False


def _sniff_text(head: bytes) -> str:
    """A file without a telling name: markup that opens like HTML is HTML, readable text is text."""
    if head.startswith((b"\xef\xbb\xbf", b"\xff\xfe", b"\xfe\xff")):
        return "text"
    if b"\x00" in head:
        raise ExtractionFailed("unsupported_file", f"This looks like a binary file. {SUPPORTED}")
    try:
        # Incremental: a multi-byte character cut at the end of the sample is not an error.
        sample = codecs.getincrementaldecoder("utf-8")().decode(head, final=len(head) < HEAD_BYTES)
    except UnicodeDecodeError:
        message = f"This file is neither a known format nor UTF-8 text. {SUPPORTED}"
        raise ExtractionFailed("unsupported_file", message) from None
    opening = sample.lstrip()[:64].lower()
    if opening.startswith(("<!doctype html", "<html")):
        return "html"
    return "text"
