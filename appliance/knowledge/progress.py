"""Where each ingest job is now (phase, pages, chunks), kept in memory and watched by event streams.

The durable state of a file (in_progress, completed, failed, cancelled) lives in the document
library; this board only says how far a running job has got, so a restart starts it at `queued`.
Watchers wait on a version counter with a bound, so a stream never hangs on a job that stalls.
"""

from __future__ import annotations

import asyncio
from dataclasses import asdict, dataclass, replace
from typing import Any

Key = tuple[str, str]  # (vector store id, file id)
PHASES = ("queued", "extracting", "chunking", "embedding", "indexing")


@dataclass(frozen=True)
class Progress:
    phase: str = "queued"
    pages_done: int | None = None
    pages_total: int | None = None
    chunks_done: int | None = None
    chunks_total: int | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class ProgressBoard:
    def __init__(self) -> None:
        self._progress: dict[Key, Progress] = {}
        self._version = 0
        self._changed = asyncio.Condition()

    def get(self, key: Key) -> Progress | None:
        return self._progress.get(key)

    def set(self, key: Key, progress: Progress) -> None:
        self._progress[key] = progress
        self._bump()

    def update(self, key: Key, **fields: Any) -> None:
        self.set(key, replace(self._progress.get(key) or Progress(), **fields))

    def clear(self, key: Key) -> None:
        if self._progress.pop(key, None) is not None:
            self._bump()

    @property
    def version(self) -> int:
        return self._version

    async def wait(self, version: int, timeout: float) -> int:
        """Until something changes after `version`, or `timeout` seconds; the version now."""
        async with self._changed:
            try:
                await asyncio.wait_for(self._changed.wait_for(lambda: self._version != version), timeout)
            except TimeoutError:
                pass
            return self._version

    def _bump(self) -> None:
        self._version += 1
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return
        loop.create_task(self._notify())

    async def _notify(self) -> None:
        async with self._changed:
            self._changed.notify_all()
