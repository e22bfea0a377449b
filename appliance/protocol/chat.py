"""OpenAI chat completions: the request (with LocalAI's extra fields), the response and the chunks."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from appliance.protocol.base import JsonInt, PositiveInt, RequestBody
from appliance.protocol.generation import SamplingFields, StreamOptions, TimingsOut, Usage
from appliance.protocol.vector_stores import Filter, RankingOptions


_FALSE_OR_NULL: dict[str, Any] = {"anyOf": [{"const": False}, {"type": "null"}]}


class FunctionDef(RequestBody):
    model_config = ConfigDict(extra="allow")

    name: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")
    description: str | None = None
    parameters: dict[str, Any] | None = None


class ToolDef(RequestBody):
    type: Literal["function"] = "function"
    function: FunctionDef


class FunctionName(RequestBody):
    model_config = ConfigDict(extra="allow")

    name: str


class NamedToolChoice(RequestBody):
    """`{"type": "function", "function": {"name": ...}}`: call this function (one of `tools`)."""

    model_config = ConfigDict(extra="allow")

    type: Literal["function"] = "function"
    function: FunctionName


class ChatMessage(RequestBody):
    model_config = ConfigDict(extra="allow")

    role: Literal["system", "developer", "user", "assistant", "tool", "function"]
    content: str | list[dict[str, Any]] | None = None
    name: str | None = None
    tool_calls: list[dict[str, Any]] | None = None
    tool_call_id: str | None = None
    function_call: dict[str, Any] | None = None

    def as_dict(self) -> dict[str, Any]:
        data = self.model_dump(exclude_none=True)
        if data["role"] == "developer":  # OpenAI's newer name for the system role
            data["role"] = "system"
        data.setdefault("content", "")
        return data


class FileSearchOptions(RequestBody):
    """Our extension: answer from documents (the same fields as the Responses API's file_search tool)."""

    model_config = ConfigDict(extra="ignore")

    vector_store_ids: list[str] = Field(min_length=1, max_length=10)
    max_num_results: JsonInt = Field(5, ge=1, le=50)
    filters: Filter | None = None
    ranking_options: RankingOptions | None = None
    fallback: Literal["none", "model"] = "none"


class ChatCompletionRequest(SamplingFields):
    messages: list[ChatMessage] = Field(min_length=1)
    stream: bool = False
    stream_options: StreamOptions | None = None
    max_tokens: PositiveInt | None = None
    max_completion_tokens: PositiveInt | None = None
    tools: list[ToolDef] | None = None
    tool_choice: Literal["none", "auto", "required"] | NamedToolChoice | None = None
    functions: list[FunctionDef] | None = None  # the pre-tools spelling, still sent by some clients
    function_call: Literal["none", "auto"] | FunctionName | None = None
    logprobs: bool | None = Field(None, description="Not supported: false or absent", json_schema_extra=_FALSE_OR_NULL)
    top_logprobs: JsonInt | None = None
    file_search: FileSearchOptions | None = None

    @model_validator(mode="after")
    def _unsupported(self) -> ChatCompletionRequest:
        if self.logprobs:
            raise ValueError("logprobs are not supported")
        return self

    def requested_max_tokens(self) -> int | None:
        return self.max_completion_tokens if self.max_completion_tokens is not None else self.max_tokens

    def tool_dicts(self) -> list[dict[str, Any]] | None:
        if self.tools:
            return [tool.model_dump(exclude_none=True) for tool in self.tools]
        if self.functions:
            return [{"type": "function", "function": f.model_dump(exclude_none=True)} for f in self.functions]
        return None

    def tool_choice_value(self) -> Any:
        if self.tool_choice is not None or not self.functions:
            return self.tool_choice.model_dump() if isinstance(self.tool_choice, BaseModel) else self.tool_choice
        if isinstance(self.function_call, FunctionName):
            return {"type": "function", "function": {"name": self.function_call.name}}
        return self.function_call

    def message_dicts(self) -> list[dict[str, Any]]:
        return [message.as_dict() for message in self.messages]


class ToolCallFunction(BaseModel):
    name: str
    arguments: str


class ToolCallOut(BaseModel):
    id: str
    type: Literal["function"] = "function"
    function: ToolCallFunction


class AssistantMessage(BaseModel):
    role: Literal["assistant"] = "assistant"
    content: str | None
    tool_calls: list[ToolCallOut] | None = None
    annotations: list[dict[str, Any]] | None = None


class ChatChoice(BaseModel):
    index: int
    message: AssistantMessage
    finish_reason: str
    logprobs: None = None


class ChatCompletion(BaseModel):
    id: str
    object: Literal["chat.completion"] = "chat.completion"
    created: int
    model: str
    choices: list[ChatChoice]
    usage: Usage
    timings: TimingsOut | None = None
    citations: list[dict[str, Any]] | None = None  # ours, with file_search
    retrieval: dict[str, Any] | None = None  # ours, with file_search


class ChunkToolCall(BaseModel):
    index: int
    id: str
    type: Literal["function"] = "function"
    function: ToolCallFunction


class ChunkDelta(BaseModel):
    role: Literal["assistant"] | None = None
    content: str | None = None
    tool_calls: list[ChunkToolCall] | None = None


class ChunkChoice(BaseModel):
    index: int = 0
    delta: ChunkDelta
    finish_reason: str | None = None
    logprobs: None = None


class ChatCompletionChunk(BaseModel):
    id: str
    object: Literal["chat.completion.chunk"] = "chat.completion.chunk"
    created: int
    model: str
    choices: list[ChunkChoice]
    usage: Usage | None = None
    timings: TimingsOut | None = None
