"""The scheduler with a backend that serves several leases at once (llama.cpp's parallel requests).

``max_concurrency`` leases run together; with ``concurrent_streams`` their producers run on stream
threads beside the model's worker and overlap in time, while ``run``, load and unload stay on the
worker. The busy watchdog, early exits and the wait queue keep working per lease.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from scheduler_fakes import FakeClock, eventually, fake

from inference.backends.fake import FakeBackend
from inference.backends.registry import BackendRegistry
from inference.catalog.catalog import Catalog
from inference.errors import BusyTimeout, Overloaded
from inference.generation import Finished, SamplingParams
from inference.scheduling.memory import FixedMemoryProbe
from inference.scheduling.scheduler import ModelScheduler, SchedulerConfig

SLOTS = 3


class Parallel(FakeBackend):
    """Serves SLOTS leases at once; its producers only wait on an engine of its own."""

    max_concurrency = SLOTS
    concurrent_streams = True


class OneThread(FakeBackend):
    """SLOTS leases at once, but its producers call into the model: they share the worker."""

    max_concurrency = SLOTS


def scheduler_for(
    models_path: Path, write_yaml: Any, cls: type[FakeBackend], *, clock: FakeClock | None = None, **settings: Any
) -> ModelScheduler:
    write_yaml("models.yaml", [fake("p")])
    return ModelScheduler(
        Catalog(models_path),
        BackendRegistry(),
        models_path,
        SchedulerConfig(**settings),
        clock=clock or FakeClock(),
        memory=FixedMemoryProbe(ram=2**34),
        factory=lambda entry: cls(entry.config, models_path),
    )


class Meeting:
    """Producers that each yield once, then wait (bounded) for all SLOTS of them to be running."""

    def __init__(self) -> None:
        self.barrier = threading.Barrier(SLOTS, timeout=1.0)
        self.spans: list[tuple[str, float, float]] = []  # (thread, started, ended)
        self.lock = threading.Lock()

    def __call__(self, cancel: threading.Event) -> Iterator[str]:
        started = time.monotonic()
        yield "started"
        try:
            self.barrier.wait()
            yield "met"
        except threading.BrokenBarrierError:
            yield "alone"
        finally:
            with self.lock:
                self.spans.append((threading.current_thread().name, started, time.monotonic()))


async def stream_all(scheduler: ModelScheduler, produce: Meeting) -> list[list[str]]:
    async def one() -> list[str]:
        async with scheduler.lease("p") as lease:
            return [item async for item in lease.stream(produce)]

    return await asyncio.gather(*(one() for _ in range(SLOTS)))


def test_concurrent_streams_run_at_once_on_stream_threads(models_path, write_yaml):
    scheduler = scheduler_for(models_path, write_yaml, Parallel)
    meeting = Meeting()

    async def scenario():
        results = await stream_all(scheduler, meeting)
        async with scheduler.lease("p") as lease:
            worker = await lease.run(lambda: threading.current_thread().name)
        await scheduler.close()
        return results, worker

    results, worker = asyncio.run(scenario())

    assert results == [["started", "met"]] * SLOTS  # all SLOTS producers were running at one moment
    threads = {thread for thread, _, _ in meeting.spans}
    assert len(threads) == SLOTS and all(name.startswith("stream-p") for name in threads)
    assert worker.startswith("model-p")  # run() stays on the model's own thread
    latest_start = max(started for _, started, _ in meeting.spans)
    assert all(ended > latest_start for _, _, ended in meeting.spans)  # their spans overlap


def test_without_concurrent_streams_producers_take_turns_on_the_worker(models_path, write_yaml):
    scheduler = scheduler_for(models_path, write_yaml, OneThread)
    meeting = Meeting()

    async def scenario():
        results = await stream_all(scheduler, meeting)
        await scheduler.close()
        return results

    results = asyncio.run(scenario())

    assert all(result[-1] == "alone" for result in results)  # never two at once
    assert {thread for thread, _, _ in meeting.spans} == {next(iter(meeting.spans))[0]}
    assert meeting.spans[0][0].startswith("model-p")


def test_generate_streams_concurrently_through_leases(models_path, write_yaml):
    """Real backend generators (the fake's, with a per-token delay) overlap as leases hold the model."""
    write_yaml("models.yaml", [fake("p", "token_delay_ms:2")])
    scheduler = ModelScheduler(
        Catalog(models_path),
        BackendRegistry(),
        models_path,
        clock=FakeClock(),
        memory=FixedMemoryProbe(ram=2**34),
        factory=lambda entry: Parallel(entry.config, models_path),
    )
    async def one(prompt: str) -> tuple[float, float, Any]:
        async with scheduler.lease("p") as lease:
            started = time.monotonic()
            events = [e async for e in lease.stream(lambda c: lease.backend.generate(prompt, SamplingParams(), c))]
            return started, time.monotonic(), events[-1]

    async def scenario():
        spans = await asyncio.gather(*(one(f"prompt {i}") for i in range(SLOTS)))
        await scheduler.close()
        return spans

    spans = asyncio.run(scenario())
    assert all(isinstance(finished, Finished) for _, _, finished in spans)
    assert max(started for started, _, _ in spans) < min(ended for _, ended, _ in spans)


def test_the_leases_beyond_the_slots_wait_and_the_queue_stays_bounded(models_path, write_yaml):
    scheduler = scheduler_for(models_path, write_yaml, Parallel, max_waiting=1)

    async def scenario():
        release = asyncio.Event()

        async def hold() -> None:
            async with scheduler.lease("p"):
                await release.wait()

        await scheduler.load("p")  # while it loads, every request counts as waiting
        holders = [asyncio.create_task(hold()) for _ in range(SLOTS + 1)]
        await eventually(lambda: scheduler.state("p") is not None and scheduler.state("p").leases == SLOTS)
        await eventually(lambda: scheduler.waiting == 1)
        with pytest.raises(Overloaded):
            async with scheduler.lease("p"):
                pass
        release.set()
        await asyncio.gather(*holders)
        await scheduler.close()

    asyncio.run(scenario())


def test_the_busy_watchdog_expires_one_stream_and_spares_the_others(models_path, write_yaml):
    clock = FakeClock()
    scheduler = scheduler_for(models_path, write_yaml, Parallel, clock=clock, busy_timeout=5)
    cancels: dict[str, threading.Event] = {}
    finished: dict[str, threading.Event] = {}

    def ticking(name: str, count: int):
        def produce(cancel: threading.Event) -> Iterator[int]:
            cancels[name], finished[name] = cancel, threading.Event()
            try:
                for i in range(count):
                    time.sleep(0.002)
                    yield i
            finally:
                finished[name].set()

        return produce

    async def scenario():
        got: dict[str, Any] = {}

        async def old() -> None:
            async with scheduler.lease("p") as lease:
                items = []
                try:
                    async for item in lease.stream(ticking("old", 10**6)):
                        items.append(item)
                        if item == 3:
                            clock.advance(4)  # the young lease starts now, 4 s after this one
                            young_task.set()
                            await young_started.wait()
                            clock.advance(2)  # this one is 6 s old, the young one 2 s
                            got["recycled"] = scheduler.check_busy()
                except BusyTimeout:
                    got["old"] = ("busy timeout", len(items))

        young_task = asyncio.Event()
        young_started = asyncio.Event()

        async def young() -> None:
            await young_task.wait()
            async with scheduler.lease("p") as lease:
                young_started.set()
                got["young"] = [item async for item in lease.stream(ticking("young", 50))]

        await asyncio.gather(old(), young())
        await eventually(lambda: scheduler.state("p") is None)  # recycled once the last lease ended
        await scheduler.close()
        return got

    got = asyncio.run(scenario())

    assert got["recycled"] == ["p"]
    assert got["old"] == ("busy timeout", 4)
    assert got["young"] == list(range(50))
    assert cancels["old"].is_set() and finished["old"].is_set()


def test_a_consumer_leaving_early_stops_its_producer_on_its_stream_thread(models_path, write_yaml):
    scheduler = scheduler_for(models_path, write_yaml, Parallel)
    stopped = threading.Event()
    produced: list[int] = []

    def endless(cancel: threading.Event) -> Iterator[int]:
        try:
            i = 0
            while True:
                time.sleep(0.001)
                produced.append(i)
                yield i
                i += 1
        finally:
            stopped.set()

    async def scenario():
        async with scheduler.lease("p") as lease:
            async for item in lease.stream(endless):
                if item == 4:
                    break
            await eventually(stopped.is_set)
        await scheduler.close()

    asyncio.run(scenario())
    assert len(produced) < 300
