"""Completions, edits, tokenize/detokenize and backend control on the fake backend."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import openai
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from support import assert_error, write


@pytest.fixture
def client(make_app: Callable[..., FastAPI], models_path: Path) -> Iterator[TestClient]:
    write(models_path / "writer.yaml", "name: writer\nbackend: fake\ncontext_size: 512\n")
    write(
        models_path / "editor.yaml",
        "name: editor\nbackend: fake\ntemplate:\n  edit: 'INSTRUCTION: {{.Instruction}} INPUT: {{.Input}}'\n",
    )
    write(models_path / "trimmed.yaml", "name: trimmed\nbackend: fake\ncutstrings: ['[aeiou]']\n")
    with TestClient(make_app()) as test_client:
        yield test_client


@pytest.fixture
def sdk(client: TestClient) -> openai.OpenAI:
    return openai.OpenAI(base_url=str(client.base_url) + "/v1", api_key="unused", http_client=client, max_retries=0)


def test_completion_defaults_to_16_tokens(sdk: openai.OpenAI) -> None:
    reply = sdk.completions.create(model="writer", prompt="Once upon a time", seed=1)
    assert reply.object == "text_completion" and reply.choices[0].text
    assert reply.usage.completion_tokens <= 16
    assert reply.usage.prompt_tokens == len("Once upon a time")


def test_completion_stream(sdk: openai.OpenAI) -> None:
    whole = sdk.completions.create(model="writer", prompt="Once", max_tokens=50, seed=2)
    chunks = list(sdk.completions.create(model="writer", prompt="Once", max_tokens=50, seed=2, stream=True))
    assert "".join(c.choices[0].text for c in chunks if c.choices) == whole.choices[0].text
    assert [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason] == [
        whole.choices[0].finish_reason
    ]


def test_echo_and_several_prompts(sdk: openai.OpenAI) -> None:
    reply = sdk.completions.create(model="writer", prompt=["first", "second"], max_tokens=10, echo=True, seed=1)
    assert [c.index for c in reply.choices] == [0, 1]
    assert reply.choices[0].text.startswith("first") and reply.choices[1].text.startswith("second")
    assert reply.usage.prompt_tokens == len("first") + len("second")


def test_cutstrings_apply_to_finished_text(sdk: openai.OpenAI) -> None:
    reply = sdk.completions.create(model="trimmed", prompt="vowels", max_tokens=60, seed=1)
    assert reply.choices[0].text and not set("aeiou") & set(reply.choices[0].text)


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"prompt": [1, 2, 3]}, "prompt"),
        ({"prompt": []}, "prompt"),
        ({"prompt": "x", "suffix": "y"}, None),
        ({"prompt": "x", "best_of": 3}, None),
        ({}, "prompt"),
    ],
)
def test_bad_completion_requests(client: TestClient, body: dict, param: str | None) -> None:
    assert_error(client.post("/v1/completions", json={"model": "writer", **body}), 400, param=param)


def test_edit_uses_the_edit_template(client: TestClient) -> None:
    response = client.post("/v1/edits", json={"model": "editor", "instruction": "fix", "input": "teh cat"})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["object"] == "edit" and body["choices"][0]["text"]
    assert body["usage"]["prompt_tokens"] == len("INSTRUCTION: fix INPUT: teh cat")


def test_tokenize_round_trip(client: TestClient) -> None:
    tokens = client.post("/v1/tokenize", json={"model": "writer", "content": "héllo"}).json()["tokens"]
    assert tokens == list("héllo".encode())
    assert client.post("/v1/detokenize", json={"model": "writer", "tokens": tokens}).json() == {"content": "héllo"}
    assert client.post("/tokenize", json={"model": "writer", "content": "a"}).status_code == 200
    assert_error(client.post("/v1/tokenize", json={"model": "nope", "content": "a"}), 404)


def test_backend_load_monitor_shutdown(client: TestClient) -> None:
    before = client.get("/backend/monitor", params={"model": "writer"}).json()
    assert before["state"] == "UNINITIALIZED"
    loaded = client.post("/backend/load", json={"model": "writer"}).json()
    assert loaded["state"] == "READY" and loaded["backend"] == "fake"
    assert [m["id"] for m in client.get("/system").json()["loaded_models"]] == ["writer"]
    monitor = client.request("GET", "/backend/monitor", json={"model": "writer"}).json()
    assert monitor["state"] == "READY" and monitor["memory_info"]["total"] >= 0
    assert client.post("/backend/shutdown", json={"model": "writer"}).json() == {"model": "writer", "unloaded": True}
    assert client.get("/system").json()["loaded_models"] == []
    assert_error(client.post("/backend/shutdown", json={"model": "nope"}), 404)
    assert_error(client.get("/backend/monitor"), 400, param="model")


def test_metrics_count_tokens_and_loads(client: TestClient, sdk: openai.OpenAI) -> None:
    sdk.completions.create(model="writer", prompt="count me", max_tokens=5, seed=1)
    text = client.get("/metrics").text
    assert 'appliance_completion_tokens_total{model="writer"} 5.0' in text
    assert 'appliance_prompt_tokens_total{model="writer"} 8.0' in text
    assert 'appliance_model_loads_total{model="writer"} 1.0' in text
    assert "appliance_queue_depth 0.0" in text
    assert 'appliance_request_duration_seconds_count{method="POST",route="/v1/completions",status="200"}' in text
