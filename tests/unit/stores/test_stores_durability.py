"""Durability: reopen in a fresh process, replay after a crash, rebuild from missing/corrupt/stale
checkpoints, the data-path lock across processes, and schema versions from the future."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import sqlite3
import subprocess
import sys
import textwrap
from contextlib import closing
from pathlib import Path

import numpy as np
import pytest

from stores.db import DB_FILENAME, MIGRATIONS
from stores.errors import DataPathLocked, SchemaMismatch, SchemaTooNew
from stores.registry import StoreRegistry

REPO_ROOT = Path(__file__).resolve().parents[3]


def run_python(code: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code), *args],
        capture_output=True, text=True, timeout=60, cwd=REPO_ROOT, env=env, check=False,
    )


def random_keys(n: int, dim: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(n, dim)).astype(np.float32)


def snapshot(registry: StoreRegistry, queries: np.ndarray) -> list[tuple[list[str], list[float]]]:
    store = registry.get("")
    return [(f.values, f.similarities) for f in (store.find(q.tolist(), 15) for q in queries)]


WRITER = """
import os, sys
import numpy as np
from stores.registry import StoreRegistry
path, crash = sys.argv[1], sys.argv[2] == "crash"
keys = np.random.default_rng(5).normal(size=(400, 16)).astype(np.float32)
reg = StoreRegistry(path, checkpoint_every=5).open()
store = reg.get("")
for b in range(10):
    store.set(keys[b * 40:(b + 1) * 40].tolist(), [f"v{b * 40 + j}" for j in range(40)])
store.delete(keys[:20].tolist())          # seq 11: after the last periodic checkpoint (seq 10)
store.set(keys[20:25].tolist(), ["new"] * 5)  # seq 12: updates replayed too
if crash:
    os._exit(0)                           # no close(): the index must be replayed from SQLite
reg.close()
"""


@pytest.mark.parametrize("mode", ["close", "crash"])
def test_reopen_in_fresh_process_finds_every_row(data_path: Path, mode: str, caplog: pytest.LogCaptureFixture) -> None:
    result = run_python(WRITER, str(data_path), mode)
    assert result.returncode == 0, result.stderr
    keys = np.random.default_rng(5).normal(size=(400, 16)).astype(np.float32)
    caplog.set_level(logging.INFO, logger="stores")
    with StoreRegistry(data_path) as registry:
        store = registry.get("")
        assert store.count() == 380
        assert store.get(keys[:20].tolist()).values == []
        got = store.get(keys[20:].tolist())
        assert got.values == ["new"] * 5 + [f"v{i}" for i in range(25, 400)]
        for i in (20, 77, 399):
            found = store.find(keys[i].tolist(), 1)
            assert found.keys == [keys[i].tolist()] and found.similarities[0] == pytest.approx(1.0, abs=1e-6)
        assert len(store.find(keys[0].tolist(), 1000).values) == 380
    # the checkpoint was loaded and the newer writes replayed, not rebuilt from scratch
    assert any("stores_index_loaded" in r.getMessage() for r in caplog.records)
    assert not any("stores_index_rebuilt" in r.getMessage() for r in caplog.records)


def fill(data_path: Path) -> np.ndarray:
    keys = random_keys(300, 24, seed=9)
    with StoreRegistry(data_path) as registry:
        store = registry.get("")
        store.set(keys.tolist(), [str(i) for i in range(len(keys))])
        store.delete(keys[::7].tolist())
    return keys


def test_missing_checkpoint_is_rebuilt_with_identical_results(data_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    keys = fill(data_path)
    queries = random_keys(6, 24, seed=10)
    with StoreRegistry(data_path) as registry:
        before = snapshot(registry, queries)
    shutil.rmtree(data_path / "index")
    caplog.set_level(logging.INFO, logger="stores")
    with StoreRegistry(data_path) as registry:
        assert snapshot(registry, queries) == before
        assert registry.get("").count() == len(keys) - len(keys[::7])
    assert any("stores_index_rebuilt" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize("damage", ["flip_bytes", "truncate_and_fix_sidecar", "garbage_sidecar", "wrong_count"])
def test_corrupt_checkpoint_is_rebuilt_not_trusted(data_path: Path, damage: str, caplog: pytest.LogCaptureFixture) -> None:
    fill(data_path)
    queries = random_keys(6, 24, seed=11)
    with StoreRegistry(data_path) as registry:
        before = snapshot(registry, queries)
    faiss_file, sidecar_file = data_path / "index" / "1.faiss", data_path / "index" / "1.json"
    data, sidecar = bytearray(faiss_file.read_bytes()), json.loads(sidecar_file.read_text())
    if damage == "flip_bytes":
        data[-200:] = bytes(200)
        faiss_file.write_bytes(bytes(data))
    elif damage == "truncate_and_fix_sidecar":
        faiss_file.write_bytes(bytes(data[:100]))
        sidecar["files"][".faiss"] = {"sha256": hashlib.sha256(bytes(data[:100])).hexdigest(), "size": 100}
        sidecar_file.write_text(json.dumps(sidecar))
    elif damage == "garbage_sidecar":
        sidecar_file.write_text("{not json")
    else:
        sidecar["count"] += 1
        sidecar_file.write_text(json.dumps(sidecar))
    caplog.set_level(logging.INFO, logger="stores")
    with StoreRegistry(data_path) as registry:
        assert snapshot(registry, queries) == before
    messages = [r.getMessage() for r in caplog.records]
    assert any("stores_index_rebuilt" in m for m in messages)
    assert not any("stores_index_loaded" in m for m in messages)


def test_stale_checkpoint_from_before_pruned_deletes_is_rebuilt(data_path: Path) -> None:
    keys = fill(data_path)
    old = data_path / "old-index"
    shutil.copytree(data_path / "index", old)
    with StoreRegistry(data_path) as registry:
        registry.get("").delete(keys[1:50].tolist())  # logged, then pruned by the closing checkpoint
    shutil.rmtree(data_path / "index")
    shutil.copytree(old, data_path / "index")  # an older, internally valid checkpoint
    with StoreRegistry(data_path) as registry:
        store = registry.get("")
        for i in (2, 10, 30):  # deleted keys: a stale index would spend top hits on vanished rows
            found = store.find(keys[i].tolist(), 5)
            assert len(found.values) == 5 and found.similarities[0] < 0.99
            assert not set(found.values) & {str(i) for i in range(1, 50)}
        assert len(store.find(keys[2].tolist(), 1000).values) == store.count() == len(keys) - 49 - len(keys[50::7])


def test_second_process_gets_data_path_locked(data_path: Path) -> None:
    with StoreRegistry(data_path):
        with pytest.raises(DataPathLocked, match=str(os.getpid())):
            StoreRegistry(data_path).open()  # a second open in this process is refused too
        result = run_python(
            """
            import sys
            from stores.db import StoreDatabase
            from stores.errors import DataPathLocked
            try:
                StoreDatabase(sys.argv[1]).open()
            except DataPathLocked as exc:
                print("LOCKED", exc.code, exc)
            """,
            str(data_path),
        )
        assert result.returncode == 0, result.stderr
        assert result.stdout.startswith("LOCKED data_path_locked")
        assert str(data_path) in result.stdout and f"process {os.getpid()}" in result.stdout
    with StoreRegistry(data_path) as registry:  # released on close
        assert registry.list() == []


def test_schema_from_the_future_is_refused(data_path: Path) -> None:
    with StoreRegistry(data_path) as registry:
        registry.get("").set([[1.0]], ["v"])
    with closing(sqlite3.connect(data_path / DB_FILENAME)) as conn, conn:
        conn.execute("INSERT INTO schema_migrations (id, name, checksum) VALUES (99, 'future', 'x')")
    with pytest.raises(SchemaTooNew, match="schema version 99"):
        StoreRegistry(data_path).open()
    with closing(sqlite3.connect(data_path / DB_FILENAME)) as conn, conn:
        conn.execute("DELETE FROM schema_migrations WHERE id = 99")
        conn.execute("UPDATE schema_migrations SET checksum = 'edited' WHERE id = 1")
    with pytest.raises(SchemaMismatch, match="migration 1"):
        StoreRegistry(data_path).open()
    with closing(sqlite3.connect(data_path / DB_FILENAME)) as conn, conn:
        conn.execute("UPDATE schema_migrations SET checksum = ? WHERE id = 1", (MIGRATIONS[0].checksum,))
    with StoreRegistry(data_path) as registry:
        assert registry.get("").get([[1.0]]).values == ["v"]
