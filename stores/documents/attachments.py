"""The writes behind a vector store's files, run inside the library's write transaction: attach
(with duplicate detection by sha256), chunk inserts, remove (chunks, FTS rows, batch membership), and putting
duplicates back to work when the file that held their content leaves the store.

A file whose sha256 equals that of a completed file of the store (itself no duplicate) is
``completed`` at once with ``duplicate_of`` naming that file and no chunks: the content is
searchable once, under the first file. Only completed files count: one still in progress may yet
fail or be cancelled, so two copies attached together are both ingested and the second to commit
becomes the duplicate (``DocumentLibrary.commit_chunks``).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping, Sequence
from typing import Any, cast

import numpy as np

from stores.documents.errors import NotFound
from stores.documents.records import ChunkRow
from stores.documents.rows import dump_json
from stores.errors import DimensionMismatch, InvalidInput, ModelMismatch
from stores.index import normalise


def require_store(conn: sqlite3.Connection, store_id: str) -> tuple[Any, ...]:
    """The store's (embedding_model, embedding_dimension), or NotFound."""
    row = conn.execute(
        "SELECT embedding_model, embedding_dimension FROM vector_stores WHERE id = ?", (store_id,)
    ).fetchone()
    if row is None:
        raise NotFound("vector_store", store_id, param="vector_store_id")
    return tuple(row)


def attach(
    conn: sqlite3.Connection,
    store_id: str,
    file_id: str,
    *,
    attributes: dict[str, Any],
    chunking: dict[str, Any] | None,
    batch_id: str | None,
    now: int,
) -> None:
    """Attach ``file_id`` to ``store_id`` (see ``DocumentLibrary.attach`` for the rules)."""
    require_store(conn, store_id)
    file_row = conn.execute("SELECT sha256 FROM files WHERE id = ?", (file_id,)).fetchone()
    if file_row is None:
        raise NotFound("file", file_id, param="file_id")
    existing = conn.execute(
        "SELECT status FROM vector_store_files WHERE vector_store_id = ? AND file_id = ?", (store_id, file_id)
    ).fetchone()
    if existing is None or existing[0] in ("failed", "cancelled"):
        duplicate_of = find_original(conn, store_id, file_id, file_row[0])
        status = "completed" if duplicate_of is not None else "in_progress"
        if existing is None:
            conn.execute(
                "INSERT INTO vector_store_files (vector_store_id, file_id, status, created_at, attributes,"
                " chunking_strategy, duplicate_of, batch_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (store_id, file_id, status, now, dump_json(attributes), dump_json(chunking), duplicate_of, batch_id),
            )
        else:  # a retry of a failed or cancelled file: back to work with the new settings
            conn.execute(
                "UPDATE vector_store_files SET status = ?, attributes = ?, chunking_strategy = ?, duplicate_of = ?,"
                " error_code = NULL, error_message = NULL, usage_bytes = 0, chunk_count = 0"
                " WHERE vector_store_id = ? AND file_id = ?",
                (status, dump_json(attributes), dump_json(chunking), duplicate_of, store_id, file_id),
            )
    if batch_id is not None:
        conn.execute(
            "INSERT OR IGNORE INTO batch_files (batch_id, vector_store_id, file_id) VALUES (?, ?, ?)",
            (batch_id, store_id, file_id),
        )
    conn.execute("UPDATE vector_stores SET last_active_at = ? WHERE id = ?", (now, store_id))


def find_original(conn: sqlite3.Connection, store_id: str, file_id: str, sha256: str) -> str | None:
    """The completed file of the store holding the same bytes as ``file_id`` (itself no duplicate)."""
    row = conn.execute(
        "SELECT v.file_id FROM vector_store_files v JOIN files f ON f.id = v.file_id"
        " WHERE v.vector_store_id = ? AND f.sha256 = ? AND v.file_id != ? AND v.duplicate_of IS NULL"
        " AND v.status = 'completed' ORDER BY v.seq LIMIT 1",
        (store_id, sha256, file_id),
    ).fetchone()
    return None if row is None else str(row[0])


def remove(conn: sqlite3.Connection, store_id: str, file_id: str) -> tuple[list[int], list[str]]:
    """Delete one attachment with its chunks (the FTS trigger drops their index rows); the chunk
    ids removed and the duplicates put back in progress (see ``revive_duplicates``)."""
    chunk_ids = [
        row[0]
        for row in conn.execute(
            "SELECT id FROM chunks WHERE vector_store_id = ? AND file_id = ?", (store_id, file_id)
        )
    ]
    conn.execute("DELETE FROM chunks WHERE vector_store_id = ? AND file_id = ?", (store_id, file_id))
    conn.execute("DELETE FROM vector_store_files WHERE vector_store_id = ? AND file_id = ?", (store_id, file_id))
    return chunk_ids, revive_duplicates(conn, store_id, file_id)


def revive_duplicates(conn: sqlite3.Connection, store_id: str, original: str) -> list[str]:
    """When ``original`` leaves a store, its first duplicate there goes back to ``in_progress``
    (to be ingested: its content is no longer held) and the others point at it. The file ids revived."""
    duplicates = [
        row[0]
        for row in conn.execute(
            "SELECT file_id FROM vector_store_files WHERE vector_store_id = ? AND duplicate_of = ? ORDER BY seq",
            (store_id, original),
        )
    ]
    if not duplicates:
        return []
    heir = duplicates[0]
    conn.execute(
        "UPDATE vector_store_files SET status = 'in_progress', duplicate_of = NULL"
        " WHERE vector_store_id = ? AND file_id = ?",
        (store_id, heir),
    )
    conn.execute(
        "UPDATE vector_store_files SET duplicate_of = ? WHERE vector_store_id = ? AND duplicate_of = ?",
        (heir, store_id, original),
    )
    return [heir]


def check_vectors(chunks: Sequence[ChunkRow], vectors: Any) -> np.ndarray:
    """One unit float32 row per chunk (InvalidInput for a wrong shape, a zero or non-finite row)."""
    matrix = np.asarray(vectors, dtype=np.float32)
    if len(chunks) == 0:
        return np.empty((0, matrix.shape[-1] if matrix.ndim == 2 else 0), dtype=np.float32)
    if matrix.ndim != 2 or matrix.shape[0] != len(chunks) or matrix.shape[1] == 0:
        raise InvalidInput(
            f"vectors must be a (chunks, dimension) matrix with one row per chunk; got shape {matrix.shape} "
            f"for {len(chunks)} chunks",
            param="vectors",
        )
    return normalise(matrix)


def insert_chunks(
    conn: sqlite3.Connection, store_id: str, file_id: str, chunks: Sequence[ChunkRow], unit: np.ndarray
) -> np.ndarray:
    """Insert a document's chunks (the FTS trigger indexes each); their new ids in order."""
    ids = np.empty(len(chunks), dtype=np.int64)
    for seq, chunk in enumerate(chunks):
        cursor = conn.execute(
            "INSERT INTO chunks (vector_store_id, file_id, seq, text, heading_path, page_start, page_end,"
            " char_start, char_end, tokens, vector) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                store_id, file_id, seq, chunk.text, dump_json(list(chunk.heading_path)), chunk.page_start,
                chunk.page_end, chunk.char_start, chunk.char_end, chunk.tokens, unit[seq].tobytes(),
            ),
        )
        ids[seq] = cast(int, cursor.lastrowid)  # set by every INSERT
    return ids


def commit(
    conn: sqlite3.Connection,
    store_id: str,
    file_id: str,
    chunks: Sequence[ChunkRow],
    unit: np.ndarray,
    *,
    model: str,
    now: int,
) -> np.ndarray | None:
    """The body of ``DocumentLibrary.commit_chunks``: the new chunk ids (empty for a duplicate or
    an empty document), or None when the row is no longer in progress and nothing was written."""
    row = conn.execute(
        "SELECT v.status, f.sha256 FROM vector_store_files v JOIN files f ON f.id = v.file_id"
        " WHERE v.vector_store_id = ? AND v.file_id = ?",
        (store_id, file_id),
    ).fetchone()
    if row is None or row[0] != "in_progress":
        return None
    store_model, store_dimension = require_store(conn, store_id)
    if store_model is not None and store_model != model:
        raise ModelMismatch(
            f"vector store {store_id!r} holds embeddings of {store_model!r}, not {model!r}", param="model"
        )
    original = find_original(conn, store_id, file_id, row[1])
    if original is not None:
        conn.execute(
            "UPDATE vector_store_files SET status = 'completed', duplicate_of = ?"
            " WHERE vector_store_id = ? AND file_id = ?",
            (original, store_id, file_id),
        )
        return np.empty(0, dtype=np.int64)
    if len(chunks):
        dimension = unit.shape[1]
        if store_dimension is not None and store_dimension != dimension:
            raise DimensionMismatch(
                f"vector store {store_id!r} holds {store_dimension}-dimensional embeddings, got {dimension}",
                param="vectors",
            )
        conn.execute(
            "UPDATE vector_stores SET embedding_model = ?, embedding_dimension = ? WHERE id = ?",
            (model, dimension, store_id),
        )
    elif store_model is None:
        conn.execute("UPDATE vector_stores SET embedding_model = ? WHERE id = ?", (model, store_id))
    ids = insert_chunks(conn, store_id, file_id, chunks, unit)
    # usage_bytes: the UTF-8 size of the chunk texts, our stand-in for OpenAI's storage usage
    usage = sum(len(chunk.text.encode("utf-8")) for chunk in chunks)
    conn.execute(
        "UPDATE vector_store_files SET status = 'completed', usage_bytes = ?, chunk_count = ?,"
        " error_code = NULL, error_message = NULL WHERE vector_store_id = ? AND file_id = ?",
        (usage, len(chunks), store_id, file_id),
    )
    conn.execute("UPDATE vector_stores SET last_active_at = ? WHERE id = ?", (now, store_id))
    return ids


def replace_all(
    conn: sqlite3.Connection,
    store_id: str,
    documents: Mapping[str, tuple[Sequence[ChunkRow], np.ndarray]],
    *,
    model: str,
    dimension: int,
) -> list[str]:
    """The body of ``DocumentLibrary.replace_store_chunks``: every chunk of the store is dropped and
    each listed completed file gets its new chunks; the store takes the new model and dimension.
    Completed files that are neither listed nor duplicates (they finished under the old model while
    the reindex ran) go back to ``in_progress``; their ids are returned to be ingested again."""
    require_store(conn, store_id)
    conn.execute("DELETE FROM chunks WHERE vector_store_id = ?", (store_id,))
    conn.execute(
        "UPDATE vector_stores SET embedding_model = ?, embedding_dimension = ? WHERE id = ?",
        (model, dimension, store_id),
    )
    for file_id, (chunks, unit) in documents.items():
        status = conn.execute(
            "SELECT status FROM vector_store_files WHERE vector_store_id = ? AND file_id = ?", (store_id, file_id)
        ).fetchone()
        if status is None or status[0] != "completed":
            continue  # detached or changed while the reindex ran: its new chunks are not wanted
        insert_chunks(conn, store_id, file_id, chunks, unit)
        usage = sum(len(chunk.text.encode("utf-8")) for chunk in chunks)
        conn.execute(
            "UPDATE vector_store_files SET usage_bytes = ?, chunk_count = ? WHERE vector_store_id = ? AND file_id = ?",
            (usage, len(chunks), store_id, file_id),
        )
    stale = [
        str(row[0])
        for row in conn.execute(
            "SELECT file_id FROM vector_store_files WHERE vector_store_id = ? AND status = 'completed'"
            " AND duplicate_of IS NULL AND chunk_count > 0",
            (store_id,),
        )
        if row[0] not in documents
    ]
    for file_id in stale:
        conn.execute(
            "UPDATE vector_store_files SET status = 'in_progress', usage_bytes = 0, chunk_count = 0"
            " WHERE vector_store_id = ? AND file_id = ?",
            (store_id, file_id),
        )
    return stale
