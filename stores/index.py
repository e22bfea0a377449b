"""The exact FAISS index of one store and its on-disk checkpoint.

Keys are L2-normalised (in float64, then stored as float32) into an ``IndexFlatIP`` inside an
``IndexIDMap2`` keyed by SQLite row ids, so inner product is the cosine of the raw keys and deletes
work. A checkpoint is ``faiss.write_index`` + a JSON sidecar (seq, count, dimension, sha256), both
written to a temp file, fsynced and atomically renamed; loading verifies all of it and returns None
when anything is off, so the caller rebuilds from SQLite instead of trusting the file.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import faiss
import numpy as np

from stores.errors import InvalidInput

if TYPE_CHECKING:
    from numpy.typing import NDArray

logger = logging.getLogger(__name__)

CHECKPOINT_FORMAT = 1


def normalise(vectors: NDArray[np.float32]) -> NDArray[np.float32]:
    """Unit-length float32 rows; a zero or non-finite row has no direction and is refused."""
    as64 = np.asarray(vectors, dtype=np.float64)
    norms = np.linalg.norm(as64, axis=1)
    if not np.all(np.isfinite(norms)) or np.any(norms == 0):
        raise InvalidInput("a key must be a finite, non-zero vector (cosine similarity is undefined)")
    return np.ascontiguousarray(as64 / norms[:, None], dtype=np.float32)


class ExactIndex:
    """Exact cosine search over normalised vectors, keyed by int64 row ids."""

    kind = "exact"

    def __init__(self, dimension: int, index: faiss.Index | None = None) -> None:
        self.dimension = dimension
        self._index = index if index is not None else faiss.IndexIDMap2(faiss.IndexFlatIP(dimension))

    @property
    def count(self) -> int:
        return int(self._index.ntotal)

    def add(self, ids: NDArray[np.int64], vectors: NDArray[np.float32]) -> None:
        if len(ids) == 0:
            return
        unit = normalise(vectors)
        self._index.add_with_ids(unit, np.ascontiguousarray(ids, dtype=np.int64))

    def remove(self, ids: NDArray[np.int64]) -> int:
        if len(ids) == 0:
            return 0
        return int(self._index.remove_ids(np.ascontiguousarray(ids, dtype=np.int64)))

    def search(self, query: NDArray[np.float32], k: int) -> tuple[NDArray[np.int64], NDArray[np.float32]]:
        """The ``k`` nearest ids, most similar first, with cosine similarities clamped to [-1, 1]."""
        k = min(k, self.count)
        if k <= 0:
            return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.float32)
        unit = normalise(np.asarray(query, dtype=np.float32).reshape(1, -1))
        sims, ids = self._index.search(unit, k)
        keep = ids[0] >= 0
        return ids[0][keep], np.clip(sims[0][keep], -1.0, 1.0)

    # -- checkpoint -------------------------------------------------------------------------

    def save(self, stem: Path, seq: int) -> None:
        """Write ``<stem>.faiss`` and ``<stem>.json`` covering every write up to ``seq``."""
        stem.parent.mkdir(parents=True, exist_ok=True)
        data_path = stem.with_suffix(".faiss")
        tmp = data_path.with_suffix(".faiss.tmp")
        faiss.write_index(self._index, str(tmp))
        digest = _fsync_and_hash(tmp)
        os.replace(tmp, data_path)
        sidecar = {
            "format": CHECKPOINT_FORMAT,
            "kind": self.kind,
            "dimension": self.dimension,
            "count": self.count,
            "seq": seq,
            "sha256": digest,
        }
        _atomic_write(stem.with_suffix(".json"), json.dumps(sidecar).encode())
        _fsync_dir(stem.parent)

    @classmethod
    def load(cls, stem: Path, dimension: int, max_seq: int) -> tuple[ExactIndex, int] | None:
        """The checkpointed index and the seq it covers, or None when missing, stale or corrupt."""
        try:
            sidecar = json.loads(stem.with_suffix(".json").read_bytes())
            data = stem.with_suffix(".faiss").read_bytes()
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            logger.warning("stores_checkpoint_unreadable stem=%s error=%s", stem, exc)
            return None
        problem = _check_sidecar(sidecar, dimension, max_seq)
        if problem is None and hashlib.sha256(data).hexdigest() != sidecar["sha256"]:
            problem = "checksum mismatch"
        if problem is None:
            try:
                index = faiss.deserialize_index(np.frombuffer(data, dtype=np.uint8))
            except RuntimeError as exc:
                problem = f"unreadable ({exc})"
            else:
                if not isinstance(index, faiss.IndexIDMap2) or index.d != dimension:
                    problem = "wrong index type or dimension"
                elif index.ntotal != sidecar["count"]:
                    problem = "count mismatch"
        if problem is not None:
            logger.warning("stores_checkpoint_rejected stem=%s reason=%s", stem, problem)
            return None
        return cls(dimension, index), int(sidecar["seq"])


def remove_checkpoint(stem: Path) -> None:
    for suffix in (".json", ".faiss"):
        stem.with_suffix(suffix).unlink(missing_ok=True)


def _check_sidecar(sidecar: object, dimension: int, max_seq: int) -> str | None:
    if not isinstance(sidecar, dict) or sidecar.get("format") != CHECKPOINT_FORMAT:
        return "unknown sidecar format"
    if sidecar.get("kind") != ExactIndex.kind or sidecar.get("dimension") != dimension:
        return "kind or dimension mismatch"
    seq, count = sidecar.get("seq"), sidecar.get("count")
    if not isinstance(seq, int) or not isinstance(count, int) or not isinstance(sidecar.get("sha256"), str):
        return "malformed sidecar"
    if seq > max_seq:
        return f"checkpoint seq {seq} is ahead of the database ({max_seq})"
    return None


def _fsync_and_hash(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb+") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
        os.fsync(handle.fileno())
    return digest.hexdigest()


def _atomic_write(path: Path, payload: bytes) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    with open(tmp, "wb") as handle:
        handle.write(payload)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
