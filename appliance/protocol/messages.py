"""Anthropic's Messages API: the request (text, tool_use and tool_result blocks), the reply, and the
one conversion of both to and from the chat service's OpenAI-style messages, tools and tool calls.

Sampling beyond Anthropic's own fields (`seed`, `min_p`, `repeat_penalty`, …) is accepted under the
names the chat route takes. Thinking blocks in the history are dropped, as Anthropic's API drops them
from earlier turns; image and document blocks are refused with a 400 that names them.
"""

from __future__ import annotations

import json
import logging
from dataclasses import replace
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from appliance.protocol.base import JsonInt, RequestBody
from appliance.protocol.generation import MAX_STOP, SamplingFields
from inference.catalog.config import ModelConfig
from inference.generation import SamplingParams
from inference.prompts.tools import ToolCall

logger = logging.getLogger(__name__)

StopReason = Literal["end_turn", "max_tokens", "stop_sequence", "tool_use"]
_IGNORED_BLOCKS = frozenset({"thinking", "redacted_thinking"})
_TOOL_ID_PREFIX = "toolu_"


def _blocks(value: Any, accepted: tuple[str, ...]) -> Any:
    """Refuses blocks this server cannot read by name, and drops thinking blocks, before parsing."""
    if not isinstance(value, list):
        return value
    kept = []
    for block in value:
        kind = block.get("type") if isinstance(block, dict) else None
        if isinstance(kind, str) and kind in _IGNORED_BLOCKS:
            continue
        if isinstance(block, dict) and kind not in accepted:
            raise ValueError(
                f"content blocks of type {kind!r} are not supported; send {', '.join(accepted)} blocks"
            )
        kept.append(block)
    return kept


class TextBlock(RequestBody):
    model_config = ConfigDict(extra="allow")  # cache_control, citations: accepted, not used

    type: Literal["text"]
    text: str


class ToolUseBlock(RequestBody):
    model_config = ConfigDict(extra="allow")

    type: Literal["tool_use"]
    id: str = Field(min_length=1)
    name: str = Field(min_length=1)
    input: dict[str, Any] = Field(default_factory=dict)


class ToolResultBlock(RequestBody):
    model_config = ConfigDict(extra="allow")

    type: Literal["tool_result"]
    tool_use_id: str = Field(min_length=1)
    content: str | list[TextBlock] = ""
    is_error: bool = False

    @field_validator("content", mode="before")
    @classmethod
    def _text_only(cls, value: Any) -> Any:
        return _blocks(value, ("text",))

    def text(self) -> str:
        text = self.content if isinstance(self.content, str) else "\n".join(b.text for b in self.content)
        return f"Error: {text}" if self.is_error else text


ContentBlock = Annotated[TextBlock | ToolUseBlock | ToolResultBlock, Field(discriminator="type")]


class Message(RequestBody):
    model_config = ConfigDict(extra="allow")

    role: Literal["user", "assistant"]
    content: str | list[ContentBlock]

    @field_validator("content", mode="before")
    @classmethod
    def _known_blocks(cls, value: Any) -> Any:
        return _blocks(value, ("text", "tool_use", "tool_result"))

    def chat_dicts(self) -> list[dict[str, Any]]:
        """This turn as chat messages: tool results become `tool` messages, tool uses `tool_calls`."""
        if isinstance(self.content, str):
            return [{"role": self.role, "content": self.content}]
        text = "\n".join(b.text for b in self.content if isinstance(b, TextBlock))
        if self.role == "assistant":
            calls = [
                {"id": b.id, "type": "function", "function": {"name": b.name, "arguments": json.dumps(b.input)}}
                for b in self.content
                if isinstance(b, ToolUseBlock)
            ]
            return [{"role": "assistant", "content": text, **({"tool_calls": calls} if calls else {})}]
        results = [
            {"role": "tool", "tool_call_id": b.tool_use_id, "content": b.text()}
            for b in self.content
            if isinstance(b, ToolResultBlock)
        ]
        has_text = any(isinstance(b, TextBlock) for b in self.content)
        return [*results, *([{"role": "user", "content": text}] if has_text or not results else [])]


class ToolSpec(RequestBody):
    # `_client_tool`'s rules, for the schema (its messages name the tool and the type).
    model_config = ConfigDict(extra="allow", json_schema_extra=lambda schema: schema["required"].append("input_schema"))

    name: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")
    description: str | None = None
    input_schema: dict[str, Any] | None = Field(None, json_schema_extra={"type": "object"})
    type: str | None = Field(None, json_schema_extra={"anyOf": [{"const": "custom"}, {"type": "null"}]})

    @model_validator(mode="after")
    def _client_tool(self) -> ToolSpec:
        if self.type not in (None, "custom"):
            raise ValueError(f"tool type {self.type!r} is not supported; only client tools with an input_schema")
        if self.input_schema is None:
            raise ValueError(f"tool {self.name!r} needs an input_schema")
        return self


class ToolChoice(RequestBody):
    # `_named`, for the schema: a `tool` choice names the tool (one of `tools`).
    model_config = ConfigDict(
        extra="allow",
        json_schema_extra={
            "if": {"properties": {"type": {"const": "tool"}}, "required": ["type"]},
            "then": {"required": ["name"], "properties": {"name": {"type": "string", "minLength": 1}}},
        },
    )

    type: Literal["auto", "any", "tool", "none"]
    name: str | None = None
    disable_parallel_tool_use: bool | None = None

    @model_validator(mode="after")
    def _named(self) -> ToolChoice:
        if self.type == "tool" and not self.name:
            raise ValueError("tool_choice of type 'tool' needs the tool's name")
        return self


class MessagesRequest(SamplingFields):
    messages: list[Message] = Field(min_length=1)
    max_tokens: JsonInt = Field(ge=1)
    system: str | list[TextBlock] | None = None
    temperature: float | None = Field(None, ge=0, le=1)
    stop_sequences: list[str] | None = Field(None, max_length=MAX_STOP)
    stream: bool = False
    tools: list[ToolSpec] | None = None
    tool_choice: ToolChoice | None = None
    metadata: dict[str, Any] | None = None

    @field_validator("system", mode="before")
    @classmethod
    def _system_blocks(cls, value: Any) -> Any:
        return _blocks(value, ("text",))

    def requested_stops(self) -> tuple[str, ...]:
        return tuple(s for s in self.stop_sequences or () if s)

    def to_sampling(self, config: ModelConfig) -> SamplingParams:
        params = super().to_sampling(config)
        return replace(params, stop=tuple(dict.fromkeys((*params.stop, *self.requested_stops()))))

    def message_dicts(self) -> list[dict[str, Any]]:
        system = self.system if isinstance(self.system, str) else "\n".join(b.text for b in self.system or ())
        head = [{"role": "system", "content": system}] if system else []
        return head + [item for message in self.messages for item in message.chat_dicts()]

    def tool_dicts(self) -> list[dict[str, Any]] | None:
        if not self.tools:
            return None
        return [
            {
                "type": "function",
                "function": {
                    "name": tool.name,
                    **({"description": tool.description} if tool.description else {}),
                    "parameters": tool.input_schema,
                },
            }
            for tool in self.tools
        ]

    def tool_choice_value(self) -> Any:
        """Anthropic's choice in the chat service's terms (`any` is OpenAI's `required`)."""
        choice = self.tool_choice
        if choice is None:
            return None
        if choice.type == "tool":
            return {"type": "function", "function": {"name": choice.name}}
        return {"auto": "auto", "any": "required", "none": "none"}[choice.type]

    def stop_reason(self, finish_reason: str, stop_sequence: str | None) -> tuple[StopReason, str | None]:
        """Anthropic's `stop_reason` and `stop_sequence`: only the request's own stops count as one."""
        if finish_reason == "tool_calls":
            return "tool_use", None
        if finish_reason == "length":
            return "max_tokens", None
        if stop_sequence is not None and stop_sequence in self.requested_stops():
            return "stop_sequence", stop_sequence
        return "end_turn", None


class TextOut(BaseModel):
    type: Literal["text"] = "text"
    text: str


class ToolUseOut(BaseModel):
    type: Literal["tool_use"] = "tool_use"
    id: str
    name: str
    input: dict[str, Any]

    @classmethod
    def of(cls, call: ToolCall) -> ToolUseOut:
        return cls(id=tool_use_id(call.id), name=call.name, input=tool_input(call.arguments))


class MessageUsage(BaseModel):
    input_tokens: int
    output_tokens: int


class MessageResponse(BaseModel):
    id: str
    type: Literal["message"] = "message"
    role: Literal["assistant"] = "assistant"
    model: str
    content: list[TextOut | ToolUseOut]
    stop_reason: StopReason | None
    stop_sequence: str | None = None
    usage: MessageUsage


def tool_use_id(call_id: str) -> str:
    """Anthropic spells tool-use ids `toolu_…`; the chat service's are `call_…`."""
    return _TOOL_ID_PREFIX + call_id.removeprefix("call_")


def tool_input(arguments: str) -> dict[str, Any]:
    """A tool call's JSON arguments as the object Anthropic's `input` is; anything else is kept whole."""
    try:
        value = json.loads(arguments)
    except ValueError:
        value = None
    if isinstance(value, dict):
        return value
    logger.debug("event=tool_arguments_not_an_object")
    return {"arguments": arguments}


class AnthropicErrorDetail(BaseModel):
    type: str = Field(description="invalid_request_error, authentication_error, not_found_error, ...")
    message: str


class AnthropicError(BaseModel):
    """The Messages API's error body (Anthropic's shape), on every error of these routes."""

    model_config = ConfigDict(extra="forbid")

    type: Literal["error"]
    error: AnthropicErrorDetail
