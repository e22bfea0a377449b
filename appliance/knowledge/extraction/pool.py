"""`ExtractionPool`: a few long-lived worker processes that turn files into `ExtractedDocument`s.

Parsing untrusted files happens only in the children, each under its own memory and CPU limits; the
parent adds a wall-clock timeout per file. A worker that crashes, runs out of memory or time, or is
cancelled mid-file is killed and replaced on the next use, and only that file fails. Workers start
lazily (on first use) so constructing the pool costs nothing; `close()` stops them, and a later
`extract` starts fresh ones (in whatever event loop is running then: an app restarted in a new loop
gets new workers, since pipes belong to the loop that made them).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import os
import signal
import sys
from collections.abc import Callable
from pathlib import Path

from appliance.knowledge.document import ExtractedDocument
from appliance.knowledge.extraction import protocol
from appliance.knowledge.extraction.errors import ExtractionFailed
from appliance.knowledge.extraction.formats import detect_format
from appliance.knowledge.extraction.limits import ExtractionLimits

logger = logging.getLogger(__name__)

ProgressCallback = Callable[[int, int | None], None]
START_TIMEOUT_S = 60.0  # a cold interpreter on a busy machine; normally well under a second
REAP_TIMEOUT_S = 1.0
MIN_RESULT_BYTES = 64 * 2**20
PACKAGE_ROOT = Path(__file__).resolve().parents[3]  # the folder that holds the `appliance` package


class _WorkerGone(Exception):
    """The worker was dead before it got the job."""


class _Worker:
    """One child process and the state of its pipes; `clean` is False once it may not be reused."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process
        self.clean = True

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def alive(self) -> bool:
        return self.process.returncode is None

    async def read_message(self) -> dict | None:
        assert self.process.stdout is not None
        try:
            line = await self.process.stdout.readline()
        except (ValueError, asyncio.LimitOverrunError):
            raise protocol.ProtocolError("line too long") from None
        return protocol.decode(line) if line else None

    async def run(
        self, job_id: int, path: Path, fmt: str, limits: ExtractionLimits, on_progress: ProgressCallback | None
    ) -> ExtractedDocument:
        assert self.process.stdin is not None and self.process.stdout is not None
        self.clean = False
        try:
            self.process.stdin.write(protocol.job(job_id, str(path), fmt, limits.to_dict()))
            await self.process.stdin.drain()
        except (BrokenPipeError, ConnectionResetError):
            raise _WorkerGone() from None
        started = False
        while True:
            message = await self.read_message()
            if message is None:
                if not started:  # it died between jobs (killed from outside): not this file's fault
                    raise _WorkerGone()
                raise await self._died()
            if message.get("id") != job_id:
                raise protocol.ProtocolError("answer for another job")
            kind = message.get("type")
            if kind == "started":
                started = True
            elif kind == "progress":
                _report(
                    on_progress,
                    protocol.expect_int(message, "done"),
                    protocol.expect_int(message, "total", optional=True),
                )
            elif kind == "error":
                failure = ExtractionFailed(
                    protocol.expect_str(message, "code"), protocol.expect_str(message, "message")
                )
                self.clean = message.get("retire") is False
                raise failure
            elif kind == "result":
                size = protocol.expect_int(message, "size")
                if size > max(MIN_RESULT_BYTES, 4 * limits.max_bytes):
                    raise ExtractionFailed("file_too_large", "The file holds more text than can be indexed at once.")
                data = await self.process.stdout.readexactly(size)
                document = ExtractedDocument.from_json(data)
                self.clean = True
                return document
            else:
                raise protocol.ProtocolError(f"unknown message type {kind!r}")

    async def _died(self) -> ExtractionFailed:
        """The child closed its pipe mid-job: wait for its exit status and say what it means."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.process.wait(), REAP_TIMEOUT_S)
        code = self.process.returncode
        logger.warning("extraction worker died pid=%s returncode=%s", self.pid, code)
        if code == -signal.SIGXCPU:
            return ExtractionFailed(
                "extraction_timeout", "Reading the file took more CPU time than allowed for one file."
            )
        if code == -signal.SIGKILL:  # not us (we are still waiting for it): the kernel's out-of-memory killer
            return ExtractionFailed(
                "extraction_out_of_memory", "Reading the file needed more memory than the server has."
            )
        return ExtractionFailed(
            "invalid_file",
            "The extractor stopped while reading this file: it may be damaged, or need more memory than allowed.",
        )

    def abandon(self) -> None:
        """Kill the child without its event loop (which is gone); the child watcher reaps it."""
        if self.alive:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGKILL)

    async def stop(self, *, graceful: bool) -> None:
        """End the child (EOF first when graceful, else SIGKILL at once) and reap it."""
        if self.process.stdin is not None:
            self.process.stdin.close()
        if graceful and self.alive:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.process.wait(), REAP_TIMEOUT_S)
        if self.alive:
            with contextlib.suppress(ProcessLookupError):
                self.process.kill()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.process.wait(), REAP_TIMEOUT_S)


def _report(on_progress: ProgressCallback | None, done: int | None, total: int | None) -> None:
    if on_progress is None or done is None:
        return
    try:
        on_progress(done, total)
    except Exception:  # a broken progress display must not fail the extraction
        logger.exception("extraction progress callback failed")


class ExtractionPool:
    """Up to `workers` files at once, each in a child process under `limits`."""

    def __init__(self, workers: int = 1, limits: ExtractionLimits = ExtractionLimits()) -> None:
        if workers < 1:
            raise ValueError("workers must be at least 1")
        self.workers = workers
        self.limits = limits
        self._slots = asyncio.Semaphore(workers)
        self._idle: list[_Worker] = []
        self._running: set[_Worker] = set()
        self._job_ids = itertools.count(1)
        self._loop: asyncio.AbstractEventLoop | None = None

    async def extract(
        self,
        path: Path,
        filename: str,
        media_type: str | None = None,
        on_progress: ProgressCallback | None = None,
    ) -> ExtractedDocument:
        """The document in the file at `path` (its original name is `filename`), or ExtractionFailed."""
        self._bind_loop()
        path = Path(path)
        fmt = await asyncio.to_thread(self._precheck, path, filename, media_type)
        async with self._slots:
            worker = await self._checkout()
            try:
                async with asyncio.timeout(self.limits.timeout_s):
                    try:
                        return await worker.run(next(self._job_ids), path, fmt, self.limits, on_progress)
                    except _WorkerGone:
                        await self._checkin(worker)
                        worker = await self._checkout(fresh=True)
                        return await worker.run(next(self._job_ids), path, fmt, self.limits, on_progress)
            except _WorkerGone:
                raise RuntimeError("extraction workers die before they get work") from None
            except TimeoutError:
                logger.warning("extraction timed out pid=%s format=%s", worker.pid, fmt)
                raise ExtractionFailed(
                    "extraction_timeout",
                    f"Reading the file took longer than {self.limits.timeout_s:g} s; it was stopped.",
                ) from None
            except (protocol.ProtocolError, ValueError, asyncio.IncompleteReadError) as exc:
                logger.warning("extraction worker misbehaved pid=%s error=%s", worker.pid, exc)
                raise ExtractionFailed(
                    "invalid_file", "The extractor failed on this file: it may be damaged or crafted to break it."
                ) from None
            finally:
                await self._checkin(worker)

    def _precheck(self, path: Path, filename: str, media_type: str | None) -> str:
        try:
            size = path.stat().st_size
        except OSError:
            raise ExtractionFailed("invalid_file", "The file could not be opened.") from None
        if size > self.limits.max_bytes:
            raise ExtractionFailed(
                "file_too_large",
                f"The file has {size} bytes; at most {self.limits.max_bytes} can be indexed.",
            )
        if size == 0:
            raise ExtractionFailed("no_text", "The file is empty.")
        return detect_format(path, filename, media_type)

    async def _checkout(self, *, fresh: bool = False) -> _Worker:
        while self._idle and not fresh:
            worker = self._idle.pop()
            if worker.alive:
                self._running.add(worker)
                return worker
            await worker.stop(graceful=False)
        worker = await self._spawn()
        self._running.add(worker)
        return worker

    async def _checkin(self, worker: _Worker) -> None:
        self._running.discard(worker)
        if worker.clean and worker.alive:
            self._idle.append(worker)
            return
        # Cancelled, timed out, crashed or confused: kill it now; the next file gets a fresh one.
        await worker.stop(graceful=False)

    async def _spawn(self) -> _Worker:
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(PACKAGE_ROOT), env.get("PYTHONPATH")]))
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            protocol.WORKER_MODULE,
            "--memory-mb",
            str(self.limits.memory_mb),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            env=env,
            start_new_session=True,  # a Ctrl-C in the terminal is for the server, which then stops workers
            limit=protocol.MAX_LINE_BYTES,
        )
        worker = _Worker(process)
        try:
            async with asyncio.timeout(START_TIMEOUT_S):
                ready = await worker.read_message()
            if ready is None or ready.get("type") != "ready":
                raise RuntimeError(f"extraction worker failed to start (exit status {process.returncode})")
        except BaseException:
            await worker.stop(graceful=False)
            raise
        logger.info("extraction worker started pid=%s", worker.pid)
        return worker

    def _bind_loop(self) -> None:
        loop = asyncio.get_running_loop()
        if loop is self._loop:
            return
        if self._loop is not None:  # pipes of the old loop cannot be driven from this one
            if self._idle or self._running:
                logger.warning("extraction pool moved to a new event loop without close(); killing its workers")
            for worker in [*self._idle, *self._running]:
                worker.abandon()
            self._idle, self._running = [], set()
            self._slots = asyncio.Semaphore(self.workers)
        self._loop = loop

    async def close(self) -> None:
        """Stop every worker: idle ones by closing their input, busy ones (their files fail) at once."""
        idle, self._idle = self._idle, []
        running, self._running = list(self._running), set()
        for worker in running:
            worker.clean = False  # never handed back, even if its answer is already in
        await asyncio.gather(
            *(worker.stop(graceful=True) for worker in idle), *(worker.stop(graceful=False) for worker in running)
        )
