"""OpenAI embeddings, and rerank in Jina/Cohere's shape with TEI's body accepted too."""

from __future__ import annotations

import base64
import struct
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from appliance.protocol.base import JsonInt, ModelName, NonNegativeInt, PositiveInt, RequestBody

MAX_INPUTS = 2048


def _inputs(items: dict[str, Any]) -> dict[str, Any]:
    return {"type": "array", "items": items, "minItems": 1, "maxItems": MAX_INPUTS}


# What `_input` checks, for the schema: text, texts, token ids or lists of them, none empty.
_INPUT_SCHEMA = {
    "anyOf": [
        {"type": "string", "minLength": 1},
        _inputs({"type": "string", "minLength": 1}),
        _inputs({"type": "integer", "minimum": 0}),
        _inputs({"type": "array", "items": {"type": "integer", "minimum": 0}, "minItems": 1}),
    ]
}


class EmbeddingRequest(RequestBody):
    model_config = ConfigDict(extra="allow")

    model: ModelName
    input: str | list[str] | list[NonNegativeInt] | list[list[NonNegativeInt]] = Field(json_schema_extra=_INPUT_SCHEMA)
    encoding_format: Literal["float", "base64"] = "float"
    dimensions: PositiveInt | None = None
    user: str | None = None

    @field_validator("input")
    @classmethod
    def _input(cls, value: Any) -> Any:
        if isinstance(value, str):
            if not value:
                raise ValueError("input must not be an empty string")
            return value
        if not value:
            raise ValueError("input must not be an empty list")
        if len(value) > MAX_INPUTS:
            raise ValueError(f"at most {MAX_INPUTS} inputs per request")
        if isinstance(value[0], str) and any(not item for item in value):
            raise ValueError("input must not hold empty strings")
        if isinstance(value[0], list) and any(not item for item in value):
            raise ValueError("input must not hold empty token lists")
        return value

    def texts(self) -> list[str] | None:
        """The inputs as text, or None when they are token ids."""
        if isinstance(self.input, str):
            return [self.input]
        return list(self.input) if isinstance(self.input[0], str) else None  # type: ignore[arg-type]

    def token_lists(self) -> list[list[int]]:
        first = self.input[0]  # type: ignore[index]
        return [list(self.input)] if isinstance(first, int) else [list(ids) for ids in self.input]  # type: ignore[arg-type]


def encode_vector(vector: list[float], encoding_format: str) -> list[float] | str:
    """`base64` is little-endian float32 bytes, as the official client decodes it."""
    if encoding_format == "base64":
        return base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode("ascii")
    return vector


class EmbeddingUsage(BaseModel):
    prompt_tokens: int
    total_tokens: int


class EmbeddingData(BaseModel):
    object: Literal["embedding"] = "embedding"
    index: int
    embedding: list[float] | str = Field(description="Floats, or base64 of little-endian float32 (encoding_format)")


class EmbeddingList(BaseModel):
    """The answer of /v1/embeddings (built with orjson in the route; this model documents it)."""

    object: Literal["list"] = "list"
    data: list[EmbeddingData]
    model: str
    usage: EmbeddingUsage


class RerankDocument(RequestBody):
    text: str


class RerankRequest(RequestBody):
    """Jina/Cohere `{model, query, documents, top_n, return_documents}`; TEI `{query, texts}`."""

    # `_documents` for the schema: non-empty `documents`, or else non-empty TEI `texts`.
    model_config = ConfigDict(
        extra="allow",
        json_schema_extra={
            "anyOf": [
                {"required": ["documents"], "properties": {"documents": {"type": "array", "minItems": 1}}},
                {
                    "required": ["texts"],
                    "properties": {"texts": {"type": "array", "minItems": 1}, "documents": {"type": "null"}},
                },
            ]
        },
    )

    model: ModelName | None = None
    query: str = Field(min_length=1)
    documents: list[str | RerankDocument] | None = None
    texts: list[str] | None = None  # TEI
    # At least 1; checked in the route, which answers 422 for it as rerank servers do.
    top_n: JsonInt | None = Field(None, json_schema_extra={"minimum": 1})
    return_documents: bool = True
    return_text: bool = False  # TEI

    @model_validator(mode="after")
    def _documents(self) -> RerankRequest:
        if self.documents is None and self.texts is None:
            raise ValueError("send the candidates as 'documents' (or TEI's 'texts')")
        if not self.document_texts():
            raise ValueError("documents must hold at least one document")
        return self

    @property
    def is_tei(self) -> bool:
        return self.documents is None and self.texts is not None

    def document_texts(self) -> list[str]:
        if self.documents is not None:
            return [d if isinstance(d, str) else d.text for d in self.documents]
        return list(self.texts or [])


class RerankResult(BaseModel):
    index: int
    relevance_score: float
    document: RerankDocument | None = None


class RerankUsage(BaseModel):
    prompt_tokens: int
    total_tokens: int


class RerankResponse(BaseModel):
    model: str
    usage: RerankUsage
    results: list[RerankResult]


class TeiRank(BaseModel):
    index: int
    score: float
    text: str | None = None
