"""OpenAI embeddings, and rerank in Jina/Cohere's shape with TEI's body accepted too."""

from __future__ import annotations

import base64
import struct
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

MAX_INPUTS = 2048


class EmbeddingRequest(BaseModel):
    model_config = ConfigDict(extra="allow")

    model: str = Field(min_length=1)
    input: str | list[str] | list[int] | list[list[int]]
    encoding_format: Literal["float", "base64"] = "float"
    dimensions: int | None = Field(None, ge=1)
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


class RerankDocument(BaseModel):
    text: str


class RerankRequest(BaseModel):
    """Jina/Cohere `{model, query, documents, top_n, return_documents}`; TEI `{query, texts}`."""

    model_config = ConfigDict(extra="allow")

    model: str | None = Field(None, min_length=1)
    query: str
    documents: list[str | RerankDocument] | None = None
    texts: list[str] | None = None  # TEI
    top_n: int | None = None
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
