"""The hidden `.NAME.partial` file a download is written to, and what makes it safe to resume.

It is opened without following links and locked (a second writer, in this process or another, gets
DownloadBusy at once); it keeps the running sha256 of what it holds, the server's validator in a
`.NAME.partial.etag` sidecar for `If-Range`, and becomes the target only through `commit` (fsync,
then an atomic rename). An empty partial is never left behind.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import logging
import os
from pathlib import Path
from typing import BinaryIO

from appliance.gallery.errors import DownloadBusy, DownloadFailed
from appliance.gallery.paths import etag_path, partial_path
from appliance.gallery.uris import SourceURI

logger = logging.getLogger(__name__)


class Discard(Exception):
    """A failure after which the partial file is worthless (size cap): remove it, then raise `error`."""

    def __init__(self, error: DownloadFailed) -> None:
        super().__init__(error.message)
        self.error = error


class PartialFile:
    """The hidden `.NAME.partial` file of one target, locked against a second writer for its lifetime."""

    def __init__(self, target: Path) -> None:
        self.target = target
        self.path = partial_path(target)
        self.sidecar = etag_path(target)
        self.handle: BinaryIO | None = None
        self.digest = hashlib.sha256()
        self.size = 0

    def __enter__(self) -> PartialFile:
        # O_NOFOLLOW: a link planted under the partial's name must not carry the bytes elsewhere.
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0), 0o644)
        handle = os.fdopen(fd, "r+b")
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            handle.close()
            if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise DownloadBusy(f"{self.target.name} is being downloaded by another job or process") from None
            raise
        self.handle = handle
        handle.seek(0)
        for block in iter(lambda: handle.read(1 << 20), b""):
            self.digest.update(block)
        self.size = handle.tell()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.handle is not None:
            if self.size == 0:
                self.discard()  # nothing worth resuming: leave no empty file behind
            self.handle.close()
            self.handle = None

    def validator(self) -> str | None:
        try:
            text = self.sidecar.read_text(encoding="utf-8").strip()
        except OSError:
            return None
        return text or None

    def remember(self, validator: str | None) -> None:
        if validator:
            tmp = self.sidecar.with_name(self.sidecar.name + ".tmp")
            tmp.write_text(validator + "\n", encoding="utf-8")
            os.replace(tmp, self.sidecar)
        else:
            self.sidecar.unlink(missing_ok=True)

    def restart(self) -> None:
        assert self.handle is not None
        self.handle.truncate(0)
        self.handle.seek(0)
        self.digest = hashlib.sha256()
        self.size = 0
        self.sidecar.unlink(missing_ok=True)

    def write(self, data: bytes) -> None:
        assert self.handle is not None
        self.handle.write(data)
        self.digest.update(data)
        self.size += len(data)

    def verify(self, sha256: str | None, source: SourceURI) -> None:
        if sha256 is not None and self.digest.hexdigest() != sha256:
            raise Discard(
                DownloadFailed(
                    f"sha256 mismatch for {self.target.name} from {source.original}: expected {sha256}, "
                    f"got {self.digest.hexdigest()}; the file was removed"
                )
            )

    def commit(self) -> None:
        assert self.handle is not None
        self.handle.flush()
        os.fsync(self.handle.fileno())
        os.replace(self.path, self.target)
        self.sidecar.unlink(missing_ok=True)
        fsync_dir(self.target.parent)
        logger.info("event=download_complete file=%s bytes=%d", self.target, self.size)

    def discard(self) -> None:
        self.path.unlink(missing_ok=True)
        self.sidecar.unlink(missing_ok=True)


def fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
