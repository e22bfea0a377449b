"""GeneratedFiles: the folder of generated images served back by URL, with unique names and an age limit.

Files are written under ``<data_path>/generated/images/`` as ``<uuid4 hex>.png`` (a temp name, then
an atomic rename, so a reader never sees half a file). A name is looked up only when it matches that
exact pattern, so nothing outside the folder can be reached. Files older than ``max_age`` seconds are
gone: a lookup refuses them and ``cleanup`` deletes them (at start, periodically, and after saves).
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import time
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path

logger = logging.getLogger(__name__)

IMAGE_NAME = re.compile(r"[0-9a-f]{32}\.png")
_TEMP_SUFFIX = ".tmp"
MAX_CLEANUP_INTERVAL = 300.0  # seconds between sweeps at most, whatever the age limit


class GeneratedFiles:
    """One folder of generated files. Blocking methods do file I/O: call them from a thread."""

    def __init__(self, folder: Path, max_age: float, *, clock: Callable[[], float] = time.time) -> None:
        if max_age <= 0:
            raise ValueError(f"max_age must be positive, got {max_age!r}")
        self.folder = Path(folder)
        self.max_age = max_age
        self._clock = clock
        self._last_cleanup = 0.0

    @property
    def cleanup_interval(self) -> float:
        """How often the periodic sweep runs: a quarter of the age limit, between 1 s and 5 min."""
        return min(MAX_CLEANUP_INTERVAL, max(1.0, self.max_age / 4))

    def save(self, contents: Sequence[bytes]) -> list[str]:
        """Write each item as a new PNG; returns the names, in order. Blocking."""
        self.folder.mkdir(parents=True, exist_ok=True)
        names: list[str] = []
        try:
            for data in contents:
                name = f"{uuid.uuid4().hex}.png"
                temp = self.folder / (name + _TEMP_SUFFIX)
                try:
                    temp.write_bytes(data)
                    os.replace(temp, self.folder / name)
                finally:
                    temp.unlink(missing_ok=True)
                names.append(name)
        except BaseException:
            for name in names:  # all or nothing: no orphans nobody has a URL for
                (self.folder / name).unlink(missing_ok=True)
            raise
        if self._clock() - self._last_cleanup >= self.cleanup_interval:
            self.cleanup()
        return names

    def find(self, name: str) -> Path | None:
        """The file for a served name, or None: a bad name, a missing file, or one past its age. Blocking."""
        if not IMAGE_NAME.fullmatch(name):
            return None
        path = self.folder / name
        try:
            modified = path.stat().st_mtime
        except OSError:
            return None
        if self._expired(modified):
            path.unlink(missing_ok=True)
            return None
        return path

    def read(self, name: str) -> bytes | None:
        """The bytes of a served name, or None (see ``find``); a file removed meanwhile is None too. Blocking."""
        path = self.find(name)
        if path is None:
            return None
        try:
            return path.read_bytes()
        except OSError:
            return None

    def cleanup(self) -> int:
        """Delete generated files older than the age limit (and stale temp files); returns how many. Blocking."""
        self._last_cleanup = self._clock()
        removed = 0
        try:
            entries = list(os.scandir(self.folder))
        except FileNotFoundError:
            return 0
        except OSError as exc:
            logger.warning("event=generated_cleanup_failed folder=%s error=%s", self.folder, exc)
            return 0
        for entry in entries:
            if not (IMAGE_NAME.fullmatch(entry.name) or entry.name.endswith(_TEMP_SUFFIX)):
                continue  # only ever delete what this class wrote
            try:
                if entry.is_file(follow_symlinks=False) and self._expired(entry.stat().st_mtime):
                    os.unlink(entry.path)
                    removed += 1
            except OSError as exc:
                logger.debug("event=generated_unlink_failed path=%s error=%s", entry.path, exc)
        if removed:
            logger.info("event=generated_files_removed folder=%s count=%d", self.folder, removed)
        return removed

    async def keep_clean(self) -> None:
        """Sweep now and then every ``cleanup_interval`` until cancelled (the app's lifespan runs it)."""
        while True:
            try:
                await asyncio.to_thread(self.cleanup)
            except Exception:
                logger.exception("event=generated_cleanup_failed folder=%s", self.folder)
            await asyncio.sleep(self.cleanup_interval)

    def _expired(self, modified: float) -> bool:
        return self._clock() - modified > self.max_age
