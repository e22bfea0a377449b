"""OpenAI Responses API requests: input items, tools, text format, tool choice, and their one
conversion to what the text service takes (sampling, tool dicts, tool choice).

Input items are checked one by one so a 400 names the item (`input[2]`), and each is kept in the
canonical form OpenAI lists them in (`GET /v1/responses/{id}/input_items`): with an `id`, a
`status`, and message content as typed parts. Unknown fields are tolerated and logged at DEBUG.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from appliance.errors import BadRequest, describe_validation_errors
from appliance.protocol.base import PositiveInt, RequestBody, integral
from appliance.protocol.generation import JsonSchemaFormat, ResponseFormatField, SamplingFields
from appliance.protocol.vector_stores import Filter, RankingOptions

logger = logging.getLogger(__name__)

RESULTS_INCLUDE = "file_search_call.results"
MAX_METADATA_KEYS, MAX_METADATA_KEY, MAX_METADATA_VALUE = 16, 64, 512
TEXT_PARTS = frozenset({"input_text", "output_text", "text", "refusal"})
PASSIVE_ITEMS = frozenset({"file_search_call", "reasoning"})  # accepted as history, not shown to the model


def new_id(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex}"


class _Tolerant(RequestBody):
    model_config = ConfigDict(extra="allow")


# `_text_parts_only`, for the schema: a part of a text type, with its text (or refusal) as a string.
_TEXT_PART = {
    "type": "object",
    "required": ["type"],
    "properties": {"type": {"enum": sorted(TEXT_PARTS)}},
    "if": {"required": ["text"]},
    "then": {"properties": {"text": {"type": "string"}}},
    "else": {"required": ["refusal"], "properties": {"refusal": {"type": "string"}}},
}


class InputMessage(_Tolerant):
    type: Literal["message"] = "message"
    id: str | None = None
    role: Literal["user", "assistant", "system", "developer"]
    content: str | list[dict[str, Any]] = Field(
        json_schema_extra={"anyOf": [{"type": "string"}, {"type": "array", "items": _TEXT_PART}]}
    )

    @field_validator("content")
    @classmethod
    def _text_parts_only(cls, content: str | list[dict[str, Any]]) -> str | list[dict[str, Any]]:
        if isinstance(content, list):
            for n, part in enumerate(content):
                kind = part.get("type")
                if not isinstance(kind, str) or kind not in TEXT_PARTS:
                    raise ValueError(
                        f"content[{n}] has type {kind!r}; this server takes text parts only "
                        "(input_text, output_text)"
                    )
                if not isinstance(part.get("text", part.get("refusal")), str):
                    raise ValueError(f"content[{n}] needs a string 'text'")
        return content

    def canonical(self) -> dict[str, Any]:
        if isinstance(self.content, str):
            kind = "output_text" if self.role == "assistant" else "input_text"
            parts = [{"type": kind, "text": self.content, **({"annotations": []} if kind == "output_text" else {})}]
        else:
            parts = [dict(part) for part in self.content]
        return {"id": self.id or new_id("msg"), "type": "message", "role": self.role, "content": parts,
                "status": "completed"}


class FunctionCallInput(_Tolerant):
    type: Literal["function_call"]
    id: str | None = None
    call_id: str = Field(min_length=1)
    name: str = Field(min_length=1)
    arguments: str

    def canonical(self) -> dict[str, Any]:
        return {"id": self.id or new_id("fc"), "type": "function_call", "call_id": self.call_id, "name": self.name,
                "arguments": self.arguments, "status": "completed"}


class FunctionCallOutputInput(_Tolerant):
    type: Literal["function_call_output"]
    id: str | None = None
    call_id: str = Field(min_length=1)
    output: str | list[dict[str, Any]]

    def canonical(self) -> dict[str, Any]:
        return {"id": self.id or new_id("fco"), "type": "function_call_output", "call_id": self.call_id,
                "output": self.output, "status": "completed"}


class PassiveItem(_Tolerant):
    """An earlier output item sent back as input (a file search, reasoning): kept, not prompted."""

    type: Literal["file_search_call", "reasoning"]
    id: str | None = None

    def canonical(self) -> dict[str, Any]:
        return {**self.model_dump(), "id": self.id or new_id("item")}


InputItem = InputMessage | FunctionCallInput | FunctionCallOutputInput | PassiveItem
_ITEM_TYPES: Mapping[str, type[BaseModel]] = {
    "message": InputMessage,
    "function_call": FunctionCallInput,
    "function_call_output": FunctionCallOutputInput,
    **{kind: PassiveItem for kind in PASSIVE_ITEMS},
}


class FunctionTool(_Tolerant):
    type: Literal["function"]
    name: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")
    description: str | None = None
    parameters: dict[str, Any] | None = None
    strict: bool | None = None

    def chat_dict(self) -> dict[str, Any]:
        function: dict[str, Any] = {"name": self.name}
        if self.description is not None:
            function["description"] = self.description
        if self.parameters is not None:
            function["parameters"] = self.parameters
        return {"type": "function", "function": function}

    def echo(self) -> dict[str, Any]:
        return {"type": "function", "name": self.name, "description": self.description,
                "parameters": self.parameters, "strict": self.strict}


class FileSearchTool(_Tolerant):
    type: Literal["file_search"]
    vector_store_ids: list[str] = Field(min_length=1, max_length=10)
    max_num_results: Annotated[int, Field(ge=1, le=50), BeforeValidator(integral)] | None = None
    filters: Filter | None = None
    ranking_options: RankingOptions | None = None

    def echo(self) -> dict[str, Any]:
        return {"type": "file_search", "vector_store_ids": self.vector_store_ids,
                "max_num_results": self.max_num_results, "filters": _sent(self.filters),
                "ranking_options": _sent(self.ranking_options)}


def _sent(value: BaseModel | None) -> dict[str, Any] | None:
    """An option as the client sent it (no defaults added), for echoing it back."""
    return value.model_dump(exclude_unset=True, by_alias=True) if value is not None else None


Tool = FunctionTool | FileSearchTool
_TOOL_TYPES: Mapping[str, type[BaseModel]] = {"function": FunctionTool, "file_search": FileSearchTool}


class TextFormat(_Tolerant):
    # `_schema_present`, for the schema: a json_schema format comes with its JSON schema.
    model_config = ConfigDict(
        json_schema_extra={
            "if": {"properties": {"type": {"const": "json_schema"}}, "required": ["type"]},
            "then": {"required": ["schema"], "properties": {"schema": {"type": "object"}}},
        }
    )

    type: Literal["text", "json_object", "json_schema"] = "text"
    name: str | None = None
    schema_: dict[str, Any] | None = Field(None, alias="schema")
    strict: bool | None = None
    description: str | None = None

    @model_validator(mode="after")
    def _schema_present(self) -> TextFormat:
        if self.type == "json_schema" and self.schema_ is None:
            raise ValueError("format of type json_schema needs a 'schema'")
        return self

    def echo(self) -> dict[str, Any]:
        if self.type != "json_schema":
            return {"type": self.type}
        return {"type": "json_schema", "name": self.name or "response", "schema": self.schema_,
                "strict": self.strict, "description": self.description}


class TextConfig(_Tolerant):
    format: TextFormat = Field(default_factory=TextFormat)


class ChoiceFunction(_Tolerant):
    type: Literal["function"]
    name: str = Field(description="One of the function tools")


class ChoiceFileSearch(_Tolerant):
    type: Literal["file_search"]


class ChoiceAllowedTools(_Tolerant):
    type: Literal["allowed_tools"]
    mode: Literal["auto", "required"] = "auto"
    tools: list[dict[str, Any]] = Field(default_factory=list)


def _as_dict(choice: BaseModel) -> dict[str, Any]:
    return choice.model_dump()


# A tool_choice object, checked by its type and kept as the dict it is (it is echoed in the response).
ToolChoiceObject = Annotated[
    ChoiceFunction | ChoiceFileSearch | ChoiceAllowedTools, Field(discriminator="type"), AfterValidator(_as_dict)
]


@dataclass(frozen=True)
class ToolSetup:
    """What a request's tools and tool_choice mean for one generation."""

    functions: list[dict[str, Any]] | None  # chat-style tool dicts the model may call
    choice: Any  # chat-style tool_choice for those
    file_search: FileSearchTool | None  # searched before the model answers


class ResponseCreateRequest(SamplingFields):
    input: str | list[InputItem] = Field(default_factory=list)
    instructions: str | None = None
    max_output_tokens: PositiveInt | None = None
    text: TextConfig | None = None
    tools: list[Tool] = Field(
        default_factory=list,  # at most one file_search tool (`_check`)
        json_schema_extra={
            "contains": {"properties": {"type": {"const": "file_search"}}},
            "minContains": 0,
            "maxContains": 1,
        },
    )
    tool_choice: Literal["none", "auto", "required"] | ToolChoiceObject = "auto"
    parallel_tool_calls: bool = True
    previous_response_id: str | None = None
    store: bool = True
    stream: bool = False
    metadata: dict[str, str] | None = Field(
        None,
        json_schema_extra={
            "anyOf": [
                {
                    "type": "object",
                    "maxProperties": MAX_METADATA_KEYS,
                    "propertyNames": {"maxLength": MAX_METADATA_KEY},
                    "additionalProperties": {"type": "string", "maxLength": MAX_METADATA_VALUE},
                },
                {"type": "null"},
            ]
        },
    )
    include: list[str] | None = None
    # Not supported (`_check` says why): only their neutral values are accepted.
    background: bool | None = Field(None, json_schema_extra={"anyOf": [{"const": False}, {"type": "null"}]})
    conversation: Any = Field(None, json_schema_extra={"type": "null"})

    @field_validator("input", mode="before")
    @classmethod
    def _items(cls, value: Any) -> Any:
        if isinstance(value, str) or not isinstance(value, list):
            return value
        return [_parse_one(raw, n, _ITEM_TYPES, "input") for n, raw in enumerate(value)]

    @field_validator("tool_choice", mode="before")
    @classmethod
    def _choice_kind(cls, value: Any) -> Any:
        """An object of a kind this server has no tool for is named in the message."""
        if isinstance(value, Mapping) and value.get("type") not in ("function", "file_search", "allowed_tools"):
            raise ValueError(
                f"tool_choice of type {value.get('type')!r} is not supported; use 'none', 'auto', 'required', "
                "{'type': 'function', 'name': ...}, {'type': 'file_search'} or allowed_tools"
            )
        return value

    @field_validator("tools", mode="before")
    @classmethod
    def _tools(cls, value: Any) -> Any:
        if not isinstance(value, list):
            return value
        return [_parse_one(raw, n, _TOOL_TYPES, "tools") for n, raw in enumerate(value)]

    @field_validator("metadata")
    @classmethod
    def _metadata(cls, value: dict[str, str] | None) -> dict[str, str] | None:
        if value is None:
            return None
        if len(value) > MAX_METADATA_KEYS:
            raise ValueError(f"at most {MAX_METADATA_KEYS} keys")
        for key, item in value.items():
            if len(key) > MAX_METADATA_KEY or len(item) > MAX_METADATA_VALUE:
                raise ValueError(f"keys are at most {MAX_METADATA_KEY} and values {MAX_METADATA_VALUE} characters")
        return value

    @model_validator(mode="after")
    def _check(self) -> ResponseCreateRequest:
        if self.background:
            raise ValueError("background responses are not supported; send the request and wait, or stream it")
        if self.conversation is not None:
            raise ValueError("conversation objects are not supported; continue with previous_response_id")
        if sum(isinstance(tool, FileSearchTool) for tool in self.tools) > 1:
            raise ValueError("at most one file_search tool; list several vector_store_ids in it instead")
        if self.text is not None and self.text.format.type != "text":
            fmt = self.text.format
            schema = (
                JsonSchemaFormat.model_validate({"name": fmt.name, "schema": fmt.schema_})
                if fmt.schema_ is not None  # {} is a schema too: any JSON value
                else None
            )
            self.response_format = ResponseFormatField(type=fmt.type, json_schema=schema)
        return self

    def requested_max_tokens(self) -> int | None:
        return self.max_output_tokens

    def input_items(self) -> list[dict[str, Any]]:
        """This request's input as canonical items (a string input is one user message)."""
        if isinstance(self.input, str):
            return [InputMessage(role="user", content=self.input).canonical()]
        return [item.canonical() for item in self.input]

    def wants_results(self) -> bool:
        return RESULTS_INCLUDE in (self.include or ())

    def text_echo(self) -> dict[str, Any]:
        return {"format": (self.text.format if self.text else TextFormat()).echo()}

    def tools_echo(self) -> list[dict[str, Any]]:
        return [tool.echo() for tool in self.tools]

    def tool_setup(self) -> ToolSetup:
        """The tools in play: tool_choice "none" turns every tool off (file_search too), a named
        function or `allowed_tools` narrows them, and file_search always runs when it is on."""
        functions = [tool for tool in self.tools if isinstance(tool, FunctionTool)]
        search = next((tool for tool in self.tools if isinstance(tool, FileSearchTool)), None)
        choice = self.tool_choice
        if choice == "none":
            return ToolSetup(None, None, None)
        if isinstance(choice, str):
            required = choice == "required" and bool(functions) and search is None
            return ToolSetup(_dicts(functions), "required" if required else None, search)
        kind = choice.get("type")
        if kind == "function":
            name = choice.get("name")
            if not any(tool.name == name for tool in functions):
                raise _bad_choice(f"tool_choice names function {name!r}, which is not in tools")
            return ToolSetup(_dicts(functions), {"type": "function", "function": {"name": name}}, search)
        if kind == "file_search":
            if search is None:
                raise _bad_choice("tool_choice asks for file_search, but tools has no file_search tool")
            return ToolSetup(None, None, search)
        if kind == "allowed_tools":
            allowed = choice.get("tools") or []
            names = {t.get("name") for t in allowed if isinstance(t, Mapping) and t.get("type") == "function"}
            kept = [tool for tool in functions if tool.name in names]
            wants_search = any(isinstance(t, Mapping) and t.get("type") == "file_search" for t in allowed)
            searched = search if wants_search else None
            required = choice.get("mode") == "required" and bool(kept) and searched is None
            return ToolSetup(_dicts(kept), "required" if required else None, searched)
        raise _bad_choice(
            f"tool_choice of type {kind!r} is not supported; use 'none', 'auto', 'required', "
            "{'type': 'function', 'name': ...}, {'type': 'file_search'} or allowed_tools"
        )


def _dicts(functions: list[FunctionTool]) -> list[dict[str, Any]] | None:
    return [tool.chat_dict() for tool in functions] or None


def _bad_choice(message: str) -> BadRequest:
    return BadRequest(message, param="tool_choice")


def _parse_one(raw: Any, n: int, types: Mapping[str, type[BaseModel]], field: str) -> Any:
    """One input item or tool, by its `type` (a message may omit it), with a message naming it."""
    if not isinstance(raw, Mapping):
        raise ValueError(f"{field}[{n}] must be an object")
    kind = raw.get("type") or ("message" if field == "input" and "role" in raw else None)
    model = types.get(kind) if isinstance(kind, str) else None
    if model is None:
        offered = ", ".join(sorted({k for k in types if k not in PASSIVE_ITEMS}))
        raise ValueError(f"{field}[{n}] has type {kind!r}; this server takes {offered}")
    try:
        parsed = model.model_validate({**raw, "type": kind})
    except ValidationError as exc:
        message, _ = describe_validation_errors(exc.errors())
        raise ValueError(f"{field}[{n}] ({kind}): {message}") from None
    if parsed.model_extra:
        logger.debug("event=unknown_item_fields item=%s fields=%s", kind, sorted(parsed.model_extra))
    return parsed


class ResponseObject(BaseModel):
    """A response as created, stored and retrieved (OpenAI's `response` object; documented loosely)."""

    model_config = ConfigDict(extra="allow")

    id: str
    object: Literal["response"]
    created_at: int
    status: str
    model: str
    output: list[dict[str, Any]]


class ResponseDeleted(BaseModel):
    id: str
    object: Literal["response.deleted"]
    deleted: Literal[True]


class InputItemsPage(BaseModel):
    model_config = ConfigDict(extra="allow")

    object: Literal["list"]
    data: list[dict[str, Any]]
    first_id: str | None
    last_id: str | None
    has_more: bool
