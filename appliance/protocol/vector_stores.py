"""OpenAI's Files and Vector Stores request bodies, and the objects they answer, as OpenAI documents them.

Our extensions ride in the same objects under their own keys (SDKs ignore unknown keys):
`embedding_model` and `rerank_model` at create, `progress` and `duplicate_of` on a vector store file,
`chunk_id`, `page_start`, `page_end`, `heading_path` and `scores` on a search result.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from appliance.errors import BadRequest
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator, model_validator

ORDERS = ("asc", "desc")
MAX_ATTRIBUTES = 16


class Lenient(BaseModel):
    """Unknown fields are accepted and ignored, as OpenAI clients send fields we may not know yet."""

    model_config = ConfigDict(extra="ignore")


class StaticChunking(Lenient):
    max_chunk_size_tokens: int = Field(ge=100, le=4096)
    chunk_overlap_tokens: int = Field(ge=0)

    @model_validator(mode="after")
    def _overlap(self) -> StaticChunking:
        if self.chunk_overlap_tokens > self.max_chunk_size_tokens // 2:
            raise ValueError("chunk_overlap_tokens must not exceed half of max_chunk_size_tokens")
        return self


class ChunkingStrategy(Lenient):
    type: Literal["auto", "static"]
    static: StaticChunking | None = None

    @model_validator(mode="after")
    def _static(self) -> ChunkingStrategy:
        if self.type == "static" and self.static is None:
            raise ValueError("a static chunking_strategy needs 'static': {max_chunk_size_tokens, chunk_overlap_tokens}")
        return self


class ExpiresAfter(Lenient):
    anchor: Literal["last_active_at"]
    days: int = Field(ge=1, le=365)


def _check_attributes(value: dict[str, Any]) -> dict[str, Any]:
    if len(value) > MAX_ATTRIBUTES:
        raise ValueError(f"at most {MAX_ATTRIBUTES} attributes")
    for key, item in value.items():
        if isinstance(item, str) and len(item) > 512:
            raise ValueError(f"attribute {key!r} is longer than 512 characters")
    return value


AttributeValue = str | float | bool
Key = Annotated[str, Field(min_length=1, max_length=64)]
Attributes = Annotated[dict[Key, AttributeValue], AfterValidator(_check_attributes)]
Metadata = Annotated[dict[Key, Annotated[str, Field(max_length=512)]], AfterValidator(_check_attributes)]


class CreateVectorStore(Lenient):
    name: str | None = Field(None, max_length=256)
    description: str | None = Field(None, max_length=512)
    file_ids: list[str] = Field(default_factory=list, max_length=500)
    chunking_strategy: ChunkingStrategy | None = None
    expires_after: ExpiresAfter | None = None
    metadata: Metadata | None = None
    embedding_model: str | None = Field(None, min_length=1, description="Our extension: the model that embeds chunks")
    rerank_model: str | None = Field(None, min_length=1, description="Our extension: a cross-encoder for search")


class UpdateVectorStore(Lenient):
    name: str | None = Field(None, max_length=256)
    expires_after: ExpiresAfter | None = None
    metadata: Metadata | None = None
    rerank_model: str | None = None


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
    file_ids: list[str] | None = Field(None, min_length=1, max_length=500)
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
    rerank_model: str | None = Field(None, min_length=1, description="Our extension: rerank with this cross-encoder")


class SearchRequest(Lenient):
    query: str | list[str]
    max_num_results: int = Field(10, ge=1, le=50)
    filters: Filter | None = None
    ranking_options: RankingOptions | None = None
    rewrite_query: bool = False
    embedding_model: str | None = Field(None, min_length=1, description="Our extension: must match the store's")

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
    embedding_model: str | None = Field(None, min_length=1)
    chunking_strategy: ChunkingStrategy | None = None


FILE_PURPOSES = ("assistants", "user_data", "batch", "fine-tune", "vision", "evals")


def list_params(limit: int, order: str, after: str | None, before: str | None) -> dict[str, Any]:
    """OpenAI's cursor pagination, checked: limit 1..100, order asc|desc."""
    if not 1 <= limit <= 100:
        raise BadRequest("limit must be between 1 and 100", param="limit")
    if order not in ORDERS:
        raise BadRequest("order must be 'asc' or 'desc'", param="order")
    return {"limit": limit, "order": order, "after": after, "before": before}
