"""Exact vector search over chunks: one in-memory FAISS ``IndexIDMap2(IndexFlatIP)`` per vector store,
keyed by chunk id, built from SQLite on first use and kept in step after each commit.

SQLite is the truth: an index holds only committed chunks of completed files, the library mutates
and builds indexes while holding its write mutex (so a build never races a commit's add), and the
search results are checked against SQLite again. Vectors are stored unit-length, so inner product
is cosine. A single query runs FAISS with one OpenMP thread (see ``stores.index``).
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import faiss
import numpy as np

from stores.index import omp_threads

if TYPE_CHECKING:
    from numpy.typing import NDArray

logger = logging.getLogger(__name__)


@dataclass
class StoreVectors:
    """One store's index; ``lock`` guards every FAISS call on it (FAISS is not thread-safe)."""

    dimension: int
    index: faiss.Index
    lock: threading.Lock = field(default_factory=threading.Lock)


def load_store_vectors(
    conn: sqlite3.Connection, store_id: str, dimension: int
) -> tuple[NDArray[np.int64], NDArray[np.float32]]:
    """Chunk ids and unit vectors of the completed files of one store, from SQLite."""
    rows = conn.execute(
        "SELECT c.id, c.vector FROM chunks c JOIN vector_store_files v"
        " ON v.vector_store_id = c.vector_store_id AND v.file_id = c.file_id"
        " WHERE c.vector_store_id = ? AND v.status = 'completed' ORDER BY c.id",
        (store_id,),
    ).fetchall()
    ids = np.fromiter((row[0] for row in rows), dtype=np.int64, count=len(rows))
    if not rows:
        return ids, np.empty((0, dimension), dtype=np.float32)
    matrix = np.frombuffer(b"".join(row[1] for row in rows), dtype=np.float32).reshape(len(rows), dimension)
    return ids, matrix


class VectorIndexes:
    """The per-store indexes of one library. Building, adding and removing are the caller's to
    serialise (the library's write mutex); searches may run from any thread at any time."""

    def __init__(self) -> None:
        self._indexes: dict[str, StoreVectors] = {}
        self._mutex = threading.Lock()

    def get(self, store_id: str) -> StoreVectors | None:
        with self._mutex:
            return self._indexes.get(store_id)

    def build(self, conn: sqlite3.Connection, store_id: str, dimension: int) -> StoreVectors:
        """Load one store's vectors from SQLite into a fresh index (replacing any other)."""
        ids, matrix = load_store_vectors(conn, store_id, dimension)
        index = faiss.IndexIDMap2(faiss.IndexFlatIP(dimension))
        if len(ids):
            index.add_with_ids(np.ascontiguousarray(matrix), ids)
        entry = StoreVectors(dimension, index)
        with self._mutex:
            self._indexes[store_id] = entry
        logger.info("documents_vectors_built store=%s chunks=%d", store_id, len(ids))
        return entry

    def add(self, store_id: str, ids: NDArray[np.int64], unit: NDArray[np.float32]) -> None:
        """Add committed chunks to a built index (an unbuilt one loads them at first use)."""
        entry = self.get(store_id)
        if entry is None or len(ids) == 0:
            return
        try:
            with entry.lock:
                entry.index.add_with_ids(np.ascontiguousarray(unit, dtype=np.float32), np.asarray(ids, np.int64))
        except Exception:
            logger.exception("documents_vectors_add_failed store=%s; the index is dropped and rebuilt", store_id)
            self.drop(store_id)

    def remove(self, store_id: str, ids: NDArray[np.int64]) -> None:
        entry = self.get(store_id)
        if entry is None or len(ids) == 0:
            return
        with entry.lock:
            entry.index.remove_ids(np.ascontiguousarray(ids, dtype=np.int64))

    def drop(self, store_id: str) -> None:
        with self._mutex:
            self._indexes.pop(store_id, None)

    def clear(self) -> None:
        with self._mutex:
            self._indexes.clear()

    @staticmethod
    def search(
        entry: StoreVectors, unit: NDArray[np.float32], k: int, allowed: NDArray[np.int64] | None = None
    ) -> tuple[NDArray[np.int64], NDArray[np.float32]]:
        """The ``k`` most similar chunk ids (optionally only ``allowed`` ones), best first."""
        with entry.lock:
            k = min(k, int(entry.index.ntotal), len(allowed) if allowed is not None else k)
            if k <= 0:
                return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.float32)
            params = None
            if allowed is not None:
                selector = faiss.IDSelectorBatch(np.ascontiguousarray(allowed, dtype=np.int64))
                params = faiss.SearchParameters(sel=selector)
            with omp_threads(1):
                sims, ids = entry.index.search(unit.reshape(1, -1), k, params=params)
        keep = ids[0] >= 0
        return ids[0][keep], np.clip(sims[0][keep], -1.0, 1.0)
