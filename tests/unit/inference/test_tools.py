"""Function calling: which tools are in play, the schema the output is held to, parsing it back."""

from __future__ import annotations

import json

import pytest

from inference.errors import InvalidRequest
from inference.prompts.tools import parse_tool_output, plan_tools

WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}
TIME = {"type": "function", "function": {"name": "get_time"}}


def test_no_tools_or_none_means_no_plan() -> None:
    assert plan_tools(None, "auto") is None
    assert plan_tools([], None) is None
    assert plan_tools([WEATHER], "none") is None


def test_auto_allows_a_plain_answer() -> None:
    plan = plan_tools([WEATHER, TIME], "auto")
    assert plan is not None and not plan.required and plan.names == ["get_weather", "get_time"]
    branches = plan.schema()["anyOf"]
    assert len(branches) == 3
    assert branches[0]["properties"]["name"] == {"const": "get_weather"}
    assert branches[0]["properties"]["arguments"] == WEATHER["function"]["parameters"]
    assert branches[1]["properties"]["arguments"] == {"type": "object", "properties": {}}
    assert branches[2]["required"] == ["content"]


def test_required_and_named_choice() -> None:
    assert len(plan_tools([WEATHER, TIME], "required").schema()["anyOf"]) == 2
    named = plan_tools([WEATHER, TIME], {"type": "function", "function": {"name": "get_time"}})
    assert named.required and named.names == ["get_time"]
    assert named.schema()["properties"]["name"] == {"const": "get_time"}


@pytest.mark.parametrize("choice", [{"type": "function", "function": {"name": "nope"}}, "sometimes", 3])
def test_bad_tool_choice(choice: object) -> None:
    with pytest.raises(InvalidRequest) as caught:
        plan_tools([WEATHER], choice)
    assert caught.value.param == "tool_choice"


def test_parse_a_call() -> None:
    plan = plan_tools([WEATHER], "auto")
    content, calls = parse_tool_output('{"name": "get_weather", "arguments": {"city": "Oslo"}}', plan)
    assert content is None and len(calls) == 1
    assert calls[0].name == "get_weather" and json.loads(calls[0].arguments) == {"city": "Oslo"}
    assert calls[0].id.startswith("call_")


def test_parse_parallel_calls_get_distinct_ids() -> None:
    plan = plan_tools([WEATHER, TIME], "auto")
    text = '[{"name": "get_weather", "arguments": {"city": "A"}}, {"name": "get_time", "arguments": {}}]'
    _, calls = parse_tool_output(text, plan)
    assert [c.name for c in calls] == ["get_weather", "get_time"] and calls[0].id != calls[1].id


@pytest.mark.parametrize(
    ("text", "content"),
    [
        ('{"content": "It is sunny."}', "It is sunny."),
        ("not json at all", "not json at all"),
        ('{"name": "unknown_tool", "arguments": {}}', '{"name": "unknown_tool", "arguments": {}}'),
        ("[1, 2]", "[1, 2]"),
    ],
)
def test_answers_and_unparseable_output_become_content(text: str, content: str) -> None:
    assert parse_tool_output(text, plan_tools([WEATHER], "auto")) == (content, [])
