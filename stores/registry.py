"""Named stores over one data path: open/close, get (implicit create, as LocalAI), create, list, drop.

The registry owns the data path's ``StoreDatabase`` (and so its lock) and one ``VectorStore`` per
name in use; closing it checkpoints every open store's index. The empty name is the default store.
Names starting with "." are the registry's own: ``list`` hides them, and staging stores (an import
in progress, renamed into place by ``promote``) left behind by a crash are dropped at ``open``.
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import threading
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

from stores.checkpoint import remove_checkpoint
from stores.db import StoreDatabase
from stores.errors import InvalidInput, StoreClosed, StoreExists, StoreNotFound
from stores.index import CompactionPolicy
from stores.index_options import INDEX_KINDS, parse_index_options
from stores.store import VectorStore

logger = logging.getLogger(__name__)

DEFAULT_STORE = ""
HIDDEN_PREFIX = "."
STAGING_PREFIX = ".import-"
METRICS = ("cosine",)


@dataclass(frozen=True)
class StoreInfo:
    name: str
    count: int
    dimension: int | None
    metric: str
    index_kind: str
    index_options: dict[str, Any] | None
    embedding_model: str | None
    embedding_dimension: int | None
    created_at: str
    # the approximate index's measured ef_search/nprobe (see ``IndexState.tuned``); only for a store
    # open in this process, None otherwise and before the first tuning
    tuned: dict[str, Any] | None = None


class StoreRegistry:
    """Every named store of one data path."""

    def __init__(
        self,
        data_path: str | os.PathLike[str],
        *,
        checkpoint_every: int = 1000,
        compaction: CompactionPolicy | None = None,
    ) -> None:
        self.data_path = Path(data_path)
        self.checkpoint_every = checkpoint_every
        self.compaction = compaction or CompactionPolicy()
        self._db: StoreDatabase | None = None
        self._stores: dict[str, VectorStore] = {}
        self._mutex = threading.RLock()

    def open(self) -> StoreRegistry:
        with self._mutex:
            if self._db is None:
                db = StoreDatabase(self.data_path)
                db.open()
                self._db = db
                self._drop_leftover_staging(db)
        return self

    def close(self) -> None:
        with self._mutex:
            if self._db is None:
                return
            try:
                for store in self._stores.values():
                    store.close()
            finally:
                self._stores.clear()
                self._db.close()
                self._db = None
            logger.info("stores_registry_closed path=%s", self.data_path)

    def __enter__(self) -> StoreRegistry:
        return self.open()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.close()

    @property
    def index_dir(self) -> Path:
        return self.data_path / "index"

    def get(self, name: str | None = DEFAULT_STORE, *, create: bool = True) -> VectorStore:
        """The named store ("" or None = default); created on first use unless ``create=False``."""
        name = name or DEFAULT_STORE
        with self._mutex:
            db = self._require_db()
            store = self._stores.get(name)
            if store is not None:
                return store
            row = db.reader().execute("SELECT id FROM stores WHERE name = ?", (name,)).fetchone()
            if row is None:
                if not create:
                    raise StoreNotFound(f"store {name!r} does not exist", param="store")
                self.create(name)
                row = db.reader().execute("SELECT id FROM stores WHERE name = ?", (name,)).fetchone()
            store = VectorStore(db, int(row[0]), name, self.index_dir, self.checkpoint_every, compaction=self.compaction)
            self._stores[name] = store
            return store

    def create(
        self,
        name: str | None,
        *,
        index_kind: str = "exact",
        metric: str = "cosine",
        index_options: dict[str, Any] | None = None,
        embedding_model: str | None = None,
        embedding_dimension: int | None = None,
    ) -> StoreInfo:
        name = name or DEFAULT_STORE
        if index_kind not in INDEX_KINDS:
            raise InvalidInput(f"index_kind must be one of {list(INDEX_KINDS)}, got {index_kind!r}", param="index_kind")
        if metric not in METRICS:
            raise InvalidInput(f"metric must be one of {list(METRICS)}, got {metric!r}", param="metric")
        if index_options is not None and not isinstance(index_options, dict):
            raise InvalidInput("index_options must be a JSON object", param="index_options")
        parse_index_options(index_kind, index_options)  # unknown names or bad values are refused now
        options_json = json.dumps(index_options, sort_keys=True) if index_options else None
        with self._mutex:
            db = self._require_db()
            with db.write() as conn:
                if conn.execute("SELECT 1 FROM stores WHERE name = ?", (name,)).fetchone():
                    raise StoreExists(f"store {name!r} already exists", param="name")
                conn.execute(
                    "INSERT INTO stores (name, metric, index_kind, index_options, embedding_model, embedding_dimension)"
                    " VALUES (?, ?, ?, ?, ?, ?)",
                    (name, metric, index_kind, options_json, embedding_model, embedding_dimension),
                )
            logger.info("stores_created name=%r index_kind=%s", name, index_kind)
            return self.describe(name)

    def describe(self, name: str | None) -> StoreInfo:
        name = name or DEFAULT_STORE
        for info in self._infos("WHERE s.name = ?", (name,)):
            return info
        raise StoreNotFound(f"store {name!r} does not exist", param="store")

    def list(self) -> list[StoreInfo]:
        """The user's stores; hidden ones (staging imports) are left out."""
        return self._infos("WHERE substr(s.name, 1, 1) <> ?", (HIDDEN_PREFIX,))

    def snapshot(self) -> AbstractContextManager[sqlite3.Connection]:
        """A dedicated connection reading one committed state of the whole data path (for exports)."""
        return self._require_db().snapshot()

    def promote(self, staging: str, target: str | None, *, replace: bool = False) -> StoreInfo:
        """Give store ``staging`` the name ``target`` in one transaction.

        An existing ``target`` is ``StoreExists`` unless ``replace``, which drops it in that same
        transaction: readers see the old store or the new one, never neither. Index checkpoints are
        keyed by store id, so the promoted store's stay valid under its new name.
        """
        target = target or DEFAULT_STORE
        with self._mutex:
            db = self._require_db()
            replaced = self._stores.pop(target, None) if replace else None
            if replaced is not None:
                replaced.close(checkpoint=False)  # stops a running rebuild before its rows go
            with db.write() as conn:
                row = conn.execute("SELECT id FROM stores WHERE name = ?", (staging,)).fetchone()
                if row is None:
                    raise StoreNotFound(f"store {staging!r} does not exist", param="store")
                old = conn.execute("SELECT id FROM stores WHERE name = ?", (target,)).fetchone()
                if old is not None:
                    if not replace:
                        raise StoreExists(
                            f"store {target!r} already exists; pass replace=true to swap it out", param="store"
                        )
                    conn.execute("DELETE FROM stores WHERE id = ?", (old[0],))
                conn.execute("UPDATE stores SET name = ? WHERE id = ?", (target, row[0]))
            if old is not None:
                self._remove_index_files(int(old[0]))
            store = self._stores.pop(staging, None)
            if store is not None:
                store.name = target
                self._stores[target] = store
            logger.info("stores_promoted staging=%r name=%r replaced=%s", staging, target, old is not None)
            return self.describe(target)

    def _drop_leftover_staging(self, db: StoreDatabase) -> None:
        """Staging stores outlive only a crash mid-import; nothing refers to them, so they go."""
        with db.write() as conn:
            rows = conn.execute(
                "SELECT id, name FROM stores WHERE substr(name, 1, ?) = ?", (len(STAGING_PREFIX), STAGING_PREFIX)
            ).fetchall()
            conn.executemany("DELETE FROM stores WHERE id = ?", [(r[0],) for r in rows])
        for store_id, name in rows:
            self._remove_index_files(int(store_id))
            logger.warning("stores_staging_discarded name=%r", name)

    def _remove_index_files(self, store_id: int) -> None:
        """The checkpoint files of a store no ``VectorStore`` object is open for (keyed by its id)."""
        remove_checkpoint(self.index_dir / str(store_id))

    def drop(self, name: str | None) -> None:
        """Delete a store, its rows and its index files."""
        name = name or DEFAULT_STORE
        with self._mutex:
            db = self._require_db()
            store = self._stores.pop(name, None)
            if store is not None:
                store.close(checkpoint=False)  # stops a running rebuild before the rows go
            with db.write() as conn:
                row = conn.execute("SELECT id FROM stores WHERE name = ?", (name,)).fetchone()
                if row is None:
                    raise StoreNotFound(f"store {name!r} does not exist", param="store")
                conn.execute("DELETE FROM stores WHERE id = ?", (row[0],))
            self._remove_index_files(int(row[0]))
            logger.info("stores_dropped name=%r", name)

    def _infos(self, where: str, args: tuple[str, ...]) -> list[StoreInfo]:
        db = self._require_db()
        query = (
            "SELECT s.name, (SELECT count(*) FROM rows r WHERE r.store_id = s.id), s.dimension, s.metric,"
            " s.index_kind, s.index_options, s.embedding_model, s.embedding_dimension, s.created_at"
            f" FROM stores s {where} ORDER BY s.name"
        )
        infos = []
        for row in db.reader().execute(query, args):
            options = json.loads(row[5]) if row[5] else None
            store = self._stores.get(row[0])
            tuned = store.index_state().tuned if store is not None and row[4] != "exact" else None
            infos.append(StoreInfo(*row[:5], options, *row[6:], tuned=tuned))
        return infos

    def _require_db(self) -> StoreDatabase:
        if self._db is None:
            raise StoreClosed(f"the store registry at {self.data_path} is not open")
        return self._db
