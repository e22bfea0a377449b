"""One named vector store with LocalAI's semantics: SQLite commit first, then the FAISS index.

Writers are serialised (SQLite writer lock + ``_write_lock``); the in-memory index is mutated (in
small chunks) and searched under ``_index_lock`` only, and reads of values use per-thread SQLite
connections, so a long write never blocks a reader. On open the checkpoint is loaded and newer
writes replayed from SQLite, or the index is rebuilt from scratch. The index kind (exact, hnsw,
ivf) and its options come from the store's row.

Rebuilds (HNSW compaction of tombstones, IVF training once enough rows exist, ``compact()``) read a
snapshot at seq S outside every lock, build a fresh index from it while finds keep using the old
one, catch up on writes after S (rows with ids above the fresh index's ``max_id``, deletes logged
after S), and swap under the write lock. While one runs, checkpoints prune the delete log only up
to S, so the deletes it still has to apply cannot vanish.

Approximate indexes tuned by ``target_recall`` are measured (``stores.index_tuning``): a rebuild
tunes its fresh index before the swap, and a background thread (``stores.tuner``) tunes the live
one when it leaves the exact-scan regime, when the live count has doubled since, and after an open
that had to rebuild. That thread holds ``_index_lock`` per batch of queries only.
"""

from __future__ import annotations

import json
import logging
import numbers
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from stores import replay
from stores.checkpoint import remove_checkpoint
from stores.db import StoreDatabase, key_hash, row_by_key
from stores.errors import DimensionMismatch, InvalidInput, ModelMismatch, StoreNotFound
from stores.index import CompactionPolicy, ExactIndex, VectorIndex
from stores.index_hnsw import HnswIndex
from stores.index_ivf import IvfIndex
from stores.index_options import parse_index_options
from stores.records import (
    FindResult,
    GetResult,
    IndexState,
    Metadata,
    Vector,
    as_matrix,
    dump_metadata,
    load_metadata,
)
from stores.tuner import BackgroundTuner

logger = logging.getLogger(__name__)

INDEX_CLASSES: dict[str, type[VectorIndex[Any]]] = {"exact": ExactIndex, "hnsw": HnswIndex, "ivf": IvfIndex}
# Rows per index mutation under ``_index_lock``: finds wait at most one chunk (an HNSW insert of 256
# 384-d rows takes ~0.1 s on 2 cores).
INDEX_CHUNK = 256


class _RebuildAborted(Exception):
    """The store is closing (or was dropped): a running rebuild stops and is discarded."""


class VectorStore:
    """A named store: durable rows in SQLite and a derived FAISS index (exact, HNSW or IVF)."""

    def __init__(
        self,
        db: StoreDatabase,
        store_id: int,
        name: str,
        index_dir: Path,
        checkpoint_every: int,
        *,
        compaction: CompactionPolicy | None = None,
    ) -> None:
        self.db = db
        self.id = store_id
        self.name = name
        self._stem = index_dir / str(store_id)
        self._checkpoint_every = checkpoint_every
        self._compaction = compaction or CompactionPolicy()
        self._write_lock = threading.Lock()
        self._index_lock = threading.Lock()
        self._rebuild_lock = threading.Lock()  # one rebuild at a time
        self._thread_mutex = threading.Lock()  # guards _rebuild_thread
        self._rebuild_thread: threading.Thread | None = None
        self._tuner = BackgroundTuner(lambda: self.name, self._index_lock, lambda: self._index, lambda: self._closing)
        self._rebuild_floor: int | None = None  # set while a rebuild needs the deletes logged after it
        self._generation = 0  # bumped when the index is dropped (store emptied): stale rebuilds are discarded
        self._closing = False
        self._writes_since_checkpoint = 0
        row = db.reader().execute(
            "SELECT dimension, embedding_model, embedding_dimension, index_kind, index_options FROM stores WHERE id = ?",
            (store_id,),
        ).fetchone()
        self._dimension: int | None = row[0]
        self._embedding_model: str | None = row[1]
        self._embedding_dimension: int | None = row[2]
        self.index_kind: str = row[3]
        self._index_options = parse_index_options(row[3], json.loads(row[4]) if row[4] else None)
        self._index: VectorIndex[Any] | None = None
        self._load_index()
        self._maybe_rebuild()  # e.g. an ivf store that reached its threshold just before a crash
        self._maybe_tune()

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

    def index_state(self) -> IndexState:
        with self._index_lock:
            index = self._index
            if index is None:
                return IndexState(self.index_kind, 0, 0, False, self.rebuilding, tuning=self.tuning)
            tuned = index.tuning.as_dict() if index.tuning is not None else None
            return IndexState(
                index.kind, index.count, index.dead_count, index.approximate, self.rebuilding, tuned, self.tuning
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
        matrix = as_matrix(keys)
        for value in values:
            if not isinstance(value, str):
                raise InvalidInput("values must be strings", param="values")
        meta_json = [dump_metadata(m) for m in (metadata or [None] * len(keys))]
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
                    found = row_by_key(conn, self.id, blob)
                    if found:  # same key, same vector: only the value changes, the index does not
                        conn.execute(
                            "UPDATE rows SET value = ?, metadata = ?, seq = ? WHERE id = ?",
                            (values[i], meta_json[i], seq, found[0]),
                        )
                        continue
                    cursor = conn.execute(
                        "INSERT INTO rows (store_id, key, key_hash, value, metadata, seq) VALUES (?, ?, ?, ?, ?, ?)",
                        (self.id, blob, key_hash(blob), values[i], meta_json[i], seq),
                    )
                    new_ids.append(int(cursor.lastrowid or 0))
                    new_blobs.append(blob)
            if new_ids:
                vectors = np.frombuffer(b"".join(new_blobs), dtype="<f4").reshape(len(new_ids), -1)
                if self._index is None:
                    with self._index_lock:
                        self._index = self._new_index(matrix.shape[1])
                self._add_in_chunks(self._index, np.asarray(new_ids, dtype=np.int64), vectors)
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
        self._maybe_rebuild()
        self._maybe_tune()

    def delete(self, keys: Sequence[Vector]) -> None:
        """Remove the given keys; absent keys are ignored. Emptying the store unsets its dimension."""
        if len(keys) == 0:
            raise InvalidInput("keys must not be empty", param="keys")
        matrix = as_matrix(keys, check_direction=False)
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
                    self._generation += 1
                elif self._index is not None:
                    self._index.remove(np.asarray(ids, dtype=np.int64))
            if remaining == 0:
                self._dimension = None
            due = self._count_write()
        if due:
            self.checkpoint()
        self._maybe_rebuild()

    # -- reads --------------------------------------------------------------------------------

    def get(self, keys: Sequence[Vector]) -> GetResult:
        """The entries for the keys found, in request order; missing keys are omitted."""
        out = GetResult([], [], [])
        if len(keys) == 0:
            return out
        matrix = as_matrix(keys, check_direction=False)
        if self._dimension is None or matrix.shape[1] != self._dimension:
            return out
        conn = self.db.reader()
        for row in matrix:
            found = row_by_key(conn, self.id, row.tobytes(), "value, metadata")
            if found:
                out.keys.append(row.tolist())
                out.values.append(found[0])
                out.metadata.append(load_metadata(found[1]))
        return out

    def find(self, key: Vector, topk: int, *, model: str | None = None) -> FindResult:
        """The ``topk`` most similar entries by cosine similarity, most similar first.

        A ``model`` other than the store's recorded embedding model is ``ModelMismatch``.
        """
        self.check_model(model)
        if isinstance(topk, bool) or not isinstance(topk, numbers.Integral) or topk < 1:
            raise InvalidInput(f"topk must be an integer >= 1, got {topk!r}", param="topk")
        topk = int(topk)
        query = as_matrix([key], param="key")
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
                out.metadata.append(load_metadata(meta))
        return out

    # -- index lifecycle ----------------------------------------------------------------------

    def checkpoint(self) -> None:
        """Persist the index with the seq it covers, then prune the delete log it makes redundant.

        While a rebuild runs, the log is pruned only up to the rebuild's snapshot: it still has to
        apply the deletes logged after that.
        """
        with self._write_lock:
            seq = self._last_seq()
            if self._index is None:
                remove_checkpoint(self._stem)
            else:
                self._index.save(self._stem, seq)  # only writers mutate, and we hold the write lock
            prune = seq if self._rebuild_floor is None else min(seq, self._rebuild_floor)
            with self.db.write() as conn:
                conn.execute("DELETE FROM deletes WHERE store_id = ? AND seq <= ?", (self.id, prune))
                conn.execute("UPDATE stores SET pruned_seq = max(pruned_seq, ?) WHERE id = ?", (prune, self.id))
            self._writes_since_checkpoint = 0
            logger.info("stores_checkpoint store=%r seq=%s count=%s", self.name, seq, self._index.count if self._index else 0)

    def discard_checkpoint(self) -> None:
        remove_checkpoint(self._stem)

    def close(self, *, checkpoint: bool = True) -> None:
        """Stop a running rebuild (it is discarded) and, unless told not to, checkpoint the index."""
        self._closing = True
        self.wait_for_rebuild()
        if checkpoint:
            self.checkpoint()

    def compact(self) -> bool:
        """Rebuild the index from SQLite now, in this thread (after any background rebuild).

        Drops HNSW tombstones, trains an IVF store that has reached its threshold; finds keep
        answering from the old index meanwhile. False when there is nothing to rebuild.
        """
        return self._rebuild()

    def wait_for_rebuild(self, timeout: float | None = None) -> bool:
        """Wait for background index work: a rebuild (compaction, IVF training), then a recall
        tuning (one a rebuild starts included). True when neither is running."""
        deadline = None if timeout is None else time.monotonic() + timeout
        thread = self._rebuild_thread
        if thread is not None:
            thread.join(timeout)
        self._tuner.join(None if deadline is None else max(0.0, deadline - time.monotonic()))
        return not self.rebuilding and not self.tuning

    @property
    def rebuilding(self) -> bool:
        thread = self._rebuild_thread
        return thread is not None and thread.is_alive()

    @property
    def tuning(self) -> bool:
        return self._tuner.running

    def _maybe_tune(self) -> None:
        rebuilder = self._rebuild_thread  # a rebuild tunes what it builds; its own thread may start one after
        self._tuner.maybe_start(rebuilding=self.rebuilding and threading.current_thread() is not rebuilder)

    def _maybe_rebuild(self) -> None:
        """Start a background rebuild when the index asks for one and none is running."""
        index = self._index
        if self._closing or index is None or not index.needs_rebuild(self._compaction):
            return
        with self._thread_mutex:
            if self.rebuilding:
                return
            thread = threading.Thread(target=self._rebuild_in_background, name=f"stores-rebuild-{self.id}", daemon=True)
            self._rebuild_thread = thread
            thread.start()

    def _rebuild_in_background(self) -> None:
        try:
            self._rebuild()
        except _RebuildAborted:
            logger.info("stores_rebuild_aborted store=%r", self.name)
        except Exception:  # a background thread has no caller to raise to; the old index stays
            logger.exception("stores_rebuild_failed store=%r", self.name)

    def _rebuild(self) -> bool:
        with self._rebuild_lock:
            with self._write_lock:
                if self._index is None or self._closing:
                    return False
                generation, dimension = self._generation, self._index.dimension
                self._rebuild_floor = since = self._last_seq()
            try:
                fresh, since = self._build_at(since, dimension)
                if fresh.needs_tuning() and not self._tuner.measure(fresh, live=False):
                    raise _RebuildAborted
                since, _ = self._catch_up(fresh, since)  # most of what landed meanwhile, outside the lock
                with self._write_lock:
                    if self._generation != generation or self._index is None:
                        logger.info("stores_rebuild_discarded store=%r (emptied meanwhile)", self.name)
                        return False
                    self._catch_up(fresh, since)
                    with self._index_lock:
                        old, self._index = self._index, fresh
            finally:
                self._rebuild_floor = None
        logger.info(
            "stores_index_rebuilt_live store=%r kind=%s count=%s tombstones_dropped=%s",
            self.name, self.index_kind, fresh.count, old.dead_count if old else 0,
        )
        if not self._closing:
            self.checkpoint()
        self._maybe_tune()  # the fresh index is tuned unless it doubled while catching up
        return True

    def _build_at(self, floor: int, dimension: int) -> tuple[VectorIndex[Any], int]:
        """A fresh index of one committed state at seq >= ``floor``, and that seq."""
        with self.db.snapshot() as conn:
            seq = replay.last_seq(conn, self.id)
            return self._build_from(conn, dimension), max(seq, floor)

    def _build_from(self, conn: Any, dimension: int) -> VectorIndex[Any]:
        fresh = self._new_index(dimension)
        replay.fill(conn, self.id, fresh, stop=lambda: self._closing)
        if self._closing:
            raise _RebuildAborted
        return fresh

    def _catch_up(self, index: VectorIndex[Any], since: int) -> tuple[int, int]:
        """Apply what was committed after seq ``since`` to ``index``: the seq reached and rows added."""
        with self.db.snapshot() as conn:
            return replay.catch_up(conn, self.id, index, since)

    def _load_index(self) -> None:
        if self._dimension is None:
            self._index = None
            return
        conn = self.db.reader()
        last_seq, pruned_seq = conn.execute("SELECT last_seq, pruned_seq FROM stores WHERE id = ?", (self.id,)).fetchone()
        loaded = INDEX_CLASSES[self.index_kind].load(self._stem, self._dimension, last_seq, self._index_options)
        if loaded is not None and loaded[1] >= pruned_seq:
            index, since = loaded
            _, replayed = self._catch_up(index, since)
            if index.count == self.count():
                self._index = index
                logger.info("stores_index_loaded store=%r kind=%s seq=%s replayed=%s", self.name, index.kind, since, replayed)
                return
            logger.warning("stores_index_count_mismatch store=%r; rebuilding", self.name)
        index, _ = self._build_at(0, self._dimension)
        self._index = index
        logger.info("stores_index_rebuilt store=%r kind=%s rows=%s", self.name, index.kind, index.count)

    def _new_index(self, dimension: int) -> VectorIndex[Any]:
        return INDEX_CLASSES[self.index_kind](dimension, self._index_options)

    def _add_in_chunks(self, index: VectorIndex[Any], ids: np.ndarray, vectors: np.ndarray) -> None:
        """Add to the live index a chunk at a time, so a find waits for one chunk, not a whole batch."""
        for start in range(0, len(ids), INDEX_CHUNK):
            with self._index_lock:
                index.add(ids[start : start + INDEX_CHUNK], vectors[start : start + INDEX_CHUNK])

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
        found = (row_by_key(conn, self.id, row.tobytes()) for row in matrix)
        return sorted({int(row[0]) for row in found if row})
