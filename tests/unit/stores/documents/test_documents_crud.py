"""Files, vector stores, their files and batches through the library API: create, read, list with
OpenAI cursor pagination, update, delete, statuses, counts and duplicates."""

from __future__ import annotations

from pathlib import Path

import pytest

from stores.documents.errors import NotFound
from stores.documents.library import DocumentLibrary
from stores.documents.records import BatchFile
from stores.errors import DataPathLocked, InvalidInput, StoreNotFound

MODEL = "test-embedder"


def test_add_file_moves_the_upload_in_and_reads_back(shelf, library: DocumentLibrary) -> None:
    record = shelf.upload("hello", filename="a.txt")
    assert record.id.startswith("file-") and len(record.id) == len("file-") + 24
    assert (record.filename, record.purpose, record.bytes) == ("a.txt", "assistants", 5)
    assert record.created_at == 1_700_000_000
    assert library.get_file(record.id) == record
    assert library.file_path(record.id).read_bytes() == b"hello"
    assert not any(shelf.spool.iterdir())  # moved, not copied


def test_add_file_with_a_wrong_size_is_refused_and_leaves_nothing(library: DocumentLibrary, tmp_path: Path) -> None:
    src = tmp_path / "x"
    src.write_bytes(b"abc")
    with pytest.raises(InvalidInput):
        library.add_file(src, filename="x", purpose="assistants", sha256="0" * 64, size=4)
    assert library.list_files().items == []
    assert list((library.path / "files").iterdir()) == []


def test_unknown_ids_raise_not_found_naming_the_kind(library: DocumentLibrary, store_id: str) -> None:
    with pytest.raises(NotFound) as caught:
        library.get_file("file-nope")
    assert caught.value.kind == "file" and "file-nope" in caught.value.message
    assert isinstance(caught.value, StoreNotFound)  # the HTTP layer's 404
    for call, kind in [
        (lambda: library.get_store("vs_nope"), "vector_store"),
        (lambda: library.get_attached(store_id, "file-nope"), "vector_store_file"),
        (lambda: library.get_attached("vs_nope", "file-nope"), "vector_store"),
        (lambda: library.get_batch(store_id, "vsfb_nope"), "batch"),
        (lambda: library.attach(store_id, "file-nope"), "file"),
        (lambda: library.detach(store_id, "file-nope"), "vector_store_file"),
        (lambda: library.delete_file("file-nope"), "file"),
        (lambda: library.delete_store("vs_nope"), "vector_store"),
        (lambda: library.file_path("file-nope"), "file"),
    ]:
        with pytest.raises(NotFound) as caught:
            call()
        assert caught.value.kind == kind


def test_pagination_walks_both_ways_in_both_orders(shelf, library: DocumentLibrary, clock) -> None:
    ids = []
    for i in range(7):
        clock.now += i % 2  # several share a second: insertion order breaks the tie
        ids.append(shelf.upload(f"file {i}").id)
    page = library.list_files(limit=3, order="asc")
    assert [r.id for r in page.items] == ids[:3] and page.has_more
    assert (page.first_id, page.last_id) == (ids[0], ids[2])
    page = library.list_files(limit=3, order="asc", after=ids[2])
    assert [r.id for r in page.items] == ids[3:6] and page.has_more
    page = library.list_files(limit=3, order="asc", after=ids[5])
    assert [r.id for r in page.items] == ids[6:] and not page.has_more
    assert [r.id for r in library.list_files().items] == ids[::-1]  # default: desc, 20
    page = library.list_files(limit=2, order="desc", after=ids[4])
    assert [r.id for r in page.items] == [ids[3], ids[2]] and page.has_more
    page = library.list_files(limit=2, order="asc", before=ids[4])
    assert [r.id for r in page.items] == [ids[2], ids[3]] and page.has_more
    page = library.list_files(limit=5, order="asc", before=ids[2])
    assert [r.id for r in page.items] == ids[:2] and not page.has_more
    page = library.list_files(limit=5, order="desc", before=ids[2])
    assert [r.id for r in page.items] == ids[6:2:-1] and not page.has_more
    page = library.list_files(order="asc", after=ids[1], before=ids[5])
    assert [r.id for r in page.items] == ids[2:5]
    empty = library.list_files(order="asc", after=ids[6])
    assert empty.items == [] and not empty.has_more and empty.first_id is None


@pytest.mark.parametrize(
    "kwargs", [{"limit": 0}, {"limit": 101}, {"limit": True}, {"order": "up"}, {"after": "file-gone"}]
)
def test_bad_listing_parameters_are_invalid_input(library: DocumentLibrary, kwargs: dict) -> None:
    with pytest.raises(InvalidInput):
        library.list_files(**kwargs)


def test_list_files_by_purpose(shelf, library: DocumentLibrary) -> None:
    a = shelf.upload("a", purpose="assistants")
    b = shelf.upload("b", purpose="user_data")
    assert [r.id for r in library.list_files(purpose="user_data").items] == [b.id]
    assert {r.id for r in library.list_files().items} == {a.id, b.id}


def test_store_create_update_and_expiry(library: DocumentLibrary, clock) -> None:
    store = library.create_store(
        name="manuals", embedding_model=MODEL, metadata={"team": "ops"}, chunking={"type": "auto"},
        rerank_model="rr", expires_after={"anchor": "last_active_at", "days": 2},
    )
    assert store.id.startswith("vs_") and store.status == "completed"
    assert store.metadata == {"team": "ops"} and store.chunking_strategy == {"type": "auto"}
    assert store.expires_at == store.last_active_at + 2 * 86400
    assert store.file_counts.as_dict() == {"in_progress": 0, "completed": 0, "failed": 0, "cancelled": 0, "total": 0}
    assert store.embedding_dimension is None and store.usage_bytes == 0
    updated = library.update_store(store.id, name="renamed", metadata={"v": 2})
    assert (updated.name, updated.metadata, updated.rerank_model) == ("renamed", {"v": 2}, "rr")
    assert updated.expires_after == {"anchor": "last_active_at", "days": 2}
    cleared = library.update_store(store.id, expires_after=None, rerank_model=None)
    assert cleared.expires_after is None and cleared.expires_at is None and cleared.name == "renamed"
    library.update_store(store.id, expires_after={"anchor": "last_active_at", "days": 1})
    clock.now += 86400
    assert library.get_store(store.id).status == "expired"
    assert library.expired_stores() == [store.id]
    library.touch_stores([store.id])
    assert library.get_store(store.id).status == "completed"
    with pytest.raises(InvalidInput):
        library.update_store(store.id, expires_after={"anchor": "created_at", "days": 1})
    with pytest.raises(InvalidInput):
        library.create_store(expires_after={"anchor": "last_active_at", "days": 0})


def test_list_stores_pages(library: DocumentLibrary) -> None:
    ids = [library.create_store(name=f"s{i}").id for i in range(5)]
    page = library.list_stores(limit=2)
    assert [s.id for s in page.items] == ids[:2:-1][:2] and page.has_more
    assert [s.id for s in library.list_stores(order="asc", after=ids[1]).items] == ids[2:]


def test_attach_statuses_counts_and_errors(shelf, library: DocumentLibrary, store_id: str) -> None:
    files = [shelf.upload(f"content {i}") for i in range(4)]
    for f in files:
        record = library.attach(store_id, f.id, attributes={"n": 1})
        assert record.status == "in_progress" and record.id == f.id and record.attributes == {"n": 1}
    assert library.get_store(store_id).status == "in_progress"
    assert shelf.commit(store_id, files[0].id, ["alpha beta", "gamma"])
    failed = library.fail(store_id, files[1].id, "invalid_file", "The file is corrupt.")
    assert failed.status == "failed" and (failed.last_error.code, failed.last_error.message) == (
        "invalid_file", "The file is corrupt.",
    )
    assert library.cancel(store_id, files[2].id).status == "cancelled"
    # only from in_progress: a completed file neither fails nor cancels
    assert library.fail(store_id, files[0].id, "x", "y").status == "completed"
    assert library.cancel(store_id, files[0].id).status == "completed"
    store = library.get_store(store_id)
    assert store.file_counts.as_dict() == {"in_progress": 1, "completed": 1, "failed": 1, "cancelled": 1, "total": 4}
    done = library.get_attached(store_id, files[0].id)
    assert done.usage_bytes == len(b"alpha beta") + len(b"gamma") == store.usage_bytes
    assert done.chunk_count == 2 and done.last_error is None
    assert [r.id for r in library.pending()] == [files[3].id]
    assert [r.id for r in library.list_attached(store_id, status="failed").items] == [files[1].id]
    assert [r.id for r in library.list_attached(store_id, order="asc").items] == [f.id for f in files]
    assert [r.id for r in library.list_attached(store_id, order="asc", limit=2, after=files[1].id).items] == [
        files[2].id, files[3].id,
    ]


def test_attach_is_idempotent_and_retries_failed_files(shelf, library: DocumentLibrary, store_id: str) -> None:
    f = shelf.upload("x")
    first = library.attach(store_id, f.id, attributes={"a": "1"})
    again = library.attach(store_id, f.id, attributes={"a": "2"})
    assert again == first
    library.fail(store_id, f.id, "no_text", "Nothing to read.")
    retried = library.attach(store_id, f.id, attributes={"a": "3"})
    assert retried.status == "in_progress" and retried.last_error is None and retried.attributes == {"a": "3"}
    assert len(library.list_attached(store_id).items) == 1


def test_attach_checks_attributes(shelf, library: DocumentLibrary, store_id: str) -> None:
    f = shelf.upload("x")
    for bad in ({"k": [1]}, {"k": {"a": 1}}, {"": "v"}, {"k": float("nan")}, "text"):
        with pytest.raises(InvalidInput):
            library.attach(store_id, f.id, attributes=bad)
    library.attach(store_id, f.id, attributes={"s": "v", "i": 3, "f": 1.5, "b": True})
    updated = library.update_attributes(store_id, f.id, {"s": "w"})
    assert updated.attributes == {"s": "w"}
    with pytest.raises(NotFound):
        library.update_attributes(store_id, "file-nope", {})


def test_duplicate_content_completes_at_once_without_chunks(shelf, library: DocumentLibrary, store_id: str) -> None:
    a = shelf.upload("same bytes")
    b = shelf.upload("same bytes")
    library.attach(store_id, a.id)
    assert shelf.commit(store_id, a.id, ["same bytes"])
    dup = library.attach(store_id, b.id)
    assert dup.status == "completed" and dup.duplicate_of == a.id and dup.chunk_count == 0
    assert library.file_chunks(store_id, b.id) == []
    assert library.get_store(store_id).file_counts.completed == 2
    # another store has its own copy
    other = library.create_store(name="other", embedding_model=MODEL)
    assert library.attach(other.id, b.id).status == "in_progress"
    # when the original leaves, the duplicate is put back to work
    assert library.detach(store_id, a.id) == [b.id]
    revived = library.get_attached(store_id, b.id)
    assert revived.status == "in_progress" and revived.duplicate_of is None
    assert [r.id for r in library.pending()] == [b.id, b.id]


def test_two_copies_in_progress_the_second_commit_becomes_the_duplicate(
    shelf, library: DocumentLibrary, store_id: str
) -> None:
    a = shelf.upload("twin")
    b = shelf.upload("twin")
    library.attach(store_id, a.id)
    assert library.attach(store_id, b.id).status == "in_progress"  # a may still fail
    assert shelf.commit(store_id, b.id, ["twin"])
    assert library.commit_chunks(store_id, a.id, [], [], model=MODEL)
    record = library.get_attached(store_id, a.id)
    assert record.status == "completed" and record.duplicate_of == b.id


def test_batches_attach_count_and_cancel(shelf, library: DocumentLibrary, store_id: str) -> None:
    files = [shelf.upload(f"batch file {i}") for i in range(4)]
    batch = library.create_batch(
        store_id,
        [files[0].id, BatchFile(files[1].id, attributes={"own": True}), files[2].id, files[3].id, files[0].id],
        attributes={"shared": "yes"},
        chunking={"type": "static", "static": {"max_chunk_size_tokens": 100, "chunk_overlap_tokens": 10}},
    )
    assert batch.id.startswith("vsfb_") and batch.status == "in_progress"
    assert batch.file_counts.as_dict() == {"in_progress": 4, "completed": 0, "failed": 0, "cancelled": 0, "total": 4}
    assert library.get_attached(store_id, files[1].id).attributes == {"own": True}
    zero = library.get_attached(store_id, files[0].id)
    assert zero.attributes == {"shared": "yes"} and zero.batch_id == batch.id
    assert zero.chunking_strategy["type"] == "static"
    assert shelf.commit(store_id, files[0].id, ["one"])
    library.fail(store_id, files[1].id, "no_text", "Empty.")
    cancelled = library.cancel_batch(store_id, batch.id)
    assert cancelled.status == "cancelled" and cancelled.cancel_requested
    assert cancelled.file_counts.as_dict() == {
        "in_progress": 0, "completed": 1, "failed": 1, "cancelled": 2, "total": 4,
    }
    assert not shelf.commit(store_id, files[2].id, ["late"])
    listed = library.list_attached(store_id, batch_id=batch.id, status="cancelled", order="asc")
    assert [r.id for r in listed.items] == [files[2].id, files[3].id]
    with pytest.raises(InvalidInput):
        library.create_batch(store_id, [])
    with pytest.raises(NotFound):
        library.create_batch(store_id, [files[0].id, "file-missing"])
    assert len(library.list_attached(store_id).items) == 4  # the failed batch attached nothing


def test_batch_status_rules(shelf, library: DocumentLibrary, store_id: str) -> None:
    a, b = shelf.upload("a"), shelf.upload("b")
    batch = library.create_batch(store_id, [a.id, b.id])
    library.fail(store_id, a.id, "no_text", "Empty.")
    assert library.get_batch(store_id, batch.id).status == "in_progress"
    assert shelf.commit(store_id, b.id, ["b"])
    assert library.get_batch(store_id, batch.id).status == "completed"  # partial failure: counts say so
    c, d = shelf.upload("c"), shelf.upload("d")
    all_failed = library.create_batch(store_id, [c.id, d.id])
    library.fail(store_id, c.id, "no_text", "Empty.")
    library.fail(store_id, d.id, "no_text", "Empty.")
    assert library.get_batch(store_id, all_failed.id).status == "failed"
    # a batch holding an already-completed file counts it
    again = library.create_batch(store_id, [b.id])
    assert library.get_batch(store_id, again.id).status == "completed"


def test_delete_store_keeps_files_and_delete_file_leaves_every_store(
    shelf, library: DocumentLibrary, store_id: str
) -> None:
    other = library.create_store(name="other", embedding_model=MODEL).id
    doc = shelf.document(store_id, ["shared words here"])
    library.attach(other, doc.file_id)
    assert shelf.commit(other, doc.file_id, ["shared words here"])
    library.save_extraction(doc.file_id, b'{"blocks": []}')
    assert library.load_extraction(doc.file_id) == b'{"blocks": []}'
    library.delete_store(other)
    with pytest.raises(NotFound):
        library.get_store(other)
    assert library.get_file(doc.file_id).id == doc.file_id
    blob = library.file_path(doc.file_id)
    library.delete_file(doc.file_id)
    assert not blob.exists()
    assert library.load_extraction(doc.file_id) is None
    assert library.list_attached(store_id).items == []
    assert library.get_store(store_id).file_counts.total == 0


def test_a_second_process_cannot_open_the_library(library: DocumentLibrary, library_path: Path) -> None:
    # flock is per open file description: a second open in this process conflicts too
    with pytest.raises(DataPathLocked):
        DocumentLibrary(library_path).open()
