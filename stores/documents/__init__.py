"""The document library: uploaded files, vector stores of documents, their chunks, the SQLite FTS5
keyword index, exact vector search, OpenAI attribute filters and reciprocal rank fusion.

It imports only ``stores.*`` (plus numpy, faiss and the standard library): never a model, FastAPI
or ``appliance``; it takes text and vectors, and the appliance embeds and orchestrates. Importing
this package loads neither numpy nor faiss; ``DocumentLibrary`` loads them on first use.
Modules: ``library`` (the API), ``db`` (schema, connections, lock), ``blobs`` (file bytes),
``attachments`` (a store's files and chunk writes), ``search``/``keyword``/``vectors`` (finding
chunks), ``filters``, ``fusion``, ``pages`` (cursor listings), ``records`` and ``rows`` (values).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from stores.documents.errors import NotFound
from stores.documents.records import (
    BatchFile,
    BatchRecord,
    ChunkRecord,
    ChunkRow,
    FileCounts,
    FileRecord,
    Hit,
    LastError,
    Page,
    VectorStoreFileRecord,
    VectorStoreRecord,
)

if TYPE_CHECKING:
    from stores.documents.library import UNSET, DocumentLibrary

__all__ = [
    "UNSET",
    "BatchFile",
    "BatchRecord",
    "ChunkRecord",
    "ChunkRow",
    "DocumentLibrary",
    "FileCounts",
    "FileRecord",
    "Hit",
    "LastError",
    "NotFound",
    "Page",
    "VectorStoreFileRecord",
    "VectorStoreRecord",
]


def __getattr__(name: str) -> Any:
    """Load the numpy/faiss-backed library on first use, so importing the records stays light."""
    if name in ("DocumentLibrary", "UNSET"):
        from stores.documents import library

        return getattr(library, name)
    raise AttributeError(f"module 'stores.documents' has no attribute {name!r}")
