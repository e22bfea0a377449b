"""MicroBatcher: many small requests for one model become few backend calls.

Requests queue per model. Whenever the model is free, the batcher takes what is waiting (up to a
size and a token budget), optionally waits a few milliseconds for more while requests keep
arriving, sorts the batch by length to limit padding, drops requests whose callers gave up, runs
one call and hands each caller its own slice of the result. At low load nothing waits: a lone
request is sent at once. The queue is bounded: beyond it callers get `Overloaded` (HTTP 429).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from inference.errors import Overloaded

logger = logging.getLogger(__name__)

U = TypeVar("U")  # one unit of work: a text to embed, a (query, document) pair to score
R = TypeVar("R")  # what a unit gives back: a vector, a score


@dataclass(frozen=True)
class BatchConfig:
    max_batch_size: int = 32  # units per backend call
    max_wait_ms: float = 20.0  # longest a batch is held open for more, only while requests keep coming
    max_batch_tokens: int = 16384  # estimated tokens per call (characters / 4)
    max_queue: int = 4096  # units waiting; beyond -> Overloaded
    enabled: bool = True  # False: every request is its own call (for comparison)


@dataclass
class _Request(Generic[U, R]):
    units: Sequence[U]
    size: int  # estimated tokens
    future: asyncio.Future[list[R]] = field(default_factory=lambda: asyncio.get_running_loop().create_future())


def estimate_tokens(text: str) -> int:
    """A cheap length proxy for sorting and budgets; the model's tokenizer counts usage exactly."""
    return len(text) // 4 + 1


class MicroBatcher(Generic[U, R]):
    """Batches requests for one model; `process(units)` runs one backend call for a whole batch."""

    def __init__(
        self,
        name: str,
        process: Callable[[list[U]], Awaitable[list[R]]],
        length: Callable[[U], int],
        config: BatchConfig,
    ) -> None:
        self.name = name
        self.config = config
        self._process = process
        self._length = length
        self._queue: deque[_Request[U, R]] = deque()
        self._queued_units = 0
        self._wakeup = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._last_batch = 0
        self.batches = 0  # backend calls made, for tests and metrics

    async def submit(self, units: Sequence[U]) -> list[R]:
        """The results for `units`, in order, computed together with whatever else is queued."""
        if not self.config.enabled:
            self.batches += 1
            return await self._process(list(units))
        if self._queued_units + len(units) > self.config.max_queue:
            raise Overloaded(
                f"model {self.name!r} has {self._queued_units} inputs waiting; retry shortly", retry_after=1
            )
        request: _Request[U, R] = _Request(units, sum(self._length(u) for u in units))
        self._queue.append(request)
        self._queued_units += len(units)
        self._wakeup.set()
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._run(), name=f"batcher:{self.name}")
        return await request.future

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        for request in self._queue:
            if not request.future.done():
                request.future.cancel()
        self._queue.clear()

    async def _run(self) -> None:
        while self._queue:
            batch = await self._collect()
            if batch:
                await self._execute(batch)
        # An empty queue ends the task; the next submit starts a new one.

    async def _collect(self) -> list[_Request[U, R]]:
        batch = self._take()
        # Hold the batch open only under concurrent load (the last batch had company), and only
        # while requests keep arriving: a quiet gap of a quarter of the wait sends it at once.
        if self.config.max_wait_ms > 0 and self._last_batch > 1 and self._room(batch):
            loop = asyncio.get_running_loop()
            deadline = loop.time() + self.config.max_wait_ms / 1000
            gap = self.config.max_wait_ms / 4000
            while self._room(batch):
                remaining = deadline - loop.time()
                if remaining <= 0:
                    break
                self._wakeup.clear()
                if not self._queue:
                    try:
                        await asyncio.wait_for(self._wakeup.wait(), min(gap, remaining))
                    except TimeoutError:
                        break  # nobody came during the gap: the burst is over
                batch += self._take(batch)
        return batch

    def _room(self, batch: list[_Request[U, R]]) -> bool:
        return sum(len(r.units) for r in batch) < self.config.max_batch_size

    def _take(self, batch: list[_Request[U, R]] | None = None) -> list[_Request[U, R]]:
        """Move queued requests into a batch while they fit; a request is never split."""
        units = sum(len(r.units) for r in batch or [])
        tokens = sum(r.size for r in batch or [])
        taken: list[_Request[U, R]] = []
        while self._queue:
            request = self._queue[0]
            if request.future.done():  # the caller gave up: drop it
                self._queue.popleft()
                self._queued_units -= len(request.units)
                continue
            fits = units + len(request.units) <= self.config.max_batch_size
            fits = fits and tokens + request.size <= self.config.max_batch_tokens
            if (batch or taken) and not fits:
                break
            self._queue.popleft()
            self._queued_units -= len(request.units)
            taken.append(request)
            units += len(request.units)
            tokens += request.size
        return taken

    async def _execute(self, batch: list[_Request[U, R]]) -> None:
        batch = [r for r in batch if not r.future.done()]
        if not batch:
            return
        flat = [(unit, i) for i, request in enumerate(batch) for unit in request.units]
        order = sorted(range(len(flat)), key=lambda k: self._length(flat[k][0]))
        self.batches += 1
        self._last_batch = len(batch)
        try:
            results = await self._process([flat[k][0] for k in order])
        except asyncio.CancelledError:  # the batcher is closing: nobody gets a result
            for request in batch:
                request.future.cancel()
            raise
        except Exception as exc:  # every caller in the batch learns why
            for request in batch:
                if not request.future.done():
                    request.future.set_exception(exc)
            return
        per_request: list[list[tuple[int, R]]] = [[] for _ in batch]
        for position, k in enumerate(order):
            per_request[flat[k][1]].append((k, results[position]))
        for request, pairs in zip(batch, per_request, strict=True):
            if not request.future.done():
                request.future.set_result([result for _, result in sorted(pairs, key=lambda pair: pair[0])])
        logger.debug("event=batch model=%s requests=%d units=%d", self.name, len(batch), len(flat))
