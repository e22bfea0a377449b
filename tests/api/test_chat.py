"""Chat completions through the official openai client and raw HTTP, on the fake backend."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path

import openai
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from support import assert_error, write

MESSAGES = [{"role": "system", "content": "be brief"}, {"role": "user", "content": "tell me about alpacas"}]


@pytest.fixture
def client(make_app: Callable[..., FastAPI], models_path: Path) -> Iterator[TestClient]:
    write(models_path / "chatty.yaml", "name: chatty\nbackend: fake\ncontext_size: 256\n")
    write(
        models_path / "templated.yaml",
        "name: templated\nbackend: fake\n"
        "template:\n  chat_message: '{{.RoleName}}: {{.Content}}'\n  chat: |-\n    {{.Input}}\n    ASSISTANT:\n",
    )
    write(models_path / "stoppy.yaml", "name: stoppy\nbackend: fake\nstopwords: ['{stop}']\n")
    with TestClient(make_app()) as test_client:
        yield test_client


@pytest.fixture
def sdk(client: TestClient) -> openai.OpenAI:
    return openai.OpenAI(base_url=str(client.base_url) + "/v1", api_key="unused", http_client=client, max_retries=0)


def test_non_streaming_shape(sdk: openai.OpenAI) -> None:
    reply = sdk.chat.completions.create(model="chatty", messages=MESSAGES, max_tokens=40, temperature=0)
    assert reply.object == "chat.completion" and reply.id.startswith("chatcmpl-")
    assert reply.model == "chatty" and len(reply.choices) == 1
    choice = reply.choices[0]
    assert choice.index == 0 and choice.message.role == "assistant"
    assert isinstance(choice.message.content, str) and choice.message.content
    assert choice.finish_reason in ("stop", "length")
    usage = reply.usage
    assert usage is not None and usage.prompt_tokens > 0 and usage.completion_tokens > 0
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens


def test_same_seed_same_answer(sdk: openai.OpenAI) -> None:
    ask = lambda seed: sdk.chat.completions.create(  # noqa: E731
        model="chatty", messages=MESSAGES, max_tokens=60, temperature=0, seed=seed
    ).choices[0].message.content
    assert ask(7) == ask(7)
    assert ask(7) != ask(8)


def test_streaming_matches_non_streaming(sdk: openai.OpenAI) -> None:
    whole = sdk.chat.completions.create(model="chatty", messages=MESSAGES, max_tokens=60, seed=3)
    chunks = list(
        sdk.chat.completions.create(
            model="chatty", messages=MESSAGES, max_tokens=60, seed=3, stream=True,
            stream_options={"include_usage": True},
        )
    )
    assert chunks[0].choices[0].delta.role == "assistant"
    content_chunks = [c for c in chunks if c.choices and c.choices[0].delta.content]
    assert len(content_chunks) > 1, "content must arrive in several deltas"
    assert "".join(c.choices[0].delta.content for c in content_chunks) == whole.choices[0].message.content
    finish = [c for c in chunks if c.choices and c.choices[0].finish_reason]
    assert len(finish) == 1 and finish[0].choices[0].finish_reason == whole.choices[0].finish_reason
    assert chunks[-1].choices == [] and chunks[-1].usage is not None
    assert chunks[-1].usage.completion_tokens == whole.usage.completion_tokens
    assert all(c.id == chunks[0].id for c in chunks)


def test_raw_sse_framing(client: TestClient) -> None:
    body = {"model": "chatty", "messages": MESSAGES, "max_tokens": 20, "stream": True}
    with client.stream("POST", "/v1/chat/completions", json=body) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        lines = [line for line in response.iter_lines() if line]
    assert all(line.startswith("data: ") for line in lines)
    assert lines[-1] == "data: [DONE]"
    payloads = [json.loads(line[6:]) for line in lines[:-1]]
    assert payloads[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    assert payloads[-1]["choices"][0]["finish_reason"] in ("stop", "length")
    assert "usage" not in payloads[0]  # only with stream_options.include_usage


def test_max_tokens_gives_length(sdk: openai.OpenAI) -> None:
    reply = sdk.chat.completions.create(model="chatty", messages=MESSAGES, max_tokens=3)
    assert reply.choices[0].finish_reason == "length" and reply.usage.completion_tokens == 3
    reply = sdk.chat.completions.create(model="chatty", messages=MESSAGES, max_completion_tokens=4)
    assert reply.usage.completion_tokens == 4


def test_stop_cuts_the_reply(sdk: openai.OpenAI) -> None:
    full = sdk.chat.completions.create(model="chatty", messages=MESSAGES, max_tokens=200, seed=1)
    word = full.choices[0].message.content.split()[2]
    cut = sdk.chat.completions.create(model="chatty", messages=MESSAGES, max_tokens=200, seed=1, stop=[word])
    assert word not in cut.choices[0].message.content
    assert full.choices[0].message.content.startswith(cut.choices[0].message.content)
    assert cut.choices[0].finish_reason == "stop"


def test_config_stopwords_are_merged(client: TestClient, models_path: Path, sdk: openai.OpenAI) -> None:
    full = sdk.chat.completions.create(model="chatty", messages=MESSAGES, max_tokens=200, seed=1)
    word = full.choices[0].message.content.split()[2]
    write(models_path / "stoppy.yaml", f"name: stoppy\nbackend: fake\nstopwords: ['{word}']\n")
    client.get("/v1/models")  # the catalog notices the edited config
    cut = sdk.chat.completions.create(model="stoppy", messages=MESSAGES, max_tokens=200, seed=1)
    assert word not in cut.choices[0].message.content


def test_localai_go_templates_build_the_prompt(sdk: openai.OpenAI) -> None:
    reply = sdk.chat.completions.create(
        model="templated", messages=[{"role": "user", "content": "hi"}], max_tokens=5
    )
    # The fake backend counts prompt bytes: "user: hi\nASSISTANT:" is 19.
    assert reply.usage.prompt_tokens == len("user: hi\nASSISTANT:")


def test_context_overflow_is_a_400_with_numbers(sdk: openai.OpenAI, client: TestClient) -> None:
    long = [{"role": "user", "content": "word " * 100}]
    with pytest.raises(openai.BadRequestError) as caught:
        sdk.chat.completions.create(model="chatty", messages=long, max_tokens=100)
    assert caught.value.code == "context_length_exceeded"
    assert "256" in caught.value.message
    streamed = client.post("/v1/chat/completions", json={"model": "chatty", "messages": long, "max_tokens": 100, "stream": True})
    assert_error(streamed, 400, code="context_length_exceeded")


@pytest.mark.parametrize(
    ("patch", "param"),
    [
        ({"temperature": 5}, "temperature"),
        ({"top_p": 0}, "top_p"),
        ({"n": 2}, "n"),
        ({"messages": []}, "messages"),
        ({"messages": [{"role": "wizard", "content": "x"}]}, "messages.0.role"),
        ({"logit_bias": {"abc": 1}}, "logit_bias"),
        ({"logit_bias": {"5": 500}}, "logit_bias"),
        ({"max_tokens": 0}, "max_tokens"),
        ({"stop": ["a"] * 40}, "stop"),
        ({"response_format": {"type": "json_schema"}}, "response_format"),
        ({"logprobs": True}, None),
    ],
)
def test_bad_parameters_are_400(client: TestClient, patch: dict, param: str | None) -> None:
    body = {"model": "chatty", "messages": MESSAGES, **patch}
    assert_error(client.post("/v1/chat/completions", json=body), 400, param=param)


def test_unknown_model_is_404(sdk: openai.OpenAI) -> None:
    with pytest.raises(openai.NotFoundError) as caught:
        sdk.chat.completions.create(model="nope", messages=MESSAGES)
    assert "GET /v1/models" in caught.value.message


def test_tool_choice_naming_an_unknown_function(client: TestClient) -> None:
    body = {
        "model": "chatty",
        "messages": MESSAGES,
        "tools": [{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}],
        "tool_choice": {"type": "function", "function": {"name": "launch"}},
    }
    assert_error(client.post("/v1/chat/completions", json=body), 400, param="tool_choice")


def test_without_v1_prefix(client: TestClient) -> None:
    response = client.post("/chat/completions", json={"model": "chatty", "messages": MESSAGES, "max_tokens": 5})
    assert response.status_code == 200 and response.json()["object"] == "chat.completion"
