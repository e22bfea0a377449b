"""The Responses API's pure parts: items -> chat messages, and one turn's output items and events
(file citations at the `[n]` markers a streamed answer wrote, the order, the sequence numbers)."""

from __future__ import annotations

import pytest

from appliance.errors import BadRequest
from appliance.knowledge.answers import Source
from appliance.responses.conversation import chat_messages
from appliance.responses.output import Draft
from appliance.responses.turn import Turn
from inference.prompts.tools import ToolCall
from inference.services.textgen import Delta, Done, Timings, ToolCalls

TIMINGS = Timings(prompt_ms=1.0, predicted_ms=1.0, predicted_per_second=None)
DRAFT = Draft(
    id="resp_1", model="m", created_at=1, previous_response_id=None, instructions=None, max_output_tokens=None,
    temperature=0.0, top_p=1.0, tools=[], tool_choice="auto", parallel_tool_calls=True,
    text={"format": {"type": "text"}}, store=True,
)


def source(index: int) -> Source:
    return Source(
        index=index, file_id=f"file-{index}", filename=f"doc{index}.md", chunk_id=str(index), page_start=None,
        page_end=None, heading_path=None, text=f"text {index}", score=0.5, vector_store_id="vs_1",
    )


def test_items_become_messages() -> None:
    call = {"type": "function_call", "call_id": "c1", "name": "f", "arguments": "{}"}
    history = [
        {"type": "message", "role": "user",
         "content": [{"type": "input_text", "text": "a"}, {"type": "input_text", "text": "b"}]},
        {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "let me look"}]},
        call,
        {"type": "file_search_call", "id": "fs_1", "queries": ["x"]},
    ]
    items = [{"type": "function_call_output", "call_id": "c1", "output": "42"}, {"role": "developer", "content": "hi"}]
    assert chat_messages("rules", history, items) == [
        {"role": "system", "content": "rules"},
        {"role": "user", "content": "a\nb"},
        {"role": "assistant", "content": "let me look",
         "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}]},
        {"role": "tool", "tool_call_id": "c1", "content": "42", "name": "f"},
        {"role": "system", "content": "hi"},
    ]
    with pytest.raises(BadRequest, match="c9"):
        chat_messages(None, history, [{"type": "function_call_output", "call_id": "c9", "output": "x"}])


def test_streamed_answer_gets_file_citations_at_its_markers() -> None:
    turn = Turn(DRAFT, include_results=False, sources=[source(1), source(2)])
    events = turn.begin() + turn.file_search("keys")
    for piece in ("Keys rotate [", "1]. ", "Done."):
        events += turn.feed(Delta(piece))
    events += turn.feed(Done("stop", 10, 5, TIMINGS))
    events.append(turn.end())
    assert [e["sequence_number"] for e in events] == list(range(len(events)))
    text = "Keys rotate [1]. Done."
    search, message = turn.response["output"] if turn.response else []
    assert search["type"] == "file_search_call" and [r["file_id"] for r in search["results"]] == ["file-1", "file-2"]
    annotations = message["content"][0]["annotations"]
    assert annotations == [
        {"type": "file_citation", "file_id": "file-1", "filename": "doc1.md", "index": text.index("]") + 1},
        {"type": "file_citation", "file_id": "file-2", "filename": "doc2.md", "index": len(text)},  # never marked
    ]
    kinds = [e["type"] for e in events]
    assert kinds.count("response.output_text.annotation.added") == 2
    assert kinds.index("response.output_text.annotation.added") < kinds.index("response.output_text.done")
    done_search = next(e for e in events if e["type"] == "response.output_item.done")
    assert done_search["item"]["results"] is None  # results only when included
    assert events[-1]["type"] == "response.completed" and events[-1]["response"]["output"][0]["results"] is None


def test_tool_calls_and_a_cut_reply() -> None:
    turn = Turn(DRAFT, include_results=False)
    turn.begin()
    turn.feed(ToolCalls((ToolCall("call_1", "f", '{"a": 1}'), ToolCall("call_2", "g", "{}"))))
    turn.feed(Done("tool_calls", 3, 4, TIMINGS))
    assert turn.response is not None and turn.response["status"] == "completed"
    calls = [(item["type"], item["call_id"], item["arguments"]) for item in turn.response["output"]]
    assert calls == [("function_call", "call_1", '{"a": 1}'), ("function_call", "call_2", "{}")]
    cut = Turn(DRAFT, include_results=False, finish_text=str.strip)
    cut.begin()
    cut.feed(Delta("  partial "))
    cut.feed(Done("length", 3, 2, TIMINGS))
    assert cut.response is not None and cut.response["status"] == "incomplete"
    assert cut.response["incomplete_details"] == {"reason": "max_output_tokens"}
    (message,) = cut.response["output"]
    assert message["status"] == "incomplete" and message["content"][0]["text"] == "partial"  # post-processed
    assert cut.end()["type"] == "response.incomplete"
