"""The OpenAPI document's shape, checked without a server: every route lists the error statuses the
layers in front of it answer, in the error envelope; FastAPI's 422 guess is gone; streams and
binary answers declare their media types; keys bring their security schemes. (Whether the server
keeps these promises is tests/integration/test_openapi_contract.py's job.)"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from appliance.errors import ErrorEnvelope, error_responses
from support import write

ENVELOPE = "#/components/schemas/ErrorEnvelope"
ANTHROPIC = "#/components/schemas/AnthropicError"
PUBLIC = {("GET", "/healthz"), ("GET", "/readyz")}


def operations(document: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, methods in document["paths"].items():
        for method, operation in methods.items():
            yield method.upper(), path, operation


def error_schema(response: dict[str, Any]) -> str:
    return response["content"]["application/json"]["schema"]["$ref"]


@pytest.fixture
def document(make_app: Callable[..., FastAPI]) -> dict[str, Any]:
    return make_app(api_keys=["sk-test"]).openapi()


def test_every_operation_lists_the_door_statuses_in_the_envelope(document: dict[str, Any]) -> None:
    for method, path, operation in operations(document):
        responses = operation["responses"]
        expected = {"413", "500"} | (set() if (method, path) in PUBLIC else {"401"})
        assert expected <= set(responses), (method, path, sorted(responses))
        shape = ANTHROPIC if path.endswith("/messages") else ENVELOPE
        for status in expected:
            assert error_schema(responses[status]) == shape, (method, path, status)


def test_keys_bring_security_schemes_and_public_probes_need_none(document: dict[str, Any]) -> None:
    assert set(document["components"]["securitySchemes"]) == {"bearer", "x-api-key", "xi-api-key"}
    for method, path, operation in operations(document):
        assert ("security" in operation) is ((method, path) not in PUBLIC), (method, path)


def test_without_keys_there_is_no_401_and_no_security(make_app: Callable[..., FastAPI]) -> None:
    document = make_app().openapi()
    assert "securitySchemes" not in document["components"]
    for method, path, operation in operations(document):
        assert "401" not in operation["responses"] and "security" not in operation, (method, path)


def test_validation_errors_are_the_400_the_handler_sends_not_fastapis_422(document: dict[str, Any]) -> None:
    assert "HTTPValidationError" not in document["components"]["schemas"]
    for method, path, operation in operations(document):
        responses = operation["responses"]
        if "requestBody" in operation or operation.get("parameters"):
            assert "400" in responses, (method, path)
        if "422" in responses:  # only rerank answers 422 (for top_n), as rerank servers do
            assert path.endswith("/rerank"), (method, path)
        for status, response in responses.items():
            if status.startswith("4"):
                assert error_schema(response) in (ENVELOPE, ANTHROPIC), (method, path, status)


def test_streams_and_binary_answers_declare_their_media_types(document: dict[str, Any]) -> None:
    def media(method: str, path: str) -> set[str]:
        return set(document["paths"][path][method]["responses"]["200"].get("content", {}))

    for path in ("/v1/chat/completions", "/v1/completions", "/v1/messages", "/v1/responses"):
        assert {"application/json", "text/event-stream"} <= media("post", path), path
    assert media("get", "/v1/vector_stores/{store_id}/files/{file_id}/events") == {"text/event-stream"}
    assert {"audio/wav", "audio/mpeg", "text/event-stream"} <= media("post", "/v1/audio/speech")
    assert "audio/wav" in media("post", "/tts") and media("post", "/v1/sound-generation") == {"audio/wav"}
    assert media("get", "/generated-images/{name}") == {"image/png"}
    assert media("get", "/metrics") == {"text/plain"}
    assert media("post", "/stores/export") == {"application/gzip"}
    assert media("post", "/stores/set") == set()  # LocalAI's empty 200
    transcription = document["paths"]["/v1/audio/transcriptions"]["post"]
    assert {"text/plain", "text/vtt", "application/x-subrip"} <= media("post", "/v1/audio/transcriptions")
    form = transcription["requestBody"]["content"]["multipart/form-data"]["schema"]
    assert form["required"] == ["file", "model"] and form["properties"]["file"]["format"] == "binary"
    assert form["properties"]["response_format"]["enum"] == ["json", "text", "srt", "vtt", "verbose_json"]


def test_constraints_come_from_the_request_models(document: dict[str, Any]) -> None:
    schemas = document["components"]["schemas"]
    chat = schemas["ChatCompletionRequest"]["properties"]
    assert chat["messages"]["minItems"] == 1
    assert chat["max_tokens"]["anyOf"][0] == {"type": "integer", "minimum": 1}
    assert chat["temperature"]["anyOf"][0] == {"type": "number", "minimum": 0, "maximum": 2}
    assert chat["n"]["const"] == 1
    embedding = schemas["EmbeddingRequest"]["properties"]["input"]["anyOf"]
    assert {"type": "string", "minLength": 1} in embedding
    # pydantic's own keywords (ge, le, ...) must never leak in place of JSON Schema's
    assert not any(f'"{word}":' in json.dumps(document) for word in ("ge", "le", "gt", "lt"))


def test_error_responses_builds_responses_entries() -> None:
    entries = error_responses(404, 400, 404)
    assert list(entries) == [400, 404]
    assert all(entry["model"] is ErrorEnvelope and entry["description"] for entry in entries.values())


def test_the_envelope_schema_is_what_errors_look_like(client: TestClient) -> None:
    body = client.get("/v1/models/nope").json()
    assert ErrorEnvelope.model_validate(body).error.code == "model_not_found"


def test_405_allows_every_method_of_the_path(client: TestClient) -> None:
    response = client.request("PUT", "/v1/files/file-1")
    assert response.status_code == 405 and response.headers["allow"] == "DELETE, GET"
    assert client.request("PATCH", "/v1/vector_stores/vs-1").headers["allow"] == "DELETE, GET, POST"


@pytest.fixture
def chat_client(make_app: Callable[..., FastAPI], models_path: Path) -> Iterator[TestClient]:
    write(models_path / "chat.yaml", "name: chat\nbackend: fake\n")
    with TestClient(make_app()) as client:
        yield client


@pytest.mark.parametrize(
    ("patch", "param"),
    [
        ({"max_tokens": "5"}, "max_tokens"),  # a string is not a number
        ({"max_tokens": True}, "max_tokens"),  # nor a boolean
        ({"max_tokens": 2.5}, "max_tokens"),
        ({"stream": 1}, "stream"),
        ({"temperature": "0.5"}, "temperature"),
    ],
)
def test_json_types_are_taken_strictly(chat_client: TestClient, patch: dict[str, Any], param: str) -> None:
    body = {"model": "chat", "messages": [{"role": "user", "content": "hi"}], **patch}
    response = chat_client.post("/v1/chat/completions", json=body)
    assert response.status_code == 400 and response.json()["error"]["param"] == param, response.text


def test_a_whole_number_is_an_integer_as_json_schema_counts_it(chat_client: TestClient) -> None:
    body = {"model": "chat", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 5.0}
    response = chat_client.post("/v1/chat/completions", json=body)
    assert response.status_code == 200 and response.json()["usage"]["completion_tokens"] <= 5, response.text
