"""The response store: durable saves (a writer killed without closing loses nothing), chains of
previous_response_id, input item pages, deletes, the lock file and checksummed migrations."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from stores.errors import DataPathLocked, SchemaMismatch, SchemaTooNew, StoreClosed
from stores.responses import DB_FILENAME, LOCK_FILENAME, ResponseStore

REPO_ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return tmp_path / "responses"


@pytest.fixture
def store(root: Path) -> Iterator[ResponseStore]:
    opened = ResponseStore(root).open()
    yield opened
    opened.close()


def turn(store: ResponseStore, response_id: str, previous: str | None, *texts: str) -> None:
    items = [{"id": f"{response_id}-in{n}", "type": "message", "role": "user", "content": text} for n, text in enumerate(texts)]
    body = {"id": response_id, "output": [{"id": f"{response_id}-out", "type": "message", "text": f"re {texts[-1]}"}]}
    store.save(response_id, previous, 1, body, items)


def test_database_is_wal_full_sync_and_locked(root: Path, store: ResponseStore) -> None:
    conn = sqlite3.connect(root / DB_FILENAME)
    try:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    finally:
        conn.close()
    assert store._conn is not None and store._conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    assert (root / LOCK_FILENAME).read_text().strip() == str(os.getpid())
    with pytest.raises(DataPathLocked, match="only one process"):
        ResponseStore(root).open()


def test_chain_items_and_pages(store: ResponseStore) -> None:
    turn(store, "r1", None, "a", "b")
    turn(store, "r2", "r1", "c")
    turn(store, "r3", "r2", "d")
    turn(store, "side", "r1", "e")
    chain = store.conversation("r3")
    assert chain is not None
    assert [[i["content"] for i in inputs] for inputs, _ in chain] == [["a", "b"], ["c"], ["d"]]
    assert [response["id"] for _, response in chain] == ["r1", "r2", "r3"]
    assert [response["id"] for _, response in store.conversation("side") or []] == ["r1", "side"]
    assert store.conversation("nope") is None
    desc = store.input_items("r1", limit=1, order="desc")
    assert desc is not None and [i["content"] for i in desc.items] == ["b"] and desc.has_more
    rest = store.input_items("r1", limit=5, order="desc", after="r1-in1")
    assert rest is not None and [i["content"] for i in rest.items] == ["a"] and not rest.has_more
    asc = store.input_items("r1", limit=5, order="asc")
    assert asc is not None and [i["content"] for i in asc.items] == ["a", "b"]
    assert store.input_items("nope", limit=5, order="asc") is None


def test_delete_cuts_the_chain_and_drops_items(store: ResponseStore) -> None:
    turn(store, "r1", None, "a")
    turn(store, "r2", "r1", "b")
    turn(store, "r3", "r2", "c")
    assert store.delete("r2") is True and store.delete("r2") is False
    assert store.get("r2") is None and store.input_items("r2", limit=5, order="asc") is None
    assert [response["id"] for _, response in store.conversation("r3") or []] == ["r3"]
    assert store._conn is not None
    assert store._conn.execute("SELECT count(*) FROM input_items WHERE response_id = 'r2'").fetchone()[0] == 0


WRITER = """
import os, sys
from stores.responses import ResponseStore
store = ResponseStore(sys.argv[1]).open()
for n in range(20):
    previous = f"r{n - 1}" if n else None
    store.save(f"r{n}", previous, n, {"id": f"r{n}", "output": []}, [{"id": f"i{n}", "content": str(n)}])
os._exit(0)  # no close(): what save() returned must already be on disk
"""


def test_saves_survive_a_killed_writer(root: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(WRITER), str(root)],
        capture_output=True, text=True, timeout=60, cwd=REPO_ROOT,
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT)}, check=False,
    )
    assert result.returncode == 0, result.stderr
    with_store = ResponseStore(root).open()  # the dead writer's lock went with it
    try:
        chain = with_store.conversation("r19")
        assert chain is not None and [inputs[0]["content"] for inputs, _ in chain] == [str(n) for n in range(20)]
    finally:
        with_store.close()


def test_closed_store_and_schema_checks(root: Path) -> None:
    store = ResponseStore(root).open()
    store.close()
    with pytest.raises(StoreClosed):
        store.get("r1")
    conn = sqlite3.connect(root / DB_FILENAME)
    try:
        conn.execute("UPDATE schema_migrations SET checksum = 'edited' WHERE id = 1")
        conn.commit()
    finally:
        conn.close()
    with pytest.raises(SchemaMismatch):
        ResponseStore(root).open()
    conn = sqlite3.connect(root / DB_FILENAME)
    try:
        conn.execute("INSERT INTO schema_migrations (id, name, checksum) VALUES (99, 'future', 'x')")
        conn.commit()
    finally:
        conn.close()
    with pytest.raises(SchemaTooNew, match="99"):
        ResponseStore(root).open()
