"""ModelScheduler memory: LRU eviction, busy and pinned models kept, can-never-fit, max_active, GPUs."""

from __future__ import annotations

import asyncio

import pytest
from scheduler_fakes import (
    MIB,
    FakeClock,
    FakeGpus,
    eventually,
    fake,
    hold,
    make_scheduler,
    recorder_fixture,  # noqa: F401  (the `recorder` fixture)
)

from inference.errors import InsufficientMemory
from inference.scheduling.devices import GpuInfo
from inference.scheduling.memory import FixedMemoryProbe


def test_the_least_recently_used_idle_model_is_evicted_when_ram_is_short(models_path, write_yaml, recorder):
    clock = FakeClock()
    configs = [fake("a", "memory_mb:40"), fake("b", "memory_mb:40"), fake("c", "memory_mb:30")]
    scheduler = make_scheduler(models_path, write_yaml, configs, clock=clock, ram_budget=100 * MIB)

    async def scenario():
        await scheduler.load("a")
        clock.advance(1)
        await scheduler.load("b")
        clock.advance(1)
        async with scheduler.lease("a"):  # a is now the most recently used
            clock.advance(1)
        clock.advance(1)
        await scheduler.load("c")
        loaded = [m.name for m in scheduler.models()]
        await scheduler.close()
        return loaded

    loaded = asyncio.run(scenario())

    assert loaded == ["a", "c"]
    assert recorder.names("unload")[0] == "b"
    assert scheduler.stats().evictions == {"b": 1}, "only as many as needed were evicted"


def test_a_busy_model_is_never_evicted_the_newcomer_waits_for_its_release(models_path, write_yaml, recorder):
    configs = [fake("a", "memory_mb:60"), fake("b", "memory_mb:60")]
    scheduler = make_scheduler(models_path, write_yaml, configs, ram_budget=100 * MIB)

    async def scenario():
        release = asyncio.Event()
        holder = asyncio.create_task(hold(scheduler, "a", release))
        await eventually(lambda: scheduler.state("a") is not None and scheduler.state("a").status == "busy")
        newcomer = asyncio.create_task(scheduler.load("b"))
        await eventually(lambda: scheduler.waiting == 1)
        await asyncio.sleep(0.05)
        during = ([m.name for m in scheduler.models()], scheduler.state("b").status, list(recorder.names("unload")))
        release.set()
        await holder
        state = await newcomer
        await scheduler.close()
        return during, state

    during, state = asyncio.run(scenario())

    assert during == (["a", "b"], "loading", []), "a stayed loaded while busy; b waited"
    assert state.status == "idle" and recorder.names("unload")[0] == "a"
    assert recorder.names("load") == ["a", "b"]


def test_a_pinned_model_is_never_evicted_and_the_error_names_the_numbers(models_path, write_yaml, recorder):
    clock = FakeClock()
    configs = [fake("p", "memory_mb:60", pinned=True), fake("a", "memory_mb:30"), fake("b", "memory_mb:60")]
    scheduler = make_scheduler(models_path, write_yaml, configs, clock=clock, ram_budget=100 * MIB)

    async def scenario():
        await scheduler.load("p")
        clock.advance(1)
        await scheduler.load("a")
        with pytest.raises(InsufficientMemory) as refused:
            await scheduler.load("b")
        loaded = [m.name for m in scheduler.models()]
        await scheduler.close()
        return refused.value, loaded

    error, loaded = asyncio.run(scenario())

    assert loaded == ["a", "p"], "refused at once: neither the pinned nor the idle model was evicted"
    assert (error.needed, error.available, error.device) == (60 * MIB, 40 * MIB, "cpu")
    assert "needs 60 MiB on cpu" in error.message and "at most 40 MiB" in error.message
    assert "budget 100 MiB" in error.message
    assert sorted(recorder.names("unload")) == ["a", "p"], "only close unloaded them"


def test_a_model_that_can_never_fit_is_refused_at_once_without_cooldown(models_path, write_yaml, recorder):
    scheduler = make_scheduler(
        models_path,
        write_yaml,
        [fake("big", "memory_mb:150")],
        memory=FixedMemoryProbe(ram=200 * MIB),
        ram_fraction=0.5,
    )

    async def scenario():
        for _ in range(2):
            with pytest.raises(InsufficientMemory, match=r"needs 150 MiB on cpu.*budget 100 MiB"):
                async with scheduler.lease("big"):
                    pass
        await scheduler.close()

    asyncio.run(scenario())

    assert recorder.names("load") == [] and scheduler.stats().load_failures == {}


def test_max_active_one_is_a_single_active_backend(models_path, write_yaml, recorder):
    clock = FakeClock()
    scheduler = make_scheduler(models_path, write_yaml, [fake("a"), fake("b")], clock=clock, max_active=1)

    async def scenario():
        await scheduler.load("a")
        clock.advance(1)
        await scheduler.load("b")
        after_b = [m.name for m in scheduler.models()]
        release = asyncio.Event()
        holder = asyncio.create_task(hold(scheduler, "b", release))
        await eventually(lambda: scheduler.state("b").status == "busy")
        newcomer = asyncio.create_task(scheduler.load("a"))
        await asyncio.sleep(0.05)
        while_busy = [m.name for m in scheduler.models() if m.status != "loading"]
        release.set()
        await asyncio.gather(holder, newcomer)
        after_a = [m.name for m in scheduler.models()]
        await scheduler.close()
        return after_b, while_busy, after_a

    after_b, while_busy, after_a = asyncio.run(scenario())

    assert after_b == ["b"] and while_busy == ["b"] and after_a == ["a"]
    assert scheduler.stats().evictions == {"a": 1, "b": 1}


def test_max_active_filled_by_pinned_models_is_refused_at_once(models_path, write_yaml, recorder):
    configs = [fake("p", pinned=True), fake("a")]
    scheduler = make_scheduler(models_path, write_yaml, configs, max_active=1)

    async def scenario():
        await scheduler.load("p")
        with pytest.raises(InsufficientMemory, match=r"max_active=1 .* pinned \(p\)") as refused:
            await scheduler.load("a")
        await scheduler.close()
        return refused.value

    assert asyncio.run(scenario()).device == "max_active"


def test_gpu_placement_follows_the_config(models_path, write_yaml, recorder):
    configs = [
        fake("gpu", "memory_mb:10", "vram_mb:100", gpu_layers=99),
        fake("second", "vram_mb:100", gpu_layers=99, main_gpu="1"),
        fake("cuda", cuda=True),
        fake("cpu", "memory_mb:10", "vram_mb:100"),
    ]
    gpus = FakeGpus(recorder, totals_mib=(1000, 1000))
    scheduler = make_scheduler(models_path, write_yaml, configs, memory=gpus, ram_budget=200 * MIB)

    async def scenario():
        for name in ("gpu", "second", "cuda", "cpu"):
            await scheduler.load(name)
        devices = {m.name: m.device for m in scheduler.models()}
        await scheduler.close()
        return devices

    devices = asyncio.run(scenario())

    assert devices == {"gpu": "cuda:0", "second": "cuda:1", "cuda": "cuda:0", "cpu": "cpu"}


def test_without_a_gpu_vram_counts_as_ram(models_path, write_yaml, recorder):
    configs = [fake("g", "memory_mb:50", "vram_mb:60", gpu_layers=99)]
    scheduler = make_scheduler(models_path, write_yaml, configs, ram_budget=100 * MIB)

    async def scenario():
        with pytest.raises(InsufficientMemory, match="needs 110 MiB on cpu"):
            await scheduler.load("g")
        await scheduler.close()

    asyncio.run(scenario())


def test_the_lru_idle_gpu_model_is_evicted_for_vram_and_cpu_models_are_left_alone(models_path, write_yaml, recorder):
    clock = FakeClock()
    configs = [
        fake("cpu", "memory_mb:10"),
        fake("g1", "memory_mb:10", "vram_mb:400", gpu_layers=99),
        fake("g2", "memory_mb:10", "vram_mb:400", gpu_layers=99),
        fake("g3", "memory_mb:10", "vram_mb:500", gpu_layers=99),
    ]
    scheduler = make_scheduler(models_path, write_yaml, configs, clock=clock, memory=FakeGpus(recorder))

    async def scenario():
        for name in ("cpu", "g1", "g2"):  # the CPU model is the least recently used
            await scheduler.load(name)
            clock.advance(1)
        await scheduler.load("g3")  # 200 MiB free; evicting g1 frees 400
        loaded = {m.name: m.device for m in scheduler.models()}
        await scheduler.close()
        return loaded

    loaded = asyncio.run(scenario())

    assert loaded == {"cpu": "cpu", "g2": "cuda:0", "g3": "cuda:0"}
    assert scheduler.stats().evictions == {"g1": 1}


def test_gpu_memory_held_by_others_is_reprobed_and_never_fits(models_path, write_yaml, recorder):
    # Free memory that does not grow when our models leave: another process holds the GPU.
    busy_gpu = FixedMemoryProbe(ram=2**34, devices=(GpuInfo(0, "shared", 1000 * MIB, 300 * MIB),))
    configs = [fake("g1", "vram_mb:200", gpu_layers=99), fake("g2", "vram_mb:400", gpu_layers=99)]
    scheduler = make_scheduler(models_path, write_yaml, configs, memory=busy_gpu)

    async def scenario():
        await scheduler.load("g1")
        with pytest.raises(InsufficientMemory) as refused:
            await scheduler.load("g2")
        await scheduler.close()
        return refused.value

    error = asyncio.run(scenario())

    assert (error.device, error.needed, error.available) == ("cuda:0", 400 * MIB, 300 * MIB)
    assert "needs 400 MiB on cuda:0" in error.message and "cuda:0 memory 1000 MiB" in error.message
    assert recorder.names("unload")[0] == "g1", "g1 was evicted first, then the re-probe showed no gain"
