"""The Responses API on fake models, through the official openai client and raw HTTP: shapes, the
streamed event order and sequence numbers, storage (retrieve, delete, input items, a restart),
previous_response_id chains, function tools round trip, file_search with citations, 404s and 400s."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import openai
import pytest
from fastapi.testclient import TestClient

from appliance.app import create_app
from appliance.config import Settings
from appliance.knowledge.answers import NO_CONTEXT_ANSWER
from fixtures.tool_backend import ANSWER, ToolCallingFake, tool_backends
from inference.backends.registry import BackendRegistry
from inference.errors import BusyTimeout
from inference.services.textgen import Delta
from support import assert_error, write

WEATHER = {
    "type": "function",
    "name": "get_weather",
    "description": "Weather in a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}
MESSAGE_EVENTS = [
    "response.created",
    "response.in_progress",
    "response.output_item.added",
    "response.content_part.added",
    "response.output_text.delta",
    "response.output_text.done",
    "response.content_part.done",
    "response.output_item.done",
]
EMBEDDER = "name: embedder\nbackend: fake\nknown_usecases: [embeddings]\noptions: ['dimensions:16']\n"


@pytest.fixture
def make_client(make_settings: Callable[..., Settings], models_path: Path) -> Callable[..., TestClient]:
    write(models_path / "chatty.yaml", "name: chatty\nbackend: tool-fake\ncontext_size: 4096\n")
    write(models_path / "tiny.yaml", "name: tiny\nbackend: fake\ncontext_size: 128\n")
    write(models_path / "embedder.yaml", EMBEDDER)

    def build(**overrides: Any) -> TestClient:
        settings = make_settings(default_embedding_model="embedder", retrieval_min_similarity=1.0, **overrides)
        return TestClient(create_app(settings, registry=BackendRegistry(tool_backends())))

    return build


@pytest.fixture
def client(make_client: Callable[..., TestClient]) -> Iterator[TestClient]:
    ToolCallingFake.prompts.clear()
    with make_client() as test_client:
        yield test_client


@pytest.fixture
def sdk(client: TestClient) -> openai.OpenAI:
    return openai.OpenAI(base_url=str(client.base_url) + "/v1", api_key="unused", http_client=client, max_retries=0)


def sse(client: TestClient, body: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """(event name, payload) of a raw streamed response; checks the framing on the way."""
    with client.stream("POST", "/v1/responses", json={**body, "stream": True}) as response:
        assert response.status_code == 200, response.read()
        assert response.headers["content-type"].startswith("text/event-stream")
        lines = [line for line in response.iter_lines() if line]
    assert "data: [DONE]" not in lines
    names, payloads = lines[0::2], lines[1::2]
    assert all(n.startswith("event: ") for n in names) and all(p.startswith("data: ") for p in payloads)
    events = [(n[7:], json.loads(p[6:])) for n, p in zip(names, payloads, strict=True)]
    assert all(name == payload["type"] for name, payload in events)
    assert [payload["sequence_number"] for _, payload in events] == list(range(len(events)))
    return events


def test_plain_response_shape(sdk: openai.OpenAI) -> None:
    reply = sdk.responses.create(model="chatty", input="tell me about alpacas", instructions="be brief")
    assert reply.object == "response" and reply.id.startswith("resp_") and reply.status == "completed"
    assert reply.model == "chatty" and reply.instructions == "be brief" and reply.error is None
    (message,) = reply.output
    assert message.type == "message" and message.role == "assistant" and message.status == "completed"
    (part,) = message.content
    assert part.type == "output_text" and part.text and part.annotations == []
    assert reply.output_text == part.text
    assert reply.usage.input_tokens > 0 and reply.usage.output_tokens > 0
    assert reply.usage.total_tokens == reply.usage.input_tokens + reply.usage.output_tokens
    assert reply.store is True and reply.previous_response_id is None and reply.incomplete_details is None
    assert reply.text.format.type == "text" and reply.tools == [] and reply.tool_choice == "auto"
    # The instructions lead as a system message, the input follows as the user's.
    assert ToolCallingFake.prompts[-1] == "system: be brief\nuser: tell me about alpacas\nassistant:"


def test_input_items_become_the_conversation(sdk: openai.OpenAI) -> None:
    items = [
        {"role": "developer", "content": "answer in words"},
        {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "first"}]},
        {"role": "assistant", "content": [{"type": "output_text", "text": "ok", "annotations": []}]},
        {"role": "user", "content": "second"},
    ]
    sdk.responses.create(model="chatty", input=items)
    assert ToolCallingFake.prompts[-1] == "system: answer in words\nuser: first\nassistant: ok\nuser: second\nassistant:"


def test_stream_event_order_and_sequence_numbers(client: TestClient, sdk: openai.OpenAI) -> None:
    whole = sdk.responses.create(model="chatty", input="hello there")
    events = sse(client, {"model": "chatty", "input": "hello there"})
    names = [name for name, _ in events]
    deltas = [payload["delta"] for name, payload in events if name == "response.output_text.delta"]
    assert len(deltas) > 1, "text must arrive in several deltas"
    collapsed = [name for n, name in enumerate(names) if n == 0 or name != names[n - 1]]
    assert collapsed == [*MESSAGE_EVENTS, "response.completed"]
    created, completed = events[0][1]["response"], events[-1][1]["response"]
    assert created["status"] == "in_progress" and created["output"] == [] and created["usage"] is None
    assert completed["status"] == "completed" and completed["id"] == created["id"]
    item_id = events[2][1]["item"]["id"]
    assert all(payload.get("item_id", item_id) == item_id for _, payload in events[2:-1])
    assert "".join(deltas) == whole.output_text == completed["output"][0]["content"][0]["text"]
    done = dict(events)["response.output_text.done"]
    assert done["text"] == whole.output_text and done["output_index"] == 0 and done["content_index"] == 0
    assert completed["usage"]["output_tokens"] == whole.usage.output_tokens
    stored = client.get(f"/v1/responses/{completed['id']}").json()
    assert stored == completed


def test_sdk_streams_both_ways(sdk: openai.OpenAI) -> None:
    events = list(sdk.responses.create(model="chatty", input="hello there", stream=True))
    assert events[0].type == "response.created" and events[-1].type == "response.completed"
    text = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    assert text == events[-1].response.output_text
    with sdk.responses.stream(model="chatty", input="hello there") as stream:
        snapshots = [e.snapshot for e in stream if e.type == "response.output_text.delta"]
        final = stream.get_final_response()
    assert snapshots[-1] == final.output_text == text
    assert sdk.responses.retrieve(final.id).output_text == text


def test_max_output_tokens_makes_it_incomplete(client: TestClient, sdk: openai.OpenAI) -> None:
    reply = sdk.responses.create(model="chatty", input="hello there", max_output_tokens=3)
    assert reply.status == "incomplete" and reply.incomplete_details.reason == "max_output_tokens"
    assert reply.output[0].status == "incomplete" and reply.usage.output_tokens == 3
    events = sse(client, {"model": "chatty", "input": "hello there", "max_output_tokens": 3})
    assert events[-1][0] == "response.incomplete"
    assert events[-1][1]["response"]["incomplete_details"] == {"reason": "max_output_tokens"}
    assert dict(events)["response.output_item.done"]["item"]["status"] == "incomplete"


def test_store_retrieve_delete_and_input_items(client: TestClient, sdk: openai.OpenAI) -> None:
    items = [{"role": "user", "content": f"turn {n}"} for n in range(3)]
    reply = sdk.responses.create(model="chatty", input=items, metadata={"topic": "alpacas"})
    again = sdk.responses.retrieve(reply.id)
    assert again.id == reply.id and again.output_text == reply.output_text and again.metadata == {"topic": "alpacas"}
    listed = sdk.responses.input_items.list(reply.id)  # newest first by default, as OpenAI lists them
    assert [item.content[0].text for item in listed.data] == ["turn 2", "turn 1", "turn 0"]
    assert all(item.type == "message" and item.id and item.role == "user" for item in listed.data)
    ascending = [item.content[0].text for item in sdk.responses.input_items.list(reply.id, order="asc", limit=1)]
    assert ascending == ["turn 0", "turn 1", "turn 2"]  # the SDK follows `after` across pages of one
    page = client.get(f"/v1/responses/{reply.id}/input_items", params={"limit": 2, "order": "asc"}).json()
    assert page["object"] == "list" and page["has_more"] is True and page["last_id"] == page["data"][-1]["id"]
    assert sdk.responses.delete(reply.id) is None
    with pytest.raises(openai.NotFoundError):
        sdk.responses.retrieve(reply.id)
    assert_error(client.delete(f"/v1/responses/{reply.id}"), 404, code="response_not_found")
    assert_error(client.get(f"/v1/responses/{reply.id}/input_items"), 404)


def test_store_false_is_not_kept(client: TestClient, sdk: openai.OpenAI) -> None:
    reply = sdk.responses.create(model="chatty", input="hello", store=False)
    assert reply.store is False and reply.output_text
    assert_error(client.get(f"/v1/responses/{reply.id}"), 404, code="response_not_found")
    body = {"model": "chatty", "input": "more", "previous_response_id": reply.id}
    assert_error(client.post("/v1/responses", json=body), 404, param="previous_response_id")
    streamed = sse(client, {"model": "chatty", "input": "hello", "store": False})
    assert_error(client.get(f"/v1/responses/{streamed[-1][1]['response']['id']}"), 404)


def test_previous_response_id_replays_the_chain(sdk: openai.OpenAI) -> None:
    first = sdk.responses.create(model="chatty", input="my name is Ada", instructions="be terse")
    second = sdk.responses.create(model="chatty", input="and I like tea", previous_response_id=first.id)
    third = sdk.responses.create(model="chatty", input="who am I?", previous_response_id=second.id)
    assert third.previous_response_id == second.id
    # Earlier instructions are not carried over (as OpenAI does it); every earlier turn is.
    assert ToolCallingFake.prompts[-1] == (
        f"user: my name is Ada\nassistant: {first.output_text}\n"
        f"user: and I like tea\nassistant: {second.output_text}\nuser: who am I?\nassistant:"
    )
    # A branch from the first turn sees only that turn.
    sdk.responses.create(model="chatty", input="branch", previous_response_id=first.id, instructions="new rules")
    assert ToolCallingFake.prompts[-1] == (
        f"system: new rules\nuser: my name is Ada\nassistant: {first.output_text}\nuser: branch\nassistant:"
    )
    # Deleting a turn cuts the chain there: what came before it is no longer part of the conversation.
    sdk.responses.delete(second.id)
    sdk.responses.create(model="chatty", input="again", previous_response_id=third.id)
    assert ToolCallingFake.prompts[-1] == f"user: who am I?\nassistant: {third.output_text}\nuser: again\nassistant:"


def test_stored_responses_survive_a_restart(make_client: Callable[..., TestClient]) -> None:
    with make_client() as client:
        sdk = openai.OpenAI(base_url=str(client.base_url) + "/v1", api_key="x", http_client=client, max_retries=0)
        first = sdk.responses.create(model="chatty", input="remember the word mango")
    ToolCallingFake.prompts.clear()
    with make_client() as client:
        sdk = openai.OpenAI(base_url=str(client.base_url) + "/v1", api_key="x", http_client=client, max_retries=0)
        assert sdk.responses.retrieve(first.id).output_text == first.output_text
        second = sdk.responses.create(model="chatty", input="which word?", previous_response_id=first.id)
        assert second.status == "completed"
    assert ToolCallingFake.prompts[-1].startswith(f"user: remember the word mango\nassistant: {first.output_text}\n")


def test_function_tools_round_trip(sdk: openai.OpenAI) -> None:
    called = sdk.responses.create(model="chatty", input="weather in Paris?", tools=[WEATHER])
    (call,) = called.output
    assert call.type == "function_call" and call.name == "get_weather" and call.status == "completed"
    assert json.loads(call.arguments) == {"city": "Paris"} and call.call_id and call.id != call.call_id
    assert called.output_text == "" and called.tools[0].name == "get_weather"
    output = {"type": "function_call_output", "call_id": call.call_id, "output": '{"temp": 21}'}
    answered = sdk.responses.create(model="chatty", input=[output], tools=[WEATHER], previous_response_id=called.id)
    assert answered.output_text == ANSWER
    assert ToolCallingFake.prompts[-1].endswith('tool: {"temp": 21}\nassistant:')
    # Stateless, the client sends the call back itself, as the SDK's output items.
    history = [{"role": "user", "content": "weather in Paris?"}, call.model_dump(exclude_none=True), output]
    stateless = sdk.responses.create(model="chatty", input=history, tools=[WEATHER], store=False)
    assert stateless.output_text == ANSWER


def test_function_call_streams_its_arguments(client: TestClient) -> None:
    events = sse(client, {"model": "chatty", "input": "weather in Paris?", "tools": [WEATHER], "tool_choice": "required"})
    names = [name for name, _ in events]
    assert names == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.function_call_arguments.delta",
        "response.function_call_arguments.done",
        "response.output_item.done",
        "response.completed",
    ]
    added, done = events[2][1]["item"], events[5][1]["item"]
    assert added["type"] == "function_call" and added["status"] == "in_progress" and added["arguments"] == ""
    assert done["status"] == "completed" and json.loads(done["arguments"]) == {"city": "Paris"}
    assert events[4][1]["arguments"] == done["arguments"] and events[4][1]["item_id"] == done["id"]
    assert events[-1][1]["response"]["output"] == [done]


def test_tool_choice_none_and_named(client: TestClient, sdk: openai.OpenAI) -> None:
    plain = sdk.responses.create(model="chatty", input="weather?", tools=[WEATHER], tool_choice="none")
    assert plain.output[0].type == "message"
    named = sdk.responses.create(
        model="chatty", input="weather?", tools=[WEATHER], tool_choice={"type": "function", "name": "get_weather"}
    )
    assert named.output[0].type == "function_call"
    body = {"model": "chatty", "input": "x", "tools": [WEATHER], "tool_choice": {"type": "function", "name": "launch"}}
    assert_error(client.post("/v1/responses", json=body), 400, param="tool_choice", contains="launch")


def test_text_format_json_schema_is_echoed_and_checked(client: TestClient, sdk: openai.OpenAI) -> None:
    schema = {"type": "object", "properties": {"n": {"type": "integer"}}}
    reply = sdk.responses.create(
        model="tiny", input="count", text={"format": {"type": "json_schema", "name": "count", "schema": schema}}
    )
    assert reply.text.format.type == "json_schema" and reply.text.format.name == "count"
    assert reply.text.format.schema_ == schema
    body = {"model": "chatty", "input": "x", "text": {"format": {"type": "json_schema", "name": "n"}}}
    assert_error(client.post("/v1/responses", json=body), 400, param="text.format", contains="schema")
    body["text"] = {"format": {"type": "yaml"}}
    assert_error(client.post("/v1/responses", json=body), 400, param="text.format.type")


def test_an_error_after_the_stream_started_is_an_error_event(client: TestClient, sdk: openai.OpenAI) -> None:
    responses, real = client.app.state.services.responses, client.app.state.services.text

    class Failing:
        def __getattr__(self, name: str) -> Any:
            return getattr(real, name)

        async def chat(self, *args: Any, **kwargs: Any) -> AsyncIterator[Any]:
            yield Delta("partial ")
            raise BusyTimeout("the model took too long")

    responses.text = Failing()
    try:
        events = sse(client, {"model": "chatty", "input": "hello"})
        name, error = events[-1]
        assert name == "error" and error["message"] == "the model took too long" and error["code"]
        assert error["error"]["message"] == error["message"] and error["error"]["type"] == "server_error"
        assert "response.completed" not in [n for n, _ in events]
        assert_error(client.get(f"/v1/responses/{events[0][1]['response']['id']}"), 404)
        with pytest.raises(openai.APIError, match="took too long"):
            list(sdk.responses.create(model="chatty", input="hello", stream=True))
    finally:
        responses.text = real


def test_errors_known_before_output_are_http_errors(client: TestClient) -> None:
    long = {"model": "tiny", "input": "word " * 100, "stream": True}
    assert_error(client.post("/v1/responses", json=long), 400, code="context_length_exceeded")
    assert_error(client.post("/v1/responses", json={"model": "nope", "input": "hi"}), 404, code="model_not_found")
    unknown = {"model": "chatty", "input": "hi", "previous_response_id": "resp_missing", "stream": True}
    assert_error(client.post("/v1/responses", json=unknown), 404, code="response_not_found")
    assert_error(client.get("/v1/responses/resp_missing"), 404, code="response_not_found")
    assert_error(client.delete("/v1/responses/resp_missing"), 404)
    assert_error(client.get("/v1/responses/resp_missing/input_items"), 404)


@pytest.mark.parametrize(
    ("patch", "param", "contains"),
    [
        ({"model": ""}, "model", None),
        ({"input": [{"role": "user", "content": [{"type": "input_image", "image_url": "x"}]}]}, "input", "input[0]"),
        ({"input": [{"type": "computer_call_output", "call_id": "c"}]}, "input", "computer_call_output"),
        ({"input": [{"role": "wizard", "content": "x"}]}, "input", "role"),
        ({"input": [{"type": "function_call_output", "call_id": "c1", "output": "x"}]}, "input", "c1"),
        ({"input": []}, "input", "no user message"),
        ({"tools": [{"type": "web_search"}]}, "tools", "web_search"),
        ({"tools": [{"type": "function", "name": "bad name!"}]}, "tools", "tools[0]"),
        ({"tools": [{"type": "file_search", "vector_store_ids": []}]}, "tools", "vector_store_ids"),
        ({"temperature": 5}, "temperature", None),
        ({"max_output_tokens": 0}, "max_output_tokens", None),
        ({"metadata": {f"k{n}": "v" for n in range(17)}}, "metadata", "16"),
        ({"background": True}, None, "background"),
        ({"tool_choice": {"type": "web_search_preview"}}, "tool_choice", "not supported"),
    ],
)
def test_bad_requests_are_400(client: TestClient, patch: dict[str, Any], param: str | None, contains: str | None) -> None:
    body = {"model": "chatty", "input": "hi", **patch}
    assert_error(client.post("/v1/responses", json=body), 400, param=param, contains=contains)


def test_input_items_paging_is_checked(client: TestClient, sdk: openai.OpenAI) -> None:
    reply = sdk.responses.create(model="chatty", input="hi")
    assert_error(client.get(f"/v1/responses/{reply.id}/input_items", params={"limit": 0}), 400, param="limit")
    assert_error(client.get(f"/v1/responses/{reply.id}/input_items", params={"order": "up"}), 400, param="order")


def test_unknown_fields_are_tolerated_and_routes_answer_without_v1(client: TestClient) -> None:
    body = {"model": "chatty", "input": "hi", "reasoning": {"effort": "low"}, "truncation": "auto", "prompt_cache_key": "k"}
    created = client.post("/responses", json=body)
    assert created.status_code == 200, created.text
    assert client.get(f"/responses/{created.json()['id']}").json()["id"] == created.json()["id"]


def ingest(client: TestClient, tmp_path: Path) -> str:
    text = "# Keys\n\nRotate the signing keys every ninety days with the command keyctl rotate --all.\n\n" \
           "# Backups\n\nNightly backups are written to the archive bucket and kept for thirty five days.\n"
    document = write(tmp_path / "runbook.md", text)
    with document.open("rb") as handle:
        uploaded = client.post("/v1/files", files={"file": ("runbook.md", handle)}, data={"purpose": "assistants"})
    assert uploaded.status_code == 200, uploaded.text
    store = client.post("/v1/vector_stores", json={"name": "runbook", "file_ids": [uploaded.json()["id"]]}).json()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        counts = client.get(f"/v1/vector_stores/{store['id']}").json()["file_counts"]
        if counts["completed"] == 1:
            return store["id"]
        assert counts["failed"] == 0, counts
        time.sleep(0.05)
    raise AssertionError("the document was not ingested")


def test_file_search_cites_its_sources(client: TestClient, sdk: openai.OpenAI, tmp_path: Path) -> None:
    store = ingest(client, tmp_path)
    tool = {"type": "file_search", "vector_store_ids": [store], "max_num_results": 3}
    reply = sdk.responses.create(
        model="chatty", input="keyctl rotate", tools=[tool], include=["file_search_call.results"]
    )
    search, message = reply.output
    assert search.type == "file_search_call" and search.status == "completed" and search.queries == ["keyctl rotate"]
    (result,) = search.results
    assert result.filename == "runbook.md" and "keyctl rotate --all" in result.text and result.file_id
    (annotation,) = message.content[0].annotations  # the fake model writes no [n]: one at the end
    assert annotation.type == "file_citation" and annotation.file_id == result.file_id
    assert annotation.filename == "runbook.md" and annotation.index == len(message.content[0].text)
    assert "Sources:" in ToolCallingFake.prompts[-1] and "keyctl rotate --all" in ToolCallingFake.prompts[-1]
    assert sdk.responses.retrieve(reply.id).output[0].results is None  # results only when included
    included = client.get(f"/v1/responses/{reply.id}", params={"include[]": "file_search_call.results"}).json()
    assert included["output"][0]["results"][0]["file_id"] == result.file_id
    plain = sdk.responses.create(model="chatty", input="keyctl rotate", tools=[tool])
    assert plain.output[0].results is None and plain.output[1].content[0].annotations


def test_file_search_streams_its_steps(client: TestClient, tmp_path: Path) -> None:
    store = ingest(client, tmp_path)
    body = {"model": "chatty", "input": "keyctl rotate", "tools": [{"type": "file_search", "vector_store_ids": [store]}]}
    events = sse(client, body)
    names = [name for n, (name, _) in enumerate(events) if n == 0 or name != events[n - 1][0]]
    assert names[:8] == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.file_search_call.in_progress",
        "response.file_search_call.searching",
        "response.file_search_call.completed",
        "response.output_item.done",
        "response.output_item.added",
    ]
    assert "response.output_text.annotation.added" in names
    assert names.index("response.output_text.annotation.added") < names.index("response.output_text.done")
    final = events[-1][1]["response"]
    assert [item["type"] for item in final["output"]] == ["file_search_call", "message"]
    assert final["output"][1]["content"][0]["annotations"][0]["type"] == "file_citation"


def test_file_search_with_nothing_relevant_says_so(client: TestClient, sdk: openai.OpenAI, tmp_path: Path) -> None:
    store = ingest(client, tmp_path)
    tool = {"type": "file_search", "vector_store_ids": [store]}
    before = len(ToolCallingFake.prompts)
    reply = sdk.responses.create(model="chatty", input="volcanoes of iceland", tools=[tool], include=["file_search_call.results"])
    assert reply.output[0].results == [] and reply.output_text == NO_CONTEXT_ANSWER
    assert reply.output[1].content[0].annotations == [] and reply.usage.output_tokens == 0
    assert len(ToolCallingFake.prompts) == before  # the model was not asked to guess
    missing = {"model": "chatty", "input": "hi", "tools": [{"type": "file_search", "vector_store_ids": ["vs_nope"]}]}
    assert_error(client.post("/v1/responses", json=missing), 404)

