"""OpenAI text completions and edits (the legacy endpoints LocalAI still serves)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field, field_validator, model_validator

from appliance.protocol.generation import SamplingFields, StreamOptions, TimingsOut, Usage

MAX_PROMPTS = 16


class CompletionRequest(SamplingFields):
    prompt: str | list[str] | list[int] | list[list[int]]
    max_tokens: int | None = Field(None, ge=1)
    stream: bool = False
    stream_options: StreamOptions | None = None
    echo: bool = False
    suffix: str | None = None
    logprobs: int | None = None
    best_of: int | None = None

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
    max_tokens: int | None = Field(None, ge=1)


class EditChoice(BaseModel):
    index: int
    text: str


class Edit(BaseModel):
    object: Literal["edit"] = "edit"
    created: int
    model: str
    choices: list[EditChoice]
    usage: Usage
