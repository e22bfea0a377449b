"""Model slots: what the scheduler tracks for one model instance, and the values it reports.

A slot lives from the start of a model's load to the end of its unload and goes through three
phases: loading, ready (idle or busy by its leases), unloading. ``ModelState`` and
``SchedulerStats`` are the frozen snapshots the API and ``/metrics`` read.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from inference.backends.base import MemoryEstimate
from inference.catalog.catalog import CatalogEntry
from inference.scheduling.placement import CPU, Resident, requirement
from inference.scheduling.workers import ModelWorker

if TYPE_CHECKING:
    from inference.scheduling.leases import Lease

LOADING, READY, UNLOADING = "loading", "ready", "unloading"
Phase = Literal["loading", "ready", "unloading"]


@dataclass(frozen=True)
class ModelState:
    """One model as reported: ``status`` is loading, idle (no lease) or busy (leased)."""

    name: str
    backend: str
    status: Literal["loading", "idle", "busy"]
    leases: int
    memory: MemoryEstimate
    device: str
    loaded_at: float | None
    last_used: float | None
    pinned: bool


@dataclass(frozen=True)
class SchedulerStats:
    """Counters per model since start, and the gauges at the time of reading."""

    loads: Mapping[str, int]
    load_failures: Mapping[str, int]
    unloads: Mapping[str, int]  # every unload: requested, idle, recycled, evicted, shutdown
    evictions: Mapping[str, int]  # unloads to make room (memory or max_active)
    waiting: int
    loaded: int


class ModelSlot:
    """One model instance. Mutated only by the scheduler, on its event loop."""

    def __init__(self, entry: CatalogEntry) -> None:
        self.entry = entry
        self.name = entry.name
        self.worker = ModelWorker(entry.name)  # created before load(): load, calls, unload all run here
        self.backend: Any = None  # the Backend, once the factory built it
        self.backend_name = entry.backend or "unknown"
        self.memory = MemoryEstimate(ram=0)
        self.device = CPU
        self.phase: Phase = "loading"
        self.leases: set[Lease] = set()
        self.loaded_at: float | None = None
        self.last_used = 0.0
        self.retire: str | None = None  # why to unload once the last lease ends
        self.task: asyncio.Task[None] | None = None

    @property
    def pinned(self) -> bool:
        return self.entry.config.pinned

    def ready(self, now: float) -> None:
        self.phase = READY
        self.loaded_at = self.last_used = now

    def has_room(self) -> bool:
        """Whether one more lease may start now."""
        if self.phase != READY or self.retire is not None:
            return False
        return len(self.leases) < max(1, self.backend.max_concurrency)

    def resident(self) -> Resident:
        busy = bool(self.leases) or self.phase != READY or self.retire is not None
        return Resident(self.name, requirement(self.memory, self.device), self.last_used, self.pinned, busy)

    def state(self) -> ModelState:
        status: Literal["loading", "idle", "busy"] = (
            "loading" if self.phase == LOADING else "busy" if self.leases else "idle"
        )
        return ModelState(
            name=self.name,
            backend=self.backend_name,
            status=status,
            leases=len(self.leases),
            memory=self.memory,
            device=self.device,
            loaded_at=self.loaded_at,
            last_used=self.last_used if self.loaded_at is not None else None,
            pinned=self.pinned,
        )
