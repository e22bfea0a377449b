"""The SQLite layer: durability pragmas, recorded migrations and the lock file's PID."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from stores.db import LOCK_FILENAME, MIGRATIONS, StoreDatabase
from stores.errors import StoreClosed


def test_database_is_wal_full_sync_and_records_migrations(data_path: Path) -> None:
    db = StoreDatabase(data_path)
    db.open()
    try:
        conn = db.reader()
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
        applied = conn.execute("SELECT id, checksum FROM schema_migrations ORDER BY id").fetchall()
        assert applied == [(m.id, m.checksum) for m in MIGRATIONS]
        assert (data_path / LOCK_FILENAME).read_text().strip() == str(os.getpid())
        with pytest.raises(RuntimeError), db.write() as write:  # a failed transaction rolls back
            write.execute("INSERT INTO stores (name) VALUES ('rolled-back')")
            raise RuntimeError("boom")
        assert conn.execute("SELECT count(*) FROM stores").fetchone()[0] == 0
    finally:
        db.close()
    with pytest.raises(StoreClosed):
        db.reader()
    reopened = StoreDatabase(data_path)
    reopened.open()  # migrations are not re-applied, the lock was released
    reopened.close()
