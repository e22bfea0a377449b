"""LocalAI's /stores bodies (parallel `keys`/`values`), plus our create/list/drop and metadata."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

# LocalAI's name for its in-memory store backend, and spellings clients send for it.
STORE_BACKENDS = frozenset({"", "local-store", "local_store", "localstore", "local-store-grpc"})


class StoreRequest(BaseModel):
    model_config = ConfigDict(extra="allow")

    store: str | None = None
    backend: str | None = None

    @field_validator("backend")
    @classmethod
    def _backend(cls, value: str | None) -> str | None:
        if value is not None and value.strip().lower() not in STORE_BACKENDS:
            raise ValueError(f"unknown store backend {value!r}; use 'local-store' or leave it out")
        return value

    @field_validator("store")
    @classmethod
    def _store(cls, value: str | None) -> str | None:
        if value is not None and len(value) > 200:
            raise ValueError("store names are at most 200 characters")
        return value


class SetRequest(StoreRequest):
    keys: list[list[float]]
    values: list[str]
    metadata: list[dict[str, Any] | None] | None = None


class KeysRequest(StoreRequest):
    keys: list[list[float]]


class FindRequest(StoreRequest):
    key: list[float]
    topk: int


class CreateRequest(BaseModel):
    name: str = Field(min_length=1, max_length=200)
    index: Literal["exact"] = "exact"
    metric: Literal["cosine"] = "cosine"
    embedding_model: str | None = None
    embedding_dimension: int | None = Field(None, ge=1)


class DropRequest(BaseModel):
    name: str = Field(min_length=1, max_length=200)
