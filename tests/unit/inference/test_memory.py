"""Memory probes and placement: device choice, requirements, and the eviction plan as pure values."""

from __future__ import annotations

import subprocess
import sys

import pytest

from inference.backends.base import MemoryEstimate
from inference.catalog.config import ModelConfig, wants_gpu
from inference.errors import InsufficientMemory
from inference.scheduling import memory as memory_module
from inference.scheduling.devices import GpuInfo
from inference.scheduling.memory import FixedMemoryProbe, SystemMemoryProbe
from inference.scheduling.nvml import Nvml, NvmlError
from inference.scheduling.placement import RAM, Resident, RoomPlan, choose_device, plan_room, requirement

MIB = 1024 * 1024
GPUS = [GpuInfo(0, "a", 1000 * MIB, 900 * MIB), GpuInfo(1, "b", 1000 * MIB, 900 * MIB)]


def config(**fields) -> ModelConfig:
    return ModelConfig.model_validate({"name": "m", **fields})


@pytest.mark.parametrize(
    ("fields", "gpus", "device"),
    [
        ({}, GPUS, "cpu"),
        ({"gpu_layers": 0}, GPUS, "cpu"),
        ({"gpu_layers": 99}, GPUS, "cuda:0"),
        ({"gpu_layers": 99, "main_gpu": "1"}, GPUS, "cuda:1"),
        ({"gpu_layers": 99, "main_gpu": "7"}, GPUS, "cuda:0"),
        ({"cuda": True}, GPUS, "cuda:0"),
        ({"diffusers": {"cuda": True}}, GPUS, "cuda:0"),
        ({"gpu_layers": 99}, [], "cpu"),
    ],
)
def test_choose_device(fields, gpus, device):
    assert choose_device(config(**fields), gpus) == device


def test_wants_gpu_and_requirement():
    assert wants_gpu(config(gpu_layers=1)) and not wants_gpu(config(gpu_layers=0))
    estimate = MemoryEstimate(ram=10, vram=30)
    assert requirement(estimate, "cpu") == {RAM: 40}
    assert requirement(estimate, "cuda:1") == {RAM: 10, "cuda:1": 30}


def resident(name, ram, last_used, **kwargs) -> Resident:
    return Resident(name, {RAM: ram}, last_used, **kwargs)


def test_plan_fits_without_evicting_when_there_is_room():
    assert plan_room("new", {RAM: 10}, {RAM: 10}, {RAM: 100}, [resident("a", 90, 1)]) == RoomPlan()


def test_plan_evicts_least_recently_used_first_and_only_what_is_needed():
    residents = [resident("old", 30, 1), resident("newer", 30, 3), resident("mid", 30, 2)]
    plan = plan_room("new", {RAM: 50}, {RAM: 10}, {RAM: 100}, residents)
    assert plan == RoomPlan(evict=("old", "mid"))


def test_plan_skips_residents_that_free_nothing_short():
    residents = [Resident("cpu", {RAM: 10}, 1), Resident("gpu", {RAM: 0, "cuda:0": 500}, 2)]
    plan = plan_room("new", {RAM: 0, "cuda:0": 400}, {RAM: 90, "cuda:0": 100}, {RAM: 100}, residents)
    assert plan == RoomPlan(evict=("gpu",))


def test_plan_waits_when_only_busy_models_would_make_room():
    residents = [resident("idle", 20, 1), resident("busy", 50, 2, busy=True)]
    assert plan_room("new", {RAM: 60}, {RAM: 30}, {RAM: 100}, residents) == RoomPlan(wait=True)


def test_plan_never_counts_pinned_models_as_room():
    residents = [resident("pinned", 50, 1, pinned=True), resident("busy-pinned", 30, 2, pinned=True, busy=True)]
    with pytest.raises(InsufficientMemory) as refused:
        plan_room("new", {RAM: 40}, {RAM: 20}, {RAM: 100}, residents)
    assert (refused.value.needed, refused.value.available, refused.value.device) == (40, 20, "cpu")


def test_plan_for_max_active_evicts_the_lru_idle_model_or_waits_or_refuses():
    idle = [resident("a", 1, 2), resident("b", 1, 1)]
    assert plan_room("new", {}, {}, {}, idle, max_active=2) == RoomPlan(evict=("b",))
    busy = [resident("a", 1, 2, busy=True), resident("b", 1, 1, busy=True)]
    assert plan_room("new", {}, {}, {}, busy, max_active=2) == RoomPlan(wait=True)
    pinned = [resident("p", 1, 1, pinned=True)]
    with pytest.raises(InsufficientMemory, match="max_active=1"):
        plan_room("new", {}, {}, {}, pinned, max_active=1)
    assert plan_room("new", {}, {}, {}, busy, max_active=0) == RoomPlan(), "0 means unlimited"


def test_a_resource_without_a_budget_is_unlimited():
    assert plan_room("new", {RAM: 10**15}, {}, {}, [resident("a", 10, 1)]) == RoomPlan()


def test_fixed_probe_reports_what_it_was_given():
    probe = FixedMemoryProbe(ram=123, devices=(GPUS[0],))
    assert probe.ram_total() == 123 and probe.gpus() == [GPUS[0]]
    assert FixedMemoryProbe().gpus() == []


def test_system_probe_reads_ram_and_never_raises_for_gpus(monkeypatch):
    probe = SystemMemoryProbe()
    assert probe.ram_total() > 64 * MIB
    assert isinstance(probe.gpus(), list)

    def broken(cls, library="x"):
        raise OSError("no NVML here")

    monkeypatch.setattr(Nvml, "open", classmethod(broken))
    monkeypatch.delitem(sys.modules, "torch", raising=False)
    assert SystemMemoryProbe().gpus() == []


def test_a_failing_nvml_call_means_no_gpu(monkeypatch):
    class Failing:
        def gpus(self, visible):
            raise NvmlError("nvmlDeviceGetMemoryInfo returned NVML error 999")

    monkeypatch.setattr(Nvml, "open", classmethod(lambda cls, library="x": Failing()))
    assert SystemMemoryProbe().gpus() == []


def test_a_container_memory_limit_caps_physical_ram(monkeypatch, tmp_path):
    limit = tmp_path / "memory.max"
    limit.write_text(f"{256 * MIB}\n")
    monkeypatch.setattr(memory_module, "_CGROUP_LIMITS", (limit,))
    monkeypatch.setattr(memory_module, "_physical_ram", lambda: 1024 * MIB)
    assert SystemMemoryProbe().ram_total() == 256 * MIB
    limit.write_text("max\n")
    assert SystemMemoryProbe().ram_total() == 1024 * MIB


def test_importing_the_scheduler_imports_no_runtime_or_web_framework():
    code = (
        "import sys, inference.scheduling.scheduler, inference.scheduling.memory\n"
        "inference.scheduling.memory.SystemMemoryProbe().gpus()\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in "
        "('torch', 'llama_cpp', 'fastapi', 'appliance', 'diffusers')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


@pytest.mark.gpu
@pytest.mark.skipif(not SystemMemoryProbe().gpus(), reason="needs a CUDA device")
def test_nvml_reports_real_gpus():
    gpus = SystemMemoryProbe().gpus()
    assert [g.index for g in gpus] == list(range(len(gpus)))
    assert all(g.name and 0 < g.free <= g.total for g in gpus)
