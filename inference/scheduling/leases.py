"""Lease: what a request holds while it uses a loaded model.

A lease gives the backend and the way to call it: ``run`` for one blocking call, ``stream`` for an
iterator, both on the model's own worker thread (a backend with ``concurrent_streams`` has its
streams run on stream threads beside it, one per concurrent lease). The scheduler ends the lease
when the request's ``async with`` exits, and expires it when the busy watchdog finds it running too long.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import AsyncIterator, Callable, Iterable
from typing import Any, TypeVar

from inference.backends.base import Backend
from inference.catalog.catalog import CatalogEntry
from inference.errors import BusyTimeout
from inference.scheduling.workers import ItemChannel, ModelWorker, Signal

T = TypeVar("T")
R = TypeVar("R")


class Lease:
    """One request's hold on one loaded model. Use from the event loop that granted it."""

    def __init__(
        self,
        entry: CatalogEntry,
        backend: Backend,
        worker: ModelWorker,
        *,
        started: float,
        busy_timeout: float | None,
    ) -> None:
        self.name = entry.name
        self.entry = entry
        self.backend = backend
        self.started = started
        self.expired = False
        self._worker = worker
        self._busy_timeout = busy_timeout
        self._channels: set[ItemChannel[Any]] = set()
        # Only a lease the busy watchdog may expire pays for waiting on two futures per call.
        self._expiry: asyncio.Future[None] | None = (
            asyncio.get_running_loop().create_future() if busy_timeout is not None else None
        )

    async def run(self, fn: Callable[..., R], /, *args: Any, **kwargs: Any) -> R:
        """``fn(*args, **kwargs)`` on the model's thread; BusyTimeout once the lease is expired."""
        self._check_expired()
        future = asyncio.wrap_future(self._worker.submit(fn, *args, **kwargs))
        if self._expiry is None:
            return await future
        try:
            await asyncio.wait((future, self._expiry), return_when=asyncio.FIRST_COMPLETED)
        except asyncio.CancelledError:
            future.cancel()
            raise
        if future.done():
            return future.result()
        future.cancel()  # the thread cannot be stopped; its result is dropped
        raise self._timeout()

    async def run_cancellable(self, fn: Callable[[threading.Event], R]) -> R:
        """``fn(cancel)`` on the model's thread, for one long call that checks ``cancel`` as it goes.

        ``cancel`` is set when the caller goes away or the lease expires, as for ``stream``; the
        result is ``fn``'s return value, its exception is re-raised here.
        """
        items = self.stream(lambda cancel: (fn(cancel),))
        async with contextlib.aclosing(items):
            async for result in items:
                return result
        raise RuntimeError("the model's thread ended the call without a result")  # pragma: no cover

    async def stream(self, produce: Callable[[threading.Event], Iterable[T]]) -> AsyncIterator[T]:
        """Iterate ``produce(cancel)`` on the model's thread and yield its items here, in order.

        For a backend with ``concurrent_streams`` the producer runs on a stream thread instead, so
        the streams of its concurrent leases overlap.

        The producer's exception is re-raised here. When the consumer stops early (breaks, closes
        this iterator, is cancelled) or the lease ends, ``cancel`` is set and the producer stops at
        its next item. An expired lease raises BusyTimeout here.
        """
        self._check_expired()
        channel: ItemChannel[T] = ItemChannel(asyncio.get_running_loop())
        self._channels.add(channel)
        try:
            if self.backend.concurrent_streams:
                self._worker.submit_stream(channel.pump, produce, threads=self.backend.max_concurrency)
            else:
                self._worker.submit(channel.pump, produce)
            while True:
                signal, value = await channel.get()
                if self.expired:  # before any items still buffered
                    raise self._timeout()
                if signal is Signal.ITEM:
                    yield value
                elif signal is Signal.ERROR:
                    raise value
                else:
                    return
        finally:
            channel.close()
            self._channels.discard(channel)

    def expire(self) -> None:
        """Busy watchdog: fail this lease's current and future calls with BusyTimeout."""
        if self.expired:
            return
        self.expired = True
        if self._expiry is not None and not self._expiry.done():
            self._expiry.set_result(None)
        for channel in list(self._channels):
            channel.interrupt()

    def end(self) -> None:
        """The request let go: stop any producer still running for it."""
        for channel in list(self._channels):
            channel.close()
        self._channels.clear()
        if self._expiry is not None and not self._expiry.done():
            self._expiry.cancel()

    def _check_expired(self) -> None:
        if self.expired:
            raise self._timeout()

    def _timeout(self) -> BusyTimeout:
        return BusyTimeout(
            f"the request on model {self.name!r} ran longer than the busy timeout "
            f"({self._busy_timeout:g} s); it was cancelled and the model will be reloaded"
        )
