"""Ingest jobs: a file attached to a vector store becomes searchable chunks, or fails with a reason.

A job runs extract (child process) -> chunk (the embedder's tokenizer) -> embed (the shared batcher,
in small groups) -> one library transaction that makes the whole document searchable at once. The
durable state is the library's `in_progress` row: at start every such row is queued again, so a
`kill -9` mid-ingest resumes (the kept extraction skips the child process). Cancelling stops the
job's task at once (the extraction child is killed) and the library refuses its late commit.
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import contextlib
import logging
import threading
import time
from dataclasses import dataclass
from typing import Any

from appliance.knowledge.chunking import Chunk, ChunkingOptions, auto_options, chunk_document, static_options
from appliance.knowledge.document import ExtractedDocument
from appliance.knowledge.embedder import DocumentEmbedder
from appliance.knowledge.extraction import ExtractionFailed, ExtractionPool
from appliance.knowledge.progress import Key, Progress, ProgressBoard
from inference.errors import InferenceError
from stores.documents.records import ChunkRow

logger = logging.getLogger(__name__)

MAX_QUEUED = 10_000
COUNT_TIMEOUT_S = 120.0


class IngestQueueFull(Exception):
    pass


class ChunkingStopped(Exception):
    pass


@dataclass(frozen=True)
class JobSettings:
    workers: int = 2
    default_model: str = "all-minilm-l6-v2"


class IngestJobs:
    """Runs attached files through the pipeline, `workers` at a time, in the order they came."""

    def __init__(
        self,
        library: Any,
        extraction: ExtractionPool,
        embedder: DocumentEmbedder,
        board: ProgressBoard,
        settings: JobSettings = JobSettings(),
    ) -> None:
        self.library = library
        self.extraction = extraction
        self.embedder = embedder
        self.board = board
        self.settings = settings
        self._queue: collections.deque[Key] = collections.deque()
        self._queued: set[Key] = set()
        self._running: dict[Key, asyncio.Task[None]] = {}
        self._wakeup = asyncio.Event()
        self._workers: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        pending = await asyncio.to_thread(self.library.pending)
        for record in pending:
            self.submit(record.vector_store_id, record.id)
        if pending:
            logger.info("event=ingest_resumed files=%d", len(pending))
        self._workers = [
            asyncio.create_task(self._work(), name=f"ingest-{n}") for n in range(self.settings.workers)
        ]

    async def close(self) -> None:
        for task in [*self._workers, *self._running.values()]:
            task.cancel()
        for task in [*self._workers, *self._running.values()]:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._workers = []

    def submit(self, store_id: str, file_id: str) -> None:
        key = (store_id, file_id)
        if key in self._queued or key in self._running:
            return
        if len(self._queue) >= MAX_QUEUED:
            raise IngestQueueFull(f"{MAX_QUEUED} files are waiting to be ingested; try again later")
        self._queue.append(key)
        self._queued.add(key)
        self.board.set(key, self.board.get(key) or Progress())
        self._wakeup.set()

    def stop(self, store_id: str, file_id: str) -> None:
        """Forget a queued job and cancel a running one (the library row was already changed)."""
        key = (store_id, file_id)
        if key in self._queued:
            self._queued.discard(key)
            with contextlib.suppress(ValueError):
                self._queue.remove(key)
        task = self._running.get(key)
        if task is not None:
            task.cancel()
        self.board.clear(key)

    def stop_store(self, store_id: str) -> None:
        for key in [k for k in [*self._queued, *self._running] if k[0] == store_id]:
            self.stop(*key)

    def stop_file(self, file_id: str) -> None:
        for key in [k for k in [*self._queued, *self._running] if k[1] == file_id]:
            self.stop(*key)

    def queued(self) -> int:
        return len(self._queue)

    async def _work(self) -> None:
        while True:
            while not self._queue:
                self._wakeup.clear()
                await self._wakeup.wait()
            key = self._queue.popleft()
            self._queued.discard(key)
            task = asyncio.create_task(self._run(*key), name=f"ingest {key[1]}")
            self._running[key] = task
            try:
                await asyncio.wait({task})
            finally:
                self._running.pop(key, None)
                self.board.clear(key)
            if task.cancelled():
                logger.info("event=ingest_cancelled store=%s file=%s", *key)
            elif task.exception() is not None:
                logger.error("event=ingest_crashed store=%s file=%s", *key, exc_info=task.exception())
                await self._fail(key, "server_error", "the ingest job failed unexpectedly; see the server log")

    async def _run(self, store_id: str, file_id: str) -> None:
        key = (store_id, file_id)
        record = await asyncio.to_thread(self.library.get_attached, store_id, file_id)
        if record.status != "in_progress":
            return
        store = await asyncio.to_thread(self.library.get_store, store_id)
        model = store.embedding_model or self.settings.default_model
        try:
            document = await self.document(key, file_id)
            limit = await self.embedder.limit(model)
            options = chunking_options(record.chunking_strategy, limit)
            self.board.update(key, phase="chunking")
            chunks = await self.chunks(model, document, options)
            if not chunks:
                await self._fail(key, "no_text", "the file holds no text to index")
                return
            self.board.update(key, phase="embedding", chunks_done=0, chunks_total=len(chunks))
            done = 0

            def embedded(n: int) -> None:
                nonlocal done
                done += n
                self.board.update(key, chunks_done=done)

            vectors = await self.embedder.embed(model, [c.embedding_text() for c in chunks], embedded)
        except ExtractionFailed as exc:
            await self._fail(key, exc.code, exc.message)
            return
        except InferenceError as exc:
            await self._fail(key, exc.code or "server_error", f"embedding model {model!r}: {exc.message}")
            return
        self.board.update(key, phase="indexing")
        rows = [chunk_row(chunk) for chunk in chunks]
        committed = await asyncio.to_thread(self.library.commit_chunks, store_id, file_id, rows, vectors, model=model)
        logger.info("event=ingested store=%s file=%s chunks=%d committed=%s", store_id, file_id, len(rows), committed)

    async def document(self, key: Key, file_id: str) -> ExtractedDocument:
        """The file's extracted text: the kept copy, or extracted now (and kept) in a child process."""
        kept = await asyncio.to_thread(self.library.load_extraction, file_id)
        if kept is not None:
            return ExtractedDocument.from_json(kept)
        self.board.update(key, phase="extracting")
        info = await asyncio.to_thread(self.library.get_file, file_id)
        path = await asyncio.to_thread(self.library.file_path, file_id)

        def pages(done: int, total: int | None) -> None:
            self.board.update(key, pages_done=done, pages_total=total)

        document = await self.extraction.extract(path, info.filename, None, pages)
        await asyncio.to_thread(self.library.save_extraction, file_id, document.to_json())
        return document

    async def chunks(self, model: str, document: ExtractedDocument, options: ChunkingOptions) -> list[Chunk]:
        """`chunk_document` in a thread; its token counts hop back here to run on the model's worker.
        When this task is cancelled the thread stops at its next count instead of waiting on a loop
        that may be closing."""
        loop = asyncio.get_running_loop()
        stop = threading.Event()

        def count(texts: list[str]) -> list[int]:
            future = asyncio.run_coroutine_threadsafe(self.embedder.count_tokens(model, texts), loop)
            deadline = time.monotonic() + COUNT_TIMEOUT_S
            while True:
                try:
                    return future.result(0.2)
                except concurrent.futures.TimeoutError:
                    if stop.is_set() or time.monotonic() > deadline:
                        future.cancel()
                        raise ChunkingStopped("chunking stopped: the job was cancelled or the model did not answer")

        try:
            return await asyncio.to_thread(chunk_document, document, count, options)
        finally:
            stop.set()

    async def _fail(self, key: Key, code: str, message: str) -> None:
        with contextlib.suppress(Exception):
            await asyncio.to_thread(self.library.fail, key[0], key[1], code, message)
        logger.info("event=ingest_failed store=%s file=%s code=%s", key[0], key[1], code)


def chunking_options(strategy: dict[str, Any] | None, limit: int) -> ChunkingOptions:
    if strategy and strategy.get("type") == "static":
        static = strategy.get("static") or {}
        return static_options(static["max_chunk_size_tokens"], static["chunk_overlap_tokens"], limit)
    return auto_options(limit)


def chunk_row(chunk: Chunk) -> ChunkRow:
    return ChunkRow(
        text=chunk.text,
        heading_path=tuple(chunk.heading_path),
        page_start=chunk.page_start,
        page_end=chunk.page_end,
        char_start=chunk.char_start,
        char_end=chunk.char_end,
        tokens=chunk.tokens,
    )
