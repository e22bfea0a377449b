"""LocalAI's /stores bodies (parallel `keys`/`values`), plus our create/list/drop, metadata and model.

`model` on set/find is ours (LocalAI clients never send it): the embedding model that made the keys,
recorded by the first set that names one and checked against every later set and find.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

# LocalAI's name for its in-memory store backend, and spellings clients send for it.
STORE_BACKENDS = frozenset({"", "local-store", "local_store", "localstore", "local-store-grpc"})
# stores.registry.HIDDEN_PREFIX (importing that module would load faiss): names the registry keeps
# for itself, such as an import's staging store, which no request may read, write or create.
RESERVED_PREFIX = "."


def visible_store_name(value: str) -> str:
    """A store name a request may use: at most 200 characters, not one of the registry's own."""
    if len(value) > 200:
        raise ValueError("store names are at most 200 characters")
    if value.startswith(RESERVED_PREFIX):
        raise ValueError(f"store names starting with {RESERVED_PREFIX!r} are reserved; choose another name")
    return value


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
        return value if value is None else visible_store_name(value)


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
    # one of stores.index_options.INDEX_KINDS; the registry validates index_options per kind
    index: Literal["exact", "hnsw", "ivf"] = "exact"
    metric: Literal["cosine"] = "cosine"
    index_options: dict[str, Any] | None = None
    embedding_model: str | None = None
    embedding_dimension: int | None = Field(None, ge=1)

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        return visible_store_name(value)


class DropRequest(BaseModel):
    name: str = Field(min_length=1, max_length=200)

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        return visible_store_name(value)


class ExportRequest(StoreRequest):
    """`store` names the store to export; empty or absent is the default store, as in LocalAI."""
