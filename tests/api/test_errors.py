"""The error envelope on every kind of failure: validation, unknown route/method, 413, 500."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from pydantic import BaseModel

from support import assert_error


class EchoBody(BaseModel):
    model: str
    n: int = 1
    messages: list[dict[str, str]]


@pytest.fixture
def app(make_app: Callable[..., FastAPI]) -> FastAPI:
    app = make_app(upload_limit=1)

    # Routes that exercise the handlers; real routes of later issues go through the same ones.
    @app.post("/v1/test/echo")
    async def echo(body: EchoBody) -> dict[str, int]:
        return {"n": body.n}

    @app.get("/v1/test/boom")
    async def boom() -> None:
        raise RuntimeError("secret detail /home/user/.ssh")

    return app


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app, raise_server_exceptions=False) as test_client:
        yield test_client


def test_malformed_json(client: TestClient) -> None:
    response = client.post("/v1/test/echo", content=b'{"model": "x",', headers={"content-type": "application/json"})
    assert_error(response, 400, code="invalid_request", contains="not valid JSON")


def test_wrong_type_names_the_field(client: TestClient) -> None:
    response = client.post("/v1/test/echo", json={"model": "x", "n": "many", "messages": []})
    assert_error(response, 400, param="n", contains="'n'")


def test_missing_field_names_the_field(client: TestClient) -> None:
    response = client.post("/v1/test/echo", json={"model": "x"})
    assert_error(response, 400, param="messages", contains="missing required field 'messages'")


def test_nested_field_is_named_with_its_path(client: TestClient) -> None:
    response = client.post("/v1/test/echo", json={"model": "x", "messages": [{"role": 3}]})
    assert_error(response, 400, param="messages.0.role")


def test_empty_body(client: TestClient) -> None:
    response = client.post("/v1/test/echo")
    assert_error(response, 400, code="invalid_request")


def test_unknown_route(client: TestClient) -> None:
    assert_error(client.get("/v1/nothing-here"), 404, code="not_found")


def test_wrong_method(client: TestClient) -> None:
    assert_error(client.delete("/v1/models"), 405, code="method_not_allowed")


def test_internal_error_is_opaque_and_logged(client: TestClient, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.ERROR):
        response = client.get("/v1/test/boom", headers={"X-Correlation-ID": "boom-1"})
    error = assert_error(response, 500, code="internal_error")
    assert error["message"] == "internal error"
    assert "secret" not in response.text
    assert response.headers["x-correlation-id"] == "boom-1"
    logged = [r for r in caplog.records if r.exc_info and "secret detail" in str(r.exc_info[1])]
    assert logged, "the traceback must be logged"


def test_body_over_limit_by_content_length(client: TestClient) -> None:
    body = b"x" * (1024 * 1024 + 1)
    response = client.post("/v1/test/echo", content=body, headers={"content-type": "application/json"})
    assert_error(response, 413, code="payload_too_large", contains="1 MB")


def test_body_over_limit_while_streaming(client: TestClient) -> None:
    def chunks() -> Iterator[bytes]:
        for _ in range(20):
            yield b" " * (64 * 1024)

    response = client.post("/v1/test/echo", content=chunks(), headers={"content-type": "application/json"})
    assert "content-length" not in response.request.headers
    assert_error(response, 413, code="payload_too_large")


def test_body_under_limit_passes(client: TestClient) -> None:
    response = client.post("/v1/test/echo", json={"model": "x", "messages": [], "pad": "y" * 500_000})
    assert response.status_code == 200, response.text


def test_bad_content_length(client: TestClient) -> None:
    response = client.post("/v1/test/echo", content=b"{}", headers={"content-length": "abc"})
    assert response.status_code == 400
