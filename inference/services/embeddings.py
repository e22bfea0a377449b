"""Embeddings and rerank as a service: one micro-batcher per model, each batch under one lease.

A batch runs on the model's worker thread in one hop: count tokens (for usage and the truncation
policy) and embed, or score every (query, document) pair. Inputs longer than the model reads are
truncated by default, as sentence-transformers does; with truncation off they are refused (400).
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from inference.capabilities import Capability
from inference.errors import ContextLengthExceeded, InvalidRequest
from inference.services.batching import BatchConfig, MicroBatcher, estimate_tokens


@dataclass(frozen=True)
class Embedded:
    vector: list[float]
    tokens: int
    limit: int | None  # the model's input limit in tokens, None when it has none


@dataclass(frozen=True)
class EmbeddingResult:
    vectors: list[list[float]]
    prompt_tokens: int
    dimensions: int


@dataclass(frozen=True)
class RerankResult:
    scores: list[float]
    prompt_tokens: int


class EmbeddingService:
    def __init__(self, scheduler: Any, config: BatchConfig = BatchConfig(), *, truncate: bool = True) -> None:
        self.scheduler = scheduler
        self.config = config
        self.truncate = truncate
        self._embedders: dict[str, MicroBatcher[str, Embedded]] = {}
        self._rerankers: dict[str, MicroBatcher[tuple[str, str], tuple[float, int]]] = {}

    async def embed(self, model: str, texts: Sequence[str], *, dimensions: int | None = None) -> EmbeddingResult:
        name = self.scheduler.catalog.get(model).name
        if not texts or any(not text for text in texts):
            raise InvalidRequest("input must be a non-empty string or a list of non-empty strings", param="input")
        results = await self._embedder(name).submit(list(texts))
        if not self.truncate:
            for index, item in enumerate(results):
                if item.limit is not None and item.tokens > item.limit:
                    raise ContextLengthExceeded(
                        prompt_tokens=item.tokens, max_tokens=None, context_size=item.limit, param=f"input[{index}]"
                    )
        vectors = [item.vector for item in results]
        size = len(vectors[0])
        if dimensions is not None:
            if dimensions > size:
                raise InvalidRequest(f"dimensions is {dimensions} but model {name!r} makes {size}", param="dimensions")
            vectors = [_shorten(vector, dimensions) for vector in vectors]
        return EmbeddingResult(vectors, sum(item.tokens for item in results), dimensions or size)

    async def embed_tokens(self, model: str, token_lists: Sequence[Sequence[int]], **kwargs: Any) -> EmbeddingResult:
        """Token-id input: each list is decoded with the model's own tokenizer, then embedded."""
        async with self.scheduler.lease(model, Capability.EMBED) as lease:
            texts = await lease.run(lambda: [lease.backend.detokenize(list(ids)) for ids in token_lists])
        return await self.embed(model, texts, **kwargs)

    async def rerank(self, model: str, query: str, documents: Sequence[str]) -> RerankResult:
        name = self.scheduler.catalog.get(model).name
        if not query:
            raise InvalidRequest("query must not be empty", param="query")
        if not documents:
            raise InvalidRequest("documents must hold at least one document", param="documents")
        results = await self._reranker(name).submit([(query, document) for document in documents])
        return RerankResult([score for score, _ in results], sum(tokens for _, tokens in results))

    async def close(self) -> None:
        batchers = [*self._embedders.values(), *self._rerankers.values()]
        await asyncio.gather(*(b.close() for b in batchers))

    def batch_counts(self) -> dict[str, int]:
        """Backend calls made per model so far (embed and rerank together)."""
        counts: dict[str, int] = {}
        for name, batcher in [*self._embedders.items(), *self._rerankers.items()]:
            counts[name] = counts.get(name, 0) + batcher.batches
        return counts

    def _embedder(self, name: str) -> MicroBatcher[str, Embedded]:
        batcher = self._embedders.get(name)
        if batcher is None:

            async def process(texts: list[str]) -> list[Embedded]:
                async with self.scheduler.lease(name, Capability.EMBED) as lease:
                    backend = lease.backend

                    def work() -> list[Embedded]:
                        counts = backend.count_tokens(texts)
                        limit = backend.max_input_tokens()
                        vectors = backend.embed(texts)
                        return [Embedded(list(v), c, limit) for v, c in zip(vectors, counts, strict=True)]

                    return await lease.run(work)

            batcher = self._embedders[name] = MicroBatcher(name, process, estimate_tokens, self.config)
        return batcher

    def _reranker(self, name: str) -> MicroBatcher[tuple[str, str], tuple[float, int]]:
        batcher = self._rerankers.get(name)
        if batcher is None:

            async def process(pairs: list[tuple[str, str]]) -> list[tuple[float, int]]:
                async with self.scheduler.lease(name, Capability.RERANK) as lease:
                    backend = lease.backend

                    def work() -> list[tuple[float, int]]:
                        # Pairs arrive sorted by length and mixed across requests: score them per query.
                        by_query: dict[str, list[int]] = {}
                        for position, (query, _) in enumerate(pairs):
                            by_query.setdefault(query, []).append(position)
                        scores: list[float] = [0.0] * len(pairs)
                        for query, positions in by_query.items():
                            for position, score in zip(
                                positions, backend.rerank(query, [pairs[p][1] for p in positions]), strict=True
                            ):
                                scores[position] = float(score)
                        counts = backend.count_tokens([q + " " + d for q, d in pairs])
                        return list(zip(scores, counts, strict=True))

                    return await lease.run(work)

            batcher = self._rerankers[name] = MicroBatcher(
                name, process, lambda pair: estimate_tokens(pair[0]) + estimate_tokens(pair[1]), self.config
            )
        return batcher


def _shorten(vector: list[float], dimensions: int) -> list[float]:
    """OpenAI's `dimensions`: keep the first N components and re-normalise to unit length."""
    head = vector[:dimensions]
    norm = math.sqrt(sum(v * v for v in head))
    return [v / norm for v in head] if norm > 0 else head
