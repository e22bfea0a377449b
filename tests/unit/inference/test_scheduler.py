"""ModelScheduler leases: reuse, one shared load, bounded waiting, cooldowns and typed errors."""

from __future__ import annotations

import asyncio
import logging
import time

import pytest
from scheduler_fakes import (
    FakeClock,
    eventually,
    fake,
    hold,
    make_scheduler,
    recorder_fixture,  # noqa: F401  (the `recorder` fixture)
)

from inference.backends.fake import FakeBackend
from inference.backends.registry import BackendRegistry
from inference.capabilities import Capability
from inference.catalog.catalog import Catalog
from inference.catalog.known_backends import BackendSpec
from inference.errors import (
    BackendNotFound,
    BackendUnavailable,
    CapabilityNotSupported,
    ModelLoadFailed,
    ModelNotFound,
    Overloaded,
    WaitTimeout,
)
from inference.scheduling.memory import FixedMemoryProbe
from inference.scheduling.scheduler import ModelScheduler, SchedulerConfig


def test_a_loaded_model_is_reused(models_path, write_yaml, recorder):
    scheduler = make_scheduler(models_path, write_yaml, [fake("a", "memory_mb:7")])

    async def scenario():
        async with scheduler.lease("a", Capability.EMBED) as first:
            backend = first.backend
            assert scheduler.state("a").status == "busy"
        async with scheduler.lease("a") as second:
            assert second.backend is backend
            assert await second.run(second.backend.embed, ["x"])
        state = scheduler.state("a")
        await scheduler.close()
        return state

    state = asyncio.run(scenario())

    assert recorder.names("load") == ["a"]
    assert (state.name, state.backend, state.status, state.leases, state.device) == ("a", "fake", "idle", 0, "cpu")
    assert state.memory.ram == 7 * 1024 * 1024 and state.loaded_at == 1000.0
    assert recorder.names("unload") == ["a"], "close unloads"


def test_concurrent_requests_for_a_loading_model_share_one_load(models_path, write_yaml, recorder):
    scheduler = make_scheduler(models_path, write_yaml, [fake("slow", "load_delay_ms:100")])
    backends = []

    async def one():
        async with scheduler.lease("slow") as lease:
            backends.append(lease.backend)

    async def scenario():
        tasks = [asyncio.create_task(one()) for _ in range(5)]
        await eventually(lambda: scheduler.waiting == 5)
        loading = scheduler.models()
        await asyncio.gather(*tasks)
        await scheduler.close()
        return loading

    loading = asyncio.run(scenario())

    assert [(m.name, m.status) for m in loading] == [("slow", "loading")]
    assert recorder.names("load") == ["slow"]
    assert len(backends) == 5 and len({id(b) for b in backends}) == 1
    assert scheduler.stats().loads == {"slow": 1}


def test_a_cancelled_waiter_does_not_cancel_the_shared_load(models_path, write_yaml, recorder):
    scheduler = make_scheduler(models_path, write_yaml, [fake("slow", "load_delay_ms:100")])

    async def scenario():
        impatient = asyncio.create_task(scheduler.load("slow"))
        patient = asyncio.create_task(scheduler.load("slow"))
        await eventually(lambda: scheduler.waiting == 2)
        impatient.cancel()
        await asyncio.gather(impatient, return_exceptions=True)
        waiting_after_cancel = scheduler.waiting
        state = await patient
        await scheduler.close()
        return waiting_after_cancel, state

    waiting_after_cancel, state = asyncio.run(scenario())

    assert waiting_after_cancel == 1
    assert state.status == "idle" and recorder.names("load") == ["slow"]


def test_one_lease_per_text_model_others_wait_until_release(models_path, write_yaml, recorder):
    scheduler = make_scheduler(models_path, write_yaml, [fake("a")])
    order = []

    async def second():
        async with scheduler.lease("a"):
            order.append("second")

    async def scenario():
        async with scheduler.lease("a"):
            task = asyncio.create_task(second())
            await eventually(lambda: scheduler.waiting == 1)
            await asyncio.sleep(0.02)
            order.append("first done")
        await task
        assert scheduler.waiting == 0
        await scheduler.close()

    asyncio.run(scenario())

    assert order == ["first done", "second"]


def test_max_concurrency_is_the_number_of_leases_at_once(models_path, write_yaml):
    class Pair(FakeBackend):
        max_concurrency = 2

    write_yaml("models.yaml", [fake("p")])
    scheduler = ModelScheduler(
        Catalog(models_path),
        BackendRegistry(),
        models_path,
        clock=FakeClock(),
        memory=FixedMemoryProbe(ram=2**34),
        factory=lambda entry: Pair(entry.config, models_path),
    )

    async def scenario():
        release = asyncio.Event()
        holders = [asyncio.create_task(hold(scheduler, "p", release)) for _ in range(3)]
        await eventually(lambda: scheduler.state("p") is not None and scheduler.state("p").leases == 2)
        await asyncio.sleep(0.02)
        seen = (scheduler.state("p").leases, scheduler.waiting)
        release.set()
        await asyncio.gather(*holders)
        await scheduler.close()
        return seen

    assert asyncio.run(scenario()) == (2, 1)


def test_a_full_queue_refuses_at_once_and_a_cancelled_waiter_leaves_it(models_path, write_yaml, recorder):
    scheduler = make_scheduler(models_path, write_yaml, [fake("a")], max_waiting=2)

    async def scenario():
        release = asyncio.Event()
        holder = asyncio.create_task(hold(scheduler, "a", release))
        await eventually(lambda: scheduler.state("a") is not None and scheduler.state("a").status == "busy")
        waiters = [asyncio.create_task(hold(scheduler, "a", release)) for _ in range(2)]
        await eventually(lambda: scheduler.waiting == 2)
        with pytest.raises(Overloaded) as refused:
            async with scheduler.lease("a"):
                pass
        waiters[0].cancel()
        await asyncio.gather(waiters[0], return_exceptions=True)
        after_cancel = scheduler.waiting
        waiters.append(asyncio.create_task(hold(scheduler, "a", release)))
        await eventually(lambda: scheduler.waiting == 2)
        release.set()
        await asyncio.gather(holder, *waiters[1:])
        await scheduler.close()
        return refused.value, after_cancel

    refused, after_cancel = asyncio.run(scenario())

    assert refused.retry_after > 0 and "max_waiting=2" in refused.message
    assert after_cancel == 1, "the cancelled waiter left the queue"
    assert scheduler.waiting == 0


def test_a_request_waits_at_most_wait_timeout(models_path, write_yaml, recorder):
    scheduler = make_scheduler(models_path, write_yaml, [fake("a")], wait_timeout=0.2)

    async def scenario():
        release = asyncio.Event()
        holder = asyncio.create_task(hold(scheduler, "a", release))
        await eventually(lambda: scheduler.state("a") is not None and scheduler.state("a").status == "busy")
        started = time.monotonic()
        with pytest.raises(WaitTimeout) as timed_out:
            async with scheduler.lease("a"):
                pass
        waited = time.monotonic() - started
        release.set()
        await holder
        await scheduler.close()
        return timed_out.value, waited

    error, waited = asyncio.run(scenario())

    assert 0.15 < waited < 1.0
    assert error.retry_after > 0 and "busy" in error.message and "0.2 s" in error.message
    assert scheduler.waiting == 0


def test_a_failed_load_cools_down_doubling_and_a_success_resets(models_path, write_yaml, recorder, caplog):
    clock = FakeClock()
    scheduler = make_scheduler(
        models_path, write_yaml, [fake("bad")], clock=clock, load_cooldown=10, load_cooldown_max=25
    )
    recorder.fail.add("bad")

    async def attempt():
        with pytest.raises(ModelLoadFailed) as failed:
            async with scheduler.lease("bad"):
                pass
        return failed.value

    async def scenario():
        first = await attempt()
        assert isinstance(first.__cause__, RuntimeError) and "told to fail" in first.message
        assert first.retry_after == 10
        during = await attempt()
        clock.advance(4)
        later = await attempt()
        assert recorder.names("load") == ["bad"], "no load is tried during the cooldown"
        assert (during.retry_after, later.retry_after) == (10, 6)
        clock.advance(6.5)
        second = await attempt()  # the cooldown is over: tried again, failed again, doubled
        clock.advance(20.5)
        third = await attempt()  # capped
        assert (second.retry_after, third.retry_after) == (20, 25)
        assert recorder.names("load") == ["bad"] * 3
        recorder.fail.clear()
        clock.advance(25.5)
        async with scheduler.lease("bad"):
            pass
        await scheduler.unload("bad")
        recorder.fail.add("bad")
        after_success = await attempt()
        await scheduler.close()
        return after_success

    after_success = asyncio.run(scenario())

    assert after_success.retry_after == 10, "a success resets the doubling"
    assert scheduler.stats().load_failures == {"bad": 4}
    failures = [r for r in caplog.records if "model_load_failed" in r.getMessage()]
    assert failures and all(r.exc_info and r.levelno == logging.ERROR for r in failures)


def test_every_waiter_of_a_failing_load_gets_the_error_from_one_attempt(models_path, write_yaml, recorder):
    scheduler = make_scheduler(models_path, write_yaml, [fake("bad", "fail_load:true", "load_delay_ms:50")])

    async def one():
        async with scheduler.lease("bad"):
            pass

    async def scenario():
        results = await asyncio.gather(*(one() for _ in range(3)), return_exceptions=True)
        await scheduler.close()
        return results

    results = asyncio.run(scenario())

    assert all(isinstance(r, ModelLoadFailed) for r in results), results
    assert recorder.names("load") == ["bad"]
    assert scheduler.models() == [], "a failed load is not remembered as loaded"


def test_typed_errors_pass_through_and_start_no_cooldown(models_path, write_yaml, recorder):
    registry = BackendRegistry()
    registry.register(
        BackendSpec(name="needs-x", target="inference.backends.fake:FakeBackend", requires=("no_such_x",), extra="x")
    )
    write_yaml(
        "models.yaml",
        [{"name": "mystery", "parameters": {"model": "mystery.bin"}}, {"name": "nodeps", "backend": "needs-x"}],
    )
    scheduler = ModelScheduler(Catalog(models_path), registry, models_path, memory=FixedMemoryProbe(ram=2**34))

    async def attempt(name):
        async with scheduler.lease(name):
            pass

    async def scenario():
        for _ in range(2):
            with pytest.raises(ModelNotFound):
                await attempt("nope")
            with pytest.raises(BackendNotFound, match=r"tried: gguf file, piper voice"):
                await attempt("mystery")
            with pytest.raises(BackendUnavailable, match=r"appliance\[x\]"):
                await attempt("nodeps")
        await scheduler.close()

    asyncio.run(scenario())

    assert recorder.names("load") == [] and scheduler.stats().load_failures == {}


def test_a_capability_the_backend_lacks_is_refused_before_and_after_loading(models_path, write_yaml, recorder):
    scheduler = make_scheduler(models_path, write_yaml, [fake("a")])

    async def scenario():
        with pytest.raises(CapabilityNotSupported, match="does not support image"):
            async with scheduler.lease("a", Capability.IMAGE):
                pass
        assert recorder.names("load") == [], "refused from the class, nothing loaded"
        await scheduler.load("a")
        with pytest.raises(CapabilityNotSupported):
            async with scheduler.lease("a", Capability.SPEAK):
                pass
        async with scheduler.lease("a", Capability.CHAT) as lease:
            assert lease.name == "a"
        await scheduler.close()

    asyncio.run(scenario())


def test_load_preloads_without_a_lease_and_does_not_wait_for_a_busy_model(models_path, write_yaml, recorder):
    scheduler = make_scheduler(models_path, write_yaml, [fake("a")], wait_timeout=0.5)

    async def scenario():
        preloaded = await scheduler.load("a")
        release = asyncio.Event()
        holder = asyncio.create_task(hold(scheduler, "a", release))
        await eventually(lambda: scheduler.state("a").status == "busy")
        while_busy = await scheduler.load("a")
        release.set()
        await holder
        await scheduler.close()
        return preloaded, while_busy

    preloaded, while_busy = asyncio.run(scenario())

    assert (preloaded.status, preloaded.leases) == ("idle", 0)
    assert (while_busy.status, while_busy.leases) == ("busy", 1)
    assert recorder.names("load") == ["a"]


def test_unload_of_idle_busy_and_unknown_models(models_path, write_yaml, recorder):
    scheduler = make_scheduler(models_path, write_yaml, [fake("a"), fake("b")])

    async def scenario():
        await scheduler.load("a")
        backend = recorder.loaded["a"]
        assert await scheduler.unload("a") is True
        assert backend.loaded is False and scheduler.state("a") is None
        assert await scheduler.unload("a") is False
        assert await scheduler.unload("nope") is False
        async with scheduler.lease("b"):
            assert await scheduler.unload("b") is True, "a busy model is marked, not waited for"
            assert scheduler.state("b").status == "busy" and recorder.names("unload") == ["a"]
        await eventually(lambda: scheduler.state("b") is None)
        async with scheduler.lease("b"):
            pass
        await scheduler.close()

    asyncio.run(scenario())

    assert recorder.names("load") == ["a", "b", "b"], "the unloaded model is loaded again on next use"
    assert recorder.names("unload") == ["a", "b", "b"]
    assert scheduler.stats().unloads == {"a": 1, "b": 2}


def test_a_loose_file_is_known_by_its_stem_and_reports_its_detected_backend(models_path, monkeypatch, recorder):
    (models_path / "voice.onnx").write_bytes(b"onnx")
    (models_path / "voice.onnx.json").write_text("{}")
    registry = BackendRegistry()
    monkeypatch.setattr(registry, "backend_class", lambda name: FakeBackend)
    scheduler = ModelScheduler(Catalog(models_path), registry, models_path, memory=FixedMemoryProbe(ram=2**34))

    async def scenario():
        state = await scheduler.load("voice")
        same = scheduler.state("voice") == scheduler.state("voice.onnx")
        await scheduler.close()
        return state, same

    state, same = asyncio.run(scenario())

    assert (state.name, state.backend) == ("voice.onnx", "piper") and same


def test_loads_run_one_at_a_time_off_the_event_loop(models_path, write_yaml, recorder):
    scheduler = make_scheduler(
        models_path, write_yaml, [fake("a", "load_delay_ms:120"), fake("b", "load_delay_ms:120")]
    )
    ticks = 0

    async def ticker():
        nonlocal ticks
        while True:
            await asyncio.sleep(0.01)
            ticks += 1

    async def scenario():
        task = asyncio.create_task(ticker())
        await asyncio.gather(scheduler.load("a"), scheduler.load("b"))
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await scheduler.close()

    asyncio.run(scenario())

    spans = {}
    for kind, model, _, at in recorder.events:
        if kind in ("load", "loaded"):
            spans.setdefault(model, []).append(at)
    (a_start, a_end), (b_start, b_end) = spans["a"], spans["b"]
    assert a_end <= b_start or b_end <= a_start, "two loads overlapped"
    assert ticks >= 12, f"the event loop was blocked during loads (ticks={ticks})"


def test_an_unload_waits_for_a_load_under_way(models_path, write_yaml, recorder):
    scheduler = make_scheduler(models_path, write_yaml, [fake("a"), fake("slow", "load_delay_ms:100")])

    async def scenario():
        await scheduler.load("a")
        loading = asyncio.create_task(scheduler.load("slow"))
        await eventually(lambda: "slow" in recorder.names("load"))
        assert await scheduler.unload("a") is True
        await loading
        await scheduler.close()

    asyncio.run(scenario())

    kinds = [(kind, model) for kind, model, _, _ in recorder.events]
    assert kinds.index(("unload", "a")) > kinds.index(("loaded", "slow")), kinds


def test_a_closed_scheduler_refuses_new_leases(models_path, write_yaml, recorder):
    scheduler = make_scheduler(models_path, write_yaml, [fake("a")])

    async def scenario():
        await scheduler.load("a")
        await scheduler.close()
        with pytest.raises(ModelLoadFailed, match="shutting down"):
            async with scheduler.lease("a"):
                pass

    asyncio.run(scenario())

    assert recorder.names("unload") == ["a"] and scheduler.models() == []


def test_default_config_is_what_the_brief_promises():
    config = SchedulerConfig()
    assert (config.max_active, config.max_waiting, config.wait_timeout, config.idle_timeout) == (0, 64, 120.0, None)
    assert (config.load_cooldown, config.load_cooldown_max, config.ram_fraction) == (10.0, 300.0, 0.75)


@pytest.mark.parametrize(
    "bad", [{"wait_timeout": 0}, {"idle_timeout": -1}, {"max_waiting": -1}, {"ram_fraction": 1.5}, {"ram_budget": -1}]
)
def test_a_nonsensical_config_is_refused_naming_the_field(bad):
    (field,) = bad
    with pytest.raises(ValueError, match=field):
        SchedulerConfig(**bad)
