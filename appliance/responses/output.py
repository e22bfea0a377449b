"""Output items and response objects, in the exact shapes OpenAI's clients parse.

A `Draft` holds what a response echoes of its request (model, instructions, tools, sampling, ...);
`Draft.object` adds the state of the moment (status, output, usage). Stored responses keep their
file search results; `shown` drops them unless the caller asked (`include`).
"""

from __future__ import annotations

import copy
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from appliance.knowledge.answers import Source
from inference.prompts.tools import ToolCall


def output_text(text: str, annotations: Sequence[dict[str, Any]] = ()) -> dict[str, Any]:
    return {"type": "output_text", "text": text, "annotations": list(annotations), "logprobs": []}


def message_item(item_id: str, status: str, content: Sequence[dict[str, Any]] = ()) -> dict[str, Any]:
    return {"id": item_id, "type": "message", "status": status, "role": "assistant", "content": list(content)}


def function_call_item(item_id: str, call: ToolCall, status: str, arguments: str | None = None) -> dict[str, Any]:
    return {
        "id": item_id,
        "type": "function_call",
        "status": status,
        "call_id": call.id,
        "name": call.name,
        "arguments": call.arguments if arguments is None else arguments,
    }


def file_search_item(
    item_id: str, status: str, queries: Sequence[str], sources: Sequence[Source] | None
) -> dict[str, Any]:
    results = None if sources is None else [search_result(source) for source in sources]
    return {"id": item_id, "type": "file_search_call", "status": status, "queries": list(queries), "results": results}


def search_result(source: Source) -> dict[str, Any]:
    attributes = {k: v for k, v in source.attributes.items() if isinstance(v, (str, int, float, bool))}
    return {
        "file_id": source.file_id,
        "filename": source.filename,
        "score": source.score,
        "text": source.text,
        "attributes": attributes,
    }


def usage(input_tokens: int, output_tokens: int) -> dict[str, Any]:
    return {
        "input_tokens": input_tokens,
        "input_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 0},
        "output_tokens": output_tokens,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": input_tokens + output_tokens,
    }


def shown(response: dict[str, Any], include_results: bool) -> dict[str, Any]:
    """The response as a client sees it: file search results only when included."""
    if include_results or not any(item.get("type") == "file_search_call" for item in response.get("output", ())):
        return response
    return {**response, "output": [shown_item(item, include_results) for item in response["output"]]}


def shown_item(item: dict[str, Any], include_results: bool) -> dict[str, Any]:
    if include_results or item.get("type") != "file_search_call":
        return item
    return {**item, "results": None}


@dataclass(frozen=True)
class Draft:
    """The request-given fields of one response."""

    id: str
    model: str
    created_at: int
    previous_response_id: str | None
    instructions: str | None
    max_output_tokens: int | None
    temperature: float
    top_p: float
    tools: list[dict[str, Any]]
    tool_choice: Any
    parallel_tool_calls: bool
    text: dict[str, Any]
    store: bool
    metadata: dict[str, str] = field(default_factory=dict)
    user: str | None = None

    def object(
        self,
        status: str,
        output: Sequence[dict[str, Any]],
        *,
        usage: dict[str, Any] | None = None,
        incomplete_reason: str | None = None,
        error: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        finished = status in ("completed", "incomplete", "failed")
        return {
            "id": self.id,
            "object": "response",
            "created_at": self.created_at,
            "status": status,
            "completed_at": int(time.time()) if status == "completed" else None,
            "error": error,
            "incomplete_details": {"reason": incomplete_reason} if incomplete_reason else None,
            "instructions": self.instructions,
            "max_output_tokens": self.max_output_tokens,
            "model": self.model,
            "output": copy.deepcopy(list(output)),
            "parallel_tool_calls": self.parallel_tool_calls,
            "previous_response_id": self.previous_response_id,
            "reasoning": {"effort": None, "summary": None},
            "store": self.store,
            "temperature": self.temperature,
            "text": self.text,
            "tool_choice": self.tool_choice,
            "tools": self.tools,
            "top_p": self.top_p,
            "truncation": "disabled",
            "usage": usage if finished else None,
            "user": self.user,
            "metadata": self.metadata,
            "background": False,
        }
