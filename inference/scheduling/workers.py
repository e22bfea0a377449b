"""Model worker threads: one thread per loaded model for its load, every call and its unload.

llama.cpp and torch keep per-thread state (OpenMP teams, CUDA streams); calls that hop between
threads each build their own and run slower, so a model's calls all go to its own thread. A stream
runs a producer there and hands its items to the event loop through a bounded ``ItemChannel``; a
backend that decodes on an engine thread of its own has its producers run on stream threads instead.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextvars
import enum
import logging
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Generic, TypeVar

logger = logging.getLogger(__name__)

T = TypeVar("T")
R = TypeVar("R")

STREAM_BUFFER = 256  # items a producer may run ahead of a slow consumer
_CREDIT_POLL = 0.5  # seconds between a blocked producer's checks of its cancel event


class ModelWorker:
    """A single-thread executor named after its model. Calls run in submission order."""

    def __init__(self, model: str) -> None:
        self.model = model
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"model-{model}")
        self._streams: ThreadPoolExecutor | None = None
        self._lock = threading.Lock()
        self._closed = False

    def submit(self, fn: Callable[..., R], /, *args: Any, **kwargs: Any) -> concurrent.futures.Future[R]:
        """Queue ``fn`` on the model's thread, in the caller's context (log correlation IDs)."""
        context = contextvars.copy_context()
        return self._executor.submit(context.run, fn, *args, **kwargs)

    def submit_stream(self, fn: Callable[..., R], /, *args: Any, threads: int) -> concurrent.futures.Future[R]:
        """Queue ``fn`` on one of up to ``threads`` stream threads, beside the model's thread.

        Only for producers that do no model compute themselves but wait on the backend's own engine
        thread (`Backend.concurrent_streams`), so several can wait at once.
        """
        with self._lock:
            if self._closed:
                raise RuntimeError(f"model {self.model!r} is shut down")
            if self._streams is None:
                prefix = f"stream-{self.model}"
                self._streams = ThreadPoolExecutor(max_workers=max(1, threads), thread_name_prefix=prefix)
            streams = self._streams
        context = contextvars.copy_context()
        return streams.submit(context.run, fn, *args)

    async def run(self, fn: Callable[..., R], /, *args: Any, **kwargs: Any) -> R:
        return await asyncio.wrap_future(self.submit(fn, *args, **kwargs))

    def shutdown(self) -> None:
        """Accept no more calls; calls already queued still run, then the threads end."""
        self._executor.shutdown(wait=False)
        with self._lock:
            self._closed = True
            if self._streams is not None:
                self._streams.shutdown(wait=False)


class Signal(enum.Enum):
    ITEM = "item"
    ERROR = "error"
    END = "end"
    INTERRUPT = "interrupt"  # wakes the consumer so it notices why it was stopped


class ItemChannel(Generic[T]):
    """Items from a producer on a worker thread to one consumer on the event loop.

    At most ``capacity`` items are in flight: the producer blocks for a credit, which the consumer
    returns as it takes each item. Setting ``cancel`` (consumer gone, lease expired) stops the
    producer at its next item; a producer blocked for a credit notices within ``_CREDIT_POLL``.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop, capacity: int = STREAM_BUFFER) -> None:
        self.cancel = threading.Event()
        self._loop = loop
        self._queue: asyncio.Queue[tuple[Signal, Any]] = asyncio.Queue()
        self._credits = threading.Semaphore(capacity)

    # Producer side: runs on the worker thread.

    def pump(self, produce: Callable[[threading.Event], Iterable[T]]) -> None:
        """Run ``produce(cancel)`` and post its items, then its end or its exception."""
        iterator = None
        try:
            iterator = iter(produce(self.cancel))
            for item in iterator:
                if not self._take_credit() or self.cancel.is_set():
                    return
                self._post(Signal.ITEM, item)
        except Exception as exc:
            self._post(Signal.ERROR, exc)
            return
        finally:
            close = getattr(iterator, "close", None)
            if close is not None:
                try:
                    close()
                except Exception:
                    logger.exception("event=stream_close_failed")
        self._post(Signal.END, None)

    def _take_credit(self) -> bool:
        while not self._credits.acquire(timeout=_CREDIT_POLL):
            if self.cancel.is_set():
                return False
        return True

    def _post(self, signal: Signal, value: Any) -> None:
        try:
            self._loop.call_soon_threadsafe(self._queue.put_nowait, (signal, value))
        except RuntimeError:  # the loop is closed: nobody is listening any more
            self.cancel.set()

    # Consumer side: runs on the event loop.

    async def get(self) -> tuple[Signal, Any]:
        signal, value = await self._queue.get()
        if signal is Signal.ITEM:
            self._credits.release()
        return signal, value

    def interrupt(self) -> None:
        """Stop the producer and wake the consumer."""
        self.close()
        self._queue.put_nowait((Signal.INTERRUPT, None))

    def close(self) -> None:
        """Stop the producer: it ends at its next item, or now if it waits for a credit."""
        if not self.cancel.is_set():
            self.cancel.set()
            self._credits.release()
