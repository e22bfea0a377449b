"""The JSON objects of the Files and Vector Stores API, built from the document library's records.

Shapes follow OpenAI's reference (`file`, `vector_store`, `vector_store.file`,
`vector_store.files_batch`, `vector_store.search_results.page`, `list`); our additions are extra
keys that SDKs ignore.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from appliance.knowledge.progress import Progress
from appliance.knowledge.retrieval import Retrieval


def file_object(record: Any) -> dict[str, Any]:
    return {
        "id": record.id,
        "object": "file",
        "bytes": record.bytes,
        "created_at": record.created_at,
        "filename": record.filename,
        "purpose": record.purpose,
        "status": "processed",
        "status_details": None,
        "expires_at": None,
    }


def store_object(record: Any) -> dict[str, Any]:
    return {
        "id": record.id,
        "object": "vector_store",
        "created_at": record.created_at,
        "name": record.name,
        "usage_bytes": record.usage_bytes,
        "file_counts": record.file_counts.as_dict(),
        "status": record.status,
        "expires_after": record.expires_after,
        "expires_at": record.expires_at,
        "last_active_at": record.last_active_at,
        "metadata": record.metadata or {},
        "embedding_model": record.embedding_model,
        "embedding_dimension": record.embedding_dimension,
        "rerank_model": record.rerank_model,
        "chunking_strategy": record.chunking_strategy or {"type": "auto"},
    }


def store_file_object(record: Any, progress: Progress | None = None) -> dict[str, Any]:
    error = record.last_error
    body: dict[str, Any] = {
        "id": record.file_id,
        "object": "vector_store.file",
        "usage_bytes": record.usage_bytes,
        "created_at": record.created_at,
        "vector_store_id": record.vector_store_id,
        "status": record.status,
        "last_error": {"code": error.code, "message": error.message} if error is not None else None,
        "chunking_strategy": _chunking_object(record.chunking_strategy),
        "attributes": record.attributes or {},
        "chunk_count": record.chunk_count,
    }
    if record.duplicate_of:
        body["duplicate_of"] = record.duplicate_of
    if record.status == "in_progress":
        body["progress"] = (progress or Progress()).as_dict()
    return body


def batch_object(record: Any) -> dict[str, Any]:
    return {
        "id": record.id,
        "object": "vector_store.files_batch",
        "created_at": record.created_at,
        "vector_store_id": record.vector_store_id,
        "status": record.status,
        "file_counts": record.file_counts.as_dict(),
    }


def list_object(page: Any, shape: Callable[[Any], dict[str, Any]]) -> dict[str, Any]:
    data = [shape(item) for item in page.items]
    return {
        "object": "list",
        "data": data,
        "first_id": data[0]["id"] if data else None,
        "last_id": data[-1]["id"] if data else None,
        "has_more": page.has_more,
    }


def deleted_object(object_id: str, kind: str) -> dict[str, Any]:
    return {"id": object_id, "object": kind, "deleted": True}


def search_page(retrieval: Retrieval, query: str | list[str]) -> dict[str, Any]:
    return {
        "object": "vector_store.search_results.page",
        "search_query": query,
        "data": list(search_results(retrieval.results)),
        "has_more": False,
        "next_page": None,
        "retrieval": {
            "status": retrieval.status,
            "embedding_model": retrieval.model,
            "candidates": retrieval.considered,
            "below_floor": retrieval.dropped_by_floor,
        },
    }


def search_results(results: Iterable[Any]) -> Iterable[dict[str, Any]]:
    for item in results:
        chunk = item.chunk
        entry: dict[str, Any] = {
            "file_id": chunk.file_id,
            "filename": chunk.filename,
            "score": item.score,
            "attributes": chunk.attributes or {},
            "content": [{"type": "text", "text": chunk.text}],
            "chunk_id": str(chunk.chunk_id),
            "vector_store_id": chunk.store_id,
            "heading_path": " › ".join(chunk.heading_path) if chunk.heading_path else None,
            "scores": item.scores(),
        }
        if chunk.page_start is not None:
            entry["page_start"] = chunk.page_start
            entry["page_end"] = chunk.page_end if chunk.page_end is not None else chunk.page_start
        yield entry


def _chunking_object(strategy: dict[str, Any] | None) -> dict[str, Any]:
    """OpenAI's two reported kinds: `static` with its numbers, and `other` (here: `auto`, which
    follows the embedding model's own limit)."""
    if strategy and strategy.get("type") == "static":
        return {"type": "static", "static": dict(strategy.get("static") or {})}
    return {"type": "other"}


# -- the same objects as schemas, for the OpenAPI document (the functions above build them) ------


class _Shape(BaseModel):
    model_config = ConfigDict(extra="allow")  # our own additions may grow; SDKs ignore unknown keys


class FileObject(_Shape):
    id: str
    object: Literal["file"]
    bytes: int
    created_at: int
    filename: str
    purpose: str
    status: Literal["processed"]
    status_details: None
    expires_at: None


class FileCounts(_Shape):
    in_progress: int
    completed: int
    failed: int
    cancelled: int
    total: int


class VectorStoreObject(_Shape):
    id: str
    object: Literal["vector_store"]
    created_at: int
    name: str | None
    usage_bytes: int
    file_counts: FileCounts
    status: str
    expires_after: dict[str, Any] | None
    expires_at: int | None
    last_active_at: int
    metadata: dict[str, Any]
    embedding_model: str | None
    embedding_dimension: int | None
    rerank_model: str | None
    chunking_strategy: dict[str, Any]


class VectorStoreFileObject(_Shape):
    id: str
    object: Literal["vector_store.file"]
    usage_bytes: int
    created_at: int
    vector_store_id: str
    status: Literal["in_progress", "completed", "failed", "cancelled"]
    last_error: dict[str, str] | None
    chunking_strategy: dict[str, Any]
    attributes: dict[str, str | float | bool]
    chunk_count: int


class FileBatchObject(_Shape):
    id: str
    object: Literal["vector_store.files_batch"]
    created_at: int
    vector_store_id: str
    status: str
    file_counts: FileCounts


class ListPage(_Shape):
    object: Literal["list"]
    data: list[dict[str, Any]]
    first_id: str | None
    last_id: str | None
    has_more: bool


class DeletedObject(_Shape):
    id: str
    object: str
    deleted: Literal[True]


class SearchResultsPage(_Shape):
    object: Literal["vector_store.search_results.page"]
    search_query: str | list[str]
    data: list[dict[str, Any]]
    has_more: bool
    next_page: str | None


class FileContentPage(_Shape):
    object: Literal["vector_store.file_content.page"]
    data: list[dict[str, Any]]
    has_more: bool
    next_page: str | None
