"""The embedding model as documents see it: its tokenizer's counts and limit, and vectors in batches.

Counting runs on the model's worker under a lease, like every call into a loaded model; vectors
come through the shared micro-batcher, in small groups, so an interactive `/v1/embeddings` request
never waits behind a whole document. The groups in flight are bounded across all ingest jobs together:
the batcher merges queued requests, so a bound per job would let parallel jobs fill whole batches
ahead of an interactive request.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from inference.capabilities import Capability
from inference.errors import InvalidRequest

INGEST_GROUP = 8  # chunks per embedding call during ingest
# Groups in the batcher at once, over every ingest job of this server. One: the batcher merges whatever
# is queued into one call, so with two an interactive request waited for a call of two groups and then
# shared its own call with the next two (p99 of a short /v1/embeddings ~4 s during a big ingest on
# 2 CPU cores, ~1 s with one; tests/bench/knowledge.py). The gap between groups is one event-loop hop.
INGEST_IN_FLIGHT = 1


class DocumentEmbedder:
    def __init__(self, scheduler: Any, embeddings: Any) -> None:
        self.scheduler = scheduler
        self.embeddings = embeddings
        self._in_flight = asyncio.Semaphore(INGEST_IN_FLIGHT)

    def resolve(self, model: str) -> str:
        """The catalog's name for `model`, after checking it can embed (404/400 otherwise)."""
        entry = self.scheduler.catalog.get(model)
        return entry.name

    async def count_tokens(self, model: str, texts: Sequence[str]) -> list[int]:
        if not texts:
            return []
        async with self.scheduler.lease(model, Capability.EMBED) as lease:
            backend = lease.backend
            return await lease.run(lambda: list(backend.count_tokens(list(texts))))

    async def limit(self, model: str) -> int:
        """How many tokens the model reads (special tokens included); 512 when it does not say."""
        async with self.scheduler.lease(model, Capability.EMBED) as lease:
            backend = lease.backend
            limit = await lease.run(backend.max_input_tokens)
        return int(limit) if limit else 512

    async def embed(
        self, model: str, texts: Sequence[str], on_done: Callable[[int], None] | None = None
    ) -> np.ndarray:
        """Float32 rows for `texts`, in small groups through the batcher, INGEST_IN_FLIGHT at a time over
        every document; `on_done(n)` after each group. Each call queues at most that many groups for
        the shared gate, so concurrent documents take turns instead of one waiting for the other to
        finish."""
        turn = asyncio.Semaphore(INGEST_IN_FLIGHT)

        async def group(start: int) -> list[list[float]]:
            async with turn, self._in_flight:
                result = await self.embeddings.embed(model, list(texts[start : start + INGEST_GROUP]))
            if on_done is not None:
                on_done(len(result.vectors))
            return result.vectors

        groups = await asyncio.gather(*(group(start) for start in range(0, len(texts), INGEST_GROUP)))
        return np.asarray([row for rows in groups for row in rows], dtype=np.float32).reshape(len(texts), -1)

    async def embed_query(self, model: str, text: str) -> np.ndarray:
        if not text.strip():
            raise InvalidRequest("query must hold some text", param="query")
        result = await self.embeddings.embed(model, [text])
        return np.asarray(result.vectors[0], dtype=np.float32)
