"""Keyword search: hostile user text never reaches FTS5 syntax, identifiers match exactly, the
whole phrase ranks first, scores are positive and best first, only completed files answer."""

from __future__ import annotations

import pytest

from stores.documents.keyword import MAX_WORDS, match_expression
from stores.documents.library import DocumentLibrary

HOSTILE = [
    "",
    "   ",
    '"',
    '""',
    '"""',
    '"unbalanced',
    "AND",
    "OR",
    "NOT",
    "NEAR",
    "a AND",
    "OR b",
    "NOT NOT NOT",
    "NEAR(a b, 3)",
    "NEAR/3",
    "(",
    ")",
    "((a)",
    "a)",
    "-",
    "-a",
    "--",
    "*",
    "a*",
    "*a",
    "^",
    "^a",
    "a^b",
    ":",
    "text:foo",
    "heading_path:bar",
    "chunks_fts:zebra",
    "{text heading_path}: x",
    "+",
    "a + b",
    "'single' quotes",
    "\\",
    "\\\"",
    "%_%",
    "\x00",
    "nul\x00inside",
    "tab\tand\nnewline",
    "🙂",
    "🙂🙂 🔥",
    "emoji🙂glued",
    "日本語のテキスト",
    "Ünïcödé façade naïve",
    "\u200b zero width",
    "\u202e rtl override",
    "a" * 5000,
    " ".join(f"w{i}" for i in range(1000)),
    "OR " * 300,
    '"' * 301,
    "SELECT * FROM chunks; DROP TABLE chunks; --",
    "rank:1 bm25(chunks_fts)",
    "a:b:c::d",
    "ERR_4021",
    "X-Api-Key",
]


@pytest.fixture
def corpus(shelf, library: DocumentLibrary, store_id: str) -> dict[str, int]:
    """A few documents; maps a name to its single chunk id."""
    texts = {
        "error": "Error ERR_4021 means the upstream timed out; retry with backoff.",
        "other_error": "Error ERR_4022 means the key was revoked.",
        "header": "Send the X-Api-Key header with every request.",
        "phrase": "The quick brown fox jumps over the lazy dog.",
        "scattered": "A brown dog and a quick fox, lazy all day, jumps rarely.",
        "unicode": "Naïve façade: Ünïcödé text and 日本語",
        "keywords": "Logical AND OR NOT NEAR operators in prose.",
    }
    ids = {}
    for name, text in texts.items():
        doc = shelf.document(store_id, [text])
        ids[name] = library.file_chunks(store_id, doc.file_id)[0].chunk_id
    return ids


@pytest.mark.parametrize("query", HOSTILE)
def test_hostile_queries_never_raise(library: DocumentLibrary, store_id: str, corpus: dict, query: str) -> None:
    for require_all in (False, True):
        hits = library.keyword_search([store_id], query, 10, require_all=require_all)
        assert all(hit.chunk_id in corpus.values() for hit in hits)


def test_match_expression_quotes_every_word() -> None:
    assert match_expression('say "hi" NEAR(x)') == '"say" OR """hi""" OR "NEAR(x)" OR "say ""hi"" NEAR(x)"'
    assert match_expression("-- ** 🙂") is None
    assert match_expression("") is None
    assert match_expression("a A b", require_all=True) == '"a" AND "b"'
    assert match_expression(" ".join(f"w{i}" for i in range(100))).count(" OR ") == MAX_WORDS


def test_identifiers_find_their_exact_chunk(library: DocumentLibrary, store_id: str, corpus: dict) -> None:
    hits = library.keyword_search([store_id], "ERR_4021", 10)
    assert [h.chunk_id for h in hits] == [corpus["error"]]
    hits = library.keyword_search([store_id], "x-api-key", 10)
    assert [h.chunk_id for h in hits] == [corpus["header"]]
    hits = library.keyword_search([store_id], "what does err_4022 mean?", 10)
    assert hits[0].chunk_id == corpus["other_error"]
    assert library.keyword_search([store_id], "NEAR", 10)[0].chunk_id == corpus["keywords"]


def test_the_whole_phrase_ranks_first_and_scores_are_positive(
    library: DocumentLibrary, store_id: str, corpus: dict
) -> None:
    hits = library.keyword_search([store_id], "quick brown fox", 10)
    assert [h.chunk_id for h in hits[:2]] == [corpus["phrase"], corpus["scattered"]]
    assert all(h.score > 0 for h in hits)
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)


def test_diacritics_and_case_fold(library: DocumentLibrary, store_id: str, corpus: dict) -> None:
    assert library.keyword_search([store_id], "NAIVE facade", 10)[0].chunk_id == corpus["unicode"]


def test_require_all_needs_every_word(library: DocumentLibrary, store_id: str, corpus: dict) -> None:
    loose = {h.chunk_id for h in library.keyword_search([store_id], "error revoked", 10)}
    strict = {h.chunk_id for h in library.keyword_search([store_id], "error revoked", 10, require_all=True)}
    assert loose == {corpus["error"], corpus["other_error"]} and strict == {corpus["other_error"]}


def test_keyword_search_respects_stores_files_and_status(shelf, library: DocumentLibrary, store_id: str) -> None:
    a = shelf.document(store_id, ["pelican facts"])
    b = shelf.document(store_id, ["pelican myths"])
    other = library.create_store(name="other")
    c = shelf.document(other.id, ["pelican elsewhere"])
    pending = shelf.upload("pelican pending")
    library.attach(store_id, pending.id)
    got = {library.get_chunks([h.chunk_id])[0].file_id for h in library.keyword_search([store_id], "pelican", 10)}
    assert got == {a.file_id, b.file_id}
    both = library.keyword_search([store_id, other.id], "pelican", 10)
    assert len(both) == 3
    only_b = library.keyword_search([store_id, other.id], "pelican", 10, file_ids={b.file_id, c.file_id})
    assert {library.get_chunks([h.chunk_id])[0].file_id for h in only_b} == {b.file_id, c.file_id}
    assert library.keyword_search([store_id], "pelican", 10, file_ids=set()) == []
    assert len(library.keyword_search([store_id], "pelican", 1)) == 1


def test_words_in_most_chunks_do_not_make_every_chunk_a_match(shelf, library: DocumentLibrary, store_id: str) -> None:
    """"the" is in every chunk: it adds no BM25 weight, so the OR leaves it out and only the chunks with
    the rarer word answer; a query of common words alone still finds them, and the phrase still counts."""
    ids = [library.file_chunks(store_id, shelf.document(store_id, [f"the note number {i}"]).file_id)[0].chunk_id
           for i in range(6)]
    pump = library.file_chunks(store_id, shelf.document(store_id, ["the pump manual"]).file_id)[0].chunk_id
    assert [h.chunk_id for h in library.keyword_search([store_id], "the pump", 10)] == [pump]
    assert {h.chunk_id for h in library.keyword_search([store_id], "the", 10)} == {*ids, pump}
    assert library.keyword_search([store_id], "the note number 3", 10)[0].chunk_id == ids[3]


def test_stores_drowned_out_by_others_still_get_their_best_matches(shelf, library: DocumentLibrary, store_id: str) -> None:
    """The global top rows come from another store: the search falls back to scoring this store's own."""
    loud = library.create_store(name="loud")
    for i in range(80):
        shelf.document(loud.id, [f"valve valve valve report {i}"])
    quiet = [shelf.document(store_id, [f"a valve in passing, note {i}"]) for i in range(3)]
    hits = library.keyword_search([store_id], "valve", 2)
    assert len(hits) == 2
    assert {library.get_chunks([h.chunk_id])[0].file_id for h in hits} <= {d.file_id for d in quiet}
    assert hits[0].score >= hits[1].score > 0
    mixed = library.keyword_search([store_id, loud.id], "valve", 5)
    assert all(library.get_chunks([h.chunk_id])[0].file_id not in {d.file_id for d in quiet} for h in mixed)
