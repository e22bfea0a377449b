"""Edge inputs the OpenAPI contract run found answered with a 500 (or a 400 for a valid request),
pinned one by one: each is now a 200 or a 400 that names the field."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from appliance.payloads.audio_encoding import FORMATS, encode
from appliance.streaming import json_bytes
from support import assert_anthropic_error, assert_error, write

BIG = 2**70  # JSON allows it; orjson cannot write it
CHAT = "name: chat\nbackend: fake\ncontext_size: 4096\n"
EMBEDDER = "name: embedder\nbackend: fake\nknown_usecases: [embeddings]\noptions: ['dimensions:8']\n"
RERANKER = "name: reranker\nbackend: fake\nknown_usecases: [rerank]\n"
HI = [{"role": "user", "content": "hi"}]


@pytest.fixture
def client(make_app: Callable[..., FastAPI], models_path: Path) -> Iterator[TestClient]:
    write(models_path / "chat.yaml", CHAT)
    write(models_path / "embedder.yaml", EMBEDDER)
    write(models_path / "reranker.yaml", RERANKER)
    with TestClient(make_app(default_embedding_model="embedder")) as test_client:
        yield test_client


def test_json_bytes_writes_integers_beyond_64_bits() -> None:
    assert json.loads(json_bytes({"a": BIG, "b": [1.5, "x"]})) == {"a": BIG, "b": [1.5, "x"]}


def test_big_integers_in_free_form_json_are_kept_not_a_500(client: TestClient) -> None:
    stored = client.post("/stores/set", json={"keys": [[1.0, 0.0]], "values": ["v"], "metadata": [{"n": BIG}]})
    assert stored.status_code == 200, stored.text
    found = client.post("/stores/find", json={"key": [1.0, 0.0], "topk": 1})
    assert found.status_code == 200 and found.json()["metadata"] == [{"n": BIG}]
    tool = {"type": "function", "name": "f", "parameters": {"type": "object", "maximum": BIG}}
    streamed = client.post("/v1/responses", json={"model": "chat", "input": "hi", "tools": [tool], "stream": True})
    assert streamed.status_code == 200 and "response.completed" in streamed.text, streamed.text
    whole = client.post("/v1/responses", json={"model": "chat", "input": "hi", "tools": [tool], "metadata": {}})
    assert whole.status_code == 200, whole.text
    assert client.get(f"/v1/responses/{whole.json()['id']}").status_code == 200


def test_token_ids_outside_the_vocabulary_are_a_400(client: TestClient) -> None:
    assert_error(client.post("/v1/detokenize", json={"model": "chat", "tokens": [104, 300]}), 400, param="tokens")
    assert_error(client.post("/v1/detokenize", json={"model": "chat", "tokens": [-1]}), 400, param="tokens.0")
    assert client.post("/v1/detokenize", json={"model": "chat", "tokens": [104, 105]}).json() == {"content": "hi"}


def test_block_and_part_types_that_are_not_strings_are_a_400(client: TestClient) -> None:
    system = [{"type": {"nested": 1}, "text": "x"}]
    body = {"model": "chat", "max_tokens": 5, "messages": HI, "system": system}
    assert_anthropic_error(client.post("/v1/messages", json=body), 400, "invalid_request_error")
    items = [{"role": "user", "content": [{"type": {"nested": 1}, "text": "x"}]}]
    assert_error(client.post("/v1/responses", json={"model": "chat", "input": items}), 400, param="input")


def test_a_batch_file_id_must_not_be_empty(client: TestClient) -> None:
    store = client.post("/v1/vector_stores", json={"name": "s"}).json()["id"]
    response = client.post(f"/v1/vector_stores/{store}/file_batches", json={"file_ids": [""]})
    assert_error(response, 400, param="file_ids.0")


def test_an_empty_json_schema_is_a_schema(client: TestClient) -> None:
    text = {"format": {"type": "json_schema", "name": "any", "schema": {}}}
    response = client.post("/v1/responses", json={"model": "chat", "input": "hi", "text": text})
    assert response.status_code == 200, response.text


def test_a_body_field_called_query_is_named_in_the_error(client: TestClient) -> None:
    response = client.post("/v1/rerank", json={"model": "reranker", "query": "", "documents": ["a"]})
    assert_error(response, 400, param="query")


def test_an_empty_list_cursor_is_no_cursor(client: TestClient) -> None:
    assert client.get("/v1/vector_stores", params={"after": "", "before": ""}).status_code == 200
    assert_error(client.get("/v1/vector_stores", params={"after": "vs_nope"}), 400, param="after")


def test_logit_bias_keys_are_plain_token_ids(client: TestClient) -> None:
    body = {"model": "chat", "messages": HI, "logit_bias": {"--5": 1}}
    assert_error(client.post("/v1/chat/completions", json=body), 400, param="logit_bias")


def test_opus_bit_rates_are_clamped_to_what_the_encoder_opens_with() -> None:
    pytest.importorskip("av")
    pcm = b"\x00\x10" * 4000
    for bit_rate in (1, 9_999_000):
        data, rate = encode(FORMATS["opus"], pcm, 24000, output_rate=48000, bit_rate=bit_rate)
        assert data[:4] == b"OggS" and rate == 48000
