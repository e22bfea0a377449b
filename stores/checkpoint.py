"""Checkpoint files of one store's index: ``<stem>.faiss`` (+ optional extra raw files) and a sidecar.

Every file is written to a temp name, fsynced and atomically renamed; the JSON sidecar, written
last, is the commit point and carries the sha256 and size of every other file, so a torn or stale
set of files is detected on load and the caller rebuilds from SQLite instead of trusting it.
No pickle: the index goes through ``faiss.write_index`` and extras are raw little-endian arrays.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

CHECKPOINT_FORMAT = 2
INDEX_SUFFIX = ".faiss"
SIDECAR_SUFFIX = ".json"
# Every file a checkpoint may own, so drop/discard removes all of them.
ALL_SUFFIXES = (SIDECAR_SUFFIX, INDEX_SUFFIX, ".dead")


@dataclass(frozen=True)
class Checkpoint:
    """A verified checkpoint: its sidecar fields, the index file's path and the other files' bytes.

    The index file (1.5 GB for a million 384-d keys) is hashed as a stream and left on disk for
    ``faiss.read_index`` to read: loading it into Python bytes and deserialising from memory cost
    four times as long. We hold the data path's lock, so nothing replaces it in between.
    """

    sidecar: dict[str, Any]
    index_path: Path
    files: dict[str, bytes]

    @property
    def seq(self) -> int:
        return int(self.sidecar["seq"])


def write_checkpoint(stem: Path, files: dict[str, bytes | Path], sidecar: dict[str, Any]) -> None:
    """Write each ``suffix -> payload`` file (bytes, or an already-written temp file) then the sidecar.

    ``sidecar`` gets ``format`` and a ``files`` entry (sha256 + size per suffix) added.
    """
    stem.parent.mkdir(parents=True, exist_ok=True)
    manifest: dict[str, dict[str, Any]] = {}
    for suffix, payload in files.items():
        target = stem.with_suffix(suffix)
        if isinstance(payload, Path):
            tmp = payload
        else:
            tmp = target.with_suffix(suffix + ".tmp")
            tmp.write_bytes(payload)
        manifest[suffix] = {"sha256": _fsync_and_hash(tmp), "size": tmp.stat().st_size}
        os.replace(tmp, target)
    for suffix in ALL_SUFFIXES:  # a file the new checkpoint does not own must not linger
        if suffix != SIDECAR_SUFFIX and suffix not in files:
            stem.with_suffix(suffix).unlink(missing_ok=True)
    body = {**sidecar, "format": CHECKPOINT_FORMAT, "files": manifest}
    _atomic_write(stem.with_suffix(SIDECAR_SUFFIX), json.dumps(body, sort_keys=True).encode())
    _fsync_dir(stem.parent)


def temp_index_path(stem: Path) -> Path:
    """Where ``faiss.write_index`` writes before ``write_checkpoint`` renames it into place."""
    stem.parent.mkdir(parents=True, exist_ok=True)
    return stem.with_suffix(INDEX_SUFFIX + ".tmp")


def read_checkpoint(stem: Path, *, kind: str, dimension: int, max_seq: int) -> Checkpoint | None:
    """The checkpoint at ``stem`` when complete and consistent, else None (and a warning why)."""
    try:
        sidecar = json.loads(stem.with_suffix(SIDECAR_SUFFIX).read_bytes())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        logger.warning("stores_checkpoint_unreadable stem=%s error=%s", stem, exc)
        return None
    problem = _check_sidecar(sidecar, kind, dimension, max_seq)
    files: dict[str, bytes] = {}
    if problem is None and INDEX_SUFFIX not in sidecar["files"]:
        problem = "no index file"
    if problem is None:
        for suffix, entry in sidecar["files"].items():
            path = stem.with_suffix(suffix)
            try:
                size, digest, data = _hash_file(path, keep=suffix != INDEX_SUFFIX)
            except OSError as exc:
                problem = f"{suffix} unreadable ({exc})"
                break
            if size != entry.get("size") or digest != entry.get("sha256"):
                problem = f"checksum mismatch in {suffix}"
                break
            if data is not None:
                files[suffix] = data
    if problem is not None:
        reject(stem, problem)
        return None
    return Checkpoint(sidecar, stem.with_suffix(INDEX_SUFFIX), files)


def _hash_file(path: Path, *, keep: bool) -> tuple[int, str, bytes | None]:
    """Size and sha256 of a file read in 8 MiB chunks, and its bytes when ``keep``."""
    digest, size, kept = hashlib.sha256(), 0, bytearray() if keep else None
    with open(path, "rb") as handle:
        while chunk := handle.read(8 << 20):
            digest.update(chunk)
            size += len(chunk)
            if kept is not None:
                kept += chunk
    return size, digest.hexdigest(), bytes(kept) if kept is not None else None


def reject(stem: Path, reason: str) -> None:
    logger.warning("stores_checkpoint_rejected stem=%s reason=%s", stem, reason)


def remove_checkpoint(stem: Path) -> None:
    for suffix in ALL_SUFFIXES:
        stem.with_suffix(suffix).unlink(missing_ok=True)


def _check_sidecar(sidecar: object, kind: str, dimension: int, max_seq: int) -> str | None:
    if not isinstance(sidecar, dict) or sidecar.get("format") != CHECKPOINT_FORMAT:
        return "unknown sidecar format"
    if sidecar.get("kind") != kind:
        return f"kind {sidecar.get('kind')!r} is not the store's {kind!r}"
    if sidecar.get("dimension") != dimension:
        return "dimension mismatch"
    seq, count, max_id, files = sidecar.get("seq"), sidecar.get("count"), sidecar.get("max_id"), sidecar.get("files")
    if not all(isinstance(v, int) for v in (seq, count, max_id)) or not isinstance(files, dict):
        return "malformed sidecar"
    if not all(suffix in ALL_SUFFIXES and isinstance(e, dict) for suffix, e in files.items()):
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
