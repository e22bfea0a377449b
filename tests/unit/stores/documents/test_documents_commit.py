"""commit_chunks: one transaction or nothing, only from in_progress, the store's model fixed by
the first commit; deletes leave both indexes (also after a reopen); FTS stays consistent."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import numpy as np
import pytest

from stores.documents.library import DocumentLibrary
from stores.documents.records import ChunkRow
from stores.errors import DimensionMismatch, InvalidInput, ModelMismatch

MODEL = "test-embedder"
DIM = 16


def searchable(library: DocumentLibrary, store_id: str, word: str, vector: np.ndarray) -> set[int]:
    found = {hit.chunk_id for hit in library.keyword_search([store_id], word, 50)}
    found |= {hit.chunk_id for hit in library.vector_search([store_id], vector, 50)}
    return found


def fts_check(library: DocumentLibrary) -> None:
    with sqlite3.connect(library.path / "documents.db") as conn:
        conn.execute("INSERT INTO chunks_fts(chunks_fts) VALUES ('integrity-check')")
        assert conn.execute("SELECT COUNT(*) FROM chunks").fetchone() == conn.execute(
            "SELECT COUNT(*) FROM chunks_fts"
        ).fetchone()


def test_a_failure_mid_commit_leaves_nothing_searchable(shelf, library: DocumentLibrary, store_id: str) -> None:
    before = shelf.document(store_id, ["an unrelated zebra"])
    assert len(library.vector_search([store_id], np.ones(DIM), 5)) == 1  # the vector index is live
    f = shelf.upload("doc")
    library.attach(store_id, f.id)
    rows = [ChunkRow(f"zebra chunk {i}") for i in range(5)]
    rows.append(ChunkRow("zebra last", heading_path=(object(),)))  # type: ignore[arg-type]  # fails on write
    vectors = np.ones((6, DIM), dtype=np.float32)
    with pytest.raises(TypeError):
        library.commit_chunks(store_id, f.id, rows, vectors, model=MODEL)
    record = library.get_attached(store_id, f.id)
    assert record.status == "in_progress" and record.chunk_count == 0
    only = {c.chunk_id for c in library.file_chunks(store_id, before.file_id)}
    assert searchable(library, store_id, "zebra", np.ones(DIM)) == only
    assert library.get_store(store_id).usage_bytes == before.usage_bytes
    # the document commits cleanly afterwards
    assert shelf.commit(store_id, f.id, ["zebra one", "zebra two"])
    assert len(library.keyword_search([store_id], "zebra", 10)) == 3
    fts_check(library)


def test_commit_after_cancel_fail_or_detach_writes_nothing(shelf, library: DocumentLibrary, store_id: str) -> None:
    files = [shelf.upload(f"file {i}") for i in range(3)]
    for f in files:
        library.attach(store_id, f.id)
    library.cancel(store_id, files[0].id)
    library.fail(store_id, files[1].id, "extraction_timeout", "Took too long.")
    library.detach(store_id, files[2].id)
    for f in files:
        assert not shelf.commit(store_id, f.id, ["walrus text"])
    assert library.keyword_search([store_id], "walrus", 10) == []
    assert library.get_store(store_id).embedding_dimension is None
    with sqlite3.connect(library.path / "documents.db") as conn:
        assert conn.execute("SELECT COUNT(*) FROM chunks").fetchone()[0] == 0
    assert library.get_attached(store_id, files[0].id).status == "cancelled"


def test_a_completed_file_cannot_be_committed_twice(shelf, library: DocumentLibrary, store_id: str) -> None:
    doc = shelf.document(store_id, ["first version"])
    assert not shelf.commit(store_id, doc.file_id, ["second version"])
    assert [c.text for c in library.file_chunks(store_id, doc.file_id)] == ["first version"]


def test_first_commit_fixes_model_and_dimension(shelf, library: DocumentLibrary) -> None:
    store = library.create_store(name="open")  # no model given
    a, b, c = shelf.upload("a"), shelf.upload("b"), shelf.upload("c")
    for f in (a, b, c):
        library.attach(store.id, f.id)
    assert library.commit_chunks(store.id, a.id, [ChunkRow("a")], np.ones((1, 8)), model="m1")
    fixed = library.get_store(store.id)
    assert (fixed.embedding_model, fixed.embedding_dimension) == ("m1", 8)
    with pytest.raises(ModelMismatch):
        library.commit_chunks(store.id, b.id, [ChunkRow("b")], np.ones((1, 8)), model="m2")
    with pytest.raises(DimensionMismatch):
        library.commit_chunks(store.id, b.id, [ChunkRow("b")], np.ones((1, 4)), model="m1")
    assert library.get_attached(store.id, b.id).status == "in_progress"
    with pytest.raises(InvalidInput):
        library.commit_chunks(store.id, c.id, [ChunkRow("c")], np.zeros((1, 8)), model="m1")
    with pytest.raises(InvalidInput):
        library.commit_chunks(store.id, c.id, [ChunkRow("c"), ChunkRow("d")], np.ones((1, 8)), model="m1")
    # an empty document completes with no chunks and no usage
    assert library.commit_chunks(store.id, c.id, [], np.empty((0, 8)), model="m1")
    assert library.get_attached(store.id, c.id).usage_bytes == 0


def test_usage_bytes_counts_utf8_text(shelf, library: DocumentLibrary, store_id: str) -> None:
    doc = shelf.document(store_id, ["héllo", "日本語"])
    assert doc.usage_bytes == len("héllo".encode()) + len("日本語".encode()) == 15
    assert library.get_store(store_id).usage_bytes == 15


def test_detach_and_delete_leave_both_indexes_also_after_reopen(
    shelf, library: DocumentLibrary, store_id: str, library_path: Path
) -> None:
    keep = shelf.document(store_id, ["kiwi orchard notes", "banana notes"])
    gone = shelf.document(store_id, ["kiwi export figures", "mango notes"])
    deleted = shelf.document(store_id, ["kiwi recipe"])
    gone_ids = {c.chunk_id for c in library.file_chunks(store_id, gone.file_id)}
    deleted_ids = {c.chunk_id for c in library.file_chunks(store_id, deleted.file_id)}
    probe = shelf.vectors[min(gone_ids)]
    assert min(gone_ids) in searchable(library, store_id, "kiwi", probe)  # the index is built now
    library.detach(store_id, gone.file_id)
    library.delete_file(deleted.file_id)
    removed = gone_ids | deleted_ids
    for vector in [probe, shelf.vectors[min(deleted_ids)]]:
        assert not removed & searchable(library, store_id, "kiwi", vector)
    assert len(library.vector_search([store_id], probe, 50)) == 2  # only keep's chunks remain
    assert library.get_chunks(sorted(removed)) == []
    fts_check(library)
    library.close()
    with DocumentLibrary(library_path) as reopened:
        assert not removed & searchable(reopened, store_id, "kiwi", probe)
        hits = reopened.keyword_search([store_id], "kiwi", 10)
        assert [h.chunk_id for h in hits] == [c.chunk_id for c in reopened.file_chunks(store_id, keep.file_id)][:1]


def test_vector_index_rebuilds_identically_after_reopen(
    shelf, library: DocumentLibrary, store_id: str, library_path: Path
) -> None:
    for i in range(6):
        shelf.document(store_id, [f"doc {i} part {j}" for j in range(5)])
    queries = np.random.default_rng(3).normal(size=(5, DIM)).astype(np.float32)
    before = [library.vector_search([store_id], q, 12) for q in queries]
    library.close()
    with DocumentLibrary(library_path) as reopened:
        after = [reopened.vector_search([store_id], q, 12) for q in queries]
    for b, a in zip(before, after, strict=True):
        assert [h.chunk_id for h in a] == [h.chunk_id for h in b]
        np.testing.assert_allclose([h.score for h in a], [h.score for h in b], atol=1e-6)
