"""Install and delete jobs: LocalAI's status objects, kept in memory, bounded, watched by streams.

A job's fields are LocalAI's `GalleryOpStatus` (`processed`, `progress`, `file_name`, `file_size`,
`downloaded_size`, `message`, `error`, `deletion`, `gallery_element_name`, `cancelled`,
`cancellable`) plus ours (`uuid`, `state`, `model`, byte counts, times). Worker threads update a
job under a lock; watchers poll its version with a bound, so a stream never hangs on a stalled job.
Finished jobs beyond the registry's size are forgotten oldest first.
"""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any, Literal

from appliance.gallery.errors import JobFinished, JobNotFound, TooManyJobs
from appliance.gallery.fetch import CancelToken

State = Literal["queued", "running", "completed", "failed", "cancelled"]
FINISHED: frozenset[str] = frozenset({"completed", "failed", "cancelled"})


def human_size(size: int | None) -> str:
    """LocalAI's formatBytes: '512 B', '1.5 KiB', '3.2 GiB'; '' when unknown."""
    if size is None:
        return ""
    if size < 1024:
        return f"{size} B"
    value, unit = float(size), 0
    while value >= 1024 and unit < 6:
        value /= 1024
        unit += 1
    return f"{value:.1f} {'KMGTPE'[unit - 1]}iB"


@dataclass
class Job:
    """One install or delete. Mutated only through `JobRegistry.update` (which holds the lock)."""

    uuid: str
    element: str
    deletion: bool = False
    state: State = "queued"
    model: str = ""
    file_name: str = ""
    file_size_bytes: int | None = None
    downloaded_bytes: int = 0
    progress: float = 0.0
    message: str = "queued"
    error: str | None = None
    created_at: float = field(default_factory=time.time)
    finished_at: float | None = None
    version: int = 0
    token: CancelToken = field(default_factory=CancelToken, repr=False)

    @property
    def processed(self) -> bool:
        return self.state in FINISHED

    def as_dict(self) -> dict[str, Any]:
        return {
            "uuid": self.uuid,
            "processed": self.processed,
            "progress": round(self.progress, 2),
            "file_name": self.file_name,
            "file_size": human_size(self.file_size_bytes),
            "downloaded_size": human_size(self.downloaded_bytes) if self.file_name else "",
            "message": self.message,
            "error": self.error,
            "deletion": self.deletion,
            "gallery_element_name": self.element,
            "cancelled": self.state == "cancelled",
            "cancellable": not self.processed and not self.deletion,
            "state": self.state,
            "model": self.model,
            "file_size_bytes": self.file_size_bytes,
            "downloaded_bytes": self.downloaded_bytes,
            "created_at": int(self.created_at),
            "finished_at": int(self.finished_at) if self.finished_at is not None else None,
        }


class JobRegistry:
    """Jobs by uuid. At most `max_pending` unfinished at once; the last `max_jobs` are remembered."""

    def __init__(self, *, max_jobs: int = 256, max_pending: int = 32) -> None:
        self.max_jobs = max_jobs
        self.max_pending = max_pending
        self._jobs: OrderedDict[str, Job] = OrderedDict()
        self._lock = threading.Lock()

    def create(self, element: str, *, deletion: bool = False) -> Job:
        with self._lock:
            pending = sum(1 for job in self._jobs.values() if not job.processed)
            if pending >= self.max_pending:
                raise TooManyJobs(f"{pending} model jobs are already queued or running; try again when some finish")
            job = Job(uuid=str(uuid.uuid4()), element=element, deletion=deletion)
            self._jobs[job.uuid] = job
            self._forget_old()
            return job

    def get(self, job_id: str) -> Job:
        with self._lock:
            job = self._jobs.get(job_id)
        if job is None:
            raise JobNotFound(f"no job {job_id!r}; GET /models/jobs lists the jobs this server remembers", param="uuid")
        return job

    def snapshot(self, job_id: str) -> dict[str, Any]:
        job = self.get(job_id)
        with self._lock:
            return job.as_dict()

    def all(self) -> dict[str, dict[str, Any]]:
        """LocalAI's GET /models/jobs: uuid -> status."""
        with self._lock:
            return {job.uuid: job.as_dict() for job in self._jobs.values()}

    def update(self, job: Job, **fields: Any) -> None:
        with self._lock:
            if job.processed:
                return  # a finished job never changes again
            for key, value in fields.items():
                setattr(job, key, value)
            if job.processed:
                job.finished_at = time.time()
            job.version += 1

    def cancel(self, job_id: str) -> dict[str, Any]:
        job = self.get(job_id)
        with self._lock:
            if job.processed:
                raise JobFinished(f"job {job_id} has already ended ({job.state}); nothing to cancel", param="uuid")
            if job.deletion:
                raise JobFinished(f"job {job_id} is a deletion, which cannot be cancelled", param="uuid")
        job.token.cancel()
        if job.state == "queued":
            self.update(job, state="cancelled", message="cancelled", progress=job.progress)
        return self.snapshot(job_id)

    def cancel_all(self) -> None:
        with self._lock:
            jobs = [job for job in self._jobs.values() if not job.processed]
        for job in jobs:
            job.token.cancel()

    async def changes(self, job_id: str, *, poll_s: float = 0.1, heartbeat_s: float = 15.0):  # type: ignore[no-untyped-def]
        """Yield the job's dict now and after every change, then once more when it ends; None as a
        heartbeat after `heartbeat_s` of quiet. Polls with a bound, so it never waits forever."""
        job = self.get(job_id)
        seen = -1
        quiet = time.monotonic()
        while True:
            with self._lock:
                version, body, done = job.version, job.as_dict(), job.processed
            if version != seen:
                seen = version
                quiet = time.monotonic()
                yield body
                if done:
                    return
            elif time.monotonic() - quiet > heartbeat_s:
                quiet = time.monotonic()
                yield None
            await asyncio.sleep(poll_s)

    def _forget_old(self) -> None:
        while len(self._jobs) > self.max_jobs:
            oldest = next((key for key, job in self._jobs.items() if job.processed), None)
            if oldest is None:
                return
            del self._jobs[oldest]
