"""Function calling: which tools a request makes callable, the JSON shape a call must take, and
turning the model's constrained output back into OpenAI tool calls.

The model is held to a JSON grammar: `{"name": <tool>, "arguments": {...}}` for a call, or, when the
model may also answer in words (tool_choice "auto"), `{"content": "..."}`. This works with any model,
whether or not its own chat template knows about tools.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from inference.errors import InvalidRequest


@dataclass(frozen=True)
class ToolCall:
    id: str
    name: str
    arguments: str  # JSON text, as OpenAI sends it


@dataclass(frozen=True)
class ToolPlan:
    """The tools in play for one request, and whether the model must call one."""

    tools: tuple[Mapping[str, Any], ...]
    required: bool

    @property
    def names(self) -> list[str]:
        return [tool["function"]["name"] for tool in self.tools]

    def schema(self) -> dict[str, Any]:
        """The JSON schema the model's output is constrained to."""
        branches: list[dict[str, Any]] = []
        for tool in self.tools:
            function = tool["function"]
            parameters = function.get("parameters") or {"type": "object", "properties": {}}
            branches.append(
                {
                    "type": "object",
                    "properties": {"name": {"const": function["name"]}, "arguments": parameters},
                    "required": ["name", "arguments"],
                }
            )
        if not self.required:
            branches.append({"type": "object", "properties": {"content": {"type": "string"}}, "required": ["content"]})
        return branches[0] if len(branches) == 1 else {"anyOf": branches}


def plan_tools(tools: Sequence[Mapping[str, Any]] | None, tool_choice: Any) -> ToolPlan | None:
    """None when no tool may be called; otherwise the callable tools and whether a call is required."""
    if not tools or tool_choice == "none":
        return None
    if tool_choice in (None, "auto"):
        return ToolPlan(tuple(tools), required=False)
    if tool_choice == "required":
        return ToolPlan(tuple(tools), required=True)
    if isinstance(tool_choice, Mapping):
        wanted = (tool_choice.get("function") or {}).get("name")
        chosen = [tool for tool in tools if tool["function"]["name"] == wanted]
        if not chosen:
            raise InvalidRequest(f"tool_choice names function {wanted!r}, which is not in tools", param="tool_choice")
        return ToolPlan(tuple(chosen), required=True)
    raise InvalidRequest(
        f"tool_choice must be 'none', 'auto', 'required' or a function object, not {tool_choice!r}",
        param="tool_choice",
    )


def parse_tool_output(text: str, plan: ToolPlan) -> tuple[str | None, list[ToolCall]]:
    """(content, calls) from the model's constrained output; unparseable output becomes content."""
    try:
        value = json.loads(text, strict=False)  # small models emit raw control characters in strings
    except json.JSONDecodeError:
        return text, []
    items = value if isinstance(value, list) else [value]
    calls: list[ToolCall] = []
    for item in items:
        if not isinstance(item, dict):
            return text, []
        if "content" in item and "name" not in item:
            return str(item["content"]), []
        if item.get("name") not in plan.names:
            return text, []
        arguments = item.get("arguments", {})
        calls.append(
            ToolCall(
                id=f"call_{uuid.uuid4().hex[:24]}",
                name=str(item["name"]),
                arguments=arguments if isinstance(arguments, str) else json.dumps(arguments),
            )
        )
    return None, calls
