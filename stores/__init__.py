"""Durable vector stores: SQLite is the truth, a FAISS index is a rebuildable cache.

Importing this package loads neither faiss nor numpy; they load with ``stores.registry``/``stores.store``.
Public API: ``StoreRegistry`` (named stores of one data path) and the error tree in ``stores.errors``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from stores.errors import (
    DataPathLocked,
    DimensionMismatch,
    InvalidInput,
    ModelMismatch,
    SchemaMismatch,
    SchemaTooNew,
    StoreClosed,
    StoreError,
    StoreExists,
    StoreNotFound,
)

if TYPE_CHECKING:
    from stores.index import CompactionPolicy
    from stores.registry import StoreInfo, StoreRegistry
    from stores.store import FindResult, GetResult, IndexState, VectorStore

__all__ = [
    "CompactionPolicy",
    "DataPathLocked",
    "DimensionMismatch",
    "FindResult",
    "GetResult",
    "IndexState",
    "InvalidInput",
    "ModelMismatch",
    "SchemaMismatch",
    "SchemaTooNew",
    "StoreClosed",
    "StoreError",
    "StoreExists",
    "StoreInfo",
    "StoreNotFound",
    "StoreRegistry",
    "VectorStore",
]

_LAZY = {
    "StoreRegistry": "stores.registry",
    "StoreInfo": "stores.registry",
    "VectorStore": "stores.store",
    "GetResult": "stores.store",
    "FindResult": "stores.store",
    "IndexState": "stores.store",
    "CompactionPolicy": "stores.index",
}


def __getattr__(name: str) -> Any:
    """Load the faiss/numpy-backed classes on first use, so ``import stores`` stays light."""
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'stores' has no attribute {name!r}")
