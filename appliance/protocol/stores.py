"""LocalAI's /stores bodies (parallel `keys`/`values`), plus our create/list/drop, metadata and model.

`model` on set/find is ours (LocalAI clients never send it): the embedding model that made the keys,
recorded by the first set that names one and checked against every later set and find.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator

from appliance.protocol.base import JsonInt, PositiveInt, RequestBody, integral
from stores.index_options import INDEX_KINDS, options_schema

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


# The same rule as a schema (the validator's message is the friendlier one): at most 200
# characters, not starting with the reserved prefix. `[\s\S]` because a name may hold a newline.
_NAME_SCHEMA = {"maxLength": 200, "pattern": r"^([^.][\s\S]*)?$"}
StoreName = Annotated[str, AfterValidator(visible_store_name), Field(json_schema_extra=_NAME_SCHEMA)]
# A key: a non-empty vector of float32 numbers (keys are stored as float32; a larger number would
# become infinite). Every key of one store has the store's dimension, and a key is never all zeros.
FLOAT32_MAX = 3.4028234663852886e38
Float32 = Annotated[float, Field(ge=-FLOAT32_MAX, le=FLOAT32_MAX)]
Vector = Annotated[list[Float32], Field(min_length=1)]


class StoreRequest(RequestBody):
    model_config = ConfigDict(extra="allow")

    store: StoreName | None = Field(None, description="The store; empty or absent is the default store")
    backend: str | None = Field(
        None,
        description="LocalAI's store backend: 'local-store' (or an alias, in any case) or empty",
        json_schema_extra={"anyOf": [{"enum": sorted(STORE_BACKENDS)}, {"type": "null"}]},
    )

    @field_validator("backend")
    @classmethod
    def _backend(cls, value: str | None) -> str | None:
        if value is not None and value.strip().lower() not in STORE_BACKENDS:
            raise ValueError(f"unknown store backend {value!r}; use 'local-store' or leave it out")
        return value


class SetRequest(StoreRequest):
    keys: list[Vector] = Field(min_length=1, description="Non-zero vectors of one dimension, one per value")
    values: list[str] = Field(min_length=1, description="One value per key (as many as keys)")
    metadata: list[dict[str, Any] | None] | None = Field(None, description="Ours: one object (or null) per key")
    model: str | None = Field(None, max_length=200)


class GetRequest(StoreRequest):
    keys: list[Vector] = Field(description="Vectors of one dimension; keys not in the store are left out")


class KeysRequest(StoreRequest):
    keys: list[Vector] = Field(min_length=1, description="Vectors of one dimension; absent keys are ignored")


class FindRequest(StoreRequest):
    key: Vector = Field(description="A non-zero vector of the store's dimension")
    topk: JsonInt = Field(ge=1)
    model: str | None = Field(None, max_length=200)


def _options_per_kind(schema: dict[str, Any]) -> None:
    """The options each index kind takes (an absent `index` is exact, which takes none)."""
    schema["allOf"] = [
        {
            "if": {"properties": {"index": {"const": kind}}},
            "then": {"properties": {"index_options": {"anyOf": [options_schema(kind), {"type": "null"}]}}},
        }
        for kind in INDEX_KINDS
    ]


def _integral_values(options: dict[str, Any] | None) -> dict[str, Any] | None:
    return {name: integral(value) for name, value in options.items()} if options is not None else None


class CreateRequest(RequestBody):
    model_config = ConfigDict(json_schema_extra=_options_per_kind)

    name: StoreName = Field(min_length=1)
    # one of stores.index_options.INDEX_KINDS; the registry validates index_options per kind
    index: Literal["exact", "hnsw", "ivf"] = "exact"
    metric: Literal["cosine"] = "cosine"
    index_options: Annotated[dict[str, Any] | None, AfterValidator(_integral_values)] = None
    embedding_model: str | None = None
    embedding_dimension: PositiveInt | None = None


class DropRequest(RequestBody):
    name: StoreName = Field(min_length=1)


class ExportRequest(StoreRequest):
    """`store` names the store to export; empty or absent is the default store, as in LocalAI."""


class StoreInfoOut(BaseModel):
    """A named store as `GET /stores`, create and import describe it."""

    name: str
    count: int
    dimension: int | None
    metric: str
    index_kind: str
    index_options: dict[str, Any] | None
    embedding_model: str | None
    embedding_dimension: int | None
    created_at: str
    tuned: dict[str, Any] | None = None


class StoreList(BaseModel):
    stores: list[StoreInfoOut]


class GetResponse(BaseModel):
    """Found keys and their values, in request order; missing keys are left out."""

    keys: list[list[float]]
    values: list[str]
    metadata: list[dict[str, Any] | None] | None = Field(None, description="Ours: only when some value has metadata")


class FindResponse(BaseModel):
    """The `topk` nearest keys, most similar first, with cosine similarities in [-1, 1]."""

    keys: list[list[float]]
    values: list[str]
    similarities: list[float]
    metadata: list[dict[str, Any] | None] | None = Field(None, description="Ours: only when some value has metadata")
