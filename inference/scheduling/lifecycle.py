"""Model lifecycle: loading and unloading model instances, one at a time, within memory budgets.

A load is started once per model and shared by every request that waits for it. It builds the
backend and runs its load on the model's own thread, after making room: least recently used idle
models are evicted, or the load waits (bounded) for busy ones to finish. A failed load starts a
cooldown. Unloads are bounded; a model whose thread is stuck is forgotten and logged.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import Counter
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

from inference.backends.base import Backend
from inference.backends.registry import BackendRegistry
from inference.capabilities import Capability
from inference.catalog.catalog import CatalogEntry
from inference.errors import BackendNotFound, CapabilityNotSupported, InferenceError, ModelLoadFailed, WaitTimeout
from inference.scheduling.cooldown import LoadCooldowns
from inference.scheduling.devices import GpuInfo
from inference.scheduling.factory import BackendFactory, RegistryBackendFactory
from inference.scheduling.limits import SchedulerConfig
from inference.scheduling.memory import MemoryProbe
from inference.scheduling.placement import RAM, Resident, RoomPlan, choose_device, plan_room, requirement
from inference.scheduling.slots import LOADING, READY, UNLOADING, ModelSlot

logger = logging.getLogger(__name__)

RETRY_AFTER = 1.0  # seconds a refused or timed-out request is told to wait before retrying


class ModelLifecycle:
    """The model slots by catalog name, and the one lock every load and unload takes."""

    def __init__(
        self,
        registry: BackendRegistry,
        models_path: Path,
        config: SchedulerConfig,
        *,
        clock: Callable[[], float],
        memory: MemoryProbe,
        factory: BackendFactory | None,
    ) -> None:
        self.registry = registry
        self.config = config
        self.slots: dict[str, ModelSlot] = {}
        self.closed = False
        self.cooldowns = LoadCooldowns(config.load_cooldown, config.load_cooldown_max, clock)
        self.loads: Counter[str] = Counter()
        self.load_failures: Counter[str] = Counter()
        self.unloads: Counter[str] = Counter()
        self.evictions: Counter[str] = Counter()
        self._clock = clock
        self._memory = memory
        # With the registry's factory the class is known before loading, so a capability
        # mismatch is refused without loading anything.
        self._classes = RegistryBackendFactory(registry, models_path) if factory is None else None
        self._factory: BackendFactory = factory if factory is not None else self._classes  # type: ignore[assignment]
        self._lock = asyncio.Lock()
        self._changed = asyncio.Event()
        self._tasks: set[asyncio.Task[None]] = set()
        self._ram_total: int | None = None

    @property
    def changed(self) -> asyncio.Event:
        """Set at the next change (a load ends, a lease ends, a model goes); await it, then re-check."""
        return self._changed

    def notify(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    def check_open(self) -> None:
        if self.closed:
            raise ModelLoadFailed("the model scheduler is closed: the server is shutting down")

    async def start_load(self, entry: CatalogEntry, capability: Capability | None) -> ModelSlot:
        """The slot loading ``entry``: the one under way, or a new one."""
        if self._classes is not None:
            classes = self._classes
            cls = await asyncio.to_thread(classes.backend_class, entry)
            # An unloaded instance is cheap and may know more than its class (a diffusers folder
            # holds either an image or an audio pipeline), so it answers before anything loads.
            if capability is not None and (
                capability not in cls.capabilities
                or not await asyncio.to_thread(lambda: classes(entry).supports(capability))
            ):
                raise unsupported(entry.name, cls.name, capability)
        slot = self.slots.get(entry.name)  # another request may have started it meanwhile
        if slot is None:
            self.check_open()
            self.cooldowns.check(entry.name)
            slot = ModelSlot(entry)
            self.slots[entry.name] = slot
            slot.task = self._spawn(self._load(slot), f"load:{entry.name}")
        return slot

    async def unload(self, slot: ModelSlot, reason: str) -> None:
        slot.phase = UNLOADING
        async with self._lock:
            await self._unload(slot, reason)

    def unload_later(self, slot: ModelSlot, reason: str) -> None:
        slot.phase = UNLOADING
        self._spawn(self.unload(slot, reason), f"unload:{slot.name}")

    async def close(self) -> None:
        """Wait for loads under way (bounded, then abandoned), then unload every model."""
        self.closed = True
        self.notify()
        loading = [s.task for s in self.slots.values() if s.phase == LOADING and s.task is not None]
        if loading:
            _done, pending = await asyncio.wait(loading, timeout=self.config.unload_timeout)
            for task in pending:
                task.cancel()
            if pending:
                await asyncio.wait(pending)
        for slot in list(self.slots.values()):
            if slot.phase == READY:
                for lease in list(slot.leases):
                    lease.end()
                await self.unload(slot, "shutdown")
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=self.config.unload_timeout)

    # Loading.

    async def _load(self, slot: ModelSlot) -> None:
        deadline = asyncio.get_running_loop().time() + self.config.wait_timeout
        started = time.monotonic()
        try:
            backend: Backend = await slot.worker.run(self._factory, slot.entry)
            slot.backend = backend
            slot.backend_name = self._backend_name(slot.entry, backend)
            slot.memory = await slot.worker.run(backend.memory_estimate)
            logger.info("event=model_loading model=%s backend=%s", slot.name, slot.backend_name)
            await self._place_and_load(slot, deadline)
        except Exception as exc:
            self._drop(slot)
            if isinstance(exc, InferenceError) and not isinstance(exc, ModelLoadFailed):
                raise  # a named problem (not found, unavailable, no memory, timeout): no cooldown
            self.load_failures[slot.name] += 1
            cooldown = self.cooldowns.failed(slot.name, str(exc))
            logger.error(
                "event=model_load_failed model=%s backend=%s cooldown_s=%.1f",
                slot.name,
                slot.backend_name,
                cooldown,
                exc_info=exc,
            )
            raise ModelLoadFailed(
                f"model {slot.name!r} failed to load with backend {slot.backend_name!r}: {exc}",
                retry_after=cooldown or None,
            ) from exc
        except BaseException:
            self._drop(slot)
            raise
        self.cooldowns.succeeded(slot.name)
        logger.info(
            "event=model_loaded model=%s backend=%s device=%s ram_mib=%d vram_mib=%d seconds=%.3f",
            slot.name,
            slot.backend_name,
            slot.device,
            slot.memory.ram // 2**20,
            slot.memory.vram // 2**20,
            time.monotonic() - started,
        )

    async def _place_and_load(self, slot: ModelSlot, deadline: float) -> None:
        """Under the lock: make room, then load; between tries, wait (bounded) for a change."""
        logged = False
        while True:
            changed = self._changed
            try:
                async with asyncio.timeout_at(deadline):
                    await self._lock.acquire()
            except TimeoutError:
                raise self._no_room(slot) from None
            try:
                self.check_open()
                plan = await self._make_room(slot)
                if not plan.wait:
                    await slot.worker.run(slot.backend.load)
                    slot.ready(self._clock())
                    self.loads[slot.name] += 1
                    self.notify()
                    return
            finally:
                self._lock.release()
            if not logged:
                logged = True
                logger.info("event=model_waiting_for_room model=%s device=%s", slot.name, slot.device)
            try:
                async with asyncio.timeout_at(deadline):
                    await changed.wait()
            except TimeoutError:
                raise self._no_room(slot) from None

    async def _make_room(self, slot: ModelSlot) -> RoomPlan:
        """Evict what the plan says, probing again after each round; returns a plan that fits or waits."""
        while True:
            ram_total, gpus = await asyncio.to_thread(self._probe)
            slot.device = choose_device(slot.entry.config, gpus)
            residents = [s.resident() for s in self.slots.values() if s is not slot and s.phase != LOADING]
            available, budgets = self._room(ram_total, gpus, residents)
            need = requirement(slot.memory, slot.device)
            plan = plan_room(slot.name, need, available, budgets, residents, self.config.max_active)
            if plan.wait or not plan.evict:
                return plan
            victims = [self.slots[name] for name in plan.evict]
            for victim in victims:
                victim.phase = UNLOADING  # no lease may start on it from here on
            for victim in victims:
                self.evictions[victim.name] += 1
                logger.info("event=model_evicted model=%s for=%s device=%s", victim.name, slot.name, slot.device)
                await self._unload(victim, "evicted")

    def _probe(self) -> tuple[int, list[GpuInfo]]:
        """Runs in a thread: RAM once, GPUs every time (their free memory changes)."""
        if self._ram_total is None:
            self._ram_total = self._memory.ram_total()
        return self._ram_total, self._memory.gpus()

    def _room(
        self, ram_total: int, gpus: list[GpuInfo], residents: list[Resident]
    ) -> tuple[dict[str, int], dict[str, int]]:
        """Bytes free now and the budget, per resource; RAM without a known budget is unlimited."""
        available: dict[str, int] = {}
        budgets: dict[str, int] = {}
        budget = self.config.ram_budget
        if budget is None and ram_total > 0:
            budget = int(ram_total * self.config.ram_fraction)
        if budget is not None:
            budgets[RAM] = budget
            available[RAM] = budget - sum(r.usage.get(RAM, 0) for r in residents)
        for gpu in gpus:
            budgets[f"cuda:{gpu.index}"] = gpu.total
            available[f"cuda:{gpu.index}"] = gpu.free
        return available, budgets

    def _no_room(self, slot: ModelSlot) -> WaitTimeout:
        return WaitTimeout(
            f"model {slot.name!r} found no room on {slot.device} within {self.config.wait_timeout:g} s: "
            "busy models or other loads hold it; retry later",
            retry_after=RETRY_AFTER,
        )

    def _drop(self, slot: ModelSlot) -> None:
        """Forget a slot whose load failed or was abandoned."""
        slot.worker.shutdown()
        if self.slots.get(slot.name) is slot:
            del self.slots[slot.name]
        self.notify()

    def _backend_name(self, entry: CatalogEntry, backend: Backend) -> str:
        if entry.backend:
            with contextlib.suppress(BackendNotFound):
                return self.registry.canonical(entry.backend)
        return type(backend).name

    # Unloading (the lock is held).

    async def _unload(self, slot: ModelSlot, reason: str) -> None:
        """The backend's unload on the model's thread (bounded), then forget the slot."""
        slot.phase = UNLOADING
        try:
            future = asyncio.wrap_future(slot.worker.submit(slot.backend.unload))
            future.add_done_callback(consume)
            done, _ = await asyncio.wait({future}, timeout=self.config.unload_timeout)
            if not done:
                logger.error(
                    "event=model_unload_timeout model=%s timeout_s=%g: its thread is still busy; "
                    "the unload runs when it is free",
                    slot.name,
                    self.config.unload_timeout,
                )
            elif future.exception() is not None:
                logger.error("event=model_unload_failed model=%s", slot.name, exc_info=future.exception())
        finally:
            slot.worker.shutdown()
            if self.slots.get(slot.name) is slot:
                del self.slots[slot.name]
            self.unloads[slot.name] += 1
            logger.info("event=model_unloaded model=%s backend=%s reason=%s", slot.name, slot.backend_name, reason)
            self.notify()

    def _spawn(self, coro: Coroutine[Any, Any, None], name: str) -> asyncio.Task[None]:
        task = asyncio.get_running_loop().create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._reap)
        return task

    def _reap(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        consume(task)  # a load's error reaches its waiters; an unload logs its own


def unsupported(model: str, backend: str, capability: Capability | str) -> CapabilityNotSupported:
    return CapabilityNotSupported(f"model {model!r} (backend {backend!r}) does not support {capability}", param="model")


def consume(future: asyncio.Future[Any]) -> None:
    """Mark a future's exception as seen so asyncio does not report it again."""
    if not future.cancelled():
        future.exception()
