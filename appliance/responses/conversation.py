"""Items -> chat messages: a conversation as the text service takes it.

Instructions lead as a system message (a previous response's instructions are not carried over, as
OpenAI does it); then every stored turn of the chain (its input items, then its output items), then
this request's input. Function calls join the assistant message before them; function call outputs
become tool messages naming their call. Items the model never sees (file searches, reasoning) drop out.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from appliance.errors import BadRequest


def chat_messages(
    instructions: str | None, history: Iterable[Mapping[str, Any]], items: Sequence[Mapping[str, Any]]
) -> list[dict[str, Any]]:
    messages: list[dict[str, Any]] = []
    if instructions:
        messages.append({"role": "system", "content": instructions})
    calls: dict[str, str] = {}  # call_id -> function name, for tool messages
    for item in history:
        _append(messages, item, calls, strict=False)
    for position, item in enumerate(items):
        _append(messages, item, calls, strict=True, position=position)
    return messages


def history_items(turns: Iterable[tuple[list[dict[str, Any]], dict[str, Any]]]) -> list[dict[str, Any]]:
    """The items of stored turns in order: each one's input, then its output."""
    items: list[dict[str, Any]] = []
    for inputs, response in turns:
        items.extend(inputs)
        items.extend(response.get("output") or [])
    return items


def text_of(content: Any) -> str:
    """A message's or tool output's text: a string, or its text parts joined by newlines."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = []
        for part in content:
            if isinstance(part, Mapping):
                value = part.get("text", part.get("refusal"))
                if isinstance(value, str):
                    parts.append(value)
        return "\n".join(parts)
    return "" if content is None else str(content)


def _append(
    messages: list[dict[str, Any]], item: Mapping[str, Any], calls: dict[str, str], *, strict: bool, position: int = 0
) -> None:
    kind = item.get("type", "message")
    if kind == "message":
        role = "system" if item.get("role") == "developer" else str(item.get("role"))
        messages.append({"role": role, "content": text_of(item.get("content"))})
    elif kind == "function_call":
        call = {
            "id": item["call_id"],
            "type": "function",
            "function": {"name": item["name"], "arguments": item.get("arguments") or ""},
        }
        calls[str(item["call_id"])] = str(item["name"])
        last = messages[-1] if messages else None
        if last is not None and last["role"] == "assistant":
            last.setdefault("tool_calls", []).append(call)
        else:
            messages.append({"role": "assistant", "content": "", "tool_calls": [call]})
    elif kind == "function_call_output":
        call_id = str(item["call_id"])
        if call_id not in calls and strict:
            raise BadRequest(
                f"input[{position}] is the output of function call {call_id!r}, but the conversation has no "
                "function_call with that call_id; send the function_call item before it or continue with "
                "previous_response_id",
                param="input",
            )
        message = {"role": "tool", "tool_call_id": call_id, "content": text_of(item.get("output"))}
        if call_id in calls:
            message["name"] = calls[call_id]
        messages.append(message)
