"""OpenAI's Files and Vector Stores request bodies, and the objects they answer, as OpenAI documents them.

Our extensions ride in the same objects under their own keys (SDKs ignore unknown keys):
`embedding_model` and `rerank_model` at create, `progress` and `duplicate_of` on a vector store file,
`chunk_id`, `page_start`, `page_end`, `heading_path` and `scores` on a search result.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import Query
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator, model_validator

from appliance.errors import BadRequest
from appliance.protocol.base import NOT_BLANK, JsonInt, ModelName, RequestBody

ORDERS = ("asc", "desc")
MAX_ATTRIBUTES = 16


class Lenient(RequestBody):
    """Unknown fields are accepted and ignored, as OpenAI clients send fields we may not know yet."""

    model_config = ConfigDict(extra="ignore")


class StaticChunking(Lenient):
    max_chunk_size_tokens: JsonInt = Field(ge=100, le=4096, description="At most what the embedding model reads")
    chunk_overlap_tokens: JsonInt = Field(ge=0, description="At most half of max_chunk_size_tokens")

    @model_validator(mode="after")
    def _overlap(self) -> StaticChunking:
        if self.chunk_overlap_tokens > self.max_chunk_size_tokens // 2:
            raise ValueError("chunk_overlap_tokens must not exceed half of max_chunk_size_tokens")
        return self


class ChunkingStrategy(Lenient):
    # `_static`, for the schema: a static strategy carries its numbers.
    model_config = ConfigDict(
        json_schema_extra={
            "if": {"properties": {"type": {"const": "static"}}, "required": ["type"]},
            "then": {"required": ["static"], "properties": {"static": {"type": "object"}}},
        }
    )

    type: Literal["auto", "static"]
    static: StaticChunking | None = None

    @model_validator(mode="after")
    def _static(self) -> ChunkingStrategy:
        if self.type == "static" and self.static is None:
            raise ValueError("a static chunking_strategy needs 'static': {max_chunk_size_tokens, chunk_overlap_tokens}")
        return self


class ExpiresAfter(Lenient):
    anchor: Literal["last_active_at"]
    days: JsonInt = Field(ge=1, le=365)


def _check_attributes(value: dict[str, Any]) -> dict[str, Any]:
    if len(value) > MAX_ATTRIBUTES:
        raise ValueError(f"at most {MAX_ATTRIBUTES} attributes")
    for key, item in value.items():
        if isinstance(item, str) and len(item) > 512:
            raise ValueError(f"attribute {key!r} is longer than 512 characters")
    return value


AttributeValue = str | float | bool
Key = Annotated[str, Field(min_length=1, max_length=64)]
FileId = Annotated[str, Field(min_length=1)]
Attributes = Annotated[dict[Key, AttributeValue], AfterValidator(_check_attributes)]
Metadata = Annotated[dict[Key, Annotated[str, Field(max_length=512)]], AfterValidator(_check_attributes)]


class CreateVectorStore(Lenient):
    name: str | None = Field(None, max_length=256)
    description: str | None = Field(None, max_length=512)
    file_ids: list[FileId] = Field(default_factory=list, max_length=500)
    chunking_strategy: ChunkingStrategy | None = None
    expires_after: ExpiresAfter | None = None
    metadata: Metadata | None = None
    embedding_model: ModelName | None = Field(None, description="Our extension: the model that embeds chunks")
    rerank_model: ModelName | None = Field(None, description="Our extension: a cross-encoder for search")


class UpdateVectorStore(Lenient):
    name: str | None = Field(None, max_length=256)
    expires_after: ExpiresAfter | None = None
    metadata: Metadata | None = None
    rerank_model: ModelName | None = None


class AttachFile(Lenient):
    file_id: str = Field(min_length=1)
    attributes: Attributes | None = None
    chunking_strategy: ChunkingStrategy | None = None


class UpdateFileAttributes(Lenient):
    attributes: Attributes | None


class BatchFile(Lenient):
    file_id: str = Field(min_length=1)
    attributes: Attributes | None = None
    chunking_strategy: ChunkingStrategy | None = None


class CreateFileBatch(Lenient):
    # `_one_of`, for the schema: exactly one of the two lists.
    model_config = ConfigDict(
        json_schema_extra={
            "oneOf": [
                {"required": ["file_ids"], "properties": {"file_ids": {"type": "array"}}},
                {"required": ["files"], "properties": {"files": {"type": "array"}}},
            ]
        }
    )

    file_ids: list[FileId] | None = Field(None, min_length=1, max_length=500)
    files: list[BatchFile] | None = Field(None, min_length=1, max_length=500)
    attributes: Attributes | None = None
    chunking_strategy: ChunkingStrategy | None = None

    @model_validator(mode="after")
    def _one_of(self) -> CreateFileBatch:
        if (self.file_ids is None) == (self.files is None):
            raise ValueError("give exactly one of file_ids or files")
        return self

    def entries(self) -> list[BatchFile]:
        if self.files is not None:
            return self.files
        return [
            BatchFile(file_id=file_id, attributes=self.attributes, chunking_strategy=self.chunking_strategy)
            for file_id in self.file_ids or []
        ]


class ComparisonFilter(Lenient):
    # stores.documents.filters' rules, for the schema: `in`/`nin` take a list, the others one value;
    # an order (gt, gte, lt, lte) compares numbers or strings, never booleans.
    model_config = ConfigDict(
        json_schema_extra={
            "allOf": [
                {
                    "if": {"properties": {"type": {"enum": ["in", "nin"]}}},
                    "then": {"properties": {"value": {"type": "array"}}},
                    "else": {"properties": {"value": {"not": {"type": "array"}}}},
                },
                {
                    "if": {"properties": {"type": {"enum": ["gt", "gte", "lt", "lte"]}}},
                    "then": {"properties": {"value": {"not": {"type": "boolean"}}}},
                },
            ]
        }
    )

    type: Literal["eq", "ne", "gt", "gte", "lt", "lte", "in", "nin"]
    key: str = Field(min_length=1)
    value: str | float | bool | list[str | float]


class CompoundFilter(Lenient):
    type: Literal["and", "or"]
    filters: list[ComparisonFilter | CompoundFilter] = Field(min_length=1)


Filter = ComparisonFilter | CompoundFilter


class RankingOptions(Lenient):
    ranker: Literal["auto", "none", "default-2024-11-15", "hybrid", "keyword", "vector"] = "auto"
    score_threshold: float = Field(0.0, ge=0.0, le=1.0)
    rerank_model: ModelName | None = Field(None, description="Our extension: rerank with this cross-encoder")


class SearchRequest(Lenient):
    # `_query`, for the schema: some text, in the one query or in at least one of at most 10.
    query: str | list[str] = Field(
        json_schema_extra={
            "anyOf": [
                {"type": "string", "pattern": NOT_BLANK},
                {"type": "array", "items": {"type": "string"}, "maxItems": 10, "contains": {"pattern": NOT_BLANK}},
            ]
        }
    )
    max_num_results: JsonInt = Field(10, ge=1, le=50)
    filters: Filter | None = None
    ranking_options: RankingOptions | None = None
    rewrite_query: bool = False
    embedding_model: ModelName | None = Field(None, description="Our extension: must match the store's")

    @field_validator("query")
    @classmethod
    def _query(cls, value: str | list[str]) -> str | list[str]:
        texts = [value] if isinstance(value, str) else value
        if not texts or not any(text.strip() for text in texts):
            raise ValueError("query must hold some text")
        if len(texts) > 10:
            raise ValueError("at most 10 queries")
        return value

    def queries(self) -> list[str]:
        texts = [self.query] if isinstance(self.query, str) else self.query
        return [text for text in texts if text.strip()]


class ReindexRequest(Lenient):
    embedding_model: ModelName | None = None
    chunking_strategy: ChunkingStrategy | None = None


FILE_PURPOSES = ("assistants", "user_data", "batch", "fine-tune", "vision", "evals")
ACCEPTED_PURPOSES = ("assistants", "user_data")  # the purposes this server keeps files for

# OpenAI's cursor pagination, as query parameters of every list route.
PageLimit = Annotated[int, Query(ge=1, le=100, description="Objects per page, 1 to 100")]
PageOrder = Annotated[Literal["asc", "desc"], Query(description="By created_at: asc or desc")]
FileStatusFilter = Annotated[
    Literal["in_progress", "completed", "failed", "cancelled"] | None, Query(description="Only files in this status")
]


class FileUpload(BaseModel):
    """The text fields of a `POST /v1/files` upload (the `file` part aside)."""

    purpose: Literal["assistants", "user_data"]


def list_params(limit: int, order: str, after: str | None, before: str | None) -> dict[str, Any]:
    """OpenAI's cursor pagination, checked: limit 1..100, order asc|desc."""
    if not 1 <= limit <= 100:
        raise BadRequest("limit must be between 1 and 100", param="limit")
    if order not in ORDERS:
        raise BadRequest("order must be 'asc' or 'desc'", param="order")
    # An empty cursor (`?after=`) is no cursor, as a form would send it.
    return {"limit": limit, "order": order, "after": after or None, "before": before or None}
