"""Fixtures for the document library tests: a library on a fresh folder with a settable clock,
and a helper that uploads files and commits documents of chunks with seeded vectors."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest

from stores.documents.library import DocumentLibrary
from stores.documents.records import ChunkRow, FileRecord, VectorStoreFileRecord

DIM = 16
MODEL = "test-embedder"


@dataclass
class Clock:
    now: float = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now


@dataclass
class Shelf:
    """Uploads and documents for one library: files by content, chunks with reproducible vectors."""

    library: DocumentLibrary
    spool: Path
    rng: np.random.Generator = field(default_factory=lambda: np.random.default_rng(7))
    vectors: dict[int, np.ndarray] = field(default_factory=dict)  # chunk id -> raw vector committed

    def upload(self, content: bytes | str, filename: str = "doc.txt", purpose: str = "assistants") -> FileRecord:
        data = content.encode() if isinstance(content, str) else content
        self.spool.mkdir(parents=True, exist_ok=True)
        src = self.spool / f"upload-{len(list(self.spool.iterdir()))}"
        src.write_bytes(data)
        return self.library.add_file(
            src, filename=filename, purpose=purpose, sha256=hashlib.sha256(data).hexdigest(), size=len(data)
        )

    def document(
        self,
        store_id: str,
        texts: Sequence[str],
        *,
        filename: str = "doc.txt",
        attributes: dict | None = None,
        vectors: np.ndarray | None = None,
    ) -> VectorStoreFileRecord:
        """Upload, attach and commit a document whose chunks are ``texts``."""
        record = self.upload("\n\n".join(texts) + f"\n{self.rng.integers(1 << 60)}", filename)
        self.library.attach(store_id, record.id, attributes=attributes or {})
        assert self.commit(store_id, record.id, texts, vectors)
        return self.library.get_attached(store_id, record.id)

    def commit(self, store_id: str, file_id: str, texts: Sequence[str], vectors: np.ndarray | None = None) -> bool:
        rows = chunk_rows(texts)
        if vectors is None:
            vectors = self.rng.normal(size=(len(rows), DIM)).astype(np.float32)
        done = self.library.commit_chunks(store_id, file_id, rows, vectors, model=MODEL)
        if done:
            for chunk, vector in zip(self.library.file_chunks(store_id, file_id), vectors, strict=True):
                self.vectors[chunk.chunk_id] = np.asarray(vector, dtype=np.float32)
        return done


def chunk_rows(texts: Sequence[str]) -> list[ChunkRow]:
    rows, offset = [], 0
    for i, text in enumerate(texts):
        heading = ("Doc", f"Section {i}")
        rows.append(ChunkRow(text, heading, i + 1, i + 1, offset, offset + len(text), len(text.split())))
        offset += len(text) + 2
    return rows


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def library_path(tmp_path: Path) -> Path:
    return tmp_path / "documents"


@pytest.fixture
def library(library_path: Path, clock: Clock) -> Iterator[DocumentLibrary]:
    with DocumentLibrary(library_path, clock=clock) as lib:
        yield lib


@pytest.fixture
def shelf(library: DocumentLibrary, tmp_path: Path) -> Shelf:
    return Shelf(library, tmp_path / "spool")


@pytest.fixture
def store_id(library: DocumentLibrary) -> str:
    return library.create_store(name="docs", embedding_model=MODEL, metadata={}).id
