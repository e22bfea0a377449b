"""The Responses API end to end: a real server process, a tiny real GGUF chat model, the official
openai client's `responses.*` unchanged (whole, streamed both ways, function tools, stored responses
and their input items), and `previous_response_id` continuing a conversation across a restart.

Assertions are about structure, counts and determinism, never about what a random model says.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import openai
import pytest

from fixtures.gguf_models import TinyModels
from support import Server, free_port, write

MODEL_YAML = """
name: tiny-chat
backend: llama
context_size: 512
threads: 1
parameters:
  model: tiny-chatml.gguf
"""
WEATHER = {
    "type": "function",
    "name": "get_weather",
    "parameters": {
        "type": "object",
        "properties": {"city": {"type": "string", "maxLength": 8}},
        "required": ["city"],
        "additionalProperties": False,
    },
}


def prepare(root: Path, tiny_models: TinyModels) -> list[str]:
    models = root / "models"
    models.mkdir(parents=True, exist_ok=True)
    shutil.copy(tiny_models.chat, models / "tiny-chatml.gguf")
    write(models / "tiny-chat.yaml", MODEL_YAML)
    return ["--models-path", str(models), "--data-path", str(root / "data"), "--no-builtin-models"]


def start(root: Path, args: list[str]) -> Server:
    port = free_port()
    server = Server(["--address", f"127.0.0.1:{port}", *args], root, port)
    server.wait_healthy()
    return server


def client_of(server: Server) -> openai.OpenAI:
    return openai.OpenAI(base_url=server.base + "/v1", api_key="none", max_retries=0, timeout=60)


@pytest.fixture(scope="module")
def server(tiny_models: TinyModels, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    root = tmp_path_factory.mktemp("responses-server")
    running = start(root, prepare(root, tiny_models))
    yield running
    running.stop()


@pytest.fixture
def sdk(server: Server) -> openai.OpenAI:
    return client_of(server)


def test_whole_and_streamed_agree(sdk: openai.OpenAI) -> None:
    whole = sdk.responses.create(model="tiny-chat", input="hello world", instructions="You are terse.",
                                 max_output_tokens=24, temperature=0)
    assert whole.object == "response" and whole.status in ("completed", "incomplete")
    (message,) = whole.output
    assert message.type == "message" and message.content[0].type == "output_text"
    assert whole.usage.input_tokens > 5 and 0 < whole.usage.output_tokens <= 24
    if whole.status == "incomplete":
        assert whole.incomplete_details.reason == "max_output_tokens" and whole.usage.output_tokens == 24
    events = list(sdk.responses.create(model="tiny-chat", input="hello world", instructions="You are terse.",
                                       max_output_tokens=24, temperature=0, stream=True))
    assert [e.sequence_number for e in events] == list(range(len(events)))
    kinds = [e.type for e in events]
    assert kinds[:4] == ["response.created", "response.in_progress", "response.output_item.added",
                         "response.content_part.added"]
    assert kinds[-4:] == ["response.output_text.done", "response.content_part.done", "response.output_item.done",
                          "response.completed" if whole.status == "completed" else "response.incomplete"]
    streamed = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    assert streamed == whole.output_text == events[-1].response.output_text
    assert events[-1].response.usage.output_tokens == whole.usage.output_tokens


def test_stream_helper_and_stored_objects(sdk: openai.OpenAI) -> None:
    with sdk.responses.stream(model="tiny-chat", input="hello world", max_output_tokens=16, temperature=0) as stream:
        events = list(stream)
        # The SDK keeps a final response only for `response.completed`; a cut one ends `.incomplete`.
        final = stream.get_final_response() if events[-1].type == "response.completed" else events[-1].response
    assert events[-1].type in ("response.completed", "response.incomplete")
    deltas = [e for e in events if e.type == "response.output_text.delta"]
    assert "".join(e.delta for e in deltas) == deltas[-1].snapshot == final.output_text
    stored = sdk.responses.retrieve(final.id)
    assert stored.id == final.id and stored.output_text == final.output_text and stored.usage == final.usage
    (item,) = sdk.responses.input_items.list(final.id).data
    assert item.type == "message" and item.role == "user" and item.content[0].text == "hello world"
    assert sdk.responses.delete(final.id) is None
    with pytest.raises(openai.NotFoundError):
        sdk.responses.retrieve(final.id)
    with pytest.raises(openai.NotFoundError):
        sdk.responses.input_items.list(final.id)


def test_json_object_format(sdk: openai.OpenAI) -> None:
    reply = sdk.responses.create(model="tiny-chat", input="hello world", max_output_tokens=120, temperature=0,
                                 text={"format": {"type": "json_object"}})
    if reply.status == "completed":
        json.loads(reply.output_text)
    else:
        assert reply.output_text.lstrip().startswith(("{", "["))


def test_function_tool_round_trip(sdk: openai.OpenAI) -> None:
    called = sdk.responses.create(model="tiny-chat", input="weather?", tools=[WEATHER], tool_choice="required",
                                  max_output_tokens=120, temperature=0)
    if called.status == "incomplete":  # the random model ran out of tokens inside the JSON, held to its shape
        assert called.output_text.lstrip().startswith('{')
        called = sdk.responses.create(model="tiny-chat", input="weather?", tools=[WEATHER],
                                      tool_choice="required", max_output_tokens=1000, temperature=0)
        assert called.status == "completed", "the grammar-held call did not finish within 1,000 tokens"
    (call,) = called.output
    assert call.type == "function_call" and call.name == "get_weather" and call.call_id
    assert isinstance(json.loads(call.arguments)["city"], str)
    answered = sdk.responses.create(
        model="tiny-chat", previous_response_id=called.id, tools=[WEATHER], max_output_tokens=8, temperature=0,
        input=[{"type": "function_call_output", "call_id": call.call_id, "output": "sunny"}],
    )
    assert answered.status in ("completed", "incomplete") and answered.output
    # The call and its output reached the model as history: the prompt is longer than the call's.
    assert answered.usage.input_tokens > called.usage.input_tokens
    streamed = list(sdk.responses.create(model="tiny-chat", input="weather?", tools=[WEATHER], tool_choice="required",
                                         max_output_tokens=120, temperature=0, stream=True))
    kinds = [e.type for e in streamed]
    assert "response.function_call_arguments.done" in kinds and kinds[-1] == "response.completed"
    assert streamed[-1].response.output[0].arguments == call.arguments


def test_previous_response_id_survives_a_restart(tiny_models: TinyModels, tmp_path: Path) -> None:
    args = prepare(tmp_path, tiny_models)
    first_server = start(tmp_path, args)
    try:
        sdk = client_of(first_server)
        first = sdk.responses.create(model="tiny-chat", input="remember mango", max_output_tokens=8, temperature=0)
        alone = sdk.responses.create(model="tiny-chat", input="which fruit?", max_output_tokens=8, temperature=0,
                                     store=False)
    finally:
        assert first_server.stop() == 0, first_server.output()
    second_server = start(tmp_path, args)
    try:
        sdk = client_of(second_server)
        assert sdk.responses.retrieve(first.id).output_text == first.output_text
        assert sdk.responses.input_items.list(first.id).data[0].content[0].text == "remember mango"
        follow = sdk.responses.create(model="tiny-chat", input="which fruit?", previous_response_id=first.id,
                                      max_output_tokens=8, temperature=0)
        assert follow.previous_response_id == first.id and follow.status in ("completed", "incomplete")
        # The first turn (its question and answer) came back from disk into the prompt.
        assert follow.usage.input_tokens >= alone.usage.input_tokens + first.usage.output_tokens
        with pytest.raises(openai.NotFoundError):
            sdk.responses.retrieve(alone.id)
    finally:
        second_server.stop()
