"""One named vector store with LocalAI's semantics: SQLite commit first, then the FAISS index.

Writers are serialised (SQLite writer lock + ``_write_lock``); the in-memory index is mutated and
searched under ``_index_lock`` only, and reads of values use per-thread SQLite connections, so a
long write never blocks a reader. On open the checkpoint is loaded and newer writes replayed from
SQLite, or the index is rebuilt from scratch.
"""

from __future__ import annotations

import json
import logging
import numbers
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from stores.db import StoreDatabase, key_hash
from stores.errors import DimensionMismatch, InvalidInput, ModelMismatch, StoreNotFound
from stores.index import ExactIndex, normalise, remove_checkpoint

logger = logging.getLogger(__name__)

Vector = Sequence[float]
Metadata = dict[str, Any] | None


@dataclass(frozen=True)
class GetResult:
    keys: list[list[float]]
    values: list[str]
    metadata: list[Metadata]


@dataclass(frozen=True)
class FindResult:
    keys: list[list[float]]
    values: list[str]
    similarities: list[float]
    metadata: list[Metadata]


class VectorStore:
    """A named store: durable rows in SQLite and a derived exact FAISS index."""

    def __init__(self, db: StoreDatabase, store_id: int, name: str, index_dir: Path, checkpoint_every: int) -> None:
        self.db = db
        self.id = store_id
        self.name = name
        self._stem = index_dir / str(store_id)
        self._checkpoint_every = checkpoint_every
        self._write_lock = threading.Lock()
        self._index_lock = threading.Lock()
        self._writes_since_checkpoint = 0
        row = db.reader().execute(
            "SELECT dimension, embedding_model, embedding_dimension FROM stores WHERE id = ?", (store_id,)
        ).fetchone()
        self._dimension: int | None = row[0]
        self._embedding_model: str | None = row[1]
        self._embedding_dimension: int | None = row[2]
        self._index: ExactIndex | None = None
        self._load_index()

    @property
    def dimension(self) -> int | None:
        return self._dimension

    @property
    def embedding_model(self) -> str | None:
        """The embedding model recorded for this store (at create, or by the first ``set`` naming one)."""
        return self._embedding_model

    def check_model(self, model: str | None) -> None:
        """Refuse a request that names an embedding model other than the recorded one.

        Vectors from two models share no space: mixing them makes every similarity meaningless.
        No ``model`` (LocalAI's requests) or no recorded model means there is nothing to check.
        """
        if model and self._embedding_model and model != self._embedding_model:
            raise ModelMismatch(
                f"store {self.name!r} holds vectors from embedding model {self._embedding_model!r}, "
                f"but the request names {model!r}; use {self._embedding_model!r} or another store",
                param="model",
            )

    def count(self) -> int:
        return int(self.db.reader().execute("SELECT count(*) FROM rows WHERE store_id = ?", (self.id,)).fetchone()[0])

    # -- writes -------------------------------------------------------------------------------

    def set(
        self,
        keys: Sequence[Vector],
        values: Sequence[str],
        metadata: Sequence[Metadata] | None = None,
        *,
        model: str | None = None,
    ) -> None:
        """Upsert ``keys[i] -> values[i]``; equal keys replace, the last of a batch wins.

        ``model`` names the embedding model that made the keys: the first one given is recorded
        (with the key dimension) in the same transaction as the rows; another is ``ModelMismatch``.
        """
        if len(keys) == 0:
            raise InvalidInput("keys must not be empty", param="keys")
        if len(keys) != len(values):
            raise InvalidInput(f"keys ({len(keys)}) and values ({len(values)}) must have the same length", param="values")
        if metadata is not None and len(metadata) != len(keys):
            raise InvalidInput(f"metadata ({len(metadata)}) and keys ({len(keys)}) must have the same length", param="metadata")
        matrix = self._as_matrix(keys)
        for value in values:
            if not isinstance(value, str):
                raise InvalidInput("values must be strings", param="values")
        meta_json = [_dump_metadata(m) for m in (metadata or [None] * len(keys))]
        # Last one wins within a batch: keep each distinct key's final position only.
        final: dict[bytes, int] = {}
        for i in range(len(keys)):
            final[matrix[i].tobytes()] = i
        with self._write_lock:
            self.check_model(model)
            # Fill in what is not yet recorded; what create() or an earlier set recorded stays.
            claim = model if model and (self._embedding_model is None or self._embedding_dimension is None) else None
            if self._dimension is not None and matrix.shape[1] != self._dimension:
                raise DimensionMismatch(
                    f"key dimension {matrix.shape[1]} does not match the store's dimension {self._dimension}",
                    param="keys",
                )
            new_ids: list[int] = []
            new_blobs: list[bytes] = []
            with self.db.write() as conn:
                seq = self._next_seq(conn, dimension=matrix.shape[1])
                if claim:
                    conn.execute(
                        "UPDATE stores SET embedding_model = coalesce(embedding_model, ?),"
                        " embedding_dimension = coalesce(embedding_dimension, ?) WHERE id = ?",
                        (claim, matrix.shape[1], self.id),
                    )
                for blob, i in final.items():
                    h = key_hash(blob)
                    found = conn.execute(
                        "SELECT id FROM rows WHERE store_id = ? AND key_hash = ? AND key = ?", (self.id, h, blob)
                    ).fetchone()
                    if found:  # same key, same vector: only the value changes, the index does not
                        conn.execute(
                            "UPDATE rows SET value = ?, metadata = ?, seq = ? WHERE id = ?",
                            (values[i], meta_json[i], seq, found[0]),
                        )
                        continue
                    cursor = conn.execute(
                        "INSERT INTO rows (store_id, key, key_hash, value, metadata, seq) VALUES (?, ?, ?, ?, ?, ?)",
                        (self.id, blob, h, values[i], meta_json[i], seq),
                    )
                    new_ids.append(int(cursor.lastrowid or 0))
                    new_blobs.append(blob)
            if new_ids:
                vectors = np.frombuffer(b"".join(new_blobs), dtype="<f4").reshape(len(new_ids), -1)
                with self._index_lock:
                    if self._index is None:
                        self._index = ExactIndex(matrix.shape[1])
                    self._index.add(np.asarray(new_ids, dtype=np.int64), vectors)
            self._dimension = matrix.shape[1]
            if claim:
                self._embedding_model = self._embedding_model or claim
                self._embedding_dimension = self._embedding_dimension or matrix.shape[1]
                logger.info(
                    "stores_model_recorded store=%r model=%r dimension=%s",
                    self.name, self._embedding_model, self._embedding_dimension,
                )
            due = self._count_write()
        if due:
            self.checkpoint()

    def delete(self, keys: Sequence[Vector]) -> None:
        """Remove the given keys; absent keys are ignored. Emptying the store unsets its dimension."""
        if len(keys) == 0:
            raise InvalidInput("keys must not be empty", param="keys")
        matrix = self._as_matrix(keys, check_direction=False)
        with self._write_lock:
            if self._dimension is None or matrix.shape[1] != self._dimension:
                return
            with self.db.write() as conn:
                ids = self._lookup(conn, matrix)
                if not ids:
                    return
                seq = self._next_seq(conn, dimension=self._dimension)
                conn.executemany("DELETE FROM rows WHERE id = ?", [(i,) for i in ids])
                conn.executemany(
                    "INSERT INTO deletes (store_id, row_id, seq) VALUES (?, ?, ?)", [(self.id, i, seq) for i in ids]
                )
                remaining = conn.execute("SELECT count(*) FROM rows WHERE store_id = ?", (self.id,)).fetchone()[0]
                if remaining == 0:
                    conn.execute("UPDATE stores SET dimension = NULL WHERE id = ?", (self.id,))
            with self._index_lock:
                if remaining == 0:
                    self._index = None
                elif self._index is not None:
                    self._index.remove(np.asarray(ids, dtype=np.int64))
            if remaining == 0:
                self._dimension = None
            due = self._count_write()
        if due:
            self.checkpoint()

    # -- reads --------------------------------------------------------------------------------

    def get(self, keys: Sequence[Vector]) -> GetResult:
        """The entries for the keys found, in request order; missing keys are omitted."""
        out = GetResult([], [], [])
        if len(keys) == 0:
            return out
        matrix = self._as_matrix(keys, check_direction=False)
        if self._dimension is None or matrix.shape[1] != self._dimension:
            return out
        conn = self.db.reader()
        for row in matrix:
            blob = row.tobytes()
            found = conn.execute(
                "SELECT value, metadata FROM rows WHERE store_id = ? AND key_hash = ? AND key = ?",
                (self.id, key_hash(blob), blob),
            ).fetchone()
            if found:
                out.keys.append(row.tolist())
                out.values.append(found[0])
                out.metadata.append(_load_metadata(found[1]))
        return out

    def find(self, key: Vector, topk: int, *, model: str | None = None) -> FindResult:
        """The ``topk`` most similar entries by cosine similarity, most similar first.

        A ``model`` other than the store's recorded embedding model is ``ModelMismatch``.
        """
        self.check_model(model)
        if isinstance(topk, bool) or not isinstance(topk, numbers.Integral) or topk < 1:
            raise InvalidInput(f"topk must be an integer >= 1, got {topk!r}", param="topk")
        topk = int(topk)
        query = self._as_matrix([key], param="key")
        out = FindResult([], [], [], [])
        with self._index_lock:
            index = self._index
            if index is None:
                return out
            if query.shape[1] != index.dimension:
                raise DimensionMismatch(
                    f"key dimension {query.shape[1]} does not match the store's dimension {index.dimension}",
                    param="key",
                )
            ids, sims = index.search(query[0], topk)
        conn = self.db.reader()
        rows: dict[int, tuple[bytes, str, str | None]] = {}
        id_list = [int(i) for i in ids]
        for start in range(0, len(id_list), 500):
            chunk = id_list[start : start + 500]
            marks = ",".join("?" * len(chunk))
            for rid, blob, value, meta in conn.execute(
                f"SELECT id, key, value, metadata FROM rows WHERE id IN ({marks})", chunk
            ):
                rows[rid] = (blob, value, meta)
        for rid, sim in zip(id_list, sims.tolist()):
            if rid in rows:  # a row deleted since the search is simply left out
                blob, value, meta = rows[rid]
                out.keys.append(np.frombuffer(blob, dtype="<f4").tolist())
                out.values.append(value)
                out.similarities.append(float(sim))
                out.metadata.append(_load_metadata(meta))
        return out

    # -- index lifecycle ----------------------------------------------------------------------

    def checkpoint(self) -> None:
        """Persist the index with the seq it covers, then prune the delete log it makes redundant."""
        with self._write_lock:
            seq = self._last_seq()
            if self._index is None:
                remove_checkpoint(self._stem)
            else:
                self._index.save(self._stem, seq)  # only writers mutate, and we hold the write lock
            with self.db.write() as conn:
                conn.execute("DELETE FROM deletes WHERE store_id = ? AND seq <= ?", (self.id, seq))
                conn.execute("UPDATE stores SET pruned_seq = ? WHERE id = ?", (seq, self.id))
            self._writes_since_checkpoint = 0
            logger.info("stores_checkpoint store=%r seq=%s count=%s", self.name, seq, self._index.count if self._index else 0)

    def discard_checkpoint(self) -> None:
        remove_checkpoint(self._stem)

    def _load_index(self) -> None:
        if self._dimension is None:
            self._index = None
            return
        conn = self.db.reader()
        last_seq, pruned_seq = conn.execute("SELECT last_seq, pruned_seq FROM stores WHERE id = ?", (self.id,)).fetchone()
        loaded = ExactIndex.load(self._stem, self._dimension, last_seq)
        if loaded is not None and loaded[1] >= pruned_seq:
            index, since = loaded
            gone = [r[0] for r in conn.execute("SELECT row_id FROM deletes WHERE store_id = ? AND seq > ?", (self.id, since))]
            index.remove(np.asarray(gone, dtype=np.int64))
            replayed = self._add_rows(index, "AND seq > ?", (since,), replace=True)
            if index.count == self.count():
                self._index = index
                logger.info("stores_index_loaded store=%r seq=%s replayed=%s", self.name, since, replayed)
                return
            logger.warning("stores_index_count_mismatch store=%r; rebuilding", self.name)
        index = ExactIndex(self._dimension)
        added = self._add_rows(index, "", (), replace=False)
        self._index = index
        logger.info("stores_index_rebuilt store=%r rows=%s", self.name, added)

    def _add_rows(self, index: ExactIndex, where: str, args: tuple[int, ...], *, replace: bool) -> int:
        cursor = self.db.reader().execute(f"SELECT id, key FROM rows WHERE store_id = ? {where} ORDER BY id", (self.id, *args))
        total = 0
        while batch := cursor.fetchmany(4096):
            ids = np.fromiter((r[0] for r in batch), dtype=np.int64, count=len(batch))
            vectors = np.frombuffer(b"".join(r[1] for r in batch), dtype="<f4").reshape(len(batch), -1)
            if replace:
                index.remove(ids)
            index.add(ids, vectors)
            total += len(batch)
        return total

    # -- helpers ------------------------------------------------------------------------------

    def _count_write(self) -> bool:
        """Count one committed write; True when a checkpoint is due (taken after the lock is released)."""
        self._writes_since_checkpoint += 1
        return bool(self._checkpoint_every) and self._writes_since_checkpoint >= self._checkpoint_every

    def _next_seq(self, conn: Any, *, dimension: int) -> int:
        conn.execute("UPDATE stores SET last_seq = last_seq + 1, dimension = ? WHERE id = ?", (dimension, self.id))
        row = conn.execute("SELECT last_seq FROM stores WHERE id = ?", (self.id,)).fetchone()
        if row is None:
            raise StoreNotFound(f"store {self.name!r} was dropped", param="store")
        return int(row[0])

    def _last_seq(self) -> int:
        return int(self.db.reader().execute("SELECT last_seq FROM stores WHERE id = ?", (self.id,)).fetchone()[0])

    def _lookup(self, conn: Any, matrix: np.ndarray) -> list[int]:
        ids: set[int] = set()
        for row in matrix:
            blob = row.tobytes()
            found = conn.execute(
                "SELECT id FROM rows WHERE store_id = ? AND key_hash = ? AND key = ?", (self.id, key_hash(blob), blob)
            ).fetchone()
            if found:
                ids.add(int(found[0]))
        return sorted(ids)

    @staticmethod
    def _as_matrix(keys: Sequence[Vector], *, check_direction: bool = True, param: str = "keys") -> np.ndarray:
        try:
            dims = {len(k) for k in keys}
        except TypeError:
            raise InvalidInput(f"{param} must be a list of lists of numbers", param=param) from None
        if len(dims) != 1:
            raise DimensionMismatch(f"all {param} must have the same dimension, got {sorted(dims)}", param=param)
        if 0 in dims:
            raise InvalidInput(f"{param} must not contain empty vectors", param=param)
        try:
            matrix = np.asarray(keys, dtype="<f4")
        except (TypeError, ValueError) as exc:
            raise InvalidInput(f"{param} must be lists of numbers ({exc})", param=param) from None
        if not np.all(np.isfinite(matrix)):
            raise InvalidInput(f"{param} must contain only finite numbers (no NaN or infinity)", param=param)
        if check_direction:
            try:
                normalise(matrix)
            except InvalidInput:
                raise InvalidInput(f"{param} must not contain zero vectors: cosine similarity is undefined", param=param) from None
        return np.ascontiguousarray(matrix)


def _dump_metadata(meta: Metadata) -> str | None:
    if meta is None:
        return None
    if not isinstance(meta, dict):
        raise InvalidInput("each metadata entry must be a JSON object or null", param="metadata")
    try:
        return json.dumps(meta, allow_nan=False, separators=(",", ":"))
    except (TypeError, ValueError) as exc:
        raise InvalidInput(f"metadata must be JSON-serialisable ({exc})", param="metadata") from None


def _load_metadata(text: str | None) -> Metadata:
    return None if text is None else json.loads(text)
