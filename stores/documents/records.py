"""The values the document library hands out and takes in: files, vector stores, their files and
batches, chunks (in and out), search hits and pages of a listing.

Plain frozen dataclasses with no database or index behind them; ``stores.documents.rows`` builds
them from SQLite rows.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Generic, Literal, TypeVar

FileStatus = Literal["in_progress", "completed", "cancelled", "failed"]
StoreStatus = Literal["expired", "in_progress", "completed"]
Order = Literal["asc", "desc"]
Attributes = dict[str, str | int | float | bool]
JSONObject = dict[str, Any]

FILE_STATUSES: tuple[FileStatus, ...] = ("in_progress", "completed", "cancelled", "failed")

T = TypeVar("T")


@dataclass(frozen=True)
class FileRecord:
    """An uploaded file (OpenAI's File object); its bytes live in the library's blob folder."""

    id: str
    filename: str
    purpose: str
    bytes: int
    sha256: str
    created_at: int


@dataclass(frozen=True)
class FileCounts:
    """Files of a vector store or batch by status (OpenAI's ``file_counts``)."""

    in_progress: int = 0
    completed: int = 0
    failed: int = 0
    cancelled: int = 0

    @property
    def total(self) -> int:
        return self.in_progress + self.completed + self.failed + self.cancelled

    def as_dict(self) -> dict[str, int]:
        return {
            "in_progress": self.in_progress,
            "completed": self.completed,
            "failed": self.failed,
            "cancelled": self.cancelled,
            "total": self.total,
        }


@dataclass(frozen=True)
class LastError:
    """Why a vector store file failed: a stable ``code`` and a sentence a user can act on."""

    code: str
    message: str


@dataclass(frozen=True)
class VectorStoreRecord:
    """A vector store. ``embedding_model``/``embedding_dimension`` are fixed by the first commit
    when not given at creation; ``usage_bytes`` sums its completed files' ``usage_bytes``."""

    id: str
    name: str | None
    created_at: int
    last_active_at: int
    metadata: JSONObject
    embedding_model: str | None
    embedding_dimension: int | None
    rerank_model: str | None
    chunking_strategy: JSONObject | None
    expires_after: JSONObject | None  # {"anchor": "last_active_at", "days": N}
    expires_at: int | None
    usage_bytes: int
    file_counts: FileCounts
    status: StoreStatus


@dataclass(frozen=True)
class VectorStoreFileRecord:
    """A file attached to a vector store (OpenAI's vector store file; its ``id`` is the file id).

    ``usage_bytes`` is the UTF-8 size of the file's chunk texts, our stand-in for OpenAI's usage.
    ``duplicate_of`` names the file with the same sha256 that already holds the content in this
    store (this one then has no chunks of its own). ``batch_id`` is the first batch it came with.
    """

    file_id: str
    vector_store_id: str
    status: FileStatus
    created_at: int
    usage_bytes: int
    chunk_count: int
    last_error: LastError | None
    attributes: Attributes
    chunking_strategy: JSONObject | None
    duplicate_of: str | None
    batch_id: str | None

    @property
    def id(self) -> str:
        return self.file_id


@dataclass(frozen=True)
class BatchRecord:
    """A vector store file batch; ``status`` is derived from its files (see ``rows.batch_status``)."""

    id: str
    vector_store_id: str
    created_at: int
    status: FileStatus
    file_counts: FileCounts
    cancel_requested: bool


@dataclass(frozen=True)
class BatchFile:
    """One file of ``create_batch`` with its own attributes/chunking (None: the batch's)."""

    file_id: str
    attributes: Attributes | None = None
    chunking: JSONObject | None = None


@dataclass(frozen=True)
class ChunkRow:
    """A chunk to commit: its text and where it came from in the extracted document."""

    text: str
    heading_path: tuple[str, ...] = ()
    page_start: int | None = None
    page_end: int | None = None
    char_start: int = 0
    char_end: int = 0
    tokens: int = 0


@dataclass(frozen=True)
class ChunkRecord:
    """A stored chunk with what a citation needs (file, filename, attributes, pages, section)."""

    chunk_id: int
    store_id: str
    file_id: str
    filename: str
    attributes: Attributes
    seq: int
    text: str
    heading_path: tuple[str, ...]
    page_start: int | None
    page_end: int | None
    char_start: int
    char_end: int
    tokens: int


@dataclass(frozen=True)
class Hit:
    """A search result: a chunk id and its score (higher is better; the scale depends on the search)."""

    chunk_id: int
    score: float


@dataclass(frozen=True)
class Page(Generic[T]):
    """One page of a cursor listing, shaped like OpenAI's list objects."""

    items: list[T]
    has_more: bool

    @property
    def first_id(self) -> str | None:
        return _object_id(self.items[0]) if self.items else None

    @property
    def last_id(self) -> str | None:
        return _object_id(self.items[-1]) if self.items else None


def _object_id(item: Any) -> str:
    return str(item.id)
