"""LocalAI's /stores bodies (parallel `keys`/`values`), plus our create/list/drop, metadata and model.

`model` on set/find is ours (LocalAI clients never send it): the embedding model that made the keys,
recorded by the first set that names one and checked against every later set and find.
"""

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
    model: str | None = Field(None, max_length=200)


class KeysRequest(StoreRequest):
    keys: list[list[float]]


class FindRequest(StoreRequest):
    key: list[float]
    topk: int
    model: str | None = Field(None, max_length=200)


class CreateRequest(BaseModel):
    name: str = Field(min_length=1, max_length=200)
    index: Literal["exact"] = "exact"
    metric: Literal["cosine"] = "cosine"
    index_options: dict[str, Any] | None = None
    embedding_model: str | None = None
    embedding_dimension: int | None = Field(None, ge=1)


class DropRequest(BaseModel):
    name: str = Field(min_length=1, max_length=200)
