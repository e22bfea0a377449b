"""Stored Responses API objects: each response as JSON, its input items, and the chain of
`previous_response_id` links that makes a conversation.

``<root>/responses.db`` (WAL, ``synchronous=FULL``: a returned commit survives ``kill -9`` and power
loss) with checksummed migrations, and ``<root>/responses.lock`` keeping a second process out. The
values are opaque JSON documents to this module; it knows nothing of models or of the protocol.
One connection serialised by a mutex: the rows are small and each call is one short statement.
"""

from __future__ import annotations

import fcntl
import logging
import os
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from stores.db import Migration
from stores.errors import DataPathLocked, SchemaMismatch, SchemaTooNew, StoreClosed

logger = logging.getLogger(__name__)

DB_FILENAME = "responses.db"
LOCK_FILENAME = "responses.lock"
MAX_CHAIN = 10_000  # previous_response_id hops followed at most; ids are unique, this only bounds work

MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        1,
        "initial",
        """
        CREATE TABLE responses (
            seq INTEGER PRIMARY KEY AUTOINCREMENT,
            id TEXT NOT NULL UNIQUE,
            previous_response_id TEXT,
            created_at INTEGER NOT NULL,
            body TEXT NOT NULL
        );
        CREATE TABLE input_items (
            response_id TEXT NOT NULL REFERENCES responses(id) ON DELETE CASCADE,
            position INTEGER NOT NULL,
            item_id TEXT NOT NULL,
            body TEXT NOT NULL,
            PRIMARY KEY (response_id, position)
        );
        CREATE INDEX input_items_by_id ON input_items(response_id, item_id);
        """,
    ),
)


@dataclass(frozen=True)
class ItemPage:
    items: list[dict[str, Any]]
    has_more: bool


class _Lock:
    """An exclusive, non-blocking ``flock`` on ``<root>/responses.lock`` holding our PID."""

    def __init__(self, root: Path) -> None:
        self.path = root / LOCK_FILENAME
        self._fd: int | None = None

    def acquire(self) -> None:
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip()
            os.close(fd)
            who = f" by process {holder}" if holder.isdigit() else ""
            raise DataPathLocked(
                f"response store {self.path.parent} is locked{who}; only one process may open it at a time"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None


class ResponseStore:
    """The stored responses of one data path. Every method blocks: call it from a worker thread."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)
        self.path = self.root / DB_FILENAME
        self._lock = _Lock(self.root)
        self._mutex = threading.Lock()
        self._conn: sqlite3.Connection | None = None

    def open(self) -> ResponseStore:
        self.root.mkdir(parents=True, exist_ok=True)
        self._lock.acquire()
        try:
            conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            self._conn = conn
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=FULL")
            conn.execute("PRAGMA foreign_keys=ON")
            conn.execute("PRAGMA busy_timeout=5000")
            self._migrate(conn)
        except BaseException:
            self.close()
            raise
        logger.info("event=responses_db_open path=%s", self.path)
        return self

    def close(self) -> None:
        with self._mutex:
            if self._conn is not None:
                self._conn.close()
                self._conn = None
        self._lock.release()

    def save(
        self,
        response_id: str,
        previous_response_id: str | None,
        created_at: int,
        body: dict[str, Any],
        input_items: Sequence[dict[str, Any]],
    ) -> None:
        """Store a response and its input items in one transaction (replacing an earlier save)."""
        with self._transaction() as conn:
            conn.execute("DELETE FROM responses WHERE id = ?", (response_id,))
            conn.execute(
                "INSERT INTO responses (id, previous_response_id, created_at, body) VALUES (?, ?, ?, ?)",
                (response_id, previous_response_id, created_at, _dump(body)),
            )
            conn.executemany(
                "INSERT INTO input_items (response_id, position, item_id, body) VALUES (?, ?, ?, ?)",
                [(response_id, n, str(item.get("id", "")), _dump(item)) for n, item in enumerate(input_items)],
            )

    def get(self, response_id: str) -> dict[str, Any] | None:
        with self._reading() as conn:
            row = conn.execute("SELECT body FROM responses WHERE id = ?", (response_id,)).fetchone()
        return None if row is None else orjson.loads(row[0])

    def delete(self, response_id: str) -> bool:
        with self._transaction() as conn:
            return conn.execute("DELETE FROM responses WHERE id = ?", (response_id,)).rowcount > 0

    def input_items(self, response_id: str, *, limit: int, order: str, after: str | None = None) -> ItemPage | None:
        """A page of a response's input items in `order` ("asc" = as given), after the item `after`;
        None when the response is not stored."""
        descending = order == "desc"
        with self._reading() as conn:
            if conn.execute("SELECT 1 FROM responses WHERE id = ?", (response_id,)).fetchone() is None:
                return None
            start: int | None = None
            if after is not None:
                found = conn.execute(
                    "SELECT position FROM input_items WHERE response_id = ? AND item_id = ?", (response_id, after)
                ).fetchone()
                start = found[0] if found is not None else None
            where, args = "response_id = ?", [response_id]
            if start is not None:
                where += " AND position < ?" if descending else " AND position > ?"
                args.append(start)
            rows = conn.execute(
                f"SELECT body FROM input_items WHERE {where} ORDER BY position {'DESC' if descending else 'ASC'}"
                " LIMIT ?",
                (*args, limit + 1),
            ).fetchall()
        return ItemPage([orjson.loads(row[0]) for row in rows[:limit]], has_more=len(rows) > limit)

    def conversation(self, response_id: str) -> list[tuple[list[dict[str, Any]], dict[str, Any]]] | None:
        """(input items, response) of every stored response from the start of the chain ending at
        `response_id`, oldest first; None when that response is not stored. A deleted response
        ends the chain: the turns before it are no longer part of the conversation."""
        with self._reading() as conn:
            rows = conn.execute(
                """
                WITH RECURSIVE chain(id, previous, depth) AS (
                    SELECT id, previous_response_id, 0 FROM responses WHERE id = ?
                    UNION ALL
                    SELECT r.id, r.previous_response_id, chain.depth + 1
                    FROM responses r JOIN chain ON r.id = chain.previous
                    WHERE chain.depth < ?
                )
                SELECT r.id, r.body FROM chain JOIN responses r ON r.id = chain.id ORDER BY chain.depth DESC
                """,
                (response_id, MAX_CHAIN),
            ).fetchall()
            if not rows:
                return None
            turns = []
            for turn_id, body in rows:
                items = conn.execute(
                    "SELECT body FROM input_items WHERE response_id = ? ORDER BY position", (turn_id,)
                ).fetchall()
                turns.append(([orjson.loads(item[0]) for item in items], orjson.loads(body)))
        return turns

    def _migrate(self, conn: sqlite3.Connection) -> None:
        conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations (id INTEGER PRIMARY KEY, name TEXT NOT NULL,"
            " checksum TEXT NOT NULL,"
            " applied_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')))"
        )
        applied = dict(conn.execute("SELECT id, checksum FROM schema_migrations").fetchall())
        known = {m.id for m in MIGRATIONS}
        newer = sorted(set(applied) - known)
        if newer:
            raise SchemaTooNew(
                f"{self.path} has schema version {max(newer)} but this code knows up to {max(known)}; "
                "upgrade the appliance to open it"
            )
        for migration in MIGRATIONS:
            if migration.id in applied:
                if applied[migration.id] != migration.checksum:
                    raise SchemaMismatch(
                        f"{self.path}: migration {migration.id} ({migration.name}) was applied with a "
                        "different checksum than this code's"
                    )
                continue
            conn.execute("BEGIN IMMEDIATE")
            try:
                for statement in (part.strip() for part in migration.sql.split(";")):
                    if statement:
                        conn.execute(statement)
                conn.execute(
                    "INSERT INTO schema_migrations (id, name, checksum) VALUES (?, ?, ?)",
                    (migration.id, migration.name, migration.checksum),
                )
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            logger.info("event=responses_migration_applied id=%s name=%s", migration.id, migration.name)

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        """One write transaction; it has committed (durably) when the block exits."""
        with self._mutex:
            conn = self._require_open()
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    @contextmanager
    def _reading(self) -> Iterator[sqlite3.Connection]:
        """Reads in one transaction, so a chain and its items come from one commit."""
        with self._mutex:
            conn = self._require_open()
            conn.execute("BEGIN")
            try:
                yield conn
            finally:
                conn.execute("COMMIT")

    def _require_open(self) -> sqlite3.Connection:
        if self._conn is None:
            raise StoreClosed(f"the response store at {self.path} is closed")
        return self._conn


def _dump(value: Any) -> str:
    return orjson.dumps(value).decode()
