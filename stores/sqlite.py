"""The SQLite plumbing shared by every database under ``stores``: the vector stores' log
(``stores.db``), the document library (``stores.documents.db``) and the stored responses
(``stores.responses``).

It owns what those have in common and nothing of their schemas: the ``Migration`` step and its
checksum (recorded in ``schema_migrations``, so the algorithm must never change or existing
databases stop opening), applying migrations in order (``SchemaTooNew``/``SchemaMismatch`` when the
database and the code disagree), the connection settings (``synchronous=FULL``, foreign keys, a busy
timeout; the caller turns on WAL), one ``BEGIN IMMEDIATE`` write transaction, splitting a migration
script into statements, and the ``flock`` lock file that keeps a second process off a database.
"""

from __future__ import annotations

import fcntl
import hashlib
import logging
import os
import sqlite3
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from stores.errors import DataPathLocked, SchemaMismatch, SchemaTooNew

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Migration:
    """One schema step; its checksum is recorded so an edited migration is detected at open."""

    id: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode("utf-8")).hexdigest()


class FileLock:
    """An exclusive, non-blocking ``flock`` on the file ``path``, holding our PID.

    ``what`` names the thing it guards in the error (``"data path"``: "data path <dir> is
    locked ..."); ``subject`` is what only one process may open ("it" unless told).
    """

    def __init__(self, path: Path, what: str, *, subject: str = "it") -> None:
        self.path = path
        self.what = what
        self.subject = subject
        self._fd: int | None = None

    def acquire(self) -> None:
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read_holder(fd)
            os.close(fd)
            who = f" by process {holder}" if holder else ""
            raise DataPathLocked(
                f"{self.what} {self.path.parent} is locked{who}; "
                f"only one process may open {self.subject} at a time"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None


def _read_holder(fd: int) -> int | None:
    """The PID the lock's holder wrote, or None when the file holds none."""
    try:
        text = os.pread(fd, 32, 0).decode(errors="replace").strip()
    except OSError:
        return None
    return int(text) if text.isdecimal() else None


def connect(path: Path) -> sqlite3.Connection:
    """A connection in autocommit mode (transactions are explicit), usable from any thread."""
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    try:
        conn.execute("PRAGMA synchronous=FULL")
        conn.execute("PRAGMA foreign_keys=ON")
        conn.execute("PRAGMA busy_timeout=5000")
    except BaseException:
        conn.close()
        raise
    return conn


@contextmanager
def transaction(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """One write transaction; it has committed (durably) when the block exits normally."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def apply_migrations(
    conn: sqlite3.Connection,
    path: Path,
    migrations: Iterable[Migration],
    event: str,
    *,
    log: logging.Logger = logger,
) -> None:
    """Apply the migrations the database at ``path`` lacks, each in its own transaction.

    Raises SchemaTooNew when the database has a migration this code does not know and
    SchemaMismatch when an applied one's checksum differs from the code's. Each applied migration is
    logged on ``log`` as ``<event> id=.. name=..``.
    """
    migrations = tuple(migrations)
    # An existing table is kept as it is: older document libraries record applied_at as epoch seconds.
    conn.execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations (id INTEGER PRIMARY KEY, name TEXT NOT NULL,"
        " checksum TEXT NOT NULL,"
        " applied_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')))"
    )
    applied = dict(conn.execute("SELECT id, checksum FROM schema_migrations").fetchall())
    known = {m.id for m in migrations}
    newer = sorted(set(applied) - known)
    if newer:
        raise SchemaTooNew(
            f"{path} has schema version {max(newer)} but this code knows up to "
            f"{max(known)}; upgrade the appliance to open it"
        )
    for migration in migrations:
        if migration.id in applied:
            if applied[migration.id] != migration.checksum:
                raise SchemaMismatch(
                    f"{path}: migration {migration.id} ({migration.name}) was applied with "
                    "a different checksum than this code's"
                )
            continue
        with transaction(conn):
            # executescript would COMMIT first; run the statements inside our transaction
            for statement in statements(migration.sql):
                conn.execute(statement)
            conn.execute(
                "INSERT INTO schema_migrations (id, name, checksum) VALUES (?, ?, ?)",
                (migration.id, migration.name, migration.checksum),
            )
        log.info("%s id=%s name=%s", event, migration.id, migration.name)


def statements(script: str) -> list[str]:
    """Split a migration into statements; a trigger body's inner ``;`` stays with its trigger."""
    found: list[str] = []
    current: list[str] = []
    for part in script.split(";"):
        current.append(part)
        candidate = ";".join(current).strip()
        if not candidate:
            current = []
            continue
        if sqlite3.complete_statement(candidate + ";"):
            found.append(candidate)
            current = []
    if "".join(current).strip():
        raise ValueError(f"incomplete SQL statement in migration: {';'.join(current).strip()[:80]}")
    return found
