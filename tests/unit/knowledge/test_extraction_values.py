"""The extracted-document value (text, spans, JSON) and the PDF line layout rules, without any parser."""

from __future__ import annotations

import pytest

from appliance.knowledge.document import Block, ExtractedDocument
from appliance.knowledge.extraction.formats.pdf_layout import Line, OutlineEntry, join_lines, layout

DOCUMENT = ExtractedDocument(
    blocks=(
        Block("heading", "Manual", level=1, page=1),
        Block("paragraph", "Caf\u00e9 \u2014 first.", page=1),
        Block("list", "- a\n- b", page=2),
    ),
    pages=2,
    title="Manual",
    format="pdf",
)


def test_text_and_spans_point_at_each_block() -> None:
    text = DOCUMENT.text()
    assert text == "Manual\n\nCaf\u00e9 \u2014 first.\n\n- a\n- b"
    assert [text[start:end] for start, end in DOCUMENT.spans()] == [block.text for block in DOCUMENT.blocks]


def test_json_round_trip_is_exact_and_compact() -> None:
    data = DOCUMENT.to_json()
    assert b"\n" not in data and b": " not in data
    assert ExtractedDocument.from_json(data) == DOCUMENT


@pytest.mark.parametrize(
    "data",
    [
        b"[]",
        b'{"blocks": [["title", "x", 0, null]], "pages": null, "title": null, "format": "text"}',
        b'{"blocks": [["heading", "x", 9, null]], "pages": null, "title": null, "format": "text"}',
        b'{"blocks": [["paragraph", 5, 0, null]], "pages": null, "title": null, "format": "text"}',
        b'{"blocks": [["paragraph", "x", 0, -1]], "pages": null, "title": null, "format": "text"}',
        b'{"blocks": [], "pages": null, "title": null, "format": "exe"}',
        b'{"blocks": [], "pages": "2", "title": null, "format": "pdf"}',
    ],
)
def test_from_json_rejects_what_to_json_never_writes(data: bytes) -> None:
    with pytest.raises(ValueError, match="extracted document"):
        ExtractedDocument.from_json(data)


def test_hyphenated_words_are_joined_across_lines() -> None:
    assert join_lines(["The extrac-", "tion of well-", "Known terms"]) == "The extraction of well- Known terms"


def body(text: str, baseline: float, size: float = 10.0) -> Line:
    return Line(text=text, top=baseline + size, bottom=baseline, size=size)


def test_gaps_size_changes_and_column_jumps_start_paragraphs() -> None:
    lines = [
        body("Big title", 800, size=20),
        body("one a", 760),
        body("one b", 748),
        body("one c", 736),
        body("two a", 710),  # a wider gap than the 12-unit pitch
        body("two b", 698),
        body("three a", 790),  # back up the page: the next column
        body("three b", 778),
    ]
    blocks = layout([lines], outline=[])
    assert [(b.kind, b.level, b.text) for b in blocks] == [
        ("heading", 1, "Big title"),
        ("paragraph", 0, "one a one b one c"),
        ("paragraph", 0, "two a two b"),
        ("paragraph", 0, "three a three b"),
    ]
    assert {b.page for b in blocks} == {1}


def test_outline_titles_match_wrapped_lines_or_head_their_page() -> None:
    page_one = [body("2.3 Keys and", 800), body("Certificates", 788), body("Body text.", 770)]
    page_two = [body("More text.", 800)]
    outline = [OutlineEntry("2.3 Keys and Certificates", 2, 1), OutlineEntry("Appendix", 1, 2)]
    blocks = layout([page_one, page_two], outline)
    assert [(b.kind, b.level, b.text, b.page) for b in blocks] == [
        ("heading", 2, "2.3 Keys and Certificates", 1),
        ("paragraph", 0, "Body text.", 1),
        ("heading", 1, "Appendix", 2),
        ("paragraph", 0, "More text.", 2),
    ]
