"""Stored Responses API objects: each response as JSON, its input items, and the chain of
`previous_response_id` links that makes a conversation.

``<root>/responses.db`` (WAL, ``synchronous=FULL``: a returned commit survives ``kill -9`` and power
loss) with checksummed migrations, and ``<root>/responses.lock`` keeping a second process out. The
values are opaque JSON documents to this module; it knows nothing of models or of the protocol.
One connection serialised by a mutex: the rows are small and each call is one short statement.
"""

from __future__ import annotations

import json
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

from stores.errors import StoreClosed
from stores.sqlite import FileLock, Migration, apply_migrations, connect, transaction

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


class ResponseStore:
    """The stored responses of one data path. Every method blocks: call it from a worker thread."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)
        self.path = self.root / DB_FILENAME
        self._lock = FileLock(self.root / LOCK_FILENAME, "response store")
        self._mutex = threading.Lock()
        self._conn: sqlite3.Connection | None = None

    def open(self) -> ResponseStore:
        self.root.mkdir(parents=True, exist_ok=True)
        self._lock.acquire()
        try:
            conn = connect(self.path)
            self._conn = conn
            conn.execute("PRAGMA journal_mode=WAL")
            apply_migrations(conn, self.path, MIGRATIONS, "event=responses_migration_applied", log=logger)
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

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        """One write transaction; it has committed (durably) when the block exits."""
        with self._mutex, transaction(self._require_open()) as conn:
            yield conn

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
    try:
        return orjson.dumps(value).decode()
    except TypeError:  # an integer beyond 64 bits, which orjson cannot write (a client's free-form JSON)
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"))
