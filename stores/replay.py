"""Feeding a store's index from its SQLite rows: full builds and catch-up after a seq.

Each function reads through the connection it is given, normally a ``StoreDatabase.snapshot`` so
every read sees one commit. Catch-up relies on two facts of the schema: row ids only grow, and a
row's key never changes (an upsert of an equal key only rewrites its value), so the rows an index
lacks are exactly those above its ``max_id``, and a delete logged after the index's seq removes a
row the index holds exactly when its id is at most ``max_id``.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from stores.index import VectorIndex

# Rows per SQLite fetch when building or replaying an index.
FETCH_ROWS = 4096


def last_seq(conn: sqlite3.Connection, store_id: int) -> int:
    return int(conn.execute("SELECT last_seq FROM stores WHERE id = ?", (store_id,)).fetchone()[0])


def row_batches(
    conn: sqlite3.Connection, store_id: int, where: str = "", args: tuple[int, ...] = ()
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """``(ids, keys)`` arrays of the store's rows in id order, ``where`` narrowing them."""
    cursor = conn.execute(f"SELECT id, key FROM rows WHERE store_id = ? {where} ORDER BY id", (store_id, *args))
    while batch := cursor.fetchmany(FETCH_ROWS):
        ids = np.fromiter((r[0] for r in batch), dtype=np.int64, count=len(batch))
        vectors = np.frombuffer(b"".join(r[1] for r in batch), dtype="<f4").reshape(len(batch), -1)
        yield ids, vectors


def fill(conn: sqlite3.Connection, store_id: int, index: VectorIndex[Any], stop: Callable[[], bool]) -> None:
    """Every row into an empty ``index``, trained first on a sample when its kind wants one.

    ``stop`` is polled between batches; when it turns true the fill ends early (the caller
    discards the index).
    """
    rows = int(conn.execute("SELECT count(*) FROM rows WHERE store_id = ?", (store_id,)).fetchone()[0])
    want = index.training_rows(rows)
    if want:
        index.train(sample(conn, store_id, rows, want), rows)
    for ids, vectors in row_batches(conn, store_id):
        if stop():
            return
        index.add(ids, vectors)


def sample(conn: sqlite3.Connection, store_id: int, rows: int, want: int) -> np.ndarray:
    """``want`` keys spread evenly over the store's ``rows`` rows (in id order)."""
    picks = np.unique(np.linspace(0, rows - 1, num=want).astype(np.int64))
    chosen: list[np.ndarray] = []
    offset = 0
    for _, vectors in row_batches(conn, store_id):
        local = picks[(picks >= offset) & (picks < offset + len(vectors))] - offset
        chosen.append(vectors[local])
        offset += len(vectors)
    return np.concatenate(chosen)


def catch_up(conn: sqlite3.Connection, store_id: int, index: VectorIndex[Any], since: int) -> tuple[int, int]:
    """Apply the writes committed after seq ``since``: the seq now covered and the rows added.

    Deletes go first, judged against the ``max_id`` from before the adds. Rows of another
    dimension belong to a refill after the store was emptied; a rebuild that sees them is
    discarded at its swap, so they are skipped rather than fed to the wrong index.
    """
    seq = last_seq(conn, store_id)
    known = index.max_id
    gone = conn.execute(
        "SELECT row_id FROM deletes WHERE store_id = ? AND seq > ? AND row_id <= ?", (store_id, since, known)
    ).fetchall()
    index.remove(np.asarray([r[0] for r in gone], dtype=np.int64))
    added = 0
    newer = "AND seq > ? AND id > ? AND length(key) = ?"
    for ids, vectors in row_batches(conn, store_id, newer, (since, known, 4 * index.dimension)):
        index.add(ids, vectors)
        added += len(ids)
    return max(seq, since), added
