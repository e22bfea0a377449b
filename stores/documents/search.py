"""The library's search primitives: BM25 keyword search, exact vector search, cosines of chosen
chunks, attribute filters to file ids, and chunk lookup for results.

Every one returns only chunks of ``completed`` files, checked in SQLite (the vector indexes are a
cache and may briefly hold a chunk whose file was just detached). Several stores can be searched
together when they hold embeddings of one model; an optional set of allowed file ids restricts
a search (FAISS ``IDSelectorBatch`` for vectors, SQL for keywords).
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Collection, Iterable, Mapping
from typing import Any

import numpy as np

from stores.documents.errors import NotFound
from stores.documents.filters import compile_filter
from stores.documents.keyword import keyword_search
from stores.documents.records import ChunkRecord, Hit
from stores.documents.rows import CHUNK_SELECT, chunk_record, json_list, load_json
from stores.documents.vectors import StoreVectors, VectorIndexes
from stores.errors import DimensionMismatch, ModelMismatch
from stores.index import normalise


class ChunkSearch:
    """Searches over one library's database and vector indexes.

    ``read`` gives this thread's read connection; ``write_mutex``/``writer`` are the library's, held
    while an index is built so no commit lands between the build's read and its first use.
    """

    def __init__(
        self,
        read: Callable[[], sqlite3.Connection],
        writer: Callable[[], sqlite3.Connection],
        write_mutex: threading.RLock,
        vectors: VectorIndexes,
    ) -> None:
        self._read = read
        self._writer = writer
        self._write_mutex = write_mutex
        self._vectors = vectors

    def keyword(
        self,
        store_ids: Collection[str],
        query: str,
        limit: int,
        *,
        file_ids: Collection[str] | None = None,
        require_all: bool = False,
    ) -> list[Hit]:
        stores = list(dict.fromkeys(store_ids))
        self._store_rows(stores)  # NotFound for an unknown store, like the vector search
        return keyword_search(self._read(), stores, query, limit, file_ids, require_all=require_all)

    def vectors(
        self, store_ids: Collection[str], vector: Any, limit: int, *, file_ids: Collection[str] | None = None
    ) -> list[Hit]:
        indexed = self._indexed_stores(store_ids)
        if limit <= 0 or not indexed or (file_ids is not None and not file_ids):
            return []
        unit = query_unit(vector, indexed[0][1])
        conn = self._read()
        candidates: list[tuple[float, int]] = []
        for store_id, dimension in indexed:
            allowed = None
            if file_ids is not None:
                rows = conn.execute(
                    "SELECT id FROM chunks WHERE vector_store_id = ? AND file_id IN (SELECT value FROM json_each(?))",
                    (store_id, json_list(file_ids)),
                )
                allowed = np.fromiter((row[0] for row in rows), dtype=np.int64)
                if len(allowed) == 0:
                    continue
            ids, sims = VectorIndexes.search(self._store_vectors(store_id, dimension), unit, limit, allowed)
            candidates.extend(zip(sims.tolist(), ids.tolist(), strict=True))
        candidates.sort(key=lambda pair: (-pair[0], pair[1]))
        candidates = candidates[:limit]
        live = completed_chunks(conn, [chunk_id for _, chunk_id in candidates])
        return [Hit(int(chunk_id), float(score)) for score, chunk_id in candidates if chunk_id in live]

    def cosines(self, store_ids: Collection[str], vector: Any, chunk_ids: Collection[int]) -> dict[int, float]:
        indexed = self._indexed_stores(store_ids)
        if not indexed or not chunk_ids:
            return {}
        unit = query_unit(vector, indexed[0][1])
        rows = self._read().execute(
            "SELECT c.id, c.vector FROM chunks c JOIN vector_store_files v"
            " ON v.vector_store_id = c.vector_store_id AND v.file_id = c.file_id"
            " WHERE c.id IN (SELECT value FROM json_each(?)) AND v.status = 'completed'"
            " AND c.vector_store_id IN (SELECT value FROM json_each(?))",
            (json_list(int(i) for i in chunk_ids), json_list(store_ids)),
        ).fetchall()
        return {
            int(chunk_id): float(np.clip(np.dot(np.frombuffer(blob, dtype=np.float32), unit), -1.0, 1.0))
            for chunk_id, blob in rows
        }

    def filter_files(self, store_ids: Collection[str], filters: Mapping[str, Any] | None) -> set[str] | None:
        if filters is None:
            return None
        predicate = compile_filter(filters)
        stores = list(dict.fromkeys(store_ids))
        self._store_rows(stores)
        rows = self._read().execute(
            "SELECT file_id, attributes FROM vector_store_files"
            " WHERE vector_store_id IN (SELECT value FROM json_each(?))",
            (json_list(stores),),
        ).fetchall()
        return {file_id for file_id, attributes in rows if predicate(load_json(attributes) or {})}

    def get_chunks(self, chunk_ids: Iterable[int]) -> list[ChunkRecord]:
        wanted = [int(chunk_id) for chunk_id in chunk_ids]
        if not wanted:
            return []
        rows = self._read().execute(
            f"{CHUNK_SELECT} WHERE c.id IN (SELECT value FROM json_each(?))", (json_list(wanted),)
        ).fetchall()
        found = {int(row[0]): chunk_record(row) for row in rows}
        return [found[chunk_id] for chunk_id in wanted if chunk_id in found]

    def _store_rows(self, store_ids: list[str]) -> list[tuple[str, str | None, int | None]]:
        rows = self._read().execute(
            "SELECT id, embedding_model, embedding_dimension FROM vector_stores"
            " WHERE id IN (SELECT value FROM json_each(?))",
            (json_list(store_ids),),
        ).fetchall()
        known = {row[0]: row for row in rows}
        for store_id in store_ids:
            if store_id not in known:
                raise NotFound("vector_store", store_id, param="vector_store_ids")
        return [known[store_id] for store_id in store_ids]

    def _indexed_stores(self, store_ids: Collection[str]) -> list[tuple[str, int]]:
        """(store id, dimension) of the stores holding vectors; ModelMismatch when they disagree."""
        filled = [row for row in self._store_rows(list(dict.fromkeys(store_ids))) if row[2] is not None]
        kinds = {(row[1], row[2]) for row in filled}
        if len(kinds) > 1:
            described = ", ".join(sorted(f"{model} ({dimension}-d)" for model, dimension in kinds))
            raise ModelMismatch(
                f"these vector stores hold embeddings of different models ({described}); search them separately",
                param="vector_store_ids",
            )
        return [(row[0], row[2]) for row in filled if row[2] is not None]

    def _store_vectors(self, store_id: str, dimension: int) -> StoreVectors:
        entry = self._vectors.get(store_id)
        if entry is not None and entry.dimension == dimension:
            return entry
        with self._write_mutex:
            entry = self._vectors.get(store_id)
            if entry is None or entry.dimension != dimension:
                entry = self._vectors.build(self._writer(), store_id, dimension)
            return entry


def completed_chunks(conn: sqlite3.Connection, chunk_ids: list[int]) -> set[int]:
    """Which of these chunks belong to a completed file now."""
    if not chunk_ids:
        return set()
    rows = conn.execute(
        "SELECT c.id FROM chunks c JOIN vector_store_files v"
        " ON v.vector_store_id = c.vector_store_id AND v.file_id = c.file_id"
        " WHERE c.id IN (SELECT value FROM json_each(?)) AND v.status = 'completed'",
        (json_list(chunk_ids),),
    )
    return {int(row[0]) for row in rows}


def query_unit(vector: Any, dimension: int) -> np.ndarray:
    """The query as a unit float32 vector of the stores' dimension."""
    query = np.asarray(vector, dtype=np.float32).reshape(-1)
    if query.shape[0] != dimension:
        raise DimensionMismatch(
            f"the query vector has {query.shape[0]} dimensions; the store holds {dimension}", param="vector"
        )
    return normalise(query.reshape(1, -1))[0]
