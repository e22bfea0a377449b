"""DocumentLibrary: the durable home of uploaded files, vector stores, their files, batches and
chunks, and the search primitives over them (BM25 keyword, exact vector, attribute filters).

Synchronous and thread-safe (callers use ``asyncio.to_thread``): writes go through one serialised
SQLite transaction each, reads through per-thread connections. A document becomes searchable in
one transaction (``commit_chunks``), only while its row is still ``in_progress``; every search
joins on ``vector_store_files.status = 'completed'``, so nothing else is ever returned. The
in-memory vector indexes are derived from SQLite and changed only after a commit.
"""

from __future__ import annotations

import logging
import sqlite3
import time
import zlib
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

import numpy as np

from stores.documents import attachments, batches
from stores.documents.blobs import BlobFolder
from stores.documents.db import LibraryDatabase
from stores.documents.errors import NotFound
from stores.documents.filters import check_attributes
from stores.documents.pages import Listing, fetch_page
from stores.documents.records import (
    BatchFile,
    BatchRecord,
    ChunkRecord,
    ChunkRow,
    FileRecord,
    Hit,
    Page,
    VectorStoreFileRecord,
    VectorStoreRecord,
)
from stores.documents.rows import (
    ATTACHED_SELECT,
    CHUNK_SELECT,
    FILE_SELECT,
    STORE_SELECT,
    STORES_SOURCE,
    UNSET,
    attached_record,
    attached_source,
    check_expiry,
    chunk_record,
    dump_json,
    file_record,
    files_source,
    json_list,
    new_id,
    optional_dict,
    store_record,
)
from stores.documents.search import ChunkSearch
from stores.documents.vectors import VectorIndexes
from stores.errors import InvalidInput

logger = logging.getLogger(__name__)


class DocumentLibrary:
    """Files, vector stores and chunks under one folder (``documents.db``, ``files/``, a lock file).

    ``path`` is that folder (the appliance passes ``<data_path>/documents``).
    """

    def __init__(self, path: Path, *, clock: Callable[[], float] = time.time) -> None:
        self.path = Path(path)
        self._clock = clock
        self._db = LibraryDatabase(self.path)
        self._blobs = BlobFolder(self.path / "files")
        self._vectors = VectorIndexes()
        self._search = ChunkSearch(self._db.reader, self._db.writer, self._db.write_mutex, self._vectors)

    # -- lifecycle ---------------------------------------------------------------------------

    def open(self) -> DocumentLibrary:
        self._db.open()
        try:
            self._blobs.open()
            known = {row[0] for row in self._db.reader().execute("SELECT id FROM files")}
            self._blobs.sweep(known)
        except BaseException:
            self._db.close()
            raise
        return self

    def close(self) -> None:
        self._vectors.clear()
        self._db.close()

    def __enter__(self) -> DocumentLibrary:
        return self.open()

    def __exit__(self, *exc: object | TracebackType | None) -> None:
        self.close()

    def _now(self) -> int:
        return int(self._clock())

    def _read(self) -> sqlite3.Connection:
        return self._db.reader()

    # -- files -------------------------------------------------------------------------------

    def add_file(self, src: Path, *, filename: str, purpose: str, sha256: str, size: int) -> FileRecord:
        """Move ``src`` in durably (it is gone afterwards) and record it; acknowledged on return."""
        file_id = new_id("file-")
        actual = self._blobs.put(Path(src), file_id)
        if actual != size:
            self._blobs.remove(file_id)
            raise InvalidInput(f"file size is {actual} bytes, not the {size} announced", param="file")
        try:
            with self._db.write() as conn:
                conn.execute(
                    "INSERT INTO files (id, filename, purpose, bytes, sha256, created_at) VALUES (?, ?, ?, ?, ?, ?)",
                    (file_id, filename, purpose, actual, sha256, self._now()),
                )
        except BaseException:
            self._blobs.remove(file_id)
            raise
        logger.debug("documents_file_added id=%s bytes=%d", file_id, actual)
        return self.get_file(file_id)

    def get_file(self, file_id: str) -> FileRecord:
        row = self._read().execute(f"{FILE_SELECT} WHERE id = ?", (file_id,)).fetchone()
        if row is None:
            raise NotFound("file", file_id, param="file_id")
        return file_record(row)

    def list_files(
        self,
        *,
        purpose: str | None = None,
        limit: int = 20,
        order: str = "desc",
        after: str | None = None,
        before: str | None = None,
    ) -> Page[FileRecord]:
        rows, has_more = fetch_page(self._read(), files_source(purpose), Listing(limit, order, after, before))
        return Page([file_record(row) for row in rows], has_more)

    def file_path(self, file_id: str) -> Path:
        self.get_file(file_id)
        return self._blobs.path_of(file_id)

    def delete_file(self, file_id: str) -> list[tuple[str, str]]:
        """Remove the file from every vector store (chunks, FTS rows, vectors) and its extraction in
        one transaction, then its blob. Returns the (store id, file id) of duplicates put back in
        progress because this file held their content (the caller starts their ingest)."""
        revived: list[tuple[str, str]] = []
        removed: dict[str, list[int]] = {}
        with self._db.write_mutex:
            with self._db.write() as conn:
                if conn.execute("SELECT 1 FROM files WHERE id = ?", (file_id,)).fetchone() is None:
                    raise NotFound("file", file_id, param="file_id")
                stores = [row[0] for row in conn.execute(
                    "SELECT vector_store_id FROM vector_store_files WHERE file_id = ?", (file_id,)
                )]
                for store_id in stores:
                    chunk_ids, heirs = attachments.remove(conn, store_id, file_id)
                    removed[store_id] = chunk_ids
                    revived.extend((store_id, heir) for heir in heirs)
                conn.execute("DELETE FROM files WHERE id = ?", (file_id,))
            for store_id, chunk_ids in removed.items():
                self._vectors.remove(store_id, np.asarray(chunk_ids, dtype=np.int64))
        self._blobs.remove(file_id)
        logger.debug("documents_file_deleted id=%s stores=%d", file_id, len(removed))
        return revived

    def save_extraction(self, file_id: str, data: bytes) -> None:
        """Keep a file's extracted document (compressed) so a re-chunk need not extract again."""
        packed = zlib.compress(data, 6)
        with self._db.write() as conn:
            if conn.execute("SELECT 1 FROM files WHERE id = ?", (file_id,)).fetchone() is None:
                raise NotFound("file", file_id, param="file_id")
            conn.execute("INSERT OR REPLACE INTO extractions (file_id, data) VALUES (?, ?)", (file_id, packed))

    def load_extraction(self, file_id: str) -> bytes | None:
        row = self._read().execute("SELECT data FROM extractions WHERE file_id = ?", (file_id,)).fetchone()
        return None if row is None else zlib.decompress(row[0])

    # -- vector stores -----------------------------------------------------------------------

    def create_store(
        self,
        *,
        name: str | None = None,
        embedding_model: str | None = None,
        metadata: Mapping[str, Any] | None = None,
        chunking: Mapping[str, Any] | None = None,
        rerank_model: str | None = None,
        expires_after: Mapping[str, Any] | None = None,
    ) -> VectorStoreRecord:
        store_id = new_id("vs_")
        now = self._now()
        with self._db.write() as conn:
            conn.execute(
                "INSERT INTO vector_stores (id, name, created_at, last_active_at, metadata, embedding_model,"
                " rerank_model, chunking_strategy, expires_after) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    store_id, name, now, now, dump_json(dict(metadata or {})), embedding_model, rerank_model,
                    dump_json(optional_dict(chunking)), dump_json(check_expiry(expires_after)),
                ),
            )
        return self.get_store(store_id)

    def get_store(self, store_id: str) -> VectorStoreRecord:
        row = self._read().execute(f"{STORE_SELECT} WHERE s.id = ?", (store_id,)).fetchone()
        if row is None:
            raise NotFound("vector_store", store_id, param="vector_store_id")
        return store_record(row, self._now())

    def list_stores(
        self, *, limit: int = 20, order: str = "desc", after: str | None = None, before: str | None = None
    ) -> Page[VectorStoreRecord]:
        rows, has_more = fetch_page(self._read(), STORES_SOURCE, Listing(limit, order, after, before))
        now = self._now()
        return Page([store_record(row, now) for row in rows], has_more)

    def update_store(
        self,
        store_id: str,
        *,
        name: str | None = UNSET,
        metadata: Mapping[str, Any] | None = UNSET,
        expires_after: Mapping[str, Any] | None = UNSET,
        rerank_model: str | None = UNSET,
    ) -> VectorStoreRecord:
        """Change the given fields (None clears ``name``, ``expires_after``, ``rerank_model``;
        metadata None means {})."""
        changes: dict[str, Any] = {}
        if name is not UNSET:
            changes["name"] = name
        if metadata is not UNSET:
            changes["metadata"] = dump_json(dict(metadata or {}))
        if expires_after is not UNSET:
            changes["expires_after"] = dump_json(check_expiry(expires_after))
        if rerank_model is not UNSET:
            changes["rerank_model"] = rerank_model
        with self._db.write() as conn:
            attachments.require_store(conn, store_id)
            if changes:
                assignments = ", ".join(f"{column} = ?" for column in changes)
                conn.execute(f"UPDATE vector_stores SET {assignments} WHERE id = ?", (*changes.values(), store_id))
        return self.get_store(store_id)

    def delete_store(self, store_id: str) -> None:
        """Remove the store, its attachments, batches and chunks (files stay)."""
        with self._db.write_mutex:
            with self._db.write() as conn:
                attachments.require_store(conn, store_id)
                conn.execute("DELETE FROM chunks WHERE vector_store_id = ?", (store_id,))
                conn.execute("DELETE FROM vector_stores WHERE id = ?", (store_id,))  # cascades to files, batches
            self._vectors.drop(store_id)

    def touch_stores(self, store_ids: Iterable[str]) -> None:
        """Mark stores active now (``last_active_at``, which anchors ``expires_after``)."""
        with self._db.write() as conn:
            conn.execute(
                "UPDATE vector_stores SET last_active_at = ? WHERE id IN (SELECT value FROM json_each(?))",
                (self._now(), json_list(store_ids)),
            )

    def expired_stores(self) -> list[str]:
        """Ids of stores whose ``expires_at`` has passed (the caller decides to delete them)."""
        rows = self._read().execute(f"{STORE_SELECT} WHERE s.expires_after IS NOT NULL").fetchall()
        now = self._now()
        return [record.id for record in (store_record(row, now) for row in rows) if record.status == "expired"]

    # -- files of a store --------------------------------------------------------------------

    def attach(
        self,
        store_id: str,
        file_id: str,
        *,
        attributes: Mapping[str, Any] | None = None,
        chunking: Mapping[str, Any] | None = None,
        batch_id: str | None = None,
    ) -> VectorStoreFileRecord:
        """Attach a file: ``in_progress`` (to be ingested), or ``completed`` at once as a duplicate.

        Idempotent: a file already in progress or completed here is returned unchanged; a failed or
        cancelled one is retried (back to in_progress with the new attributes and chunking).
        """
        checked = check_attributes(attributes)
        with self._db.write() as conn:
            if batch_id is not None and conn.execute(
                "SELECT 1 FROM file_batches WHERE id = ? AND vector_store_id = ?", (batch_id, store_id)
            ).fetchone() is None:
                raise NotFound("batch", batch_id, param="batch_id")
            attachments.attach(
                conn, store_id, file_id, attributes=checked, chunking=optional_dict(chunking),
                batch_id=batch_id, now=self._now(),
            )
        return self.get_attached(store_id, file_id)

    def get_attached(self, store_id: str, file_id: str) -> VectorStoreFileRecord:
        row = self._read().execute(
            f"{ATTACHED_SELECT} WHERE v.vector_store_id = ? AND v.file_id = ?", (store_id, file_id)
        ).fetchone()
        if row is None:
            self.get_store(store_id)
            raise NotFound("vector_store_file", file_id, param="file_id")
        return attached_record(row)

    def list_attached(
        self,
        store_id: str,
        *,
        status: str | None = None,
        batch_id: str | None = None,
        limit: int = 20,
        order: str = "desc",
        after: str | None = None,
        before: str | None = None,
    ) -> Page[VectorStoreFileRecord]:
        """A store's files (optionally one batch's, optionally of one status), by attach time."""
        self.get_store(store_id)
        source = attached_source(store_id, status, batch_id)
        rows, has_more = fetch_page(self._read(), source, Listing(limit, order, after, before))
        return Page([attached_record(row) for row in rows], has_more)

    def detach(self, store_id: str, file_id: str) -> list[str]:
        """Remove a file from a store (its chunks, FTS rows and vectors; the file stays). Returns
        the file ids of duplicates put back in progress (the caller starts their ingest)."""
        with self._db.write_mutex:
            with self._db.write() as conn:
                attachments.require_store(conn, store_id)
                if conn.execute(
                    "SELECT 1 FROM vector_store_files WHERE vector_store_id = ? AND file_id = ?", (store_id, file_id)
                ).fetchone() is None:
                    raise NotFound("vector_store_file", file_id, param="file_id")
                chunk_ids, revived = attachments.remove(conn, store_id, file_id)
            self._vectors.remove(store_id, np.asarray(chunk_ids, dtype=np.int64))
        return revived

    def update_attributes(
        self, store_id: str, file_id: str, attributes: Mapping[str, Any] | None
    ) -> VectorStoreFileRecord:
        checked = check_attributes(attributes)
        with self._db.write() as conn:
            cursor = conn.execute(
                "UPDATE vector_store_files SET attributes = ? WHERE vector_store_id = ? AND file_id = ?",
                (dump_json(checked), store_id, file_id),
            )
            if cursor.rowcount == 0:
                attachments.require_store(conn, store_id)
                raise NotFound("vector_store_file", file_id, param="file_id")
        return self.get_attached(store_id, file_id)

    def commit_chunks(
        self, store_id: str, file_id: str, chunks: Sequence[ChunkRow], vectors: Any, *, model: str
    ) -> bool:
        """Make a document searchable: in ONE transaction insert its chunks (and FTS rows), set the
        row ``completed`` with its ``usage_bytes``; only if the row is still ``in_progress`` (False,
        and nothing written, otherwise). ``vectors``: one row per chunk, normalised here.

        The store's embedding model and dimension are fixed by its first commit; another model
        raises ModelMismatch, another dimension DimensionMismatch. A file whose bytes a completed
        file of the store already holds becomes its duplicate instead (no chunks written).
        """
        unit = attachments.check_vectors(chunks, vectors)
        with self._db.write_mutex:
            with self._db.write() as conn:
                ids = attachments.commit(conn, store_id, file_id, chunks, unit, model=model, now=self._now())
            if ids is None:
                return False
            self._vectors.add(store_id, ids, unit)
        logger.debug("documents_committed store=%s file=%s chunks=%d", store_id, file_id, len(ids))
        return True

    def replace_store_chunks(
        self, store_id: str, documents: Mapping[str, tuple[Sequence[ChunkRow], Any]], *, model: str
    ) -> list[str]:
        """A reindex's swap, in ONE transaction: the store's chunks become ``documents`` ({file_id:
        (chunks, vectors)}, for its completed files) embedded by ``model``. Completed files missing
        from ``documents`` go back to ``in_progress``; their ids are returned."""
        units = {file_id: (chunks, attachments.check_vectors(chunks, vectors)) for file_id, (chunks, vectors) in documents.items()}
        dimensions = {unit.shape[1] for _, unit in units.values() if len(unit)}
        if len(dimensions) > 1:
            raise InvalidInput("every document of a reindex must have vectors of one dimension", param="vectors")
        with self._db.write_mutex:
            with self._db.write() as conn:
                stale = attachments.replace_all(
                    conn, store_id, units, model=model, dimension=dimensions.pop() if dimensions else 0
                )
            self._vectors.drop(store_id)
        logger.info("event=documents_reindexed store=%s model=%s files=%d", store_id, model, len(units))
        return stale

    def fail(self, store_id: str, file_id: str, code: str, message: str) -> VectorStoreFileRecord:
        """``in_progress`` -> ``failed`` with ``last_error``; any other status is left as it is."""
        self._finish(store_id, file_id, "failed", code, message)
        return self.get_attached(store_id, file_id)

    def cancel(self, store_id: str, file_id: str) -> VectorStoreFileRecord:
        """``in_progress`` -> ``cancelled``; any other status is left as it is."""
        self._finish(store_id, file_id, "cancelled", None, None)
        return self.get_attached(store_id, file_id)

    def _finish(self, store_id: str, file_id: str, status: str, code: str | None, message: str | None) -> None:
        with self._db.write() as conn:
            conn.execute(
                "UPDATE vector_store_files SET status = ?, error_code = ?, error_message = ?"
                " WHERE vector_store_id = ? AND file_id = ? AND status = 'in_progress'",
                (status, code, message, store_id, file_id),
            )

    def pending(self) -> list[VectorStoreFileRecord]:
        """Every ``in_progress`` file of every store, oldest first (to resume after a restart)."""
        rows = self._read().execute(f"{ATTACHED_SELECT} WHERE v.status = 'in_progress' ORDER BY v.seq").fetchall()
        return [attached_record(row) for row in rows]

    def file_chunks(self, store_id: str, file_id: str) -> list[ChunkRecord]:
        """A completed file's chunks in document order (empty while it is not completed)."""
        self.get_attached(store_id, file_id)
        rows = self._read().execute(
            f"{CHUNK_SELECT} WHERE c.vector_store_id = ? AND c.file_id = ? AND v.status = 'completed'"
            " ORDER BY c.seq",
            (store_id, file_id),
        ).fetchall()
        return [chunk_record(row) for row in rows]

    # -- batches -----------------------------------------------------------------------------

    def create_batch(
        self,
        store_id: str,
        files: Sequence[str | BatchFile],
        *,
        attributes: Mapping[str, Any] | None = None,
        chunking: Mapping[str, Any] | None = None,
    ) -> BatchRecord:
        """A batch attaching each file (by id, or a BatchFile with its own attributes/chunking;
        those left None take the batch's), all in one transaction (one missing file: nothing)."""
        unique = batches.entries(files)
        batch_id = new_id("vsfb_")
        with self._db.write() as conn:
            batches.create(
                conn, store_id, batch_id, unique, attributes=attributes, chunking=chunking, now=self._now()
            )
        return self.get_batch(store_id, batch_id)

    def get_batch(self, store_id: str, batch_id: str) -> BatchRecord:
        record = batches.read(self._read(), store_id, batch_id)
        if record is None:
            self.get_store(store_id)
            raise NotFound("batch", batch_id, param="batch_id")
        return record

    def cancel_batch(self, store_id: str, batch_id: str) -> BatchRecord:
        """Cancel every in-progress file of the batch; the batch reports ``cancelled`` from then on."""
        with self._db.write() as conn:
            batches.cancel(conn, store_id, batch_id)
        return self.get_batch(store_id, batch_id)

    # -- search primitives (see stores.documents.search) --------------------------------------

    def keyword_search(
        self,
        store_ids: Collection[str],
        query: str,
        limit: int,
        *,
        file_ids: Collection[str] | None = None,
        require_all: bool = False,
    ) -> list[Hit]:
        """BM25 matches among completed files, best first; scores are ``-bm25`` (positive, higher
        is better). ``require_all``: every word must occur. Never raises on the query's text."""
        return self._search.keyword(store_ids, query, limit, file_ids=file_ids, require_all=require_all)

    def vector_search(
        self, store_ids: Collection[str], vector: Any, limit: int, *, file_ids: Collection[str] | None = None
    ) -> list[Hit]:
        """Exact cosine search among completed files, best first (scores in [-1, 1])."""
        return self._search.vectors(store_ids, vector, limit, file_ids=file_ids)

    def cosines(self, store_ids: Collection[str], vector: Any, chunk_ids: Collection[int]) -> dict[int, float]:
        """The cosine of ``vector`` with each listed chunk of a completed file of ``store_ids``."""
        return self._search.cosines(store_ids, vector, chunk_ids)

    def filter_files(self, store_ids: Collection[str], filters: Mapping[str, Any] | None) -> set[str] | None:
        """File ids of ``store_ids`` whose attributes match an OpenAI filter; None (all) without one."""
        return self._search.filter_files(store_ids, filters)

    def get_chunks(self, chunk_ids: Iterable[int]) -> list[ChunkRecord]:
        """The chunks with these ids in the order asked (ids no longer stored are left out)."""
        return self._search.get_chunks(chunk_ids)
