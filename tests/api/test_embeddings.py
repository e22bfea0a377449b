"""Embeddings and rerank over HTTP on the fake backend: shapes, encodings, errors, and batching."""

from __future__ import annotations

import asyncio
import base64
import math
import struct
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import openai
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from support import assert_error, write

EMBEDDER = "name: embedder\nbackend: fake\nknown_usecases: [embeddings]\noptions: ['dimensions:8']\n"
RERANKER = "name: reranker\nbackend: fake\nreranking: true\nknown_usecases: [rerank]\n"


@pytest.fixture
def client(make_app: Callable[..., FastAPI], models_path: Path) -> Iterator[TestClient]:
    write(models_path / "embedder.yaml", EMBEDDER)
    write(models_path / "reranker.yaml", RERANKER)
    write(models_path / "short.yaml", "name: short\nbackend: fake\nknown_usecases: [embeddings]\noptions: ['max_input_tokens:10']\n")
    with TestClient(make_app()) as test_client:
        yield test_client


@pytest.fixture
def sdk(client: TestClient) -> openai.OpenAI:
    return openai.OpenAI(base_url=str(client.base_url) + "/v1", api_key="unused", http_client=client, max_retries=0)


def norm(vector: list[float]) -> float:
    return math.sqrt(sum(v * v for v in vector))


def test_openai_client_default_base64_and_float_agree(sdk: openai.OpenAI) -> None:
    default = sdk.embeddings.create(model="embedder", input=["red", "green"])  # the SDK asks for base64
    floats = sdk.embeddings.create(model="embedder", input=["red", "green"], encoding_format="float")
    assert [d.index for d in default.data] == [0, 1]
    for a, b in zip(default.data, floats.data, strict=True):
        assert len(a.embedding) == 8
        assert a.embedding == pytest.approx(b.embedding, abs=1e-6)
    assert default.usage.prompt_tokens == len("red") + len("green") == default.usage.total_tokens


def test_base64_is_little_endian_float32(client: TestClient) -> None:
    body = client.post("/v1/embeddings", json={"model": "embedder", "input": "x", "encoding_format": "base64"}).json()
    raw = base64.b64decode(body["data"][0]["embedding"])
    vector = struct.unpack("<8f", raw)
    floats = client.post("/v1/embeddings", json={"model": "embedder", "input": "x"}).json()["data"][0]["embedding"]
    assert list(vector) == pytest.approx(floats, abs=1e-6)


def test_dimensions_truncate_and_renormalise(sdk: openai.OpenAI) -> None:
    full = sdk.embeddings.create(model="embedder", input="x", encoding_format="float").data[0].embedding
    short = sdk.embeddings.create(model="embedder", input="x", dimensions=3, encoding_format="float").data[0].embedding
    assert len(short) == 3 and norm(short) == pytest.approx(1.0)
    assert short == pytest.approx([v / norm(full[:3]) for v in full[:3]])


def test_token_id_input(client: TestClient) -> None:
    by_text = client.post("/v1/embeddings", json={"model": "embedder", "input": "hi"}).json()["data"][0]["embedding"]
    by_ids = client.post("/v1/embeddings", json={"model": "embedder", "input": [104, 105]}).json()
    assert by_ids["data"][0]["embedding"] == pytest.approx(by_text)
    nested = client.post("/v1/embeddings", json={"model": "embedder", "input": [[104, 105], [104]]}).json()
    assert len(nested["data"]) == 2


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"input": ""}, "input"),
        ({"input": []}, "input"),
        ({"input": ["ok", ""]}, "input"),
        ({"input": "x", "dimensions": 0}, "dimensions"),
        ({"input": "x", "dimensions": 9}, "dimensions"),
        ({"input": "x", "encoding_format": "int8"}, "encoding_format"),
        ({"input": 5}, "input"),
    ],
)
def test_bad_embedding_requests(client: TestClient, body: dict, param: str) -> None:
    assert_error(client.post("/v1/embeddings", json={"model": "embedder", **body}), 400, param=param)


def test_unknown_model(client: TestClient) -> None:
    assert_error(client.post("/v1/embeddings", json={"model": "nope", "input": "x"}), 404, code="model_not_found")


def test_long_input_is_truncated_by_default(client: TestClient) -> None:
    long = client.post("/v1/embeddings", json={"model": "short", "input": "0123456789-and-more"}).json()
    cut = client.post("/v1/embeddings", json={"model": "short", "input": "0123456789"}).json()
    assert long["data"][0]["embedding"] == cut["data"][0]["embedding"]
    assert long["usage"]["prompt_tokens"] == len("0123456789-and-more")  # counted before truncation


def test_long_input_refused_when_truncation_is_off(make_app: Callable[..., FastAPI], models_path: Path) -> None:
    write(models_path / "short.yaml", "name: short\nbackend: fake\nknown_usecases: [embeddings]\noptions: ['max_input_tokens:10']\n")
    with TestClient(make_app(truncate_inputs=False)) as client:
        response = client.post("/v1/embeddings", json={"model": "short", "input": ["ok", "0123456789-and-more"]})
        assert_error(response, 400, code="context_length_exceeded", param="input[1]")


def test_rerank_jina_shape(client: TestClient) -> None:
    docs = ["blue sky", "red apple pie", {"text": "an apple"}]
    body = client.post("/v1/rerank", json={"model": "reranker", "query": "red apple", "documents": docs}).json()
    assert body["model"] == "reranker" and body["usage"]["total_tokens"] > 0
    assert [r["index"] for r in body["results"]] == [1, 2, 0]
    scores = [r["relevance_score"] for r in body["results"]]
    assert scores == sorted(scores, reverse=True)
    assert body["results"][0]["document"] == {"text": "red apple pie"}


def test_rerank_top_n_and_documents_flag(client: TestClient) -> None:
    body = {"model": "reranker", "query": "apple", "documents": ["a", "apple", "b"], "top_n": 1, "return_documents": False}
    results = client.post("/rerank", json=body).json()["results"]
    assert results == [{"index": 1, "relevance_score": 1.0, "document": None}]
    clamped = client.post("/v1/rerank", json={**body, "top_n": 50}).json()["results"]
    assert len(clamped) == 3


def test_rerank_tei_body(client: TestClient) -> None:
    ranked = client.post("/rerank", json={"query": "apple", "texts": ["pear", "apple"], "return_text": True}).json()
    assert ranked[0] == {"index": 1, "score": 1.0, "text": "apple"} and ranked[1]["index"] == 0


@pytest.mark.parametrize(
    ("body", "status", "param"),
    [
        ({"query": "q", "documents": []}, 400, None),
        ({"query": "q"}, 400, None),
        ({"query": "q", "documents": ["a"], "top_n": 0}, 422, "top_n"),
        ({"query": "", "documents": ["a"]}, 400, "query"),
    ],
)
def test_bad_rerank_requests(client: TestClient, body: dict, status: int, param: str | None) -> None:
    assert_error(client.post("/v1/rerank", json={"model": "reranker", **body}), status, param=param)


def test_concurrent_requests_share_backend_calls(make_app: Callable[..., FastAPI], models_path: Path) -> None:
    write(models_path / "embedder.yaml", EMBEDDER)
    app = make_app()
    texts = [f"sentence number {i}" for i in range(40)]

    async def run() -> list[httpx.Response]:
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
                await client.post("/v1/embeddings", json={"model": "embedder", "input": "warm up"})
                return await asyncio.gather(
                    *(client.post("/v1/embeddings", json={"model": "embedder", "input": t}) for t in texts)
                )

    responses = asyncio.run(run())
    calls = app.state.services.embeddings.batch_counts()["embedder"] - 1  # minus the warm-up
    assert calls < len(texts) / 2, f"{calls} backend calls for {len(texts)} requests: no batching"
    # Every caller got the vector of its own text.
    with TestClient(make_app(disable_batching=True)) as single:
        for text, response in zip(texts, responses, strict=True):
            expected = single.post("/v1/embeddings", json={"model": "embedder", "input": text}).json()
            assert response.json()["data"][0]["embedding"] == expected["data"][0]["embedding"]


def test_disabled_batching_makes_one_call_per_request(make_app: Callable[..., FastAPI], models_path: Path) -> None:
    write(models_path / "embedder.yaml", EMBEDDER)
    app = make_app(disable_batching=True)

    async def run() -> None:
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
                await asyncio.gather(
                    *(client.post("/v1/embeddings", json={"model": "embedder", "input": f"t{i}"}) for i in range(10))
                )

    asyncio.run(run())
    assert app.state.services.embeddings.batch_counts().get("embedder", 10) == 10
