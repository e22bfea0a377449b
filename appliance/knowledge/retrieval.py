"""Hybrid retrieval over vector stores of documents: keyword + vector candidates, fused, floored, ranked.

FTS5 (BM25) and exact cosine candidates are fused by reciprocal rank (k = 60); an optional
cross-encoder reranks them (its 0..1 score then ranks and is reported); a relevance floor drops what
neither the embedding (cosine under `min_similarity`) nor the keywords (not every query word present)
vouch for. When nothing passes, the outcome says `no_relevant_context` instead of returning filler.
`score` is the fused score scaled to 0..1 (1 = first in every ranking), or the rerank score.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from appliance.knowledge.embedder import DocumentEmbedder
from stores.documents.fusion import rrf
from stores.errors import ModelMismatch

RRF_K = 60
CANDIDATES_MIN = 30


@dataclass(frozen=True)
class SearchOptions:
    max_results: int = 10
    filters: dict[str, Any] | None = None
    ranker: str = "auto"  # auto|hybrid|default-2024-11-15|none: hybrid; keyword; vector
    score_threshold: float = 0.0
    rerank_model: str | None = None
    embedding_model: str | None = None  # when given, must be the stores' model (409 otherwise)


@dataclass(frozen=True)
class Retrieved:
    chunk: Any  # stores.documents.records.ChunkRecord
    score: float
    keyword_rank: int | None
    vector_rank: int | None
    cosine: float | None
    rerank: float | None

    def scores(self) -> dict[str, Any]:
        return {
            "keyword_rank": self.keyword_rank,
            "vector_rank": self.vector_rank,
            "cosine": self.cosine,
            "rerank": self.rerank,
        }


@dataclass(frozen=True)
class Retrieval:
    results: list[Retrieved]
    status: str  # "ok" | "no_relevant_context"
    model: str
    considered: int = 0
    dropped_by_floor: int = 0
    queries: list[str] = field(default_factory=list)


class Retriever:
    def __init__(
        self, library: Any, embedder: DocumentEmbedder, *, default_model: str, min_similarity: float = 0.25
    ) -> None:
        self.library = library
        self.embedder = embedder
        self.default_model = default_model
        self.min_similarity = min_similarity

    async def store_model(self, store_ids: Sequence[str], wanted: str | None = None) -> str:
        stores = [await asyncio.to_thread(self.library.get_store, store_id) for store_id in store_ids]
        models = {store.embedding_model or self.default_model for store in stores}
        if len(models) > 1:
            raise ModelMismatch(
                "these vector stores were embedded with different models "
                f"({', '.join(sorted(models))}); search them one at a time or reindex them to one model",
                param="vector_store_ids",
            )
        model = models.pop()
        if wanted is not None and self.embedder.resolve(wanted) != self.embedder.resolve(model):
            raise ModelMismatch(
                f"vector store {store_ids[0]!r} was embedded with {model!r}, not {wanted!r}; search it without "
                f"embedding_model, or rebuild it with POST /v1/vector_stores/{store_ids[0]}/reindex "
                f'{{"embedding_model": "{wanted}"}}',
                param="embedding_model",
            )
        return model

    async def search(self, store_ids: Sequence[str], queries: Sequence[str], options: SearchOptions) -> Retrieval:
        model = await self.store_model(store_ids, options.embedding_model)
        allowed = await asyncio.to_thread(self.library.filter_files, list(store_ids), options.filters)
        if allowed is not None and not allowed:
            return Retrieval([], "no_relevant_context", model, queries=list(queries))
        depth = max(CANDIDATES_MIN, 3 * options.max_results)
        use_keyword = options.ranker not in ("vector",)
        use_vector = options.ranker not in ("keyword",)

        keyword_rankings: list[list[int]] = []
        vector_rankings: list[list[int]] = []
        all_words: set[int] = set()
        cosines: dict[int, float] = {}
        query_vectors = []
        for query in queries:
            vector = await self.embedder.embed_query(model, query)  # the floor needs cosines in every mode
            query_vectors.append(vector)
            if use_vector:
                hits = await asyncio.to_thread(
                    self.library.vector_search, list(store_ids), vector, depth, file_ids=allowed
                )
                vector_rankings.append([hit.chunk_id for hit in hits])
                for hit in hits:
                    cosines[hit.chunk_id] = max(cosines.get(hit.chunk_id, -1.0), hit.score)
            if use_keyword:
                hits = await asyncio.to_thread(
                    self.library.keyword_search, list(store_ids), query, depth, file_ids=allowed
                )
                keyword_rankings.append([hit.chunk_id for hit in hits])
                strict = await asyncio.to_thread(
                    self.library.keyword_search, list(store_ids), query, depth, file_ids=allowed, require_all=True
                )
                all_words.update(hit.chunk_id for hit in strict)

        rankings = keyword_rankings + vector_rankings
        fused = rrf(rankings, k=RRF_K)[:depth]
        if not fused:
            return Retrieval([], "no_relevant_context", model, queries=list(queries))
        ids = [chunk_id for chunk_id, _ in fused]
        missing = [chunk_id for chunk_id in ids if chunk_id not in cosines]
        for vector in query_vectors:
            if missing:
                more = await asyncio.to_thread(self.library.cosines, list(store_ids), vector, missing)
                for chunk_id, value in more.items():
                    cosines[chunk_id] = max(cosines.get(chunk_id, -1.0), value)

        best = len(rankings) / (RRF_K + 1)
        keyword_rank = _ranks(keyword_rankings)
        vector_rank = _ranks(vector_rankings)
        passed = [
            (chunk_id, score)
            for chunk_id, score in fused
            if chunk_id in all_words or cosines.get(chunk_id, -1.0) >= self.min_similarity
        ]
        dropped = len(fused) - len(passed)
        chunks = {c.chunk_id: c for c in await asyncio.to_thread(self.library.get_chunks, [i for i, _ in passed])}
        reranked: dict[int, float] = {}
        if options.rerank_model:
            passed = [item for item in passed if item[0] in chunks]  # deleted meanwhile: no text, no score
        if options.rerank_model and passed:
            texts = [chunks[chunk_id].text for chunk_id, _ in passed]
            result = await self.embedder.embeddings.rerank(options.rerank_model, " ".join(queries), texts)
            reranked = {chunk_id: float(s) for (chunk_id, _), s in zip(passed, result.scores, strict=True)}
            passed.sort(key=lambda item: reranked[item[0]], reverse=True)
        results = []
        for chunk_id, fused_score in passed:
            chunk = chunks.get(chunk_id)
            if chunk is None:  # deleted between the search and now
                continue
            rerank = reranked.get(chunk_id)
            score = _clamp(rerank) if rerank is not None else min(1.0, fused_score / best)
            if score < options.score_threshold:
                continue
            results.append(
                Retrieved(
                    chunk=chunk,
                    score=round(score, 6),
                    keyword_rank=keyword_rank.get(chunk_id),
                    vector_rank=vector_rank.get(chunk_id),
                    cosine=round(cosines[chunk_id], 6) if chunk_id in cosines else None,
                    rerank=round(rerank, 6) if rerank is not None else None,
                )
            )
            if len(results) == options.max_results:
                break
        status = "ok" if results else "no_relevant_context"
        return Retrieval(results, status, model, considered=len(fused), dropped_by_floor=dropped, queries=list(queries))


def _ranks(rankings: list[list[int]]) -> dict[int, int]:
    """Each id's best 1-based rank over the rankings."""
    best: dict[int, int] = {}
    for ranking in rankings:
        for position, chunk_id in enumerate(ranking, start=1):
            if position < best.get(chunk_id, position + 1):
                best[chunk_id] = position
    return best


def _clamp(value: float) -> float:
    return max(0.0, min(1.0, value))
