"""A chunk deleted between the candidate search and the text lookup drops out of a reranked search.

Found by the soak (tests/bench/soak.py): a file deleted while a search with a rerank model ran made the
reranker score fewer texts than there were candidates, and the search answered 500.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

import numpy as np

from appliance.knowledge.retrieval import Retriever, SearchOptions

TEXTS = {1: "alpha pump", 2: "beta valve", 3: "gamma sensor"}
RERANK = {"alpha pump": 0.2, "beta valve": 0.5, "gamma sensor": 0.9}  # by text: a shifted score would show


@dataclass(frozen=True)
class Hit:
    chunk_id: int
    score: float


@dataclass(frozen=True)
class Chunk:
    chunk_id: int
    text: str


@dataclass(frozen=True)
class Store:
    embedding_model: str = "embedder"


class Library:
    """Every chunk is a candidate, but chunk 2 is gone by the time its text is read."""

    def get_store(self, store_id: str) -> Store:
        return Store()

    def filter_files(self, store_ids: list[str], filters: Any) -> None:
        return None

    def vector_search(self, store_ids: list[str], vector: Any, depth: int, file_ids: Any = None) -> list[Hit]:
        return [Hit(chunk_id, 0.9 - chunk_id / 10) for chunk_id in TEXTS]

    def keyword_search(self, store_ids: list[str], query: str, depth: int, **_: Any) -> list[Hit]:
        return [Hit(chunk_id, 1.0) for chunk_id in TEXTS]

    def cosines(self, store_ids: list[str], vector: Any, ids: list[int]) -> dict[int, float]:
        return {}

    def get_chunks(self, ids: list[int]) -> list[Chunk]:
        return [Chunk(chunk_id, TEXTS[chunk_id]) for chunk_id in ids if chunk_id != 2]


@dataclass(frozen=True)
class Scores:
    scores: list[float]


class Embeddings:
    def __init__(self) -> None:
        self.reranked: list[list[str]] = []

    async def rerank(self, model: str, query: str, texts: list[str]) -> Scores:
        self.reranked.append(list(texts))
        return Scores([RERANK[text] for text in texts])


class Embedder:
    def __init__(self) -> None:
        self.embeddings = Embeddings()

    def resolve(self, model: str) -> str:
        return model

    async def embed_query(self, model: str, text: str) -> np.ndarray:
        return np.ones(4, dtype=np.float32)


def test_a_chunk_deleted_meanwhile_is_left_out_of_the_rerank() -> None:
    embedder = Embedder()
    retriever = Retriever(Library(), embedder, default_model="embedder", min_similarity=0.0)  # type: ignore[arg-type]
    options = SearchOptions(max_results=10, rerank_model="reranker")
    retrieval = asyncio.run(retriever.search(["vs_1"], ["pump"], options))
    assert embedder.embeddings.reranked == [["alpha pump", "gamma sensor"]]
    assert [(r.chunk.chunk_id, r.rerank) for r in retrieval.results] == [(3, 0.9), (1, 0.2)]
    assert retrieval.status == "ok"


def test_without_a_rerank_model_a_deleted_chunk_is_skipped_too() -> None:
    retriever = Retriever(Library(), Embedder(), default_model="embedder", min_similarity=0.0)  # type: ignore[arg-type]
    retrieval = asyncio.run(retriever.search(["vs_1"], ["pump"], SearchOptions(max_results=10)))
    assert sorted(r.chunk.chunk_id for r in retrieval.results) == [1, 3]
