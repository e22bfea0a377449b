"""Keyword search: an FTS5 MATCH built only from our own quoting, ranked by BM25.

User text never reaches FTS5's query syntax: every whitespace-separated word becomes a quoted
phrase (``"`` doubled), so ``AND``, ``NEAR``, ``-``, ``*``, ``^``, ``:`` and parentheses are plain
text, and an identifier such as ``ERR_4021`` or ``X-Api-Key`` becomes the phrase of its tokens and
still matches exactly. The words are OR-ed, plus the whole query as one phrase, so chunks holding
the query verbatim earn that rare phrase's weight on top and rank first in practice
(``require_all`` ANDs the words instead). Words without a letter or digit are dropped; a query
left empty finds nothing.
Scores are ``-bm25()``: positive, higher is better, unbounded (not comparable across queries).
"""

from __future__ import annotations

import sqlite3
import unicodedata
from collections.abc import Collection

from stores.documents.records import Hit
from stores.documents.rows import json_list

MAX_WORDS = 32  # FTS5 limits expression depth; longer queries keep their first distinct words
TEXT_WEIGHT = 1.0
HEADING_WEIGHT = 0.5


def _clean(word: str) -> str:
    """The word without control/format/unassigned characters (NUL would cut the query short)."""
    return "".join(ch for ch in word if not unicodedata.category(ch).startswith("C"))


def _phrase(text: str) -> str:
    return '"' + text.replace('"', '""') + '"'


def match_expression(query: str, *, require_all: bool = False) -> str | None:
    """The FTS5 MATCH for ``query``, or None when nothing searchable is left (no results).

    ``require_all`` ANDs the words instead (every word somewhere in the chunk, any order).
    """
    words: list[str] = []
    seen: set[str] = set()
    for raw in query.split():
        word = _clean(raw)
        if not any(ch.isalnum() for ch in word):
            continue  # pure punctuation, symbols or emoji: the tokenizer would find no token
        folded = word.casefold()
        if folded in seen:
            continue
        seen.add(folded)
        words.append(word)
        if len(words) == MAX_WORDS:
            break
    if not words:
        return None
    terms = [_phrase(word) for word in words]
    if require_all:
        return " AND ".join(terms)
    if len(words) > 1:
        terms.append(_phrase(" ".join(words)))
    return " OR ".join(terms)


def keyword_search(
    conn: sqlite3.Connection,
    store_ids: Collection[str],
    query: str,
    limit: int,
    file_ids: Collection[str] | None = None,
    *,
    require_all: bool = False,
) -> list[Hit]:
    """The ``limit`` best BM25 matches among completed files of ``store_ids``, best first."""
    expression = match_expression(query, require_all=require_all)
    if expression is None or limit <= 0 or not store_ids or (file_ids is not None and not file_ids):
        return []
    sql = (
        f"SELECT c.id, -bm25(chunks_fts, {TEXT_WEIGHT}, {HEADING_WEIGHT}) AS score"
        " FROM chunks_fts"
        " JOIN chunks c ON c.id = chunks_fts.rowid"
        " JOIN vector_store_files v ON v.vector_store_id = c.vector_store_id AND v.file_id = c.file_id"
        " WHERE chunks_fts MATCH ?"
        " AND c.vector_store_id IN (SELECT value FROM json_each(?))"
        " AND v.status = 'completed'"
    )
    params: list[object] = [expression, json_list(store_ids)]
    if file_ids is not None:
        sql += " AND c.file_id IN (SELECT value FROM json_each(?))"
        params.append(json_list(file_ids))
    sql += " ORDER BY score DESC, c.id LIMIT ?"
    params.append(limit)
    return [Hit(int(chunk_id), float(score)) for chunk_id, score in conn.execute(sql, params)]
