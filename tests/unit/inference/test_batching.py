"""MicroBatcher: batching under load, none at low load, order and routing, cancellation, bounds."""

from __future__ import annotations

import asyncio

import pytest

from inference.errors import Overloaded
from inference.services.batching import BatchConfig, MicroBatcher


class Recorder:
    """A `process` that records each call and answers each unit with its upper-case self."""

    def __init__(self, delay: float = 0.01) -> None:
        self.calls: list[list[str]] = []
        self.delay = delay

    async def __call__(self, units: list[str]) -> list[str]:
        self.calls.append(list(units))
        await asyncio.sleep(self.delay)
        return [u.upper() for u in units]


def make(recorder: Recorder, **config: object) -> MicroBatcher[str, str]:
    return MicroBatcher("m", recorder, len, BatchConfig(**config))  # type: ignore[arg-type]


def test_concurrent_requests_are_batched_and_routed_back() -> None:
    async def run() -> tuple[list[list[str]], Recorder]:
        recorder = Recorder()
        batcher = make(recorder, max_batch_size=64)
        results = await asyncio.gather(*(batcher.submit([f"t{i}", f"u{i}"]) for i in range(20)))
        await batcher.close()
        return results, recorder

    results, recorder = asyncio.run(run())
    assert results == [[f"T{i}", f"U{i}"] for i in range(20)]
    assert len(recorder.calls) <= 3  # the first alone, then the rest together
    assert sum(len(c) for c in recorder.calls) == 40


def test_a_lone_request_is_sent_at_once() -> None:
    async def run() -> float:
        batcher = make(Recorder(delay=0), max_wait_ms=200)
        loop = asyncio.get_running_loop()
        started = loop.time()
        for _ in range(3):  # one at a time: no company, no waiting
            await batcher.submit(["x"])
        await batcher.close()
        return loop.time() - started

    assert asyncio.run(run()) < 0.15


def test_batches_are_sorted_by_length_and_bounded() -> None:
    async def run() -> Recorder:
        recorder = Recorder()
        batcher = make(recorder, max_batch_size=4)
        await asyncio.gather(*(batcher.submit(["x" * n]) for n in (5, 1, 4, 2, 3, 9, 7, 8, 6)))
        await batcher.close()
        return recorder

    recorder = asyncio.run(run())
    assert all(len(call) <= 4 for call in recorder.calls)
    assert all([len(u) for u in call] == sorted(len(u) for u in call) for call in recorder.calls)


def test_token_budget_splits_batches() -> None:
    async def run() -> Recorder:
        recorder = Recorder()
        batcher = make(recorder, max_batch_size=100, max_batch_tokens=10)
        await asyncio.gather(*(batcher.submit(["abcd"]) for _ in range(6)))
        await batcher.close()
        return recorder

    assert all(sum(len(u) for u in call) <= 10 for call in asyncio.run(run()).calls)


def test_cancelled_requests_are_dropped() -> None:
    async def run() -> Recorder:
        recorder = Recorder(delay=0.05)
        batcher = make(recorder)
        first = asyncio.create_task(batcher.submit(["first"]))
        await asyncio.sleep(0.01)  # first is running; these queue behind it
        gone = asyncio.create_task(batcher.submit(["gone"]))
        kept = asyncio.create_task(batcher.submit(["kept"]))
        await asyncio.sleep(0)
        gone.cancel()
        assert await kept == ["KEPT"] and await first == ["FIRST"]
        await batcher.close()
        return recorder

    recorder = asyncio.run(run())
    assert all("gone" not in call for call in recorder.calls)


def test_errors_reach_every_caller_of_the_batch() -> None:
    async def boom(units: list[str]) -> list[str]:
        await asyncio.sleep(0.01)
        raise RuntimeError("backend failed")

    async def run() -> list[BaseException | list[str]]:
        batcher: MicroBatcher[str, str] = MicroBatcher("m", boom, len, BatchConfig())
        results = await asyncio.gather(*(batcher.submit(["x"]) for _ in range(3)), return_exceptions=True)
        await batcher.close()
        return results

    assert all(isinstance(r, RuntimeError) for r in asyncio.run(run()))


def test_full_queue_is_overloaded() -> None:
    async def run() -> None:
        batcher = make(Recorder(delay=0.05), max_queue=3)
        running = asyncio.create_task(batcher.submit(["a", "b"]))
        await asyncio.sleep(0.01)
        waiting = asyncio.create_task(batcher.submit(["c", "d", "e"]))
        await asyncio.sleep(0)
        with pytest.raises(Overloaded):
            await batcher.submit(["f"])
        await running, await waiting
        await batcher.close()

    asyncio.run(run())


def test_disabled_batching_calls_once_per_request() -> None:
    async def run() -> Recorder:
        recorder = Recorder()
        batcher = make(recorder, enabled=False)
        await asyncio.gather(*(batcher.submit([str(i)]) for i in range(5)))
        return recorder

    assert len(asyncio.run(run()).calls) == 5
