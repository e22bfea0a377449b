"""Anthropic's Messages API on the fake backends: the reply's shape, the streamed events and their
order, stop reasons, a tool round trip, and errors in Anthropic's shape (other routes keep theirs).

Replies and events are also read with the official `anthropic` package's own types, so a shape the
client cannot parse fails here.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import anthropic.types as at
import httpx
import pytest
from fastapi.testclient import TestClient
from pydantic import TypeAdapter

from appliance.app import create_app
from appliance.config import Settings
from fixtures.tool_backend import ANSWER, FAIL_MIDWAY, ToolCallingFake, tool_backends
from inference.backends.registry import BackendRegistry
from support import assert_anthropic_error, assert_error, write

MESSAGES = [{"role": "user", "content": "tell me about alpacas"}]
WEATHER_TOOL = {
    "name": "get_weather",
    "description": "The weather in a city",
    "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}
STREAM_EVENT = TypeAdapter(at.RawMessageStreamEvent)


@pytest.fixture
def client(make_settings: Callable[..., Settings], models_path: Path) -> Iterator[TestClient]:
    write(models_path / "chatty.yaml", "name: chatty\nbackend: fake\ncontext_size: 256\n")
    write(models_path / "tooly.yaml", "name: tooly\nbackend: tool-fake\ncontext_size: 2048\n")
    write(models_path / "broken.yaml", "name: broken\nbackend: fake\noptions: ['fail_load:true']\n")
    ToolCallingFake.prompts.clear()
    app = create_app(make_settings(), registry=BackendRegistry(tool_backends()))
    with TestClient(app) as test_client:
        yield test_client


def post(client: TestClient, **body: Any) -> httpx.Response:
    return client.post("/v1/messages", json={"model": "chatty", "max_tokens": 60, "messages": MESSAGES, **body})


def events_of(client: TestClient, **body: Any) -> list[tuple[str, dict[str, Any]]]:
    """(event name, data) pairs of a streamed reply, each data also parsed by the client's types."""
    payload = {"model": "chatty", "max_tokens": 60, "messages": MESSAGES, "stream": True, **body}
    with client.stream("POST", "/v1/messages", json=payload) as response:
        assert response.status_code == 200, response.read()
        assert response.headers["content-type"].startswith("text/event-stream")
        raw = response.read().decode()
    events = []
    for frame in raw.strip().split("\n\n"):
        name_line, data_line = frame.split("\n")
        assert name_line.startswith("event: ") and data_line.startswith("data: "), frame
        name, data = name_line[7:], json.loads(data_line[6:])
        assert data["type"] == name, frame
        if name not in ("ping", "error"):
            STREAM_EVENT.validate_python(data)
        events.append((name, data))
    return events


def test_whole_reply_shape(client: TestClient) -> None:
    response = post(client, system="be brief", temperature=0)
    assert response.status_code == 200, response.text
    reply = response.json()
    assert set(reply) == {"id", "type", "role", "model", "content", "stop_reason", "stop_sequence", "usage"}
    assert reply["id"].startswith("msg_") and reply["type"] == "message" and reply["role"] == "assistant"
    assert reply["model"] == "chatty" and reply["stop_reason"] == "end_turn" and reply["stop_sequence"] is None
    [block] = reply["content"]
    assert block["type"] == "text" and block["text"]
    assert reply["usage"]["input_tokens"] > 0 and reply["usage"]["output_tokens"] == len(block["text"].encode())
    at.Message.model_validate(reply)


def test_system_and_text_blocks_reach_the_prompt_as_strings(client: TestClient) -> None:
    """The fake counts prompt bytes, so block lists and plain strings must render the same prompt."""
    as_strings = post(client, system="be brief", messages=[{"role": "user", "content": "hi there"}]).json()
    as_blocks = post(
        client,
        system=[{"type": "text", "text": "be brief", "cache_control": {"type": "ephemeral"}}],
        messages=[{"role": "user", "content": [{"type": "text", "text": "hi there"}]}],
    ).json()
    assert as_blocks["usage"]["input_tokens"] == as_strings["usage"]["input_tokens"]
    assert as_blocks["content"] == as_strings["content"]
    # "system: be brief\nuser: hi there\nassistant:" is what the fake template makes of it.
    assert as_strings["usage"]["input_tokens"] == len("system: be brief\nuser: hi there\nassistant:")


def test_max_tokens_and_stop_sequences(client: TestClient) -> None:
    short = post(client, max_tokens=3).json()
    assert short["stop_reason"] == "max_tokens" and short["usage"]["output_tokens"] == 3
    full = post(client, max_tokens=200).json()["content"][0]["text"]
    word = full.split()[2]
    cut = post(client, max_tokens=200, stop_sequences=[word]).json()
    assert cut["stop_reason"] == "stop_sequence" and cut["stop_sequence"] == word
    assert full.startswith(cut["content"][0]["text"]) and word not in cut["content"][0]["text"]


def test_streamed_events_come_in_anthropics_order(client: TestClient) -> None:
    whole = post(client, temperature=0).json()
    events = events_of(client, temperature=0)
    names = [name for name, _ in events]
    assert names[:3] == ["message_start", "ping", "content_block_start"]
    assert names[-3:] == ["content_block_stop", "message_delta", "message_stop"]
    assert set(names[3:-3]) == {"content_block_delta"} and len(names) - 6 > 1, names
    start = events[0][1]["message"]
    assert start["id"].startswith("msg_") and start["content"] == [] and start["stop_reason"] is None
    assert events[2][1] == {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}
    deltas = [data["delta"] for name, data in events if name == "content_block_delta"]
    assert all(d["type"] == "text_delta" for d in deltas)
    assert "".join(d["text"] for d in deltas) == whole["content"][0]["text"]
    final = events[-2][1]
    assert final["delta"] == {"stop_reason": whole["stop_reason"], "stop_sequence": None}
    assert final["usage"] == whole["usage"]


def test_streamed_stop_sequence(client: TestClient) -> None:
    word = post(client, max_tokens=200).json()["content"][0]["text"].split()[1]
    events = events_of(client, max_tokens=200, stop_sequences=[word])
    assert events[-2][1]["delta"] == {"stop_reason": "stop_sequence", "stop_sequence": word}


def test_tool_round_trip(client: TestClient) -> None:
    asked = [{"role": "user", "content": "What is the weather in Paris?"}]
    first = post(client, model="tooly", messages=asked, tools=[WEATHER_TOOL], tool_choice={"type": "any"})
    reply = first.json()
    assert first.status_code == 200 and reply["stop_reason"] == "tool_use", reply
    [call] = reply["content"]
    assert call["type"] == "tool_use" and call["name"] == "get_weather" and call["input"] == {"city": "Paris"}
    assert call["id"].startswith("toolu_")
    at.Message.model_validate(reply)
    # The tool spec reached the model's template, and its schema the grammar the call was held to.
    assert "tools: get_weather" in ToolCallingFake.prompts[-1]

    history = [
        *asked,
        {"role": "assistant", "content": reply["content"]},
        {
            "role": "user",
            "content": [{"type": "tool_result", "tool_use_id": call["id"], "content": [{"type": "text", "text": "22C"}]}],
        },
    ]
    second = post(client, model="tooly", messages=history, tools=[WEATHER_TOOL]).json()
    assert second["stop_reason"] == "end_turn" and second["content"] == [{"type": "text", "text": ANSWER}]
    prompt = ToolCallingFake.prompts[-1].splitlines()
    assert prompt[-3:] == ["assistant: ", "tool: 22C", "assistant:"], prompt


def test_tool_use_streamed(client: TestClient) -> None:
    asked = [{"role": "user", "content": "Weather in Paris?"}]
    events = events_of(client, model="tooly", messages=asked, tools=[WEATHER_TOOL], tool_choice={"type": "any"})
    names = [name for name, _ in events]
    assert names == [
        "message_start", "ping", "content_block_start", "content_block_delta", "content_block_stop",
        "message_delta", "message_stop",
    ]
    block = events[2][1]["content_block"]
    assert block["type"] == "tool_use" and block["name"] == "get_weather" and block["id"].startswith("toolu_")
    delta = events[3][1]["delta"]
    assert delta["type"] == "input_json_delta" and json.loads(delta["partial_json"]) == {"city": "Paris"}
    assert events[-2][1]["delta"]["stop_reason"] == "tool_use"


def test_tool_choice_none_and_a_named_tool(client: TestClient) -> None:
    none = post(client, model="tooly", tools=[WEATHER_TOOL], tool_choice={"type": "none"}).json()
    assert none["stop_reason"] in ("end_turn", "max_tokens") and none["content"][0]["type"] == "text"
    named = post(client, model="tooly", tools=[WEATHER_TOOL], tool_choice={"type": "tool", "name": "get_weather"})
    assert named.json()["content"][0]["name"] == "get_weather"
    unknown = post(client, model="tooly", tools=[WEATHER_TOOL], tool_choice={"type": "tool", "name": "launch"})
    assert_anthropic_error(unknown, 400, "invalid_request_error", contains="launch")


@pytest.mark.parametrize(
    ("patch", "names"),
    [
        ({"max_tokens": None}, "max_tokens"),
        ({"max_tokens": 0}, "max_tokens"),
        ({"temperature": 1.5}, "temperature"),
        ({"messages": []}, "messages"),
        ({"messages": [{"role": "system", "content": "x"}]}, "messages.0.role"),
        ({"messages": [{"role": "user", "content": [{"type": "image", "source": {}}]}]}, "'image'"),
        ({"tools": [{"name": "web_search", "type": "web_search_20250305"}]}, "web_search_20250305"),
        ({"tools": [{"name": "x"}]}, "input_schema"),
        ({"tool_choice": {"type": "tool"}}, "tool_choice"),
        ({"stop_sequences": ["a"] * 40}, "stop_sequences"),
    ],
)
def test_bad_requests_are_400_in_anthropics_shape(client: TestClient, patch: dict[str, Any], names: str) -> None:
    body = {"model": "chatty", "max_tokens": 10, "messages": MESSAGES, **patch}
    body = {k: v for k, v in body.items() if v is not None}
    assert_anthropic_error(client.post("/v1/messages", json=body), 400, "invalid_request_error", contains=names)


def test_malformed_json_is_400(client: TestClient) -> None:
    response = client.post("/v1/messages", content=b"{nope", headers={"content-type": "application/json"})
    assert_anthropic_error(response, 400, "invalid_request_error", contains="not valid JSON")


def test_unknown_model_is_404_not_found_error(client: TestClient) -> None:
    assert_anthropic_error(post(client, model="nope"), 404, "not_found_error", contains="GET /v1/models")
    streamed = post(client, model="nope", stream=True)
    assert_anthropic_error(streamed, 404, "not_found_error")


def test_context_overflow_is_400_and_load_failure_503(client: TestClient) -> None:
    long = [{"role": "user", "content": "word " * 100}]
    assert_anthropic_error(post(client, messages=long, max_tokens=100), 400, "invalid_request_error", contains="256")
    streamed = post(client, messages=long, max_tokens=100, stream=True)  # known before the first byte
    assert_anthropic_error(streamed, 400, "invalid_request_error", contains="256")
    failed = post(client, model="broken")
    assert_anthropic_error(failed, 503, "overloaded_error")
    assert "retry-after" in failed.headers


def test_a_failure_mid_stream_is_one_error_event(client: TestClient) -> None:
    events = events_of(client, model="tooly", messages=[{"role": "user", "content": FAIL_MIDWAY}])
    names = [name for name, _ in events]
    assert names == ["message_start", "ping", "content_block_start", "content_block_delta", "error"]
    assert events[-1][1] == {"type": "error", "error": {"type": "api_error", "message": "internal error"}}


def test_an_unknown_sub_route_and_a_wrong_method_keep_the_shape(client: TestClient) -> None:
    assert_anthropic_error(client.get("/v1/messages"), 405, "invalid_request_error")
    assert_anthropic_error(client.post("/v1/messages/batches", json={}), 404, "not_found_error")


def test_keys_arrive_as_x_api_key_and_a_missing_one_is_401(make_settings: Callable[..., Settings], models_path: Path) -> None:
    write(models_path / "chatty.yaml", "name: chatty\nbackend: fake\n")
    with TestClient(create_app(make_settings(api_keys=["sekrit"]))) as keyed:
        body = {"model": "chatty", "max_tokens": 5, "messages": MESSAGES}
        headers = {"x-api-key": "sekrit", "anthropic-version": "2023-06-01", "anthropic-beta": "tools-2024-04-04"}
        assert keyed.post("/v1/messages", json=body, headers=headers).status_code == 200
        missing = keyed.post("/v1/messages", json=body, headers={"anthropic-version": "2023-06-01"})
        assert_anthropic_error(missing, 401, "authentication_error")
        # Other routes keep the OpenAI envelope.
        assert_error(keyed.post("/v1/chat/completions", json={"model": "chatty", "messages": MESSAGES}), 401)


def test_other_routes_keep_their_envelope(client: TestClient) -> None:
    assert_error(client.post("/v1/chat/completions", json={"model": "nope", "messages": MESSAGES}), 404)
    assert_error(client.post("/v1/messagesx", json={}), 404)


def test_without_v1_prefix(client: TestClient) -> None:
    response = client.post("/messages", json={"model": "chatty", "max_tokens": 5, "messages": MESSAGES})
    assert response.status_code == 200 and response.json()["type"] == "message"
    assert_anthropic_error(client.post("/messages", json={}), 400, "invalid_request_error")
