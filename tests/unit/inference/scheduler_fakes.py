"""Fakes for the scheduler tests: a hand-moved clock, a GPU that tracks what is loaded on it,
a recorder of fake-backend loads and unloads (with the thread they ran on), and a builder."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from inference.backends.fake import FakeBackend
from inference.backends.registry import BackendRegistry
from inference.catalog.catalog import Catalog
from inference.catalog.config import wants_gpu
from inference.scheduling.devices import GpuInfo
from inference.scheduling.memory import FixedMemoryProbe, MemoryProbe
from inference.scheduling.scheduler import ModelScheduler, SchedulerConfig

MIB = 1024 * 1024
GIB = 1024 * MIB


class FakeClock:
    """The scheduler's clock, moved by the test."""

    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@dataclass
class Recorder:
    """What FakeBackend.load/unload did: (event, model, thread name, monotonic time)."""

    events: list[tuple[str, str, str, float]] = field(default_factory=list)
    loaded: dict[str, FakeBackend] = field(default_factory=dict)
    fail: set[str] = field(default_factory=set)  # models whose next loads raise

    def names(self, event: str) -> list[str]:
        return [model for kind, model, _, _ in self.events if kind == event]

    def threads(self, event: str, model: str) -> list[str]:
        return [thread for kind, name, thread, _ in self.events if kind == event and name == model]


@pytest.fixture(name="recorder")
def recorder_fixture(monkeypatch: pytest.MonkeyPatch) -> Recorder:
    """Record (and control) FakeBackend loads and unloads; import this into a test module to use it."""
    record = Recorder()
    original_load, original_unload = FakeBackend.load, FakeBackend.unload

    def load(self: FakeBackend) -> None:
        name = self.config.name
        record.events.append(("load", name, threading.current_thread().name, time.monotonic()))
        if name in record.fail:
            raise RuntimeError(f"fake model {name!r} was told to fail")
        original_load(self)
        record.events.append(("loaded", name, threading.current_thread().name, time.monotonic()))
        record.loaded[name] = self

    def unload(self: FakeBackend) -> None:
        record.events.append(("unload", self.config.name, threading.current_thread().name, time.monotonic()))
        record.loaded.pop(self.config.name, None)
        original_unload(self)

    monkeypatch.setattr(FakeBackend, "load", load)
    monkeypatch.setattr(FakeBackend, "unload", unload)
    return record


class FakeGpus:
    """GPUs whose free memory is their total minus the VRAM of the fake models loaded on them."""

    def __init__(self, recorder: Recorder, totals_mib: tuple[int, ...] = (1000,), ram: int = 64 * GIB) -> None:
        self.recorder = recorder
        self.totals = totals_mib
        self.ram = ram

    def ram_total(self) -> int:
        return self.ram

    def gpus(self) -> list[GpuInfo]:
        found = []
        for index, total in enumerate(self.totals):
            used = sum(
                backend.vram_mb
                for backend in self.recorder.loaded.values()
                if wants_gpu(backend.config) and int(backend.config.main_gpu or 0) == index
            )
            found.append(GpuInfo(index, f"Fake GPU {index}", total * MIB, (total - used) * MIB))
        return found


def fake(name: str, *options: str, **fields: Any) -> dict[str, Any]:
    """A fake-backend model config."""
    return {"name": name, "backend": "fake", "options": list(options), **fields}


def make_scheduler(
    models_path: Path,
    write_yaml: Callable[[str, Any], Path],
    configs: list[dict[str, Any]],
    *,
    clock: FakeClock | None = None,
    memory: MemoryProbe | None = None,
    **settings: Any,
) -> ModelScheduler:
    write_yaml("models.yaml", configs)
    return ModelScheduler(
        Catalog(models_path),
        BackendRegistry(),
        models_path,
        SchedulerConfig(**settings),
        clock=clock or FakeClock(),
        memory=memory or FixedMemoryProbe(ram=64 * GIB),
    )


async def eventually(condition: Callable[[], bool], timeout: float = 2.0) -> None:
    """Wait (polling) until ``condition()`` holds; fail the test after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.002)


async def hold(scheduler: ModelScheduler, name: str, release: asyncio.Event, **kwargs: Any) -> None:
    """Hold a lease on ``name`` until ``release`` is set."""
    async with scheduler.lease(name, **kwargs):
        await release.wait()
