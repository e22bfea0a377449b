"""`POST /stores/export` and `POST /stores/import`: a backup moves a store between servers, all or nothing."""

from __future__ import annotations

import gzip
import json
import logging
import random
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from starlette.types import Message

from support import assert_error


@pytest.fixture
def client(make_app: Callable[..., FastAPI]) -> Iterator[TestClient]:
    with TestClient(make_app()) as test_client:
        yield test_client


@pytest.fixture
def other(make_app: Callable[..., FastAPI], tmp_path: Path) -> Iterator[TestClient]:
    """A second server on its own data path."""
    with TestClient(make_app(data_path=tmp_path / "other-data")) as test_client:
        yield test_client


def post(client: TestClient, path: str, **body: object) -> dict:
    response = client.post(path, json=body)
    assert response.status_code == 200, response.text
    return response.json() if response.content else {}


def fill(client: TestClient, store: str = "docs", n: int = 50) -> list[list[float]]:
    rng = random.Random(3)
    keys = [[rng.gauss(0, 1) for _ in range(8)] for _ in range(n)]
    post(client, "/stores/create", name=store, embedding_model="minilm", embedding_dimension=8)
    metadata = [{"n": i} if i % 2 else None for i in range(n)]
    post(client, "/stores/set", store=store, keys=keys, values=[f"v{i} ✓" for i in range(n)], metadata=metadata)
    return keys


def export(client: TestClient, store: str | None = "docs") -> bytes:
    response = client.post("/stores/export", json={} if store is None else {"store": store})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/gzip"
    return response.content


def import_(client: TestClient, data: bytes, **params: object) -> object:
    return client.post("/stores/import", params=params, content=data, headers={"content-type": "application/gzip"})


def names(client: TestClient) -> list[str]:
    return [s["name"] for s in client.get("/stores").json()["stores"]]


def test_export_import_round_trip_between_servers(client: TestClient, other: TestClient) -> None:
    keys = fill(client)
    response = client.post("/stores/export", json={"store": "docs"})
    assert response.headers["content-disposition"].startswith('attachment; filename="docs.store.jsonl.gz"')
    header = json.loads(gzip.decompress(response.content).split(b"\n")[0])
    assert header["count"] == 50 and header["store"]["embedding_model"] == "minilm"

    imported = import_(other, response.content)
    assert imported.status_code == 200, imported.text  # type: ignore[attr-defined]
    body = imported.json()  # type: ignore[attr-defined]
    assert (body["name"], body["count"], body["dimension"], body["embedding_model"]) == ("docs", 50, 8, "minilm")
    for key in keys[:5]:
        query = {"store": "docs", "key": key, "topk": 10}
        assert post(other, "/stores/find", **query) == post(client, "/stores/find", **query)
    assert export(other)[10:] != b"" and names(other) == ["docs"]


def test_default_store_exports_by_default(client: TestClient, other: TestClient) -> None:
    post(client, "/stores/set", keys=[[1.0, 0.0]], values=["default"])
    response = client.post("/stores/export")
    assert response.status_code == 200
    assert 'filename="default.store.jsonl.gz"' in response.headers["content-disposition"]
    assert import_(other, response.content).json()["name"] == ""  # type: ignore[attr-defined]
    assert post(other, "/stores/get", keys=[[1.0, 0.0]])["values"] == ["default"]


def test_target_name_override_and_multipart_upload(client: TestClient) -> None:
    fill(client)
    data = export(client)
    response = client.post("/stores/import", params={"store": "copy"}, files={"file": ("docs.store.jsonl.gz", data)})
    assert response.status_code == 200, response.text
    assert response.json()["name"] == "copy" and response.json()["count"] == 50
    plain = gzip.decompress(data)
    response = client.post("/stores/import?store=plain", content=plain, headers={"content-type": "application/x-ndjson"})
    assert response.status_code == 200, response.text
    assert names(client) == ["copy", "docs", "plain"]
    assert_error(client.post("/stores/import", files={"other": ("x", data)}), 400, param="file")


def test_unknown_store_is_404(client: TestClient) -> None:
    assert_error(client.post("/stores/export", json={"store": "nope"}), 404, code="store_not_found")
    assert_error(client.post("/stores/export"), 404, code="store_not_found")


def test_existing_name_is_409_and_replace_swaps(client: TestClient, other: TestClient) -> None:
    fill(client)
    data = export(client)
    post(other, "/stores/set", store="docs", keys=[[1.0, 0.0]], values=["old"])
    error = assert_error(import_(other, data), 409, code="store_exists", param="store")  # type: ignore[arg-type]
    assert "replace=true" in error["message"]
    assert post(other, "/stores/get", store="docs", keys=[[1.0, 0.0]])["values"] == ["old"]

    swapped = import_(other, data, replace="true")
    assert swapped.status_code == 200 and swapped.json()["count"] == 50  # type: ignore[attr-defined]
    assert post(other, "/stores/get", store="docs", keys=[[1.0, 0.0]]) == {"keys": [], "values": []}
    assert names(other) == ["docs"]


@pytest.mark.parametrize(
    ("mutate", "phrase"),
    [
        (lambda data: data[: len(data) - 30], "truncated"),
        (lambda data: b"", "empty"),
        (lambda data: b"PK\x03\x04 not a backup", "not valid json"),
        (lambda data: gzip.compress(gzip.decompress(data).replace(b'"version":1', b'"version":9')), "version 9"),
        (lambda data: gzip.compress(gzip.decompress(data).replace(b"v7 ", b"v8 ")), "sha256"),
    ],
    ids=["truncated", "empty", "garbage", "newer-version", "edited"],
)
def test_bad_files_are_400_and_create_nothing(client: TestClient, mutate: Callable[[bytes], bytes], phrase: str) -> None:
    fill(client)
    before = client.get("/stores").json()
    data = mutate(export(client))
    assert_error(import_(client, data, store="restored"), 400, param="file", contains=phrase)  # type: ignore[arg-type]
    assert_error(import_(client, data, store="docs", replace="true"), 400, param="file")  # type: ignore[arg-type]
    assert client.get("/stores").json() == before


def test_reserved_and_bad_parameters_are_400(client: TestClient) -> None:
    fill(client)
    data = export(client)
    assert_error(import_(client, data, store=".import-x"), 400, param="store")  # type: ignore[arg-type]
    assert_error(import_(client, data, replace="maybe"), 400, param="replace")  # type: ignore[arg-type]
    assert_error(client.post("/stores/export", json={"store": ".import-x"}), 400, param="store")
    assert_error(client.post("/stores/set", json={"store": ".x", "keys": [[1.0]], "values": ["a"]}), 400, param="store")
    assert_error(client.post("/stores/create", json={"name": ".x"}), 400, param="name")
    assert names(client) == ["docs"]


async def post_in_pieces(app: FastAPI, target: str, pieces: list[bytes]) -> tuple[int, bytes]:
    """POST a body as several ASGI messages, as a real server delivers a large upload (TestClient sends one)."""
    messages: list[Message] = [{"type": "http.request", "body": piece, "more_body": True} for piece in pieces]
    messages.append({"type": "http.request", "body": b"", "more_body": False})
    sent: list[Message] = []

    async def receive() -> Message:
        return messages.pop(0) if messages else {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        sent.append(message)

    path, _, query = target.partition("?")
    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST", "scheme": "http",
        "path": path, "raw_path": path.encode(), "query_string": query.encode(), "root_path": "",
        "headers": [(b"host", b"testserver"), (b"content-type", b"application/gzip")],
        "client": ("127.0.0.1", 50000), "server": ("testserver", 80),
    }
    await app(scope, receive, send)
    status = next(m["status"] for m in sent if m["type"] == "http.response.start")
    return status, b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")


def pieces_of(data: bytes, size: int) -> list[bytes]:
    return [data[start : start + size] for start in range(0, len(data), size)]


def test_a_body_in_many_pieces_is_imported(client: TestClient) -> None:
    fill(client, n=200)
    data = export(client)
    assert client.portal is not None
    status, body = client.portal.call(post_in_pieces, client.app, "/stores/import?store=copy", pieces_of(data, 1000))
    assert status == 200, body
    assert json.loads(body)["count"] == 200
    query = {"key": [1.0] * 8, "topk": 5}
    assert post(client, "/stores/find", store="copy", **query) == post(client, "/stores/find", store="docs", **query)


def test_upload_over_the_limit_is_413_and_leaves_nothing(
    make_app: Callable[..., FastAPI], caplog: pytest.LogCaptureFixture
) -> None:
    rng = random.Random(5)
    with TestClient(make_app(upload_limit=1)) as client:
        for _ in range(4):  # each set stays under the limit; the backup does not
            keys = [[rng.gauss(0, 1) for _ in range(4)] for _ in range(15)]
            post(client, "/stores/set", store="big", keys=keys, values=["x" * 20_000] * 15)
        data = gzip.decompress(export(client, "big"))  # plain JSONL, so the body is its full size
        assert len(data) > 1024 * 1024
        # Declared up front: refused before a byte is read.
        assert_error(import_(client, data, store="copy"), 413, code="payload_too_large")  # type: ignore[arg-type]
        # Streamed: the import is under way (staging store made) when the limit cuts it off.
        assert client.portal is not None
        with caplog.at_level(logging.INFO, logger="stores"):
            status, body = client.portal.call(post_in_pieces, client.app, "/stores/import?store=copy", pieces_of(data, 64 * 1024))
        assert status == 413 and json.loads(body)["error"]["code"] == "payload_too_large"
        staged = [r.getMessage() for r in caplog.records if ".import-" in r.getMessage()]
        assert any("stores_created" in m for m in staged) and any("stores_dropped" in m for m in staged), staged
        assert names(client) == ["big"]
