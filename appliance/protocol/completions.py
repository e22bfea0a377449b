"""OpenAI text completions and edits (the legacy endpoints LocalAI still serves)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field, field_validator, model_validator

from appliance.protocol.base import JsonInt, PositiveInt
from appliance.protocol.generation import SamplingFields, StreamOptions, TimingsOut, Usage

MAX_PROMPTS = 16


class CompletionRequest(SamplingFields):
    # Token-id prompts are refused by `_prompt` (with a message saying so): the schema lists text only.
    prompt: str | list[str] | list[int] | list[list[int]] = Field(
        json_schema_extra={
            "anyOf": [
                {"type": "string"},
                {"type": "array", "items": {"type": "string"}, "minItems": 1, "maxItems": MAX_PROMPTS},
            ]
        }
    )
    max_tokens: PositiveInt | None = None
    stream: bool = False
    stream_options: StreamOptions | None = None
    echo: bool = False
    # Not supported, so only their neutral values are accepted (`_unsupported` says why).
    suffix: str | None = Field(
        None, json_schema_extra={"anyOf": [{"type": "string", "maxLength": 0}, {"type": "null"}]}
    )
    logprobs: JsonInt | None = Field(None, json_schema_extra={"anyOf": [{"const": 0}, {"type": "null"}]})
    best_of: JsonInt | None = Field(None, json_schema_extra={"anyOf": [{"const": 1}, {"type": "null"}]})

    @field_validator("prompt")
    @classmethod
    def _prompt(cls, value: str | list) -> str | list:
        if isinstance(value, list):
            if not value:
                raise ValueError("prompt must not be an empty list")
            if not all(isinstance(item, str) for item in value):
                raise ValueError("token-id prompts are not supported; send the prompt as text")
            if len(value) > MAX_PROMPTS:
                raise ValueError(f"at most {MAX_PROMPTS} prompts per request")
        return value

    @model_validator(mode="after")
    def _unsupported(self) -> CompletionRequest:
        if self.suffix:
            raise ValueError("suffix (fill-in-the-middle) is not supported")
        if self.logprobs:
            raise ValueError("logprobs are not supported")
        if self.best_of not in (None, 1):
            raise ValueError("only best_of=1 is supported")
        return self

    def prompts(self) -> list[str]:
        return [self.prompt] if isinstance(self.prompt, str) else [str(p) for p in self.prompt]


class CompletionChoice(BaseModel):
    index: int
    text: str
    finish_reason: str | None
    logprobs: None = None


class Completion(BaseModel):
    id: str
    object: Literal["text_completion"] = "text_completion"
    created: int
    model: str
    choices: list[CompletionChoice]
    usage: Usage | None = None
    timings: TimingsOut | None = None


class EditRequest(SamplingFields):
    instruction: str = Field(min_length=1)
    input: str = ""
    max_tokens: PositiveInt | None = None


class EditChoice(BaseModel):
    index: int
    text: str


class Edit(BaseModel):
    object: Literal["edit"] = "edit"
    created: int
    model: str
    choices: list[EditChoice]
    usage: Usage
