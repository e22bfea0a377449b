"""LocalAI's tokenize and detokenize bodies."""

from __future__ import annotations

from pydantic import BaseModel, Field

from appliance.protocol.base import ModelName, NonNegativeInt, RequestBody


class TokenizeRequest(RequestBody):
    model: ModelName
    content: str


class TokenizeResponse(BaseModel):
    tokens: list[int]


class DetokenizeRequest(RequestBody):
    model: ModelName
    tokens: list[NonNegativeInt] = Field(max_length=1_000_000, description="Ids in the model's vocabulary")


class DetokenizeResponse(BaseModel):
    content: str
