"""kill -9 in the middle of ingesting: everything acknowledged survives complete and searchable,
nothing is half there, unfinished files are still in progress, and no orphan blob is left."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from stores.documents.library import DocumentLibrary

REPO_ROOT = Path(__file__).resolve().parents[4]
CHUNKS = 40
DIM = 16

WRITER = """
import hashlib, sys
import numpy as np
from pathlib import Path
from stores.documents.library import DocumentLibrary
from stores.documents.records import ChunkRow

root, spool = Path(sys.argv[1]), Path(sys.argv[2])
CHUNKS, DIM = int(sys.argv[3]), int(sys.argv[4])
spool.mkdir(parents=True, exist_ok=True)
lib = DocumentLibrary(root).open()
store = lib.create_store(name="crash", embedding_model="m")
print("store", store.id, flush=True)
i = 0
while True:
    data = f"document {i} ".encode() * 200
    src = spool / f"up-{i}"
    src.write_bytes(data)
    record = lib.add_file(src, filename=f"d{i}.txt", purpose="assistants",
                          sha256=hashlib.sha256(data).hexdigest(), size=len(data))
    print("file", record.id, i, flush=True)
    lib.attach(store.id, record.id)
    print("attached", record.id, i, flush=True)
    if i % 3 != 2:  # every third file stays in progress, as if its ingest were still running
        rows = [ChunkRow(f"marker{i}x part{j} lorem ipsum dolor " * 4, ("D", str(j)), 1, 1, 0, 10, 8)
                for j in range(CHUNKS)]
        vectors = np.random.default_rng(i).normal(size=(CHUNKS, DIM)).astype(np.float32)
        assert lib.commit_chunks(store.id, record.id, rows, vectors, model="m")
        print("done", record.id, i, flush=True)
    i += 1
"""


def test_kill_9_mid_ingest_keeps_every_acknowledged_document(tmp_path: Path) -> None:
    root = tmp_path / "documents"
    script = tmp_path / "writer.py"
    script.write_text(textwrap.dedent(WRITER))
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    child = subprocess.Popen(
        [sys.executable, str(script), str(root), str(tmp_path / "spool"), str(CHUNKS), str(DIM)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=REPO_ROOT,
    )
    lines: list[list[str]] = []
    deadline = time.monotonic() + 60
    try:
        assert child.stdout is not None
        while sum(1 for line in lines if line[0] == "done") < 12:
            line = child.stdout.readline()
            assert line, f"writer exited early: {child.stderr.read() if child.stderr else ''}"
            lines.append(line.split())
            assert time.monotonic() < deadline
        time.sleep(0.005 * (len(lines) % 7))  # land the kill at varying points of the next file
        child.send_signal(signal.SIGKILL)
        rest, _ = child.communicate(timeout=30)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    assert child.returncode == -signal.SIGKILL
    # The kill may land inside a line: only whole lines (ended by a newline) were acknowledged.
    lines += [line.split() for line in rest.split("\n")[:-1] if line.strip()]
    store_id = lines[0][1]
    uploaded = {line[1]: int(line[2]) for line in lines if line[0] == "file"}
    attached = {line[1] for line in lines if line[0] == "attached"}
    done = {line[1] for line in lines if line[0] == "done"}

    with DocumentLibrary(root) as library:
        for file_id, i in uploaded.items():  # every acknowledged upload, with its bytes
            assert library.file_path(file_id).read_bytes() == f"document {i} ".encode() * 200
        blobs = {entry.name for entry in (root / "files").iterdir()}
        rows = {record.id for record in _all_files(library)}
        assert blobs == rows  # no orphan blob, no row without its blob
        for file_id in done:
            i = uploaded[file_id]
            record = library.get_attached(store_id, file_id)
            assert record.status == "completed" and record.chunk_count == CHUNKS
            hits = library.keyword_search([store_id], f"marker{i}x", CHUNKS + 5)
            assert len(hits) == CHUNKS
            vector = np.random.default_rng(i).normal(size=(CHUNKS, DIM)).astype(np.float32)[0]
            top = library.vector_search([store_id], vector, 1)[0]
            assert top.score == pytest.approx(1.0, abs=1e-5)
            assert library.get_chunks([top.chunk_id])[0].file_id == file_id
        pending = {record.id for record in library.pending()}
        for file_id in attached - done:
            record = library.get_attached(store_id, file_id)
            # the kill may land after a commit but before its acknowledgement: then it is complete
            assert record.status in ("in_progress", "completed")
            assert (record.status == "in_progress") == (file_id in pending)
        assert {f for f in attached if uploaded[f] % 3 == 2} <= pending
    _check_all_or_nothing(root)


def _all_files(library: DocumentLibrary) -> list:
    page = library.list_files(limit=100)
    items = list(page.items)
    while page.has_more:
        page = library.list_files(limit=100, after=items[-1].id)
        items += page.items
    return items


def _check_all_or_nothing(root: Path) -> None:
    with sqlite3.connect(root / "documents.db") as conn:
        conn.execute("INSERT INTO chunks_fts(chunks_fts) VALUES ('integrity-check')")
        rows = conn.execute(
            "SELECT v.status, v.chunk_count, (SELECT COUNT(*) FROM chunks c"
            " WHERE c.vector_store_id = v.vector_store_id AND c.file_id = v.file_id) FROM vector_store_files v"
        ).fetchall()
    for status, recorded, stored in rows:
        assert stored == recorded
        assert status == "completed" or stored == 0


def test_open_removes_orphan_blobs_and_temps(tmp_path: Path) -> None:
    root = tmp_path / "documents"
    spool = tmp_path / "up"
    spool.write_bytes(b"kept")
    with DocumentLibrary(root) as library:
        kept = library.add_file(spool, filename="k", purpose="assistants", sha256="0" * 64, size=4)
    # what a crash leaves: a blob renamed in before its row was inserted, and a half-written temp
    (root / "files" / "file-000000000000000000000000").write_bytes(b"orphan")
    (root / "files" / ".tmp-file-111111111111111111111111").write_bytes(b"half")
    with DocumentLibrary(root) as library:
        assert sorted(entry.name for entry in (root / "files").iterdir()) == [kept.id]
        assert library.file_path(kept.id).read_bytes() == b"kept"


def test_a_failed_row_insert_removes_the_blob(tmp_path: Path) -> None:
    root = tmp_path / "documents"
    spool = tmp_path / "up"
    spool.write_bytes(b"data")

    def broken_clock() -> float:
        raise OSError("clock gone")  # fails inside the row's transaction, after the blob is in

    with DocumentLibrary(root, clock=broken_clock) as library:
        with pytest.raises(OSError):
            library.add_file(spool, filename="k", purpose="assistants", sha256="0" * 64, size=4)
        assert list((root / "files").iterdir()) == []
