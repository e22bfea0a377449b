"""A vector store embedded with one model: searching it with another is a 409 that says how to
rebuild, and `POST /v1/vector_stores/{id}/reindex` rebuilds it from the kept text, no re-upload."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest

from fixtures.documents import write_markdown
from support import Server, assert_error, free_port, write

FAKE = "name: fake-embedder\nbackend: fake\nknown_usecases: [embeddings]\noptions: ['dimensions:8', 'max_input_tokens:300']\n"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    root = tmp_path_factory.mktemp("reindex")
    write(root / "models" / "fake.yaml", FAKE)
    port = free_port()
    server = Server(
        ["--address", f"127.0.0.1:{port}", "--data-path", str(root / "data"), "--models-path", str(root / "models")],
        root,
        port,
    )
    server.wait_healthy(timeout=60)
    yield server
    server.stop()


def wait_reindexed(http: httpx.Client, store_id: str) -> dict:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        body = http.get(f"/v1/vector_stores/{store_id}").json()
        if body["reindex"]["status"] != "in_progress":
            return body
        time.sleep(0.2)
    raise AssertionError(f"reindex of {store_id} did not finish: {body}")


def test_model_mismatch_then_reindex(server: Server, tmp_path: Path) -> None:
    with openai.OpenAI(base_url=server.base + "/v1", api_key="unused") as client, httpx.Client(
        base_url=server.base, timeout=60
    ) as http:
        check_mismatch_then_reindex(client, http, tmp_path)


def check_mismatch_then_reindex(client: openai.OpenAI, http: httpx.Client, tmp_path: Path) -> None:
    document = write_markdown(tmp_path, sections=4)
    store = client.vector_stores.create(name="fake", extra_body={"embedding_model": "fake-embedder"})
    done = client.vector_stores.files.upload_and_poll(vector_store_id=store.id, file=document)
    assert done.status == "completed", done.last_error
    chunk_count = done.model_extra["chunk_count"]
    assert chunk_count > 0

    mismatch = http.post(
        f"/v1/vector_stores/{store.id}/search", json={"query": "ERR-4021", "embedding_model": "all-minilm-l6-v2"}
    )
    error = assert_error(mismatch, 409, code="model_mismatch", param="embedding_model")
    assert "reindex" in error["message"] and "fake-embedder" in error["message"]

    started = http.post(f"/v1/vector_stores/{store.id}/reindex", json={"embedding_model": "all-minilm-l6-v2"})
    assert started.status_code == 200, started.text
    assert started.json()["reindex"]["embedding_model"] == "all-minilm-l6-v2"
    again = http.post(f"/v1/vector_stores/{store.id}/reindex", json={"embedding_model": "all-minilm-l6-v2"})
    assert again.status_code in (200, 409), again.text  # 409 while the first one still runs
    body = wait_reindexed(http, store.id)
    assert body["reindex"]["status"] == "completed", body
    assert body["embedding_model"] == "all-minilm-l6-v2" and body["embedding_dimension"] == 384

    found = http.post(
        f"/v1/vector_stores/{store.id}/search", json={"query": "ERR-4021", "embedding_model": "all-minilm-l6-v2"}
    )
    assert found.status_code == 200, found.text
    results = found.json()["data"]
    assert results and "ERR-4021" in results[0]["content"][0]["text"]
    assert len(http.get("/v1/files").json()["data"]) == 1  # nothing was uploaded again


def test_reindex_refuses_bad_requests(server: Server) -> None:
    with httpx.Client(base_url=server.base, timeout=60) as http:
        check_refusals(http)


def check_refusals(http: httpx.Client) -> None:
    store = http.post("/v1/vector_stores", json={"name": "x"}).json()
    assert_error(http.post("/v1/vector_stores/vs_nope/reindex", json={}), 404)
    assert_error(http.post(f"/v1/vector_stores/{store['id']}/reindex", json={"embedding_model": "nope"}), 404)
    too_big = {"embedding_model": "all-minilm-l6-v2", "chunking_strategy": {"type": "static", "static": {"max_chunk_size_tokens": 800, "chunk_overlap_tokens": 0}}}
    assert_error(http.post(f"/v1/vector_stores/{store['id']}/reindex", json=too_big), 400, contains="256")
