"""What crosses a store's boundary: caller keys checked into a float32 matrix, metadata to and from
JSON, and the result records ``get``, ``find`` and ``index_state`` return.

Kept apart from ``stores.store`` (the store's locking, writes and index lifecycle) because none of
it touches the database or the index.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from stores.errors import DimensionMismatch, InvalidInput
from stores.index import normalise

Vector = Sequence[float]
Metadata = dict[str, Any] | None


@dataclass(frozen=True)
class GetResult:
    keys: list[list[float]]
    values: list[str]
    metadata: list[Metadata]


@dataclass(frozen=True)
class IndexState:
    """What a store's index is doing now (for operators and tests)."""

    kind: str
    entries: int  # live entries (0 for an empty store)
    tombstones: int  # deleted entries still held until the next compaction (HNSW only)
    approximate: bool  # False for exact, and for an ivf store not yet trained
    rebuilding: bool
    # the measured ef_search/nprobe: {"ef_search": 64, "recall": 0.98, "target_recall": 0.95,
    # "at_count": 100000}; None before the first tuning or when the options fix the parameter
    tuned: dict[str, Any] | None = None
    tuning: bool = False  # a background tuning is measuring now


@dataclass(frozen=True)
class FindResult:
    keys: list[list[float]]
    values: list[str]
    similarities: list[float]
    metadata: list[Metadata]


def as_matrix(keys: Sequence[Vector], *, check_direction: bool = True, param: str = "keys") -> np.ndarray:
    """Keys as a contiguous little-endian float32 matrix; InvalidInput/DimensionMismatch name ``param``."""
    try:
        dims = {len(k) for k in keys}
    except TypeError:
        raise InvalidInput(f"{param} must be a list of lists of numbers", param=param) from None
    if len(dims) != 1:
        raise DimensionMismatch(f"all {param} must have the same dimension, got {sorted(dims)}", param=param)
    if 0 in dims:
        raise InvalidInput(f"{param} must not contain empty vectors", param=param)
    try:
        matrix = np.asarray(keys, dtype="<f4")
    except (TypeError, ValueError) as exc:
        raise InvalidInput(f"{param} must be lists of numbers ({exc})", param=param) from None
    if not np.all(np.isfinite(matrix)):
        raise InvalidInput(f"{param} must contain only finite numbers (no NaN or infinity)", param=param)
    if check_direction:
        try:
            normalise(matrix)
        except InvalidInput:
            raise InvalidInput(f"{param} must not contain zero vectors: cosine similarity is undefined", param=param) from None
    return np.ascontiguousarray(matrix)


def dump_metadata(meta: Metadata) -> str | None:
    if meta is None:
        return None
    if not isinstance(meta, dict):
        raise InvalidInput("each metadata entry must be a JSON object or null", param="metadata")
    try:
        return json.dumps(meta, allow_nan=False, separators=(",", ":"))
    except (TypeError, ValueError) as exc:
        raise InvalidInput(f"metadata must be JSON-serialisable ({exc})", param="metadata") from None


def load_metadata(text: str | None) -> Metadata:
    return None if text is None else json.loads(text)
