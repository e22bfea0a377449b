"""Ingest jobs seen from outside: progress events, batch cancel, interactive requests during a long
ingest, `kill -9` mid-ingest, and deletions that stay deleted across a restart.

The invariant throughout: a file's chunks become searchable all at once when it completes, never
while it is in progress, and never again once it is cancelled, detached or deleted. Documents come
from `fixtures.documents`; each carries a marker word found nowhere else, searched by keyword.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from fixtures.document_server import DocumentServer, wait_for
from fixtures.documents import write_text_pdf
from support import assert_error

PHASES = ("queued", "extracting", "chunking", "embedding", "indexing")
MODEL = "all-minilm-l6-v2"
LIVENESS_S = 15.0  # generous: on an idle 2-core machine one answer takes 1-2 s during an ingest


def marked_pdf(folder: Path, name: str, pages: int, marker: str, page: int) -> bytes:
    return write_text_pdf(folder, name, pages=pages, marker=f"Marker word: {marker}.", marker_page=page).read_bytes()


@pytest.fixture(scope="module")
def busy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DocumentServer]:
    """A server ingesting one file at a time, so a second file of a batch waits in the queue."""
    root = tmp_path_factory.mktemp("documents-busy")
    (root / "models").mkdir()
    server = DocumentServer(root, root / "data", root / "models", "--ingest-workers", "1")
    try:
        yield server
    finally:
        server.stop()
    server.assert_no_server_errors()


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Callable[[], DocumentServer]]:
    """Start servers one after another on the same data path; all are gone after the test."""
    started: list[DocumentServer] = []
    (tmp_path / "models").mkdir()

    def start() -> DocumentServer:
        started.append(DocumentServer(tmp_path, tmp_path / "data", tmp_path / "models"))
        return started[-1]

    yield start
    for server in started:
        server.stop()
    for server in started:
        server.assert_no_server_errors()


def test_progress_events_then_cancel_the_batch(busy: DocumentServer, tmp_path: Path) -> None:
    server, sdk = busy, busy.sdk
    store = sdk.vector_stores.create(name="progress")
    small = server.upload("small.pdf", marked_pdf(tmp_path, "small.pdf", 30, "copperlantern", 3))
    big = server.upload("big.pdf", marked_pdf(tmp_path, "big.pdf", 300, "velvetglacier", 250))
    batch = sdk.vector_stores.file_batches.create(vector_store_id=store.id, file_ids=[small, big])

    progress, cancelled_at, last = [], 0.0, ("", {})
    for last in server.events(store.id, big):
        item = last[1]
        if item["status"] != "in_progress":
            continue
        progress.append(item["progress"])
        if not cancelled_at and item["progress"]["phase"] == "embedding" and item["progress"]["chunks_done"] >= 16:
            cancelled = server.http.post(f"/vector_stores/{store.id}/file_batches/{batch.id}/cancel")
            assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
            cancelled_at = time.monotonic()
    assert cancelled_at, f"the file ended before it was cancelled: {last}"
    assert last[0] == "vector_store.file.cancelled" and last[1]["status"] == "cancelled"

    phases = [PHASES.index(p["phase"]) for p in progress]
    assert phases == sorted(phases) and {"extracting", "embedding"} <= {p["phase"] for p in progress}
    pages = [p["pages_done"] for p in progress if p["phase"] == "extracting" and p["pages_done"] is not None]
    assert pages == sorted(pages) and len(set(pages)) >= 2, pages
    assert {p["pages_total"] for p in progress if p["pages_total"] is not None} == {300}
    chunks = [p["chunks_done"] for p in progress if p["phase"] == "embedding"]
    assert chunks == sorted(chunks) and len(set(chunks)) >= 2, chunks
    assert len({p["chunks_total"] for p in progress if p["phase"] == "embedding"}) == 1

    def settled() -> list[dict] | None:
        files = server.batch_files(store.id, batch.id)
        return files if all(f["status"] in ("cancelled", "completed") for f in files) else None

    files = wait_for(settled, max(0.1, 5.0 - (time.monotonic() - cancelled_at)), "the cancelled batch")
    assert {f["id"]: f["status"] for f in files} == {small: "completed", big: "cancelled"}
    assert sdk.vector_stores.file_batches.retrieve(batch.id, vector_store_id=store.id).status == "cancelled"
    assert server.found_in(store.id, "velvetglacier") == set()
    assert server.found_in(store.id, "copperlantern") == {small}
    assert server.http.get(f"/vector_stores/{store.id}/files/{big}/content").json()["data"] == []


def test_embeddings_answer_while_a_long_ingest_runs(busy: DocumentServer, tmp_path: Path) -> None:
    server, sdk = busy, busy.sdk
    store = sdk.vector_stores.create(name="liveness")
    file_id = server.upload("long.pdf", marked_pdf(tmp_path, "long.pdf", 360, "ochrelattice", 300))
    sdk.vector_stores.files.create(file_id=file_id, vector_store_id=store.id)
    wait_for(lambda: server.store_file(store.id, file_id)["progress"]["phase"] == "embedding", 60, "embedding")
    for n in range(3):
        started = time.monotonic()
        body = {"model": MODEL, "input": [f"interactive request {n}"]}
        response = server.http.post("/embeddings", json=body, timeout=LIVENESS_S)
        assert response.status_code == 200 and len(response.json()["data"][0]["embedding"]) == 384
        assert time.monotonic() - started < LIVENESS_S
        now = server.store_file(store.id, file_id)  # it answered while the document was still being embedded
        assert now["status"] == "in_progress" and now["progress"]["chunks_done"] < now["progress"]["chunks_total"]
    assert sdk.vector_stores.files.delete(file_id, vector_store_id=store.id).deleted
    assert_error(server.http.get(f"/vector_stores/{store.id}/files/{file_id}"), 404)
    assert server.found_in(store.id, "ochrelattice") == set()


KILL_DOCS = {"short.pdf": (6, "ambertrellis"), "long.pdf": (32, "cobaltfjord"), "middle.pdf": (14, "saffronquill")}


def test_kill_9_mid_ingest_resumes_and_never_shows_half_a_document(
    serve: Callable[[], DocumentServer], tmp_path: Path
) -> None:
    server = serve()
    data = {name: marked_pdf(tmp_path, name, pages, marker, pages - 1) for name, (pages, marker) in KILL_DOCS.items()}
    ids = {server.upload(name, body): name for name, body in data.items()}
    store = server.sdk.vector_stores.create(name="crash").id
    batch = server.sdk.vector_stores.file_batches.create(vector_store_id=store, file_ids=list(ids)).id
    hidden_checks = 0

    def unfinished_are_hidden() -> list[dict]:
        """The batch's files, after checking that no marker of an unfinished one is found."""
        nonlocal hidden_checks
        files = server.batch_files(store, batch)
        for item in files:
            if item["status"] == "in_progress" and server.found_in(store, KILL_DOCS[ids[item["id"]]][1]):
                # found: then it must have completed between the listing and the search
                assert server.store_file(store, item["id"])["status"] == "completed", item
            elif item["status"] == "in_progress":
                hidden_checks += 1
        return files

    def first_done() -> list[dict] | None:
        files = server.batch_files(store, batch)
        return files if any(f["status"] == "completed" for f in files) else None

    unfinished_are_hidden()
    before = wait_for(first_done, 60, "a first file", interval=0.02)  # cheap polls: the kill comes at once
    late = {server.upload(f"late-{n}.txt", late_text(n).encode()): n for n in range(3)}
    server.kill()
    assert any(f["status"] == "in_progress" for f in before), before
    hidden_before_the_kill = hidden_checks

    server = serve()
    listed = {f.id for f in server.sdk.files.list(limit=100)}
    assert set(ids) | set(late) <= listed
    for file_id, name in ids.items():
        assert server.sdk.files.content(file_id).read() == data[name]
    for file_id, n in late.items():
        assert server.http.get(f"/files/{file_id}/content").text == late_text(n)

    def all_done() -> list[dict] | None:
        files = unfinished_are_hidden()
        return files if all(f["status"] == "completed" for f in files) else None

    completed_before = {f["id"]: f["chunk_count"] for f in before if f["status"] == "completed"}
    after = wait_for(all_done, 90, "resumed files")
    assert hidden_before_the_kill > 0 and hidden_checks > hidden_before_the_kill
    for item in after:
        assert server.found_in(store, KILL_DOCS[ids[item["id"]]][1]) == {item["id"]}
        content = server.http.get(f"/vector_stores/{store}/files/{item['id']}/content").json()["data"]
        assert len(content) == item["chunk_count"] > 0  # one set of chunks, not a half and a whole
        if item["id"] in completed_before:
            assert item["chunk_count"] == completed_before[item["id"]]
    assert server.sdk.vector_stores.file_batches.retrieve(batch, vector_store_id=store).status == "completed"


def late_text(n: int) -> str:
    return f"Acknowledged just before the kill, number {n}.\n"


DELETE_DOCS = {  # name -> (marker, text, a question only this text answers)
    "bread.md": (
        "crumbfolio",
        "# Rye bread\n\nKnead the rye sourdough, proof it overnight and bake the loaf at 230 degrees.",
        "How long should rye sourdough proof before baking?",
    ),
    "orbit.md": (
        "apogeelynx",
        "# Orbits\n\nA geostationary satellite circles the Earth once a day above the equator.",
        "Which satellites stay above the equator?",
    ),
    "tomato.md": (
        "vinetrellis",
        "# Tomatoes\n\nPinch out the side shoots of cordon tomato plants every week in summer.",
        "How do I prune tomato plants?",
    ),
}
MODES = ("keyword", "vector", "hybrid")


def test_deleted_and_detached_files_leave_search_also_after_a_restart(serve: Callable[[], DocumentServer]) -> None:
    server = serve()
    store = server.sdk.vector_stores.create(name="deletions").id
    ids = {}
    for name, (marker, text, _) in DELETE_DOCS.items():
        done = server.sdk.vector_stores.files.upload_and_poll(
            vector_store_id=store, file=(name, f"{text} Marker word: {marker}.\n".encode())
        )
        assert done.status == "completed"
        ids[name] = done.id

    def found(name: str) -> dict[str, bool]:
        marker, _, question = DELETE_DOCS[name]
        file_id = ids[name]
        return {
            "keyword": file_id in server.found_in(store, marker, "keyword"),
            "vector": file_id in server.found_in(store, question, "vector"),
            "hybrid": file_id in {r["file_id"] for r in server.search(store, f"{question} {marker}")["data"]},
        }

    everywhere, nowhere = dict.fromkeys(MODES, True), dict.fromkeys(MODES, False)
    assert all(found(name) == everywhere for name in DELETE_DOCS)
    assert server.sdk.files.delete(ids["bread.md"]).deleted
    assert server.sdk.vector_stores.files.delete(ids["orbit.md"], vector_store_id=store).deleted

    for restart in (False, True):
        if restart:
            server.kill()
            server = serve()
        assert found("bread.md") == nowhere and found("orbit.md") == nowhere, restart
        assert found("tomato.md") == everywhere, restart
        assert [f.id for f in server.sdk.vector_stores.files.list(store)] == [ids["tomato.md"]]
        assert server.sdk.files.retrieve(ids["orbit.md"]).filename == "orbit.md"  # detached, not deleted
        assert_error(server.http.get(f"/files/{ids['bread.md']}"), 404)
        assert server.sdk.vector_stores.retrieve(store).file_counts.total == 1
