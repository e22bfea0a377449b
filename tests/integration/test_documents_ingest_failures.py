"""Files that cannot be indexed, and requests that cannot be served, through a real server.

Each bad document ends `failed` with the `last_error.code` a user can act on, and the server goes on
ingesting good files; bad uploads and attaches get a 4xx in the error envelope. The server runs with
`--document-max-pages 5 --file-upload-limit 1`. No response, and no line of its log, is a 5xx.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from fixtures import documents
from fixtures.document_server import DocumentServer
from support import assert_error

BAD_FILES: dict[str, tuple[Callable[[Path], Path], str]] = {
    "blob.bin": (documents.write_binary, "unsupported_file"),
    "locked.pdf": (documents.write_encrypted_pdf, "encrypted_file"),
    "scan.pdf": (documents.write_image_pdf, "no_text"),
    "broken.pdf": (documents.write_corrupt_pdf, "invalid_file"),
    "bomb.docx": (lambda folder: documents.write_docx_zip_bomb(folder, uncompressed_mb=250), "zip_bomb"),
    "archive.docx": (documents.write_zip_not_docx, "invalid_file"),
    "six-pages.pdf": (lambda folder: documents.write_text_pdf(folder, "six-pages.pdf", pages=6), "too_many_pages"),
}
STATIC_800 = {"type": "static", "static": {"max_chunk_size_tokens": 800, "chunk_overlap_tokens": 100}}
OVERLAP_OVER_HALF = {"type": "static", "static": {"max_chunk_size_tokens": 200, "chunk_overlap_tokens": 150}}
MISSING_FILE = "file-000000000000000000000000"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DocumentServer]:
    root = tmp_path_factory.mktemp("documents-failures")
    (root / "models").mkdir()
    server = DocumentServer(
        root, root / "data", root / "models", "--document-max-pages", "5", "--file-upload-limit", "1"
    )
    try:
        yield server
    finally:
        server.stop()
    server.assert_no_server_errors()


@pytest.fixture(scope="module")
def store_id(server: DocumentServer) -> str:
    return server.sdk.vector_stores.create(name="failures").id


def test_bad_files_fail_with_a_reason_and_good_files_still_ingest(
    server: DocumentServer, store_id: str, tmp_path: Path
) -> None:
    ids = {}
    for name, (write, _) in BAD_FILES.items():
        path = write(tmp_path)
        ids[server.upload(name, path.read_bytes())] = name
    batch = server.sdk.vector_stores.file_batches.create_and_poll(vector_store_id=store_id, file_ids=list(ids))
    assert batch.file_counts.failed == len(BAD_FILES) and batch.file_counts.completed == 0
    for item in server.batch_files(store_id, batch.id):
        name = ids[item["id"]]
        assert item["status"] == "failed", (name, item)
        assert item["last_error"]["code"] == BAD_FILES[name][1], (name, item["last_error"])
        assert len(item["last_error"]["message"]) > 20 and item["chunk_count"] == 0

    good = documents.write_text_pdf(tmp_path, "five-pages.pdf", pages=5, marker="Marker word: gravelnebula.")
    done = server.sdk.vector_stores.files.upload_and_poll(vector_store_id=store_id, file=(good.name, good.read_bytes()))
    assert done.status == "completed" and done.last_error is None
    hits = server.search(store_id, "gravelnebula")["data"]
    assert hits and hits[0]["file_id"] == done.id and hits[0]["page_start"] == 1


def test_a_single_bad_file_fails_through_upload_and_poll(server: DocumentServer, store_id: str, tmp_path: Path) -> None:
    path = documents.write_image_pdf(tmp_path)
    upload = server.sdk.vector_stores.files.upload_and_poll
    failed = upload(vector_store_id=store_id, file=(path.name, path.read_bytes()))
    assert failed.status == "failed" and failed.last_error is not None and failed.last_error.code == "no_text"
    assert server.sdk.vector_stores.files.retrieve(failed.id, vector_store_id=store_id).last_error.code == "no_text"


def test_an_upload_over_the_file_limit_is_413(server: DocumentServer) -> None:
    response = server.http.post(
        "/files", files={"file": ("big.txt", b"x" * (1536 * 1024))}, data={"purpose": "assistants"}
    )
    assert_error(response, 413, contains="1 MB")
    assert server.http.get("/files").status_code == 200


@pytest.mark.parametrize(
    ("form", "data", "param", "contains"),
    [
        ({"purpose": "assistants"}, b"", "file", "empty"),
        ({}, b"hello", "purpose", "purpose"),
        ({"purpose": "nonsense"}, b"hello", "purpose", "unknown"),
        ({"purpose": "fine-tune"}, b"hello", "purpose", "assistants"),
    ],
)
def test_bad_uploads_are_400(
    server: DocumentServer, form: dict[str, str], data: bytes, param: str, contains: str
) -> None:
    response = server.http.post("/files", files={"file": ("note.txt", data)}, data=form)
    assert_error(response, 400, param=param, contains=contains)


def test_an_upload_without_a_file_is_400(server: DocumentServer) -> None:
    response = server.http.post("/files", files={"other": ("x", b"x")}, data={"purpose": "assistants"})
    assert_error(response, 400, param="file")


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/files", {"file_id": MISSING_FILE}),
        ("/file_batches", {"file_ids": [MISSING_FILE]}),
    ],
)
def test_attaching_an_unknown_file_is_404(
    server: DocumentServer, store_id: str, path: str, body: dict[str, Any]
) -> None:
    assert_error(server.http.post(f"/vector_stores/{store_id}{path}", json=body), 404, param="file_id")
    assert_error(server.http.post(f"/vector_stores/vs_000000000000000000000000{path}", json=body), 404)


def test_static_chunks_above_the_model_limit_are_400_naming_the_limit(server: DocumentServer, store_id: str) -> None:
    file_id = server.upload("short.md", b"# Short\n\nA short note about static chunking.\n")
    for path, body in [
        (f"/vector_stores/{store_id}/files", {"file_id": file_id, "chunking_strategy": STATIC_800}),
        (f"/vector_stores/{store_id}/file_batches", {"file_ids": [file_id], "chunking_strategy": STATIC_800}),
        ("/vector_stores", {"name": "too-big", "chunking_strategy": STATIC_800}),
    ]:
        error = assert_error(server.http.post(path, json=body), 400)
        assert "256" in error["message"] and "800" in error["message"], error
    fits = {"type": "static", "static": {"max_chunk_size_tokens": 200, "chunk_overlap_tokens": 50}}
    attach = server.sdk.vector_stores.files.create_and_poll
    done = attach(file_id=file_id, vector_store_id=store_id, chunking_strategy=fits)
    assert done.status == "completed" and done.chunking_strategy.to_dict() == fits


@pytest.mark.parametrize(
    "body",
    [
        {"file_id": ""},
        {"file_id": "x", "attributes": {f"k{n}": n for n in range(17)}},
        {"file_id": "x", "chunking_strategy": {"type": "static"}},
        {"file_id": "x", "chunking_strategy": {"type": "static", "static": {"max_chunk_size_tokens": 50}}},
        {"file_id": "x", "chunking_strategy": OVERLAP_OVER_HALF},
    ],
)
def test_malformed_attach_bodies_are_400(server: DocumentServer, store_id: str, body: dict[str, Any]) -> None:
    assert_error(server.http.post(f"/vector_stores/{store_id}/files", json=body), 400)
