"""Reindex: a vector store re-chunked and re-embedded with another model, from the kept extracted text.

No file is uploaded again: each completed file's extraction (kept by the ingest job, or extracted
again from its blob) is chunked with the new model's tokenizer and embedded; then one library
transaction swaps every chunk and the store's model at once. Searches answer from the old chunks
until that moment. Files that finish or start meanwhile are ingested again under the new model.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import asdict, dataclass, replace
from typing import Any

from appliance.knowledge.extraction import ExtractionFailed
from appliance.knowledge.ingest import IngestJobs, chunk_row, chunking_options
from inference.errors import InferenceError
from stores.errors import StoreError

logger = logging.getLogger(__name__)


class ReindexRunning(Exception):
    pass


@dataclass(frozen=True)
class ReindexState:
    status: str  # in_progress | completed | failed
    embedding_model: str
    files_done: int = 0
    files_total: int = 0
    error: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class Reindexer:
    def __init__(self, library: Any, jobs: IngestJobs) -> None:
        self.library = library
        self.jobs = jobs
        self._states: dict[str, ReindexState] = {}
        self._tasks: dict[str, asyncio.Task[None]] = {}

    def state(self, store_id: str) -> ReindexState | None:
        return self._states.get(store_id)

    def start(self, store_id: str, model: str, chunking: dict[str, Any] | None) -> ReindexState:
        if store_id in self._tasks:
            raise ReindexRunning(f"vector store {store_id!r} is being reindexed already; wait for it to finish")
        state = self._states[store_id] = ReindexState("in_progress", model)
        task = asyncio.create_task(self._run(store_id, model, chunking), name=f"reindex {store_id}")
        self._tasks[store_id] = task
        task.add_done_callback(lambda _: self._tasks.pop(store_id, None))
        return state

    def stop(self, store_id: str) -> None:
        task = self._tasks.get(store_id)
        if task is not None:
            task.cancel()
        self._states.pop(store_id, None)

    async def close(self) -> None:
        tasks = list(self._tasks.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _run(self, store_id: str, model: str, chunking: dict[str, Any] | None) -> None:
        try:
            files = await self._completed_files(store_id)
            self._set(store_id, files_total=len(files))
            limit = await self.jobs.embedder.limit(model)
            documents: dict[str, tuple[list[Any], Any]] = {}
            for record in files:
                document = await self.jobs.document((store_id, record.file_id), record.file_id)
                options = chunking_options(chunking or record.chunking_strategy, limit)
                chunks = await self.jobs.chunks(model, document, options)
                vectors = await self.jobs.embedder.embed(model, [chunk.embedding_text() for chunk in chunks])
                documents[record.file_id] = ([chunk_row(chunk) for chunk in chunks], vectors)
                self._set(store_id, files_done=len(documents))
            stale = await asyncio.to_thread(self.library.replace_store_chunks, store_id, documents, model=model)
            for file_id in stale:
                self.jobs.submit(store_id, file_id)
            pending = await asyncio.to_thread(self.library.pending)
            for record in pending:  # jobs that started under the old model start again
                if record.vector_store_id == store_id:
                    self.jobs.stop(store_id, record.file_id)
                    self.jobs.submit(store_id, record.file_id)
            self._set(store_id, status="completed")
            logger.info("event=reindexed store=%s model=%s files=%d requeued=%d", store_id, model, len(documents), len(stale))
        except (ExtractionFailed, InferenceError, StoreError) as exc:
            message = getattr(exc, "message", str(exc))
            self._set(store_id, status="failed", error=message)
            logger.warning("event=reindex_failed store=%s reason=%s", store_id, message)

    async def _completed_files(self, store_id: str) -> list[Any]:
        records: list[Any] = []
        after = None
        while True:
            page = await asyncio.to_thread(
                self.library.list_attached, store_id, status="completed", limit=100, order="asc", after=after
            )
            records.extend(r for r in page.items if not r.duplicate_of)
            if not page.has_more or not page.items:
                return records
            after = page.items[-1].file_id

    def _set(self, store_id: str, **fields: Any) -> None:
        state = self._states.get(store_id)
        if state is not None:
            self._states[store_id] = replace(state, **fields)
