"""The durable log: one SQLite database per data path, its migrations and its lock file.

SQLite (WAL, ``synchronous=FULL``) is the source of truth; every FAISS index is derived from it.
One writer connection serialised by a lock; readers get their own per-thread connections so a
long write never blocks them; ``snapshot`` lends a dedicated connection pinned to one commit (an
export that may resume on any thread). A ``fcntl`` lock file keeps a second process off the data path.
"""

from __future__ import annotations

import fcntl
import hashlib
import logging
import os
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import sqlite_utils

from stores.errors import DataPathLocked, SchemaMismatch, SchemaTooNew, StoreClosed

logger = logging.getLogger(__name__)

DB_FILENAME = "stores.sqlite3"
LOCK_FILENAME = "stores.lock"


@dataclass(frozen=True)
class Migration:
    """One schema step; its checksum is recorded so an edited migration is detected."""

    id: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode("utf-8")).hexdigest()


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


class DataPathLock:
    """An exclusive, non-blocking ``flock`` on ``<data_path>/stores.lock`` holding our PID."""

    def __init__(self, data_path: Path) -> None:
        self.path = data_path / LOCK_FILENAME
        self._fd: int | None = None

    def acquire(self) -> None:
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read_pid(fd)
            os.close(fd)
            who = f" by process {holder}" if holder else ""
            raise DataPathLocked(
                f"data path {self.path.parent} is locked{who}; "
                "only one process may open a store data path at a time"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None


def _read_pid(fd: int) -> int | None:
    try:
        text = os.pread(fd, 32, 0).decode().strip()
        return int(text) if text else None
    except (OSError, ValueError):
        return None


class StoreDatabase:
    """The SQLite database of one data path: migrations, a writer transaction, per-thread readers."""

    def __init__(self, data_path: str | os.PathLike[str]) -> None:
        self.data_path = Path(data_path)
        self.path = self.data_path / DB_FILENAME
        self._lock = DataPathLock(self.data_path)
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
            conn = self._connect()
            conn.execute("PRAGMA journal_mode=WAL")
            self._writer = conn
            self.db = sqlite_utils.Database(conn)
            self._migrate(conn)
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

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA synchronous=FULL")
        conn.execute("PRAGMA foreign_keys=ON")
        conn.execute("PRAGMA busy_timeout=5000")
        return conn

    def _migrate(self, conn: sqlite3.Connection) -> None:
        conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations (id INTEGER PRIMARY KEY, name TEXT NOT NULL,"
            " checksum TEXT NOT NULL,"
            " applied_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')))"
        )
        applied = {row[0]: row[1] for row in conn.execute("SELECT id, checksum FROM schema_migrations")}
        known = {m.id: m for m in MIGRATIONS}
        newer = sorted(set(applied) - set(known))
        if newer:
            raise SchemaTooNew(
                f"{self.path} has schema version {max(newer)} but this code knows up to "
                f"{max(known)}; upgrade the appliance to open it"
            )
        for migration in MIGRATIONS:
            if migration.id in applied:
                if applied[migration.id] != migration.checksum:
                    raise SchemaMismatch(
                        f"{self.path}: migration {migration.id} ({migration.name}) was applied with "
                        "a different checksum than this code's"
                    )
                continue
            conn.execute("BEGIN IMMEDIATE")
            try:
                for statement in _statements(migration.sql):
                    conn.execute(statement)
                conn.execute(
                    "INSERT INTO schema_migrations (id, name, checksum) VALUES (?, ?, ?)",
                    (migration.id, migration.name, migration.checksum),
                )
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            logger.info("stores_migration_applied id=%s name=%s", migration.id, migration.name)

    @contextmanager
    def write(self) -> Iterator[sqlite3.Connection]:
        """One serialised write transaction; it has committed (durably) when the block exits."""
        with self._write_mutex:
            conn = self._require_writer()
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    def reader(self) -> sqlite3.Connection:
        """This thread's read connection (WAL readers see the last commit and never wait on writers)."""
        self._require_writer()
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._connect()
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
        conn = self._connect()
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


def _statements(script: str) -> list[str]:
    return [part.strip() for part in script.split(";") if part.strip()]
