"""LocalAI's tokenize and detokenize bodies."""

from __future__ import annotations

from pydantic import BaseModel, Field


class TokenizeRequest(BaseModel):
    model: str = Field(min_length=1)
    content: str


class TokenizeResponse(BaseModel):
    tokens: list[int]


class DetokenizeRequest(BaseModel):
    model: str = Field(min_length=1)
    tokens: list[int] = Field(max_length=1_000_000)


class DetokenizeResponse(BaseModel):
    content: str
