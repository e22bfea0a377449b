"""Each format's extractor (the code the worker children run): blocks, headings, pages, and bad files."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from appliance.knowledge.document import Block, ExtractedDocument
from appliance.knowledge.extraction import ExtractionFailed, ExtractionLimits, detect_format
from appliance.knowledge.extraction.formats import docx as docx_format
from appliance.knowledge.extraction.formats import html as html_format
from appliance.knowledge.extraction.formats import markdown as markdown_format
from appliance.knowledge.extraction.formats import pdf as pdf_format
from appliance.knowledge.extraction.formats import text as text_format
from fixtures import documents

LIMITS = ExtractionLimits()
MARKER = "Calibration marker ERR-MARKER-7731 appears only here."


def extract(module, path: Path, limits: ExtractionLimits = LIMITS) -> ExtractedDocument:  # noqa: ANN001
    seen: list[tuple[int, int | None]] = []
    document = module.extract(path, limits, lambda done, total: seen.append((done, total)))
    assert document.pages is None or seen[-1] == (document.pages, document.pages)
    return document


def failure(module, path: Path, limits: ExtractionLimits = LIMITS) -> ExtractionFailed:  # noqa: ANN001
    with pytest.raises(ExtractionFailed) as caught:
        module.extract(path, limits, lambda done, total: None)
    return caught.value


def headings(document: ExtractedDocument) -> list[tuple[int, str]]:
    return [(block.level, block.text) for block in document.blocks if block.kind == "heading"]


def containing(document: ExtractedDocument, needle: str) -> list[Block]:
    return [block for block in document.blocks if needle in block.text]


# --- PDF ---------------------------------------------------------------------------------------


def test_pdf_blocks_carry_their_page_and_the_outline_gives_headings(tmp_path: Path) -> None:
    path = documents.write_text_pdf(tmp_path, pages=10, marker=MARKER, marker_page=7)
    document = extract(pdf_format, path)
    sections = documents.manual_sections(10)

    assert (document.format, document.pages, document.title) == ("pdf", 10, "Field Service Manual")
    [marker] = containing(document, "ERR-MARKER-7731")
    assert (marker.kind, marker.text, marker.page) == ("paragraph", MARKER, 7)
    expected = [(level, title) for s in sections for level, title in ((1, s.title), (2, s.subtitle))]
    assert headings(document) == expected
    for section in sections:
        [fact] = containing(document, section.code)
        assert fact.page == section.number
        heading = next(b for b in document.blocks if b.kind == "heading" and b.text == section.title)
        assert heading.page == section.number


def test_pdf_lines_are_joined_into_the_paragraphs_they_were_set_as(tmp_path: Path) -> None:
    document = extract(pdf_format, documents.write_text_pdf(tmp_path, pages=3))
    texts = [block.text for block in document.blocks if block.kind == "paragraph"]
    for section in documents.manual_sections(3):
        for paragraph in section.paragraphs:  # each wraps over several lines in the PDF
            assert paragraph in texts
    assert [b.text for b in document.blocks if b.page == 2][-1] == "Page 2"  # the footer stands alone


def test_pdf_without_outline_takes_headings_from_font_sizes(tmp_path: Path) -> None:
    document = extract(pdf_format, documents.write_text_pdf(tmp_path, pages=3, outline=False))
    expected = [
        (level, title) for s in documents.manual_sections(3) for level, title in ((1, s.title), (2, s.subtitle))
    ]
    assert headings(document) == expected


@pytest.mark.parametrize(
    ("write", "limits", "code"),
    [
        (documents.write_encrypted_pdf, LIMITS, "encrypted_file"),
        (documents.write_image_pdf, LIMITS, "no_text"),
        (documents.write_corrupt_pdf, LIMITS, "invalid_file"),
        (lambda folder: documents.write_text_pdf(folder, pages=6), ExtractionLimits(max_pages=5), "too_many_pages"),
        (lambda folder: documents.write_bytes(folder, "fake.pdf", "%PDF-1.7\nnothing else"), LIMITS, "invalid_file"),
    ],
)
def test_bad_pdfs_fail_with_their_reason(
    tmp_path: Path, write: Callable[[Path], Path], limits: ExtractionLimits, code: str
) -> None:
    error = failure(pdf_format, write(tmp_path), limits)
    assert error.code == code
    assert error.message.endswith(".") and "PDF" in error.message


# --- Word --------------------------------------------------------------------------------------


def test_docx_headings_lists_and_tables_in_document_order(tmp_path: Path) -> None:
    document = extract(docx_format, documents.write_docx(tmp_path, sections=2))
    first, second = documents.manual_sections(2)

    assert (document.format, document.pages, document.title) == ("docx", None, "Field Service Manual")
    assert headings(document) == [
        (1, "Field Service Manual"),
        (1, first.title),
        (2, first.subtitle),
        (1, second.title),
        (2, second.subtitle),
        (1, "Error codes"),
    ]
    kinds = [block.kind for block in document.blocks]
    assert kinds[:8] == ["heading", "heading", "paragraph", "heading", "paragraph", "list", "list", "paragraph"]
    bullets, numbered = [b.text for b in document.blocks if b.kind == "list"][:2]
    assert bullets == f"- Check the {first.code} indicator\n- Record the reading in the log"
    assert numbered == "1. Power the unit down\n2. Wait thirty seconds"
    [table] = [b for b in document.blocks if b.kind == "table"]
    assert table.text == f"Code | Component\n{first.code} | {first.title}\n{second.code} | {second.title}"
    assert document.blocks[-1].text == "End of manual."
    assert all(block.page is None for block in document.blocks)


def test_docx_zip_bomb_is_refused_from_the_directory(tmp_path: Path) -> None:
    bomb = documents.write_docx_zip_bomb(tmp_path)  # 300 MiB of zeros in ~300 KB
    assert bomb.stat().st_size < 2**20
    assert failure(docx_format, bomb).code == "zip_bomb"


def test_docx_compression_ratio_and_total_size_limits(tmp_path: Path) -> None:
    small_bomb = documents.write_docx_zip_bomb(tmp_path, uncompressed_mb=40)  # under the total, over the ratio
    assert failure(docx_format, small_bomb).code == "zip_bomb"
    honest = documents.write_docx(tmp_path)
    assert failure(docx_format, honest, ExtractionLimits(max_uncompressed_bytes=10_000)).code == "zip_bomb"


@pytest.mark.parametrize(
    "write",
    [documents.write_zip_not_docx, lambda folder: documents.write_bytes(folder, "fake.docx", "not a zip at all")],
)
def test_docx_that_is_no_word_document_is_invalid(tmp_path: Path, write: Callable[[Path], Path]) -> None:
    error = failure(docx_format, write(tmp_path))
    assert (error.code, error.message) == (
        "invalid_file",
        "The file could not be read as a Word document; it may be damaged or incomplete.",
    )


# --- HTML --------------------------------------------------------------------------------------


def test_html_article_without_page_chrome(tmp_path: Path) -> None:
    document = extract(html_format, documents.write_html(tmp_path, sections=2))
    first, second = documents.manual_sections(2)
    text = document.text()

    assert (document.format, document.title) == ("html", "Field Service Manual")
    for chrome in ("NOT CONTENT", "color: red", "Menu entry", "Home", "Copyright footer", "Enable JavaScript"):
        assert chrome not in text
    assert headings(document) == [
        (1, "Field Service Manual"),
        (2, first.title),
        (3, first.subtitle),
        (2, second.title),
        (3, second.subtitle),
    ]
    lists = [b.text for b in document.blocks if b.kind == "list"]
    assert lists[:2] == [
        f"- Check the {first.code} indicator\n- Record the reading\n  - in the paper log",
        "1. Power the unit down\n2. Wait thirty seconds",
    ]
    [table] = [b for b in document.blocks if b.kind == "table"]
    assert table.text.splitlines() == [
        "Code | Component",
        f"{first.code} | {first.title}",
        f"{second.code} | {second.title}",
    ]
    [code] = [b for b in document.blocks if b.kind == "code"]
    assert code.text == "reset --force\n  --keep-config"
    assert document.blocks[-1] == Block("paragraph", "Loose text in a div with inline markup.")
    assert first.paragraphs[1] in [b.text for b in document.blocks]


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ('<meta charset="iso-8859-1"><p>caf\u00e9 cr\u00e8me</p>'.encode("latin-1"), "caf\u00e9 cr\u00e8me"),
        (
            '<meta http-equiv="Content-Type" content="text/html; charset=windows-1252"><p>\u201cq\u201d</p>'.encode(
                "cp1252"
            ),
            "\u201cq\u201d",
        ),
        ("<p>\u00fcber</p>".encode("utf-16"), "\u00fcber"),
        (b"<p>bad \xff byte</p>", "bad \ufffd byte"),
    ],
)
def test_html_charset_from_meta_or_bom(tmp_path: Path, data: bytes, expected: str) -> None:
    document = extract(html_format, documents.write_bytes(tmp_path, "page.html", data))
    assert [block.text for block in document.blocks] == [expected]
    assert document.title is None


# --- Markdown ----------------------------------------------------------------------------------


def test_markdown_structure(tmp_path: Path) -> None:
    document = extract(markdown_format, documents.write_markdown(tmp_path, sections=2))
    first, second = documents.manual_sections(2)

    assert (document.format, document.title) == ("markdown", "Field Service Manual")
    assert "title:" not in document.text()  # the front matter is not content
    assert headings(document) == [
        (1, "Field Service Manual"),
        (2, first.title),
        (3, first.subtitle),
        (2, second.title),
        (3, second.subtitle),
    ]
    lists = [b.text for b in document.blocks if b.kind == "list"]
    assert lists[:2] == [
        f"- Check the {first.code} indicator\n- Record the reading\n  - in the paper log",
        "1. Power the unit down\n2. Wait thirty seconds",
    ]
    assert [b.text for b in document.blocks if b.kind == "code"] == [
        "reset --force\n  --keep-config",
        "indented code block",
    ]
    [table] = [b for b in document.blocks if b.kind == "table"]
    assert table.text.splitlines() == [
        "Code | Component",
        f"{first.code} | {first.title}",
        f"{second.code} | {second.title}",
    ]
    assert document.blocks[-1] == Block("paragraph", "See the site for more.")


def test_markdown_title_falls_back_to_the_first_level_one_heading(tmp_path: Path) -> None:
    path = documents.write_bytes(tmp_path, "a.md", "Intro line.\n\n## Minor\n\n# Main Title\n\ntext\n")
    assert extract(markdown_format, path).title == "Main Title"


# --- Text --------------------------------------------------------------------------------------


@pytest.mark.parametrize(("encoding", "bom"), [("utf-8", False), ("utf-8", True), ("utf-16", False)])
def test_text_paragraphs_on_blank_lines(tmp_path: Path, encoding: str, bom: bool) -> None:
    document = extract(text_format, documents.write_text(tmp_path, sections=2, encoding=encoding, bom=bom))
    first, second = documents.manual_sections(2)
    assert [b.text for b in document.blocks] == [
        first.title,
        *first.paragraphs[:2],
        second.title,
        *second.paragraphs[:2],
    ]
    assert {b.kind for b in document.blocks} == {"paragraph"}
    assert (document.format, document.title, document.pages) == ("text", None, None)


def test_text_keeps_lines_within_a_paragraph_and_reads_windows_1252(tmp_path: Path) -> None:
    path = documents.write_bytes(
        tmp_path, "a.txt", "Line one\r\nline two\r\n\r\n\r\nNa\u00efve caf\u00e9".encode("cp1252")
    )
    assert [b.text for b in extract(text_format, path).blocks] == ["Line one\nline two", "Na\u00efve caf\u00e9"]


def test_binary_is_not_text(tmp_path: Path) -> None:
    assert failure(text_format, documents.write_binary(tmp_path, "blob.txt")).code == "unsupported_file"


# --- Format detection ----------------------------------------------------------------------------


def test_detect_format_by_magic_then_name_then_media_type(tmp_path: Path) -> None:
    pdf = documents.write_text_pdf(tmp_path, pages=1)
    word = documents.write_docx(tmp_path, sections=1)
    page = documents.write_bytes(tmp_path, "noext", "  <!DOCTYPE html><html><p>x</p></html>")
    plain = documents.write_bytes(tmp_path, "plain", "just some words")
    assert detect_format(pdf, "upload.bin", None) == "pdf"  # content beats the name
    assert detect_format(word, "upload", "application/octet-stream") == "docx"
    assert detect_format(plain, "notes.md", None) == "markdown"
    assert detect_format(plain, "README.rst", None) == "text"
    assert detect_format(plain, "x", "text/html; charset=utf-8") == "html"
    assert detect_format(plain, "x", "text/csv") == "text"
    assert detect_format(page, "x", None) == "html"
    assert detect_format(plain, "x", None) == "text"
    assert detect_format(documents.write_bytes(tmp_path, "broken.pdf", "oops"), "broken.pdf", None) == "pdf"


@pytest.mark.parametrize(
    ("data", "name"),
    [
        (b"\x89PNG\r\n\x1a\n" + bytes(32), "scan.png"),
        (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(32), "old.doc"),
        (bytes(range(256)) * 4, "blob"),
    ],
)
def test_detect_format_refuses_what_it_cannot_read(tmp_path: Path, data: bytes, name: str) -> None:
    with pytest.raises(ExtractionFailed) as caught:
        detect_format(documents.write_bytes(tmp_path, name, data), name, None)
    assert caught.value.code == "unsupported_file"
    assert "Supported formats are" in caught.value.message


def test_detect_format_refuses_zip_that_is_not_word(tmp_path: Path) -> None:
    with pytest.raises(ExtractionFailed) as caught:
        detect_format(documents.write_zip_not_docx(tmp_path, "a.zip"), "a.zip", "application/zip")
    assert caught.value.code == "unsupported_file"
