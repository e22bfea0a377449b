"""The data LocalAI hands its prompt templates: frozen structs whose fields carry Go's field names
(what ``{{.Input}}`` or ``{{range .Functions}}`` reach) and Go's json tags (what ``toJson`` writes).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

def _tag(json_name: str, default: Any, *, omitempty: bool = False) -> Any:
    """A struct field with Go's ``json:"name[,omitempty]"`` tag (used by toJson)."""
    return field(default=default, metadata={"json": json_name, "omitempty": omitempty})


@dataclass(frozen=True)
class FunctionCallData:
    """LocalAI's schema.FunctionCall: the function half of one tool call."""

    Name: str = _tag("name", "", omitempty=True)
    Arguments: str = _tag("arguments", "")


@dataclass(frozen=True)
class ToolCallData:
    """LocalAI's schema.ToolCall: one entry of an assistant message's ``tool_calls``."""

    Index: int = _tag("index", 0)
    ID: str = _tag("id", "")
    Type: str = _tag("type", "")
    FunctionCall: FunctionCallData = _tag("function", FunctionCallData())


@dataclass(frozen=True)
class FunctionData:
    """LocalAI's functions.Function: one tool offered to the model (``{{range .Functions}}``)."""

    Name: str = _tag("name", "")
    Description: str = _tag("description", "")
    Strict: bool = _tag("strict", False)
    Parameters: Mapping[str, Any] | None = _tag("parameters", None)


@dataclass(frozen=True)
class ChatMessageData:
    """LocalAI's ChatMessageTemplateData: what ``template.chat_message`` renders, once per message.

    Role is the ``roles:`` prefix for the message's role ("" when none), RoleName the role itself.
    FunctionCall is the message's tool calls (ToolCallData) or else its legacy ``function_call``.
    """

    SystemPrompt: str = ""
    Role: str = ""
    RoleName: str = ""
    FunctionName: str = ""
    Content: str = ""
    MessageIndex: int = 0
    Function: bool = False
    FunctionCall: Any = None
    LastMessage: bool = False


@dataclass(frozen=True)
class PromptData:
    """LocalAI's PromptTemplateData: what ``template.chat/function/completion/edit`` render."""

    SystemPrompt: str = ""
    SuppressSystemPrompt: bool = False
    Input: str = ""
    Instruction: str = ""
    Functions: tuple[FunctionData, ...] | None = None
    MessageIndex: int = 0
    ReasoningEffort: str = ""
    Metadata: Mapping[str, str] = field(default_factory=dict)
