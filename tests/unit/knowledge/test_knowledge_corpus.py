"""Self-check of the retrieval-evaluation corpus: every label is true of the files it writes.

Text is extracted here independently of the product's extractors (pypdfium2 per page, python-docx paragraphs and
tables, HTML and Markdown with markup stripped), so a wrong label cannot hide behind a matching extractor bug.
"""

from __future__ import annotations

import dataclasses
import html
import re
from collections import Counter
from pathlib import Path

import pytest

import fixtures.knowledge_corpus as knowledge_corpus
from fixtures.knowledge_corpus import (
    MANUAL_PDF,
    Corpus,
    Question,
    build_corpus,
    gold_rank,
    mrr_at,
    ndcg_at,
    normalize,
    recall_at,
)

pdfium = pytest.importorskip("pypdfium2")
docx = pytest.importorskip("docx")
pytest.importorskip("reportlab")


def _pdf_pages(path: Path) -> list[str]:
    document = pdfium.PdfDocument(path)
    try:
        pages = []
        for index in range(len(document)):
            page = document[index]
            textpage = page.get_textpage()
            pages.append(textpage.get_text_range())
            textpage.close()
            page.close()
        return pages
    finally:
        document.close()


def _docx_text(path: Path) -> str:
    document = docx.Document(str(path))
    parts = [paragraph.text for paragraph in document.paragraphs]
    for table in document.tables:
        parts += [" | ".join(cell.text for cell in row.cells) for row in table.rows]
    return "\n".join(parts)


def _html_text(path: Path) -> str:
    source = path.read_text(encoding="utf-8")
    source = re.sub(r"<(script|style|nav)\b.*?</\1>", " ", source, flags=re.S | re.I)
    return html.unescape(re.sub(r"<[^>]+>", " ", source))


def _markdown_text(path: Path) -> str:
    return path.read_text(encoding="utf-8").replace("`", "").replace("**", "")


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Corpus:
    return build_corpus(tmp_path_factory.mktemp("corpus"))


@pytest.fixture(scope="module")
def texts(corpus: Corpus) -> dict[str, list[str]]:
    """Normalised text of every file, one entry per page for PDFs and a single entry otherwise."""
    extract = {".docx": _docx_text, ".html": _html_text, ".md": _markdown_text}
    out: dict[str, list[str]] = {}
    for path in corpus.all_files:
        raw = _pdf_pages(path) if path.suffix == ".pdf" else [extract[path.suffix](path)]
        out[path.name] = [normalize(text) for text in raw]
    return out


def _count(texts: dict[str, list[str]], needle: str, *, words: bool = False) -> Counter[str]:
    """Occurrences per file; with ``words`` only where the needle is not part of a longer word."""
    pattern = re.escape(normalize(needle))
    if words:
        pattern = rf"(?<![\w.-]){pattern}(?![\w-])"
    return Counter({name: n for name, pages in texts.items() if (n := len(re.findall(pattern, " ".join(pages))))})


def test_every_answer_occurs_exactly_once_in_its_gold_file(corpus: Corpus, texts: dict[str, list[str]]) -> None:
    wrong = {
        q.id: dict(found) for q in corpus.questions if (found := _count(texts, q.answer)) != Counter({q.filename: 1})
    }
    assert wrong == {}


def test_pdf_answers_are_on_their_labelled_page(corpus: Corpus, texts: dict[str, list[str]]) -> None:
    pdf_questions = [q for q in corpus.questions if q.format == "pdf"]
    wrong = {}
    for q in pdf_questions:
        pages = [n for n, text in enumerate(texts[q.filename], start=1) if normalize(q.answer) in text]
        if pages != [q.page]:
            wrong[q.id] = (q.page, pages)
    assert wrong == {}
    assert all(q.page is None for q in corpus.questions if q.format != "pdf")


def test_terms_are_rare_and_sit_with_their_answer(corpus: Corpus, texts: dict[str, list[str]]) -> None:
    for q in corpus.questions:
        if q.kind not in ("keyword", "mixed"):
            assert q.term is None, q.id
            continue
        assert q.term and normalize(q.term) in normalize(q.text), q.id
        found = _count(texts, q.term, words=True)
        assert found[q.filename] >= 1, (q.id, dict(found))
        if q.kind == "keyword":
            assert found == Counter({q.filename: 1}), (q.id, dict(found))
        else:
            assert sum(found.values()) <= 5, (q.id, dict(found))


def test_question_shape_and_mix(corpus: Corpus) -> None:
    questions = corpus.questions
    assert len(questions) >= 48
    assert len({q.id for q in questions}) == len(questions)
    assert len({normalize(q.answer) for q in questions}) == len(questions)
    assert all(10 <= len(q.answer) <= 60 for q in questions), [q.id for q in questions if not 10 <= len(q.answer) <= 60]
    kinds = Counter(q.kind for q in questions)
    assert min(kinds["paraphrase"], kinds["keyword"], kinds["mixed"]) >= 12, kinds
    assert 2 <= kinds["phrase"] <= 3 and all(q.text.startswith('"') for q in questions if q.kind == "phrase")
    formats = Counter(q.format for q in questions)
    assert min(formats[f] for f in ("pdf", "docx", "html", "markdown")) >= 8, formats
    assert len({q.page for q in questions if q.format == "pdf"}) >= 8
    names = {path.name for path in corpus.files}
    assert {q.filename for q in questions} <= names


def test_documents_have_the_promised_structure(corpus: Corpus, texts: dict[str, list[str]]) -> None:
    suffixes = Counter(path.suffix for path in corpus.files)
    assert suffixes[".pdf"] >= 1 and suffixes[".docx"] >= 1 and suffixes[".html"] >= 3 and suffixes[".md"] >= 2
    assert len(corpus.distractors) >= 3 and all(path.is_file() for path in corpus.all_files)
    assert len(texts[MANUAL_PDF]) >= 12

    document = pdfium.PdfDocument(corpus.file(MANUAL_PDF))
    try:
        outline = [(item.level, item.get_title()) for item in document.get_toc()]
    finally:
        document.close()
    assert (0, "1 Introduction") in outline and (0, "2 Setup") in outline and (1, "2.3 Keys") in outline

    handbook = docx.Document(str(corpus.file("fleet_operations_handbook.docx")))
    styles = Counter(paragraph.style.name for paragraph in handbook.paragraphs)
    assert styles["Heading 1"] >= 4 and styles["Heading 2"] >= 6
    assert styles["List Bullet"] >= 4 and styles["List Number"] >= 4 and len(handbook.tables) >= 2


def test_build_is_deterministic(corpus: Corpus, tmp_path: Path) -> None:
    again = build_corpus(tmp_path)
    assert again.questions == corpus.questions
    for first, second in zip(corpus.all_files, again.all_files, strict=True):
        if first.suffix != ".docx":  # the docx zip carries timestamps; its text is compared elsewhere
            assert first.read_bytes() == second.read_bytes(), first.name


def test_a_wrong_page_label_stops_the_build(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    first = knowledge_corpus.QUESTIONS[0]
    assert first.page is not None
    monkeypatch.setattr(knowledge_corpus, "QUESTIONS", (dataclasses.replace(first, page=first.page + 1),))
    with pytest.raises(RuntimeError, match=first.id):
        build_corpus(tmp_path)


def test_metrics() -> None:
    results = ["Nothing here.", "The status ring\nglows WHITE while", "glows white while again"]
    assert gold_rank(results, "ring glows white") == 2
    assert gold_rank(results, "absent") is None
    ranks = [1, 2, None, 11]
    assert recall_at(ranks, 1) == 0.25 and recall_at(ranks, 10) == 0.5 and recall_at([], 5) == 0.0
    assert ndcg_at(ranks, 10) == pytest.approx((1.0 + 1 / 1.584962500721156) / 4)
    assert mrr_at(ranks, 10) == pytest.approx((1.0 + 0.5) / 4)


def test_question_format_follows_the_filename() -> None:
    assert Question("x", "q", "keyword", "a.md", "some answer").format == "markdown"
    assert Question("x", "q", "keyword", "a.pdf", "some answer", page=1).format == "pdf"
