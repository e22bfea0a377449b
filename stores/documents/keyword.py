"""Keyword search: an FTS5 MATCH built only from our own quoting, ranked by BM25.

User text never reaches FTS5's query syntax: every whitespace-separated word becomes a quoted
phrase (``"`` doubled), so ``AND``, ``NEAR``, ``-``, ``*``, ``^``, ``:`` and parentheses are plain
text, and an identifier such as ``ERR_4021`` or ``X-Api-Key`` becomes the phrase of its tokens and
still matches exactly. The words are OR-ed, plus the whole query as one phrase, so chunks holding
the query verbatim earn that rare phrase's weight on top and rank first in practice
(``require_all`` ANDs the words instead). Words without a letter or digit are dropped; a query
left empty finds nothing.
Scores are ``-bm25()``: positive, higher is better, unbounded (not comparable across queries).

Two things keep an OR query fast on a big library. Words found in more than half of all chunks
("the", "to") are left out of the OR when the query has rarer words: BM25 gives such a word an
IDF of about zero (FTS5 floors it at 1e-6), so it never changed a ranking, yet matching it made
every chunk a candidate to score and join. The phrase of the whole query keeps them. And the best
BM25 rows are taken from the FTS index first (a few times ``limit``) and only those are joined to
their store and file; when too few of them belong to the stores asked for, the full join runs.
That first pass is exact: if ``limit`` of the global top rows survive the filter, no row of the
asked stores can outscore them.
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
PREFETCH = 4  # global BM25 rows taken per result asked before joining to stores and files
MIN_PREFETCH = 64


def _clean(word: str) -> str:
    """The word without control/format/unassigned characters (NUL would cut the query short)."""
    return "".join(ch for ch in word if not unicodedata.category(ch).startswith("C"))


def _phrase(text: str) -> str:
    return '"' + text.replace('"', '""') + '"'


def _words(query: str) -> list[str]:
    """The query's distinct searchable words, in order, at most MAX_WORDS."""
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
    return words


def match_expression(
    query: str, *, require_all: bool = False, skip: Collection[str] = ()
) -> str | None:
    """The FTS5 MATCH for ``query``, or None when nothing searchable is left (no results).

    ``require_all`` ANDs the words instead (every word somewhere in the chunk, any order).
    ``skip`` names words left out of the OR (never out of the whole-query phrase).
    """
    words = _words(query)
    if not words:
        return None
    if require_all:
        return " AND ".join(_phrase(word) for word in words)
    terms = [_phrase(word) for word in words if word not in skip]
    if len(words) > 1:
        terms.append(_phrase(" ".join(words)))
    return " OR ".join(terms)


def common_words(conn: sqlite3.Connection, words: list[str]) -> set[str]:
    """The words found in more than half of all chunks, unless that is every word of the query."""
    if len(words) < 2:
        return set()
    total = conn.execute("SELECT count(*) FROM chunks").fetchone()[0]
    if total < 2:
        return set()
    common = set()
    for word in words:
        (found,) = conn.execute("SELECT count(*) FROM chunks_fts WHERE chunks_fts MATCH ?", (_phrase(word),)).fetchone()
        if found * 2 > total:
            common.add(word)
    return common if len(common) < len(words) else set()


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
    if limit <= 0 or not store_ids or (file_ids is not None and not file_ids):
        return []
    skip = set() if require_all else common_words(conn, _words(query))
    expression = match_expression(query, require_all=require_all, skip=skip)
    if expression is None:
        return []
    score = f"-bm25(chunks_fts, {TEXT_WEIGHT}, {HEADING_WEIGHT})"
    candidates = max(limit * PREFETCH, MIN_PREFETCH)
    top = conn.execute(
        f"SELECT rowid, {score} AS score FROM chunks_fts WHERE chunks_fts MATCH ? ORDER BY score DESC, rowid LIMIT ?",
        (expression, candidates),
    ).fetchall()
    if not top:
        return []
    rows = _in_stores(conn, store_ids, file_ids, [chunk_id for chunk_id, _ in top])
    scores = dict(top)
    hits = sorted((Hit(chunk_id, float(scores[chunk_id])) for chunk_id in rows), key=lambda h: (-h.score, h.chunk_id))
    if len(hits) >= limit or len(top) < candidates:
        return hits[:limit]
    # Too few of the global best belong to these stores: score every match of theirs.
    sql = (
        f"SELECT c.id, {score} AS score FROM chunks_fts"
        " JOIN chunks c ON c.id = chunks_fts.rowid"
        " JOIN vector_store_files v ON v.vector_store_id = c.vector_store_id AND v.file_id = c.file_id"
        " WHERE chunks_fts MATCH ? AND c.vector_store_id IN (SELECT value FROM json_each(?))"
        " AND v.status = 'completed'"
    )
    params: list[object] = [expression, json_list(store_ids)]
    if file_ids is not None:
        sql += " AND c.file_id IN (SELECT value FROM json_each(?))"
        params.append(json_list(file_ids))
    sql += " ORDER BY score DESC, c.id LIMIT ?"
    params.append(limit)
    rows = conn.execute(sql, params).fetchall()
    return [Hit(int(chunk_id), float(value)) for chunk_id, value in rows]


def _in_stores(
    conn: sqlite3.Connection, store_ids: Collection[str], file_ids: Collection[str] | None, chunk_ids: list[int]
) -> list[int]:
    """Those of ``chunk_ids`` in completed files of ``store_ids`` (and of ``file_ids`` when given)."""
    sql = (
        "SELECT c.id FROM chunks c"
        " JOIN vector_store_files v ON v.vector_store_id = c.vector_store_id AND v.file_id = c.file_id"
        " WHERE c.id IN (SELECT value FROM json_each(?))"
        " AND c.vector_store_id IN (SELECT value FROM json_each(?)) AND v.status = 'completed'"
    )
    params: list[object] = [json_list(chunk_ids), json_list(store_ids)]
    if file_ids is not None:
        sql += " AND c.file_id IN (SELECT value FROM json_each(?))"
        params.append(json_list(file_ids))
    return [int(chunk_id) for (chunk_id,) in conn.execute(sql, params)]
