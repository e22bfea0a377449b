"""The documents half of one server: the library, the extraction pool, ingest jobs and retrieval.

Built by `create_app` and started in its lifespan: the library opens in a worker thread (it loads
faiss and replays nothing: SQLite is read as needed) and every file left `in_progress` by the last
run is queued again. Routes reach everything through here; each library call runs off the loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from appliance.knowledge.answers import SourceMemory
from appliance.knowledge.embedder import DocumentEmbedder
from appliance.knowledge.extraction import ExtractionLimits, ExtractionPool
from appliance.knowledge.ingest import IngestJobs, JobSettings
from appliance.knowledge.progress import ProgressBoard
from appliance.knowledge.reindex import Reindexer
from appliance.knowledge.retrieval import Retrieval, Retriever, SearchOptions

if TYPE_CHECKING:
    from stores.documents.library import DocumentLibrary

logger = logging.getLogger(__name__)
HASH_BLOCK = 1 << 20
CLOSE_WAIT_S = 30.0


class TrackedLibrary:
    """The library with its calls counted, so closing it waits for calls still running in worker
    threads (a cancelled task's `to_thread` call runs on; closing SQLite under it would crash)."""

    def __init__(self, library: DocumentLibrary) -> None:
        self._library = library
        self._calls = 0
        self._mutex = threading.Lock()

    def __getattr__(self, name: str) -> Any:
        method = getattr(self._library, name)
        if not callable(method):
            return method

        def call(*args: Any, **kwargs: Any) -> Any:
            with self._mutex:
                self._calls += 1
            try:
                return method(*args, **kwargs)
            finally:
                with self._mutex:
                    self._calls -= 1

        return call

    async def close(self) -> None:
        deadline = time.monotonic() + CLOSE_WAIT_S
        while self._calls and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        if self._calls:
            logger.warning("event=documents_close_busy calls=%d", self._calls)
        await asyncio.to_thread(self._library.close)


@dataclass(frozen=True)
class KnowledgeSettings:
    data_path: Path
    default_embedding_model: str = "all-minilm-l6-v2"
    min_similarity: float = 0.25
    ingest_workers: int = 2
    extraction_workers: int = 1
    extraction: ExtractionLimits = ExtractionLimits()


class Knowledge:
    def __init__(self, settings: KnowledgeSettings, scheduler: Any, embeddings: Any) -> None:
        self.settings = settings
        self.path = settings.data_path / "documents"
        self.board = ProgressBoard()
        self.embedder = DocumentEmbedder(scheduler, embeddings)
        self.extraction = ExtractionPool(workers=settings.extraction_workers, limits=settings.extraction)
        self._library: TrackedLibrary | None = None
        self._opening: asyncio.Future[TrackedLibrary] | None = None
        self.jobs: IngestJobs | None = None
        self.reindexer: Reindexer | None = None
        self.retriever: Retriever | None = None
        self.source_memory = SourceMemory()  # rewritten user turns, for follow-ups' prefix cache

    @property
    def default_model(self) -> str:
        return self.settings.default_embedding_model

    async def start(self) -> None:
        """Open the library and resume unfinished ingests; runs as a background task at start-up."""
        library = await self.library()
        self.retriever = Retriever(
            library, self.embedder, default_model=self.default_model, min_similarity=self.settings.min_similarity
        )
        jobs = IngestJobs(
            library,
            self.extraction,
            self.embedder,
            self.board,
            JobSettings(workers=self.settings.ingest_workers, default_model=self.default_model),
        )
        await jobs.start()
        self.jobs = jobs
        self.reindexer = Reindexer(library, jobs)

    async def library(self) -> TrackedLibrary:
        if self._library is None:
            if self._opening is None:
                self._opening = asyncio.ensure_future(asyncio.to_thread(self._open))
            self._library = await asyncio.shield(self._opening)
        return self._library

    async def ready_jobs(self) -> IngestJobs:
        while self.jobs is None:
            await self.library()
            await asyncio.sleep(0.01)
        return self.jobs

    async def run(self, method: str, /, *args: Any, **kwargs: Any) -> Any:
        """`library.<method>(*args, **kwargs)` in a worker thread."""
        library = await self.library()
        return await asyncio.to_thread(getattr(library, method), *args, **kwargs)

    async def search(self, store_ids: list[str], queries: list[str], options: SearchOptions) -> Retrieval:
        await self.library()
        while self.retriever is None:
            await asyncio.sleep(0.01)
        return await self.retriever.search(store_ids, queries, options)

    async def close(self) -> None:
        if self.reindexer is not None:
            await self.reindexer.close()
        if self.jobs is not None:
            await self.jobs.close()
        await self.extraction.close()
        if self._opening is not None and self._library is None:
            with contextlib.suppress(Exception):
                self._library = await self._opening
        if self._library is not None:
            library, self._library = self._library, None
            await library.close()

    def _open(self) -> TrackedLibrary:
        from stores.documents.library import DocumentLibrary

        self.path.mkdir(parents=True, exist_ok=True)
        return TrackedLibrary(DocumentLibrary(self.path).open())


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(HASH_BLOCK):
            digest.update(block)
    return digest.hexdigest()
