"""From SQLite rows to records: the SELECTs files, vector stores, their files and chunks are read
with, JSON columns, a store's derived status and file counts (a batch's are in ``batches``), new ids,
the UNSET argument sentinel and the check of a store's ``expires_after``.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterable, Mapping
from typing import Any

from stores.documents.pages import Source
from stores.documents.records import (
    ChunkRecord,
    FileCounts,
    FileRecord,
    LastError,
    StoreStatus,
    VectorStoreFileRecord,
    VectorStoreRecord,
)
from stores.errors import InvalidInput

DAY_S = 86400

FILE_SELECT = "SELECT id, filename, purpose, bytes, sha256, created_at FROM files"

_COUNT = "(SELECT COUNT(*) FROM vector_store_files f WHERE f.vector_store_id = s.id AND f.status = '{}')"
STORE_SELECT = (
    "SELECT s.id, s.name, s.created_at, s.last_active_at, s.metadata, s.embedding_model,"
    " s.embedding_dimension, s.rerank_model, s.chunking_strategy, s.expires_after,"
    " (SELECT COALESCE(SUM(f.usage_bytes), 0) FROM vector_store_files f"
    "  WHERE f.vector_store_id = s.id AND f.status = 'completed'), "
    + ", ".join(_COUNT.format(status) for status in ("in_progress", "completed", "failed", "cancelled"))
    + " FROM vector_stores s"
)

ATTACHED_SELECT = (
    "SELECT v.file_id, v.vector_store_id, v.status, v.created_at, v.usage_bytes, v.chunk_count,"
    " v.error_code, v.error_message, v.attributes, v.chunking_strategy, v.duplicate_of, v.batch_id"
    " FROM vector_store_files v"
)

CHUNK_SELECT = (
    "SELECT c.id, c.vector_store_id, c.file_id, fl.filename, v.attributes, c.seq, c.text, c.heading_path,"
    " c.page_start, c.page_end, c.char_start, c.char_end, c.tokens"
    " FROM chunks c"
    " JOIN vector_store_files v ON v.vector_store_id = c.vector_store_id AND v.file_id = c.file_id"
    " JOIN files fl ON fl.id = c.file_id"
)


STORES_SOURCE = Source(
    select=STORE_SELECT,
    where="1",
    params=(),
    created_at="s.created_at",
    seq="s.seq",
    cursor_sql="SELECT created_at, seq FROM vector_stores WHERE id = ?",
)


def files_source(purpose: str | None) -> Source:
    """Files for ``list_files``, optionally of one purpose."""
    return Source(
        select=FILE_SELECT,
        where="? IS NULL OR purpose = ?",
        params=(purpose, purpose),
        created_at="created_at",
        seq="seq",
        cursor_sql="SELECT created_at, seq FROM files WHERE id = ?",
    )


def attached_source(store_id: str, status: str | None, batch_id: str | None) -> Source:
    """A store's files for ``list_attached``, optionally of one status and one batch."""
    where = "v.vector_store_id = ? AND (? IS NULL OR v.status = ?)"
    params: list[Any] = [store_id, status, status]
    if batch_id is not None:
        where += " AND v.file_id IN (SELECT file_id FROM batch_files WHERE batch_id = ? AND vector_store_id = ?)"
        params += [batch_id, store_id]
    return Source(
        select=ATTACHED_SELECT,
        where=where,
        params=params,
        created_at="v.created_at",
        seq="v.seq",
        cursor_sql="SELECT created_at, seq FROM vector_store_files WHERE vector_store_id = ? AND file_id = ?",
        cursor_params=(store_id,),
    )


def dump_json(value: Any) -> str | None:
    """Compact JSON text for a JSON column (None stays NULL)."""
    if value is None:
        return None
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False)


def load_json(text: str | None) -> Any:
    return None if text is None else json.loads(text)


def file_record(row: tuple) -> FileRecord:
    return FileRecord(
        id=row[0], filename=row[1], purpose=row[2], bytes=int(row[3]), sha256=row[4], created_at=int(row[5])
    )


def store_record(row: tuple, now: int) -> VectorStoreRecord:
    expires_after = load_json(row[9])
    expires_at = None
    if expires_after is not None:
        anchor = int(row[3]) if expires_after.get("anchor", "last_active_at") == "last_active_at" else int(row[2])
        expires_at = anchor + int(expires_after["days"]) * DAY_S
    counts = FileCounts(in_progress=row[11], completed=row[12], failed=row[13], cancelled=row[14])
    status: StoreStatus
    if expires_at is not None and now >= expires_at:
        status = "expired"
    elif counts.in_progress:
        status = "in_progress"
    else:
        status = "completed"
    return VectorStoreRecord(
        id=row[0],
        name=row[1],
        created_at=int(row[2]),
        last_active_at=int(row[3]),
        metadata=load_json(row[4]) or {},
        embedding_model=row[5],
        embedding_dimension=row[6],
        rerank_model=row[7],
        chunking_strategy=load_json(row[8]),
        expires_after=expires_after,
        expires_at=expires_at,
        usage_bytes=int(row[10]),
        file_counts=counts,
        status=status,
    )


def attached_record(row: tuple) -> VectorStoreFileRecord:
    return VectorStoreFileRecord(
        file_id=row[0],
        vector_store_id=row[1],
        status=row[2],
        created_at=int(row[3]),
        usage_bytes=int(row[4]),
        chunk_count=int(row[5]),
        last_error=LastError(row[6], row[7] or "") if row[6] is not None else None,
        attributes=load_json(row[8]) or {},
        chunking_strategy=load_json(row[9]),
        duplicate_of=row[10],
        batch_id=row[11],
    )


def chunk_record(row: tuple) -> ChunkRecord:
    return ChunkRecord(
        chunk_id=int(row[0]),
        store_id=row[1],
        file_id=row[2],
        filename=row[3],
        attributes=load_json(row[4]) or {},
        seq=int(row[5]),
        text=row[6],
        heading_path=tuple(load_json(row[7]) or ()),
        page_start=row[8],
        page_end=row[9],
        char_start=int(row[10]),
        char_end=int(row[11]),
        tokens=int(row[12]),
    )


def json_list(values: Iterable[Any]) -> str:
    """A JSON array parameter for ``IN (SELECT value FROM json_each(?))`` (no variable limits)."""
    return json.dumps(list(values), ensure_ascii=False)


class _Unset:
    """The type of ``UNSET``: an argument left out (None would mean "clear it")."""

    def __repr__(self) -> str:
        return "UNSET"


UNSET: Any = _Unset()


def new_id(prefix: str) -> str:
    """An OpenAI-style id: ``file-``, ``vs_`` or ``vsfb_`` and 24 hex digits."""
    return f"{prefix}{secrets.token_hex(12)}"


def optional_dict(value: Mapping[str, Any] | None) -> dict[str, Any] | None:
    return None if value is None else dict(value)


def check_expiry(expires_after: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """A store's ``expires_after`` as stored, or InvalidInput naming the field."""
    if expires_after is None:
        return None
    anchor = expires_after.get("anchor", "last_active_at")
    days = expires_after.get("days")
    if anchor != "last_active_at":
        raise InvalidInput("expires_after.anchor must be 'last_active_at'", param="expires_after.anchor")
    if isinstance(days, bool) or not isinstance(days, int) or not 1 <= days <= 365:
        raise InvalidInput("expires_after.days must be an integer from 1 to 365", param="expires_after.days")
    return {"anchor": anchor, "days": days}
