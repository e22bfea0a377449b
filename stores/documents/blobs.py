"""Uploaded files' bytes under ``<root>/files/<file_id>``, written so a crash never leaves a row
pointing at a missing blob.

A blob is moved (or copied) to a hidden temp name, fsynced, renamed to its final name and the
folder fsynced, all before its ``files`` row is inserted; a delete removes the row first and the
blob after. A crash in between leaves only an orphan blob (or temp), which ``sweep`` removes at open.
"""

from __future__ import annotations

import errno
import logging
import os
import shutil
from collections.abc import Collection
from pathlib import Path

logger = logging.getLogger(__name__)

TEMP_PREFIX = ".tmp-"


class BlobFolder:
    """The folder of file blobs, named by file id."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def open(self) -> None:
        self.path.mkdir(parents=True, exist_ok=True)

    def path_of(self, file_id: str) -> Path:
        return self.path / file_id

    def put(self, src: Path, file_id: str) -> int:
        """Move ``src`` in as ``file_id`` durably (rename when on the same filesystem, else copy);
        the blob's size in bytes."""
        temp = self.path / f"{TEMP_PREFIX}{file_id}"
        try:
            try:
                os.replace(src, temp)
            except OSError as exc:
                if exc.errno != errno.EXDEV:
                    raise
                shutil.copyfile(src, temp)
                src.unlink()
            fd = os.open(temp, os.O_RDONLY)
            try:
                os.fsync(fd)
                size = os.fstat(fd).st_size
            finally:
                os.close(fd)
            os.replace(temp, self.path_of(file_id))
            self._fsync_folder()
        except BaseException:
            temp.unlink(missing_ok=True)
            raise
        return size

    def remove(self, file_id: str) -> None:
        self.path_of(file_id).unlink(missing_ok=True)
        self._fsync_folder()

    def sweep(self, known: Collection[str]) -> int:
        """Remove temps and blobs no row names (left by a crash); the number removed."""
        removed = 0
        for entry in self.path.iterdir():
            if entry.name in known:
                continue
            if entry.is_dir():
                logger.warning("documents_blob_unexpected_folder path=%s", entry)
                continue
            entry.unlink(missing_ok=True)
            removed += 1
        if removed:
            self._fsync_folder()
            logger.info("documents_orphan_blobs_removed count=%d", removed)
        missing = [file_id for file_id in known if not self.path_of(file_id).exists()]
        if missing:
            logger.error("documents_blobs_missing count=%d first=%s", len(missing), missing[0])
        return removed

    def _fsync_folder(self) -> None:
        fd = os.open(self.path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
