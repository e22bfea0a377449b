"""Named stores over one data path: open/close, get (implicit create, as LocalAI), create, list, drop.

The registry owns the data path's ``StoreDatabase`` (and so its lock) and one ``VectorStore`` per
name in use; closing it checkpoints every open store's index. The empty name is the default store.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

from stores.db import StoreDatabase
from stores.errors import InvalidInput, StoreClosed, StoreExists, StoreNotFound
from stores.store import VectorStore

logger = logging.getLogger(__name__)

DEFAULT_STORE = ""
INDEX_KINDS = ("exact",)
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


class StoreRegistry:
    """Every named store of one data path."""

    def __init__(self, data_path: str | os.PathLike[str], *, checkpoint_every: int = 1000) -> None:
        self.data_path = Path(data_path)
        self.checkpoint_every = checkpoint_every
        self._db: StoreDatabase | None = None
        self._stores: dict[str, VectorStore] = {}
        self._mutex = threading.RLock()

    def open(self) -> StoreRegistry:
        with self._mutex:
            if self._db is None:
                db = StoreDatabase(self.data_path)
                db.open()
                self._db = db
        return self

    def close(self) -> None:
        with self._mutex:
            if self._db is None:
                return
            try:
                for store in self._stores.values():
                    store.checkpoint()
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
            store = VectorStore(db, int(row[0]), name, self.index_dir, self.checkpoint_every)
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
        return self._infos("", ())

    def drop(self, name: str | None) -> None:
        """Delete a store, its rows and its index files."""
        name = name or DEFAULT_STORE
        with self._mutex:
            db = self._require_db()
            with db.write() as conn:
                row = conn.execute("SELECT id FROM stores WHERE name = ?", (name,)).fetchone()
                if row is None:
                    raise StoreNotFound(f"store {name!r} does not exist", param="store")
                conn.execute("DELETE FROM stores WHERE id = ?", (row[0],))
            store = self._stores.pop(name, None)
            if store is not None:
                store.discard_checkpoint()
            else:
                for suffix in (".json", ".faiss"):
                    (self.index_dir / f"{row[0]}{suffix}").unlink(missing_ok=True)
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
            infos.append(StoreInfo(*row[:5], options, *row[6:]))
        return infos

    def _require_db(self) -> StoreDatabase:
        if self._db is None:
            raise StoreClosed(f"the store registry at {self.data_path} is not open")
        return self._db
