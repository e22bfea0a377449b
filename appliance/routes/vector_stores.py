"""OpenAI's Vector Stores API: stores, their files and file batches, search; plus our events and reindex.

Attaching a file queues an ingest job and answers at once with `in_progress`; clients poll (the
`openai-poll-after-ms` header paces the SDK's `*_and_poll` helpers) or follow
`GET …/files/{file_id}/events`, a server-sent event stream of the file object until it ends.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator
from typing import Any

import orjson
from fastapi import APIRouter, Depends, Response
from fastapi.responses import StreamingResponse

from appliance.errors import MODEL_ERRORS, STORE_ERRORS, ApplianceError, BadRequest, error_responses
from appliance.knowledge.ingest import IngestQueueFull
from appliance.knowledge.reindex import ReindexRunning
from appliance.knowledge.retrieval import SearchOptions
from appliance.openapi import event_stream
from appliance.protocol.vector_store_objects import (
    DeletedObject,
    FileBatchObject,
    FileContentPage,
    ListPage,
    SearchResultsPage,
    VectorStoreFileObject,
    VectorStoreObject,
    batch_object,
    deleted_object,
    list_object,
    search_page,
    store_file_object,
    store_object,
)
from appliance.protocol.vector_stores import (
    AttachFile,
    ChunkingStrategy,
    CreateFileBatch,
    CreateVectorStore,
    FileStatusFilter,
    PageLimit,
    PageOrder,
    ReindexRequest,
    SearchRequest,
    UpdateFileAttributes,
    UpdateVectorStore,
    list_params,
)
from appliance.services import Services, services

router = APIRouter(tags=["vector_stores"])

POLL_AFTER_MS = "250"
EVENTS_HEARTBEAT_S = 15.0
# Reading and writing the library; attaching a file also queues an ingest job (429 when full), and
# creating, searching and reindexing resolve (and may load) the embedding and rerank models.
_READ = error_responses(*STORE_ERRORS)
_QUEUE = error_responses(*STORE_ERRORS, 429)
_MODELS = error_responses(*STORE_ERRORS, *MODEL_ERRORS)


def _answers(model: type, errors: dict) -> dict:
    return {"response_model": None, "responses": errors | {200: {"model": model}}}


class TooManyQueued(ApplianceError):
    status, type, code = 429, "server_error", "ingest_queue_full"


@router.post("/vector_stores", **_answers(VectorStoreObject, _MODELS | _QUEUE))
async def create_store(body: CreateVectorStore, svc: Services = Depends(services)) -> dict[str, Any]:
    knowledge = svc.knowledge
    model = await _embedding_model(svc, body.embedding_model or knowledge.default_model)
    if body.rerank_model is not None:
        svc.catalog.get(body.rerank_model)  # 404 for an unknown model, before anything is made
    await _chunking_fits(svc, model, body.chunking_strategy)
    for file_id in body.file_ids:
        await knowledge.run("get_file", file_id)
    record = await knowledge.run(
        "create_store",
        name=body.name,
        embedding_model=model,
        metadata=body.metadata or {},
        chunking=_chunking(body.chunking_strategy),
        rerank_model=body.rerank_model,
        expires_after=body.expires_after.model_dump() if body.expires_after else None,
    )
    for file_id in body.file_ids:
        await _attach(svc, record.id, AttachFile(file_id=file_id, chunking_strategy=body.chunking_strategy))
    return store_object(await knowledge.run("get_store", record.id))


@router.get("/vector_stores", **_answers(ListPage, _READ))
async def list_stores(
    limit: PageLimit = 20, order: PageOrder = "desc", after: str | None = None, before: str | None = None,
    svc: Services = Depends(services),
) -> dict[str, Any]:
    page = await svc.knowledge.run("list_stores", **list_params(limit, order, after, before))
    return list_object(page, store_object)


@router.get("/vector_stores/{store_id}", **_answers(VectorStoreObject, _READ))
async def get_store(store_id: str, svc: Services = Depends(services)) -> dict[str, Any]:
    return _with_reindex(svc, store_object(await svc.knowledge.run("get_store", store_id)))


@router.post("/vector_stores/{store_id}", **_answers(VectorStoreObject, _READ))
async def update_store(store_id: str, body: UpdateVectorStore, svc: Services = Depends(services)) -> dict[str, Any]:
    if body.rerank_model is not None:
        svc.catalog.get(body.rerank_model)
    fields = body.model_dump(exclude_unset=True)
    if "expires_after" in fields and body.expires_after is not None:
        fields["expires_after"] = body.expires_after.model_dump()
    return store_object(await svc.knowledge.run("update_store", store_id, **fields))


@router.delete("/vector_stores/{store_id}", **_answers(DeletedObject, _READ))
async def delete_store(store_id: str, svc: Services = Depends(services)) -> dict[str, Any]:
    await svc.knowledge.run("get_store", store_id)
    (await svc.knowledge.ready_jobs()).stop_store(store_id)
    if svc.knowledge.reindexer is not None:
        svc.knowledge.reindexer.stop(store_id)
    await svc.knowledge.run("delete_store", store_id)
    return deleted_object(store_id, "vector_store.deleted")


# Files of a store


@router.post("/vector_stores/{store_id}/files", **_answers(VectorStoreFileObject, _MODELS | _QUEUE))
async def attach_file(store_id: str, body: AttachFile, svc: Services = Depends(services)) -> dict[str, Any]:
    store = await svc.knowledge.run("get_store", store_id)
    await _chunking_fits(svc, store.embedding_model or svc.knowledge.default_model, body.chunking_strategy)
    record = await _attach(svc, store_id, body)
    return store_file_object(record, svc.knowledge.board.get((store_id, record.file_id)))


@router.get("/vector_stores/{store_id}/files", **_answers(ListPage, _READ))
async def list_store_files(
    store_id: str, limit: PageLimit = 20, order: PageOrder = "desc", after: str | None = None,
    before: str | None = None, filter: FileStatusFilter = None,  # noqa: A002 - OpenAI's parameter name
    svc: Services = Depends(services),
) -> dict[str, Any]:
    page = await svc.knowledge.run(
        "list_attached", store_id, status=filter, **list_params(limit, order, after, before)
    )
    board = svc.knowledge.board
    return list_object(page, lambda r: store_file_object(r, board.get((store_id, r.file_id))))


@router.get("/vector_stores/{store_id}/files/{file_id}", **_answers(VectorStoreFileObject, _READ))
async def get_store_file(store_id: str, file_id: str, response: Response, svc: Services = Depends(services)) -> dict[str, Any]:
    record = await svc.knowledge.run("get_attached", store_id, file_id)
    if record.status == "in_progress":
        response.headers["openai-poll-after-ms"] = POLL_AFTER_MS
    return store_file_object(record, svc.knowledge.board.get((store_id, file_id)))


@router.post(
    "/vector_stores/{store_id}/files/{file_id}", **_answers(VectorStoreFileObject, _READ)
)
async def update_store_file(
    store_id: str, file_id: str, body: UpdateFileAttributes, svc: Services = Depends(services)
) -> dict[str, Any]:
    record = await svc.knowledge.run("update_attributes", store_id, file_id, body.attributes or {})
    return store_file_object(record, svc.knowledge.board.get((store_id, file_id)))


@router.delete("/vector_stores/{store_id}/files/{file_id}", **_answers(DeletedObject, _READ))
async def detach_file(store_id: str, file_id: str, svc: Services = Depends(services)) -> dict[str, Any]:
    await svc.knowledge.run("get_attached", store_id, file_id)
    jobs = await svc.knowledge.ready_jobs()
    jobs.stop(store_id, file_id)
    revived = await svc.knowledge.run("detach", store_id, file_id)
    for heir in revived:  # a duplicate of the detached file now holds its content: ingest it
        with contextlib.suppress(IngestQueueFull):  # it stays in_progress and resumes at the next start
            jobs.submit(store_id, heir)
    return deleted_object(file_id, "vector_store.file.deleted")


@router.get("/vector_stores/{store_id}/files/{file_id}/content", **_answers(FileContentPage, _READ))
async def store_file_content(store_id: str, file_id: str, svc: Services = Depends(services)) -> dict[str, Any]:
    """The file's chunks as this store holds them (OpenAI's vector store file content page)."""
    await svc.knowledge.run("get_attached", store_id, file_id)
    chunks = await svc.knowledge.run("file_chunks", store_id, file_id)
    return {
        "object": "vector_store.file_content.page",
        "data": [{"type": "text", "text": chunk.text} for chunk in chunks],
        "has_more": False,
        "next_page": None,
    }


@router.get(
    "/vector_stores/{store_id}/files/{file_id}/events",
    response_class=StreamingResponse,
    responses=_READ | {200: event_stream("The file object as `vector_store.file.<status>` events, then `[DONE]`")},
)
async def file_events(store_id: str, file_id: str, svc: Services = Depends(services)) -> StreamingResponse:
    """The file object as server-sent events: now, on every change, and a last one when it ends."""
    await svc.knowledge.run("get_attached", store_id, file_id)
    return StreamingResponse(_events(svc, store_id, file_id), media_type="text/event-stream")


async def _events(svc: Services, store_id: str, file_id: str) -> AsyncIterator[bytes]:
    board = svc.knowledge.board
    version = -1
    last: bytes | None = None
    quiet_since = time.monotonic()
    while True:
        record = await svc.knowledge.run("get_attached", store_id, file_id)
        body = orjson.dumps(store_file_object(record, board.get((store_id, file_id))))
        if body != last:
            last = body
            quiet_since = time.monotonic()
            yield b"event: vector_store.file." + record.status.encode() + b"\ndata: " + body + b"\n\n"
        elif time.monotonic() - quiet_since > EVENTS_HEARTBEAT_S:
            quiet_since = time.monotonic()
            yield b": keep-alive\n\n"
        if record.status != "in_progress":
            yield b"data: [DONE]\n\n"
            return
        version = await board.wait(version, timeout=1.0)


# Batches


@router.post("/vector_stores/{store_id}/file_batches", **_answers(FileBatchObject, _MODELS | _QUEUE))
async def create_batch(store_id: str, body: CreateFileBatch, svc: Services = Depends(services)) -> dict[str, Any]:
    store = await svc.knowledge.run("get_store", store_id)
    entries = body.entries()
    model = store.embedding_model or svc.knowledge.default_model
    for entry in entries:
        await _chunking_fits(svc, model, entry.chunking_strategy)
        await svc.knowledge.run("get_file", entry.file_id)
    from stores.documents.records import BatchFile

    batch = await svc.knowledge.run(
        "create_batch",
        store_id,
        [
            BatchFile(
                file_id=entry.file_id,
                attributes=entry.attributes,
                chunking=_chunking(entry.chunking_strategy),
            )
            for entry in entries
        ],
    )
    jobs = await svc.knowledge.ready_jobs()
    for entry in entries:
        record = await svc.knowledge.run("get_attached", store_id, entry.file_id)
        if record.status == "in_progress":
            _submit(jobs, store_id, entry.file_id)
    return batch_object(await svc.knowledge.run("get_batch", store_id, batch.id))


@router.get("/vector_stores/{store_id}/file_batches/{batch_id}", **_answers(FileBatchObject, _READ))
async def get_batch(store_id: str, batch_id: str, response: Response, svc: Services = Depends(services)) -> dict[str, Any]:
    batch = await svc.knowledge.run("get_batch", store_id, batch_id)
    if batch.status == "in_progress":
        response.headers["openai-poll-after-ms"] = POLL_AFTER_MS
    return batch_object(batch)


@router.post(
    "/vector_stores/{store_id}/file_batches/{batch_id}/cancel", **_answers(FileBatchObject, _READ)
)
async def cancel_batch(store_id: str, batch_id: str, svc: Services = Depends(services)) -> dict[str, Any]:
    await svc.knowledge.run("get_batch", store_id, batch_id)
    page = await svc.knowledge.run("list_attached", store_id, batch_id=batch_id, status="in_progress", limit=100)
    pending = list(page.items)
    while page.has_more:
        page = await svc.knowledge.run(
            "list_attached", store_id, batch_id=batch_id, status="in_progress", limit=100, after=pending[-1].file_id
        )
        pending.extend(page.items)
    batch = await svc.knowledge.run("cancel_batch", store_id, batch_id)
    jobs = await svc.knowledge.ready_jobs()
    for record in pending:
        jobs.stop(store_id, record.file_id)
    return batch_object(batch)


@router.get("/vector_stores/{store_id}/file_batches/{batch_id}/files", **_answers(ListPage, _READ))
async def list_batch_files(
    store_id: str, batch_id: str, limit: PageLimit = 20, order: PageOrder = "desc", after: str | None = None,
    before: str | None = None, filter: FileStatusFilter = None, svc: Services = Depends(services),  # noqa: A002
) -> dict[str, Any]:
    await svc.knowledge.run("get_batch", store_id, batch_id)
    page = await svc.knowledge.run(
        "list_attached", store_id, batch_id=batch_id, status=filter, **list_params(limit, order, after, before)
    )
    board = svc.knowledge.board
    return list_object(page, lambda r: store_file_object(r, board.get((store_id, r.file_id))))


# Search


@router.post("/vector_stores/{store_id}/search", **_answers(SearchResultsPage, _MODELS))
async def search(store_id: str, body: SearchRequest, svc: Services = Depends(services)) -> dict[str, Any]:
    store = await svc.knowledge.run("get_store", store_id)
    ranking = body.ranking_options
    options = SearchOptions(
        max_results=body.max_num_results,
        filters=body.filters.model_dump() if body.filters is not None else None,
        ranker=ranking.ranker if ranking else "auto",
        score_threshold=ranking.score_threshold if ranking else 0.0,
        rerank_model=(ranking.rerank_model if ranking and ranking.rerank_model else store.rerank_model)
        if not (ranking and ranking.ranker == "none")
        else None,
        embedding_model=body.embedding_model,
    )
    retrieval = await svc.knowledge.search([store_id], body.queries(), options)
    return search_page(retrieval, body.query)


# Reindex (our extension)


class ReindexConflict(ApplianceError):
    status, type, code = 409, "invalid_request_error", "reindex_running"


@router.post("/vector_stores/{store_id}/reindex", **_answers(VectorStoreObject, _MODELS))
async def reindex(store_id: str, body: ReindexRequest, svc: Services = Depends(services)) -> dict[str, Any]:
    """Re-chunk and re-embed every completed file from its kept text, then swap in one step."""
    store = await svc.knowledge.run("get_store", store_id)
    model = await _embedding_model(svc, body.embedding_model or store.embedding_model or svc.knowledge.default_model)
    await _chunking_fits(svc, model, body.chunking_strategy)
    await svc.knowledge.ready_jobs()
    reindexer = svc.knowledge.reindexer
    assert reindexer is not None  # set with the jobs
    try:
        reindexer.start(store_id, model, _chunking(body.chunking_strategy))
    except ReindexRunning as exc:
        raise ReindexConflict(str(exc)) from None
    return _with_reindex(svc, store_object(store))


def _with_reindex(svc: Services, body: dict[str, Any]) -> dict[str, Any]:
    reindexer = svc.knowledge.reindexer
    state = reindexer.state(body["id"]) if reindexer is not None else None
    if state is not None:
        body["reindex"] = state.as_dict()
        if state.status == "in_progress":
            body["status"] = "in_progress"
    return body


# Helpers


async def _attach(svc: Services, store_id: str, body: AttachFile) -> Any:
    await svc.knowledge.run("get_file", body.file_id)
    record = await svc.knowledge.run(
        "attach",
        store_id,
        body.file_id,
        attributes=body.attributes or {},
        chunking=_chunking(body.chunking_strategy),
    )
    if record.status == "in_progress":
        _submit(await svc.knowledge.ready_jobs(), store_id, body.file_id)
    return record


def _submit(jobs: Any, store_id: str, file_id: str) -> None:
    try:
        jobs.submit(store_id, file_id)
    except IngestQueueFull as exc:
        raise TooManyQueued(str(exc), headers={"Retry-After": "30"}) from None


def _chunking(strategy: ChunkingStrategy | None) -> dict[str, Any] | None:
    return strategy.model_dump(exclude_none=True) if strategy is not None else None


async def _embedding_model(svc: Services, name: str) -> str:
    """The catalog name of an embedding model (404 unknown; 400 if it cannot embed)."""
    entry = svc.catalog.get(name)
    return entry.name


async def _chunking_fits(svc: Services, model: str, strategy: ChunkingStrategy | None) -> None:
    """A static chunk size above what the embedding model reads is refused, naming the limit."""
    if strategy is None or strategy.static is None:
        return
    limit = await svc.knowledge.embedder.limit(model)
    if strategy.static.max_chunk_size_tokens > limit:
        raise BadRequest(
            f"chunking_strategy.static.max_chunk_size_tokens is {strategy.static.max_chunk_size_tokens} but the "
            f"embedding model {model!r} reads at most {limit} tokens; use {limit} or less",
            param="chunking_strategy.static.max_chunk_size_tokens",
        )

