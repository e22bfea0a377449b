"""ModelScheduler threads and watchdogs: one named thread per model, Lease.run and Lease.stream,
the idle watchdog and the busy watchdog (BusyTimeout, then the model is recycled)."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator

import pytest
from scheduler_fakes import (
    FakeClock,
    eventually,
    fake,
    make_scheduler,
    recorder_fixture,  # noqa: F401  (the `recorder` fixture)
)

from inference.errors import BusyTimeout
from inference.generation import Finished, SamplingParams, TextDelta
from inference.scheduling.workers import STREAM_BUFFER


def current_thread() -> str:
    return threading.current_thread().name


def test_load_calls_and_unload_run_on_one_named_thread_per_model(models_path, write_yaml, recorder):
    scheduler = make_scheduler(models_path, write_yaml, [fake("a"), fake("b")])

    async def scenario():
        seen = {}
        for name in ("a", "b"):
            async with scheduler.lease(name) as lease:
                seen[name] = {await lease.run(current_thread), await lease.run(current_thread)}
            async with scheduler.lease(name) as lease:
                seen[name].add(await lease.run(current_thread))
            await scheduler.unload(name)
        await scheduler.close()
        return seen

    seen = asyncio.run(scenario())

    for name in ("a", "b"):
        assert len(seen[name]) == 1, seen
        (thread,) = seen[name]
        assert thread.startswith(f"model-{name}")
        assert recorder.threads("load", name) == [thread] and recorder.threads("unload", name) == [thread]
    assert seen["a"] != seen["b"]
    assert current_thread() not in seen["a"]


def test_run_passes_arguments_and_raises_the_call_s_exception(models_path, write_yaml, recorder):
    scheduler = make_scheduler(models_path, write_yaml, [fake("a")])

    def fail() -> None:
        raise KeyError("boom")

    async def scenario():
        async with scheduler.lease("a") as lease:
            tokens = await lease.run(lease.backend.tokenize, "hi")
            with pytest.raises(KeyError, match="boom"):
                await lease.run(fail)
        await scheduler.close()
        return tokens

    assert asyncio.run(scenario()) == [104, 105]


def test_stream_delivers_every_item_in_order_from_the_model_thread(models_path, write_yaml, recorder):
    scheduler = make_scheduler(models_path, write_yaml, [fake("a")])
    threads = set()

    def produce(cancel: threading.Event) -> Iterator[int]:
        threads.add(current_thread())
        yield from range(3 * STREAM_BUFFER)  # more than the buffer: the producer waits for credits

    async def scenario():
        async with scheduler.lease("a") as lease:
            items = [item async for item in lease.stream(produce)]
            thread = await lease.run(current_thread)
        await scheduler.close()
        return items, thread

    items, thread = asyncio.run(scenario())

    assert items == list(range(3 * STREAM_BUFFER))
    assert threads == {thread}


def test_stream_drives_the_backend_s_generate(models_path, write_yaml, recorder):
    scheduler = make_scheduler(models_path, write_yaml, [fake("a")])

    async def scenario():
        async with scheduler.lease("a") as lease:
            params = SamplingParams(max_tokens=20, seed=1)
            events = [e async for e in lease.stream(lambda cancel: lease.backend.generate("hello", params, cancel))]
            direct = list(lease.backend.generate("hello", params))
        await scheduler.close()
        return events, direct

    events, direct = asyncio.run(scenario())

    assert events == direct and isinstance(events[0], TextDelta) and isinstance(events[-1], Finished)


def test_stream_reraises_the_producer_s_exception_after_its_items(models_path, write_yaml, recorder):
    scheduler = make_scheduler(models_path, write_yaml, [fake("a")])

    def produce(cancel: threading.Event) -> Iterator[int]:
        yield 1
        yield 2
        raise ValueError("producer broke")

    async def scenario():
        got = []
        async with scheduler.lease("a") as lease:
            with pytest.raises(ValueError, match="producer broke"):
                async for item in lease.stream(produce):
                    got.append(item)
        await scheduler.close()
        return got

    assert asyncio.run(scenario()) == [1, 2]


class Endless:
    """A producer that yields until cancelled and records how it ended."""

    def __init__(self) -> None:
        self.produced = 0
        self.finished = threading.Event()
        self.cancel: threading.Event | None = None

    def __call__(self, cancel: threading.Event) -> Iterator[int]:
        self.cancel = cancel
        try:
            while not cancel.is_set():
                self.produced += 1
                yield self.produced
        finally:
            self.finished.set()


def test_a_consumer_that_stops_early_stops_the_producer(models_path, write_yaml, recorder):
    scheduler = make_scheduler(models_path, write_yaml, [fake("a")])
    broke, cancelled = Endless(), Endless()

    async def consume_forever(lease) -> None:
        async for _ in lease.stream(cancelled):
            pass

    async def scenario():
        async with scheduler.lease("a") as lease:
            stream = lease.stream(broke)
            async for item in stream:
                if item == 5:
                    break
            await stream.aclose()
            await eventually(broke.finished.is_set)
            task = asyncio.create_task(consume_forever(lease))
            await eventually(lambda: cancelled.produced > 10)
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            await eventually(cancelled.finished.is_set)
            after = await lease.run(current_thread)  # the model's thread is free again
        await scheduler.close()
        return after

    assert asyncio.run(scenario()).startswith("model-a")
    assert broke.cancel.is_set() and cancelled.cancel.is_set()
    assert broke.produced <= 5 + STREAM_BUFFER + 2, "the producer stopped soon after the consumer left"


def test_run_cancellable_returns_the_result_and_a_cancelled_caller_sets_the_event(models_path, write_yaml, recorder):
    scheduler = make_scheduler(models_path, write_yaml, [fake("a")])
    started, seen = threading.Event(), threading.Event()

    def long_call(cancel: threading.Event) -> str:
        started.set()
        while not cancel.wait(0.01):
            pass
        seen.set()
        return "stopped"

    async def scenario():
        async with scheduler.lease("a") as lease:
            name = await lease.run_cancellable(lambda cancel: current_thread())
            with pytest.raises(KeyError, match="boom"):
                await lease.run_cancellable(lambda cancel: {}["boom"])
            task = asyncio.create_task(lease.run_cancellable(long_call))
            await eventually(started.is_set)
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            await eventually(seen.is_set)
        await scheduler.close()
        return name

    assert asyncio.run(scenario()).startswith("model-a")
    assert seen.is_set(), "the call saw its cancel event once the caller went away"


def test_a_producer_that_ignores_cancel_is_stopped_at_its_next_item(models_path, write_yaml, recorder):
    scheduler = make_scheduler(models_path, write_yaml, [fake("a")])
    produced = []
    finished = threading.Event()

    def deaf(cancel: threading.Event) -> Iterator[int]:
        try:
            for i in range(10 * STREAM_BUFFER):
                time.sleep(0.001)
                produced.append(i)
                yield i
        finally:
            finished.set()

    async def scenario():
        async with scheduler.lease("a") as lease:
            stream = lease.stream(deaf)
            async for item in stream:
                if item == 4:
                    break
            await stream.aclose()
            await eventually(finished.is_set)
        await scheduler.close()

    asyncio.run(scenario())

    assert len(produced) <= 10, f"the producer ran on for {len(produced)} items"


def test_leaving_the_lease_stops_a_stream_that_was_never_closed(models_path, write_yaml, recorder):
    scheduler = make_scheduler(models_path, write_yaml, [fake("a")])
    endless = Endless()

    async def scenario():
        async with scheduler.lease("a") as lease:
            stream = lease.stream(endless)
            assert await anext(stream) == 1
        await eventually(endless.finished.is_set)
        await stream.aclose()
        await scheduler.close()

    asyncio.run(scenario())

    assert endless.cancel.is_set()


def test_the_idle_watchdog_unloads_unpinned_idle_models_by_the_clock(models_path, write_yaml, recorder):
    clock = FakeClock()
    configs = [fake("a"), fake("b"), fake("busy"), fake("p", pinned=True)]
    scheduler = make_scheduler(models_path, write_yaml, configs, clock=clock, idle_timeout=60)

    async def scenario():
        for name in ("a", "b", "busy", "p"):
            await scheduler.load(name)
        clock.advance(30)
        async with scheduler.lease("b"):
            pass
        release = asyncio.Event()

        async def hold_busy():
            async with scheduler.lease("busy"):
                await release.wait()

        holder = asyncio.create_task(hold_busy())
        await eventually(lambda: scheduler.state("busy").status == "busy")
        clock.advance(40)
        first = scheduler.check_idle()
        await eventually(lambda: "a" not in recorder.loaded)
        clock.advance(40)
        second = scheduler.check_idle()
        await eventually(lambda: "b" not in recorder.loaded)
        left = [m.name for m in scheduler.models()]
        release.set()
        await holder
        await scheduler.close()
        return first, second, left

    first, second, left = asyncio.run(scenario())

    assert first == ["a"] and second == ["b"]
    assert left == ["busy", "p"], "busy and pinned models stay"


def test_the_watchdog_task_runs_the_checks_and_stops_on_close(models_path, write_yaml, recorder):
    clock = FakeClock()
    scheduler = make_scheduler(
        models_path, write_yaml, [fake("a")], clock=clock, idle_timeout=5, watchdog_interval=0.01
    )

    async def scenario():
        await scheduler.start()
        await scheduler.start()
        await scheduler.load("a")
        clock.advance(6)
        await eventually(lambda: scheduler.state("a") is None)
        await scheduler.close()

    asyncio.run(scenario())

    assert recorder.names("unload") == ["a"]


def test_the_busy_watchdog_expires_a_stuck_lease_and_recycles_its_model(models_path, write_yaml, recorder):
    clock = FakeClock()
    scheduler = make_scheduler(models_path, write_yaml, [fake("a")], clock=clock, busy_timeout=5)
    unstick = threading.Event()

    async def scenario():
        async with scheduler.lease("a") as lease:
            stuck = asyncio.create_task(lease.run(unstick.wait, 5))
            await asyncio.sleep(0.02)
            clock.advance(4)
            assert scheduler.check_busy() == []
            clock.advance(2)
            recycled = scheduler.check_busy()
            with pytest.raises(BusyTimeout, match="busy timeout"):
                await stuck
            with pytest.raises(BusyTimeout):
                await lease.run(current_thread)
            with pytest.raises(BusyTimeout):
                async for _ in lease.stream(Endless()):
                    pass
            assert scheduler.state("a").status == "busy", "not unloaded while the lease is held"
            unstick.set()
        await eventually(lambda: scheduler.state("a") is None)
        async with scheduler.lease("a") as again:
            fresh = await again.run(current_thread)
        await scheduler.close()
        return recycled, fresh

    recycled, fresh = asyncio.run(scenario())

    assert recycled == ["a"]
    assert recorder.names("load") == ["a", "a"] and recorder.names("unload") == ["a", "a"]
    assert fresh == recorder.threads("load", "a")[1]


def test_the_busy_watchdog_interrupts_a_stream_and_stops_its_producer(models_path, write_yaml, recorder):
    clock = FakeClock()
    scheduler = make_scheduler(models_path, write_yaml, [fake("a")], clock=clock, busy_timeout=5)
    endless = Endless()

    async def scenario():
        got = 0
        async with scheduler.lease("a") as lease:
            with pytest.raises(BusyTimeout):
                async for _ in lease.stream(endless):
                    got += 1
                    if got == 3:
                        clock.advance(10)
                        assert scheduler.check_busy() == ["a"]
            await eventually(endless.finished.is_set)
        await scheduler.close()
        return got

    assert asyncio.run(scenario()) == 3, "no buffered item is delivered after the expiry"
    assert endless.cancel.is_set()
