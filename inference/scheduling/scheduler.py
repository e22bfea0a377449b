"""ModelScheduler: the one way every capability gets a loaded model (``async with scheduler.lease``).

It hands out leases (``max_concurrency`` per model at once), queues the requests that must wait for
a load, a free slot or memory (bounded in number and in time), and runs the idle and busy
watchdogs. Loading, eviction and unloading live in ``inference.scheduling.lifecycle``, the limits in
``inference.scheduling.limits``; everything here runs on one event loop, model code on each model's
own thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from types import MappingProxyType

from inference.backends.registry import BackendRegistry
from inference.capabilities import Capability
from inference.catalog.catalog import Catalog, CatalogEntry
from inference.errors import InferenceError, Overloaded, WaitTimeout
from inference.scheduling.factory import BackendFactory
from inference.scheduling.leases import Lease
from inference.scheduling.lifecycle import RETRY_AFTER, ModelLifecycle, unsupported
from inference.scheduling.limits import SchedulerConfig
from inference.scheduling.memory import MemoryProbe, SystemMemoryProbe
from inference.scheduling.slots import LOADING, READY, UNLOADING, ModelSlot, ModelState, SchedulerStats

logger = logging.getLogger(__name__)

__all__ = ["Lease", "ModelScheduler", "ModelState", "SchedulerConfig", "SchedulerStats"]


class ModelScheduler:
    """Loads models on demand and hands out leases on them. Use from one event loop."""

    def __init__(
        self,
        catalog: Catalog,
        registry: BackendRegistry,
        models_path: Path,
        config: SchedulerConfig = SchedulerConfig(),
        *,
        clock: Callable[[], float] = time.monotonic,
        memory: MemoryProbe | None = None,
        factory: BackendFactory | None = None,
    ) -> None:
        self.catalog = catalog
        self.config = config
        self._clock = clock
        self._models = ModelLifecycle(
            registry,
            Path(models_path),
            config,
            clock=clock,
            memory=memory if memory is not None else SystemMemoryProbe(),
            factory=factory,
        )
        self._waiting = 0
        self._watchdog: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Start the watchdog task when the idle or busy watchdog is on; idempotent."""
        on = self.config.idle_timeout is not None or self.config.busy_timeout is not None
        if on and self._watchdog is None and not self._models.closed:
            self._watchdog = asyncio.get_running_loop().create_task(self._watch(), name="scheduler-watchdog")

    async def close(self) -> None:
        """Stop the watchdog, wait for loads under way, then unload every model.

        Each wait is bounded by ``unload_timeout``; a load still running then is abandoned. Leases
        still held are ended (their streams stop) and their models unloaded once the call running
        on the model's thread returns. Requests arriving afterwards get ModelLoadFailed.
        """
        if self._watchdog is not None:
            self._watchdog.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watchdog
            self._watchdog = None
        await self._models.close()

    def lease(self, name: str, capability: Capability | None = None) -> AbstractAsyncContextManager[Lease]:
        """Hold model ``name`` for an ``async with`` block, loading it first when needed.

        Waits, bounded by ``wait_timeout`` and counted in ``waiting``, for the model's load, a free
        slot or memory. Raises ModelNotFound, CapabilityNotSupported, Overloaded (the queue is full),
        WaitTimeout, InsufficientMemory (can never fit), ModelLoadFailed (also during a cooldown),
        BackendNotFound, BackendUnavailable. Leaving the block releases the lease on every path.
        """
        return self._leased(name, capability)

    @contextlib.asynccontextmanager
    async def _leased(self, name: str, capability: Capability | None) -> AsyncIterator[Lease]:
        slot = await self._acquire(name, capability, lease=True)
        now = self._clock()
        lease = Lease(slot.entry, slot.backend, slot.worker, started=now, busy_timeout=self.config.busy_timeout)
        slot.leases.add(lease)
        slot.last_used = now
        try:
            yield lease
        finally:
            self._release(slot, lease)

    async def load(self, name: str) -> ModelState:
        """Load ``name`` (or find it loaded) without holding a lease: preloads, ``/backend/load``."""
        return (await self._acquire(name, None, lease=False)).state()

    async def unload(self, name: str) -> bool:
        """Unload ``name``; returns whether it was loaded.

        An idle model is unloaded before this returns. A busy model is only marked: it takes no new
        leases and is unloaded when its last lease ends; this returns True at once without waiting
        for that. A model being loaded is waited for first (its load is bounded). Pinned models too.
        """
        key = self._key(name)
        slot = self._models.slots.get(key)
        if slot is not None and slot.phase == LOADING and slot.task is not None:
            with contextlib.suppress(Exception):
                await asyncio.shield(slot.task)
            slot = self._models.slots.get(key)
        if slot is None or slot.phase == UNLOADING:
            return slot is not None
        if slot.leases:
            slot.retire = "requested"
            logger.info("event=model_unload_deferred model=%s leases=%d", slot.name, len(slot.leases))
            return True
        await self._models.unload(slot, "requested")
        return True

    def models(self) -> list[ModelState]:
        """Loaded and loading models, sorted by name; models being unloaded are left out."""
        slots = self._models.slots
        return [slots[name].state() for name in sorted(slots) if slots[name].phase != UNLOADING]

    def state(self, name: str) -> ModelState | None:
        slot = self._models.slots.get(self._key(name))
        return slot.state() if slot is not None and slot.phase != UNLOADING else None

    def stats(self) -> SchedulerStats:
        models = self._models
        return SchedulerStats(
            loads=MappingProxyType(dict(models.loads)),
            load_failures=MappingProxyType(dict(models.load_failures)),
            unloads=MappingProxyType(dict(models.unloads)),
            evictions=MappingProxyType(dict(models.evictions)),
            waiting=self._waiting,
            loaded=sum(1 for slot in models.slots.values() if slot.phase == READY),
        )

    @property
    def waiting(self) -> int:
        """Requests waiting now for a load, a free slot or memory."""
        return self._waiting

    # Watchdogs: one pass each by the injected clock; call from the event loop.

    def check_idle(self) -> list[str]:
        """Start unloading unpinned models without leases idle longer than ``idle_timeout``."""
        timeout = self.config.idle_timeout
        if timeout is None:
            return []
        now = self._clock()
        idle = [
            slot
            for slot in self._models.slots.values()
            if slot.phase == READY and not slot.leases and not slot.pinned and now - slot.last_used > timeout
        ]
        for slot in idle:
            self._models.unload_later(slot, "idle")
        return sorted(slot.name for slot in idle)

    def check_busy(self) -> list[str]:
        """Expire leases held longer than ``busy_timeout``; their models are recycled once released."""
        timeout = self.config.busy_timeout
        if timeout is None:
            return []
        now = self._clock()
        recycled = []
        for slot in self._models.slots.values():
            stuck = [lease for lease in slot.leases if not lease.expired and now - lease.started > timeout]
            for lease in stuck:
                held = now - lease.started
                logger.warning("event=lease_expired model=%s held_s=%.1f busy_timeout_s=%g", slot.name, held, timeout)
                lease.expire()
            if stuck:
                slot.retire = "busy_timeout"
                recycled.append(slot.name)
        return sorted(recycled)

    async def _watch(self) -> None:
        while True:
            await asyncio.sleep(self.config.watchdog_interval)
            try:
                self.check_idle()
                self.check_busy()
            except Exception:
                logger.exception("event=watchdog_failed")

    # Waiting for a model.

    async def _acquire(self, name: str, capability: Capability | None, *, lease: bool) -> ModelSlot:
        """The model's slot once it is loaded (and, with ``lease``, has room for one more lease)."""
        entry = self.catalog.get(name)
        slot = self._usable(entry, capability, lease)
        if slot is not None:
            return slot
        if self._waiting >= self.config.max_waiting:
            raise Overloaded(
                f"{self._waiting} requests are already waiting for models "
                f"(max_waiting={self.config.max_waiting}); retry later",
                retry_after=RETRY_AFTER,
            )
        self._waiting += 1
        timeout = asyncio.timeout(self.config.wait_timeout)
        try:
            async with timeout:
                while True:
                    slot = self._usable(entry, capability, lease)
                    if slot is not None:
                        return slot
                    slot = self._models.slots.get(entry.name) or await self._models.start_load(entry, capability)
                    if slot.phase == LOADING and slot.task is not None:
                        await _join(slot.task)
                    else:
                        await self._models.changed.wait()
        except TimeoutError:
            if timeout.expired():
                raise WaitTimeout(
                    f"model {entry.name!r} was not available within {self.config.wait_timeout:g} s "
                    f"({self._why_waiting(entry.name)}); retry later",
                    retry_after=RETRY_AFTER,
                ) from None
            raise
        finally:
            self._waiting -= 1

    def _usable(self, entry: CatalogEntry, capability: Capability | None, lease: bool) -> ModelSlot | None:
        self._models.check_open()
        slot = self._models.slots.get(entry.name)
        if slot is None:
            self._models.cooldowns.check(entry.name)
            return None
        if slot.phase != READY:
            return None
        if capability is not None and not slot.backend.supports(capability):
            raise unsupported(entry.name, slot.backend_name, capability)
        return slot if not lease or slot.has_room() else None

    def _release(self, slot: ModelSlot, lease: Lease) -> None:
        lease.end()
        slot.leases.discard(lease)
        slot.last_used = self._clock()
        if slot.retire is not None and not slot.leases and slot.phase == READY:
            self._models.unload_later(slot, slot.retire)
        self._models.notify()

    def _why_waiting(self, name: str) -> str:
        slot = self._models.slots.get(name)
        if slot is None:
            return "it is not loaded"
        if slot.phase == LOADING:
            return "its load, or the room for it, is still pending"
        if slot.phase == UNLOADING:
            return "it is being unloaded"
        return f"all {len(slot.leases)} of its slots are busy"

    def _key(self, name: str) -> str:
        """The catalog name for ``name``; a model gone from the catalog is still known by its name."""
        try:
            return self.catalog.get(name).name
        except InferenceError:
            return name


async def _join(task: asyncio.Task[None]) -> None:
    """Wait for a shared load; a waiter giving up does not cancel it for the others."""
    try:
        await asyncio.shield(task)
    except asyncio.CancelledError:
        current = asyncio.current_task()
        if task.cancelled() and current is not None and not current.cancelling():
            return  # the load was abandoned (close), not this waiter: the caller re-checks
        raise
