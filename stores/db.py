"""The durable log: one SQLite database per data path, its migrations and its lock file.

SQLite (WAL, ``synchronous=FULL``) is the source of truth; every FAISS index is derived from it.
One writer connection serialised by a lock; readers get their own per-thread connections so a
long write never blocks them; ``snapshot`` lends a dedicated connection pinned to one commit (an
export that may resume on any thread). A ``fcntl`` lock file keeps a second process off the data path.
"""

from __future__ import annotations

import hashlib
import logging
import os
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import sqlite_utils

from stores.errors import StoreClosed
from stores.sqlite import FileLock, Migration, apply_migrations, connect, transaction

logger = logging.getLogger(__name__)

DB_FILENAME = "stores.sqlite3"
LOCK_FILENAME = "stores.lock"


MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        1,
        "initial",
        """
        CREATE TABLE stores (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            name TEXT NOT NULL UNIQUE,
            dimension INTEGER,
            metric TEXT NOT NULL DEFAULT 'cosine',
            index_kind TEXT NOT NULL DEFAULT 'exact',
            embedding_model TEXT,
            embedding_dimension INTEGER,
            last_seq INTEGER NOT NULL DEFAULT 0,
            pruned_seq INTEGER NOT NULL DEFAULT 0,
            created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
        );
        CREATE TABLE rows (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            store_id INTEGER NOT NULL REFERENCES stores(id) ON DELETE CASCADE,
            key BLOB NOT NULL,
            key_hash INTEGER NOT NULL,
            value TEXT NOT NULL,
            metadata TEXT,
            seq INTEGER NOT NULL
        );
        CREATE INDEX rows_by_key ON rows(store_id, key_hash);
        CREATE INDEX rows_by_seq ON rows(store_id, seq);
        CREATE TABLE deletes (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            store_id INTEGER NOT NULL REFERENCES stores(id) ON DELETE CASCADE,
            row_id INTEGER NOT NULL,
            seq INTEGER NOT NULL
        );
        CREATE INDEX deletes_by_seq ON deletes(store_id, seq);
        """,
    ),
    Migration(
        2,
        "index_options",
        """
        ALTER TABLE stores ADD COLUMN index_options TEXT
        """,
    ),
)


def key_hash(key: bytes) -> int:
    """A signed 64-bit hash of a key's float32 bytes, the lookup column for exact-key matches."""
    return int.from_bytes(hashlib.blake2b(key, digest_size=8).digest(), "little", signed=True)


def row_by_key(conn: sqlite3.Connection, store_id: int, key: bytes, columns: str = "id") -> tuple | None:
    """``columns`` of the store's row whose key is exactly ``key`` (hash-indexed, then compared)."""
    return conn.execute(
        f"SELECT {columns} FROM rows WHERE store_id = ? AND key_hash = ? AND key = ?", (store_id, key_hash(key), key)
    ).fetchone()


class StoreDatabase:
    """The SQLite database of one data path: migrations, a writer transaction, per-thread readers."""

    def __init__(self, data_path: str | os.PathLike[str]) -> None:
        self.data_path = Path(data_path)
        self.path = self.data_path / DB_FILENAME
        self._lock = FileLock(self.data_path / LOCK_FILENAME, "data path", subject="a store data path")
        self._write_mutex = threading.Lock()
        self._local = threading.local()
        self._readers: list[sqlite3.Connection] = []
        self._readers_mutex = threading.Lock()
        self._snapshots: set[sqlite3.Connection] = set()
        self._writer: sqlite3.Connection | None = None
        self.db: sqlite_utils.Database | None = None

    def open(self) -> None:
        self.data_path.mkdir(parents=True, exist_ok=True)
        self._lock.acquire()
        try:
            conn = connect(self.path)
            conn.execute("PRAGMA journal_mode=WAL")
            self._writer = conn
            self.db = sqlite_utils.Database(conn)
            apply_migrations(conn, self.path, MIGRATIONS, "stores_migration_applied", log=logger)
        except BaseException:
            self.close()
            raise
        logger.info("stores_db_open path=%s", self.path)

    def close(self) -> None:
        with self._readers_mutex:
            for reader in self._readers:
                reader.close()
            self._readers.clear()
            for conn in self._snapshots:
                conn.close()
            self._snapshots.clear()
        if self._writer is not None:
            self._writer.close()
            self._writer = None
            self.db = None
        self._lock.release()

    @contextmanager
    def write(self) -> Iterator[sqlite3.Connection]:
        """One serialised write transaction; it has committed (durably) when the block exits."""
        with self._write_mutex, transaction(self._require_writer()) as conn:
            yield conn

    def reader(self) -> sqlite3.Connection:
        """This thread's read connection (WAL readers see the last commit and never wait on writers)."""
        self._require_writer()
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = connect(self.path)
            self._local.conn = conn
            with self._readers_mutex:
                self._readers.append(conn)
        return conn

    @contextmanager
    def snapshot(self) -> Iterator[sqlite3.Connection]:
        """A dedicated read-only connection inside one read transaction: every read sees one commit.

        Not the per-thread reader: a streamed export resumes on whichever worker thread is free, and
        its transaction must outlive any one of them. WAL keeps writers going meanwhile (the WAL
        file cannot be reset past this snapshot until it ends, so it grows during a long export).
        """
        self._require_writer()
        conn = connect(self.path)
        with self._readers_mutex:
            self._snapshots.add(conn)
        try:
            conn.execute("PRAGMA query_only=ON")
            conn.execute("BEGIN")  # deferred: the snapshot is taken by the first read
            yield conn
        finally:
            with self._readers_mutex:
                self._snapshots.discard(conn)
            conn.close()  # ends (rolls back) the read transaction

    def _require_writer(self) -> sqlite3.Connection:
        if self._writer is None:
            raise StoreClosed(f"the store database at {self.path} is closed")
        return self._writer

