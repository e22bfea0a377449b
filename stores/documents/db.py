"""The document library's SQLite database: schema and migrations, connections, and the lock file.

``<root>/documents.db`` (WAL, ``synchronous=FULL``: a returned commit survives ``kill -9`` and power
loss) holds files, vector stores, their files and batches, extracted documents, chunks with their
vectors, and the FTS5 index over chunk text (external content, kept in step by triggers). One
writer connection serialised by a mutex; readers get per-thread connections (WAL readers see the
last commit and never wait on the writer). ``<root>/documents.lock`` keeps a second process out.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from stores.errors import StoreClosed
from stores.sqlite import FileLock, Migration, apply_migrations, connect, transaction

logger = logging.getLogger(__name__)

DB_FILENAME = "documents.db"
LOCK_FILENAME = "documents.lock"


# ``seq`` columns (AUTOINCREMENT, never reused) order objects created in the same second.
MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        1,
        "initial",
        """
        CREATE TABLE files (
            seq INTEGER PRIMARY KEY AUTOINCREMENT,
            id TEXT NOT NULL UNIQUE,
            filename TEXT NOT NULL,
            purpose TEXT NOT NULL,
            bytes INTEGER NOT NULL,
            sha256 TEXT NOT NULL,
            created_at INTEGER NOT NULL
        );
        CREATE INDEX files_by_sha256 ON files(sha256);
        CREATE TABLE extractions (
            file_id TEXT PRIMARY KEY REFERENCES files(id) ON DELETE CASCADE,
            data BLOB NOT NULL
        );
        CREATE TABLE vector_stores (
            seq INTEGER PRIMARY KEY AUTOINCREMENT,
            id TEXT NOT NULL UNIQUE,
            name TEXT,
            created_at INTEGER NOT NULL,
            last_active_at INTEGER NOT NULL,
            metadata TEXT NOT NULL DEFAULT '{}',
            embedding_model TEXT,
            embedding_dimension INTEGER,
            rerank_model TEXT,
            chunking_strategy TEXT,
            expires_after TEXT
        );
        CREATE TABLE vector_store_files (
            seq INTEGER PRIMARY KEY AUTOINCREMENT,
            vector_store_id TEXT NOT NULL REFERENCES vector_stores(id) ON DELETE CASCADE,
            file_id TEXT NOT NULL REFERENCES files(id) ON DELETE CASCADE,
            status TEXT NOT NULL CHECK (status IN ('in_progress', 'completed', 'cancelled', 'failed')),
            created_at INTEGER NOT NULL,
            usage_bytes INTEGER NOT NULL DEFAULT 0,
            chunk_count INTEGER NOT NULL DEFAULT 0,
            error_code TEXT,
            error_message TEXT,
            attributes TEXT NOT NULL DEFAULT '{}',
            chunking_strategy TEXT,
            duplicate_of TEXT,
            batch_id TEXT,
            UNIQUE (vector_store_id, file_id)
        );
        CREATE INDEX vector_store_files_by_status ON vector_store_files(status);
        CREATE INDEX vector_store_files_by_file ON vector_store_files(file_id);
        CREATE TABLE file_batches (
            seq INTEGER PRIMARY KEY AUTOINCREMENT,
            id TEXT NOT NULL UNIQUE,
            vector_store_id TEXT NOT NULL REFERENCES vector_stores(id) ON DELETE CASCADE,
            created_at INTEGER NOT NULL,
            cancel_requested INTEGER NOT NULL DEFAULT 0
        );
        CREATE TABLE batch_files (
            batch_id TEXT NOT NULL REFERENCES file_batches(id) ON DELETE CASCADE,
            vector_store_id TEXT NOT NULL,
            file_id TEXT NOT NULL,
            PRIMARY KEY (batch_id, file_id),
            FOREIGN KEY (vector_store_id, file_id)
                REFERENCES vector_store_files(vector_store_id, file_id) ON DELETE CASCADE
        );
        CREATE INDEX batch_files_by_file ON batch_files(vector_store_id, file_id);
        CREATE TABLE chunks (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            vector_store_id TEXT NOT NULL,
            file_id TEXT NOT NULL,
            seq INTEGER NOT NULL,
            text TEXT NOT NULL,
            heading_path TEXT NOT NULL,
            page_start INTEGER,
            page_end INTEGER,
            char_start INTEGER NOT NULL,
            char_end INTEGER NOT NULL,
            tokens INTEGER NOT NULL,
            vector BLOB NOT NULL,
            FOREIGN KEY (vector_store_id, file_id)
                REFERENCES vector_store_files(vector_store_id, file_id) ON DELETE CASCADE
        );
        CREATE INDEX chunks_by_file ON chunks(vector_store_id, file_id, seq);
        CREATE VIRTUAL TABLE chunks_fts USING fts5(
            text, heading_path, content='chunks', content_rowid='id',
            tokenize='unicode61 remove_diacritics 2'
        );
        CREATE TRIGGER chunks_fts_insert AFTER INSERT ON chunks BEGIN
            INSERT INTO chunks_fts(rowid, text, heading_path) VALUES (new.id, new.text, new.heading_path);
        END;
        CREATE TRIGGER chunks_fts_delete AFTER DELETE ON chunks BEGIN
            INSERT INTO chunks_fts(chunks_fts, rowid, text, heading_path)
                VALUES ('delete', old.id, old.text, old.heading_path);
        END;
        """,
    ),
)


class LibraryDatabase:
    """Connections to ``documents.db``: one serialised writer, one reader per thread."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.path = root / DB_FILENAME
        self._lock = FileLock(root / LOCK_FILENAME, "document library")
        self.write_mutex = threading.RLock()
        self._local = threading.local()
        self._readers: list[sqlite3.Connection] = []
        self._readers_mutex = threading.Lock()
        self._writer: sqlite3.Connection | None = None

    def open(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        self._lock.acquire()
        try:
            conn = connect(self.path)
            conn.execute("PRAGMA journal_mode=WAL")
            self._writer = conn
            apply_migrations(conn, self.path, MIGRATIONS, "documents_migration_applied", log=logger)
        except BaseException:
            self.close()
            raise
        logger.info("documents_db_open path=%s", self.path)

    def close(self) -> None:
        with self._readers_mutex:
            for reader in self._readers:
                reader.close()
            self._readers.clear()
            self._local = threading.local()
        with self.write_mutex:
            if self._writer is not None:
                self._writer.close()
                self._writer = None
        self._lock.release()

    @property
    def is_open(self) -> bool:
        return self._writer is not None

    @contextmanager
    def write(self) -> Iterator[sqlite3.Connection]:
        """One serialised write transaction, durably committed when the block exits normally."""
        with self.write_mutex, transaction(self.writer()) as conn:
            yield conn

    def writer(self) -> sqlite3.Connection:
        """The writer connection; only use it while holding ``write_mutex``."""
        if self._writer is None:
            raise StoreClosed(f"the document library at {self.root} is closed")
        return self._writer

    def reader(self) -> sqlite3.Connection:
        """This thread's read connection."""
        self.writer()
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = connect(self.path)
            conn.execute("PRAGMA query_only=ON")
            self._local.conn = conn
            with self._readers_mutex:
                self._readers.append(conn)
        return conn

