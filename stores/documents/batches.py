"""Vector store file batches: creating one (every file attached in one transaction), cancelling
one, and the status a batch reports, derived from its files.

OpenAI documents the four statuses, not the rule; this follows what its API shows:
``in_progress`` while any of its files is; then ``cancelled`` if the batch was cancelled or every
file was; ``failed`` if every file failed; otherwise ``completed`` (partial failures show in
``file_counts.failed``, as OpenAI reports them).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping, Sequence
from typing import Any

from stores.documents import attachments
from stores.documents.errors import NotFound
from stores.documents.filters import check_attributes
from stores.documents.records import BatchFile, BatchRecord, FileCounts, FileStatus
from stores.errors import InvalidInput

BATCH_SELECT = "SELECT b.id, b.vector_store_id, b.created_at, b.cancel_requested FROM file_batches b"


def entries(files: Sequence[str | BatchFile]) -> list[BatchFile]:
    """The batch's files, each once (the first mention wins); InvalidInput when there are none."""
    unique: dict[str, BatchFile] = {}
    for item in files:
        entry = item if isinstance(item, BatchFile) else BatchFile(file_id=item)
        unique.setdefault(entry.file_id, entry)
    if not unique:
        raise InvalidInput("a file batch needs at least one file id", param="file_ids")
    return list(unique.values())


def create(
    conn: sqlite3.Connection,
    store_id: str,
    batch_id: str,
    files: Sequence[BatchFile],
    *,
    attributes: Mapping[str, Any] | None,
    chunking: Mapping[str, Any] | None,
    now: int,
) -> None:
    """Insert the batch and attach each file (its own attributes/chunking, else the batch's)."""
    attachments.require_store(conn, store_id)
    conn.execute(
        "INSERT INTO file_batches (id, vector_store_id, created_at) VALUES (?, ?, ?)", (batch_id, store_id, now)
    )
    for entry in files:
        own_chunking = entry.chunking if entry.chunking is not None else chunking
        attachments.attach(
            conn,
            store_id,
            entry.file_id,
            attributes=check_attributes(entry.attributes if entry.attributes is not None else attributes),
            chunking=None if own_chunking is None else dict(own_chunking),
            batch_id=batch_id,
            now=now,
        )


def cancel(conn: sqlite3.Connection, store_id: str, batch_id: str) -> None:
    """Mark the batch cancelled and cancel each of its files still in progress."""
    cursor = conn.execute(
        "UPDATE file_batches SET cancel_requested = 1 WHERE id = ? AND vector_store_id = ?", (batch_id, store_id)
    )
    if cursor.rowcount == 0:
        attachments.require_store(conn, store_id)
        raise NotFound("batch", batch_id, param="batch_id")
    conn.execute(
        "UPDATE vector_store_files SET status = 'cancelled' WHERE vector_store_id = ? AND status = 'in_progress'"
        " AND file_id IN (SELECT file_id FROM batch_files WHERE batch_id = ?)",
        (store_id, batch_id),
    )


def read(conn: sqlite3.Connection, store_id: str, batch_id: str) -> BatchRecord | None:
    row = conn.execute(f"{BATCH_SELECT} WHERE b.id = ? AND b.vector_store_id = ?", (batch_id, store_id)).fetchone()
    if row is None:
        return None
    counts = file_counts(conn, batch_id)
    cancel_requested = bool(row[3])
    return BatchRecord(
        id=row[0],
        vector_store_id=row[1],
        created_at=int(row[2]),
        status=status(counts, cancel_requested),
        file_counts=counts,
        cancel_requested=cancel_requested,
    )


def file_counts(conn: sqlite3.Connection, batch_id: str) -> FileCounts:
    rows = conn.execute(
        "SELECT v.status, COUNT(*) FROM batch_files m JOIN vector_store_files v"
        " ON v.vector_store_id = m.vector_store_id AND v.file_id = m.file_id"
        " WHERE m.batch_id = ? GROUP BY v.status",
        (batch_id,),
    ).fetchall()
    return FileCounts(**{name: int(count) for name, count in rows})


def status(counts: FileCounts, cancel_requested: bool) -> FileStatus:
    if counts.in_progress:
        return "in_progress"
    if cancel_requested or (counts.total and counts.cancelled == counts.total):
        return "cancelled"
    if counts.total and counts.failed == counts.total:
        return "failed"
    return "completed"
