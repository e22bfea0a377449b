"""Placement: which device a model goes to, what it takes there, and what must leave to make room.

Pure functions on plain values, so the scheduler's memory policy is tested without loading anything.
Resources are ``"ram"`` (system RAM against the configured budget) and ``"cuda:N"`` (a GPU's probed
free memory). A model on a GPU takes its RAM estimate in RAM and its VRAM estimate on the GPU; a
model on the CPU takes both in RAM.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from inference.backends.base import MemoryEstimate
from inference.catalog.config import ModelConfig, wants_gpu
from inference.errors import InsufficientMemory
from inference.scheduling.devices import GpuInfo

CPU = "cpu"
RAM = "ram"
_MIB = 1024 * 1024


def choose_device(config: ModelConfig, gpus: Sequence[GpuInfo]) -> str:
    """``cuda:{main_gpu or 0}`` when a GPU exists and the config asks for one, else ``"cpu"``.

    A ``main_gpu`` this process cannot see falls back to the first visible GPU.
    """
    if not gpus or not wants_gpu(config):
        return CPU
    wanted = int(config.main_gpu) if config.main_gpu and config.main_gpu.strip().isdigit() else 0
    indices = [gpu.index for gpu in gpus]
    return f"cuda:{wanted if wanted in indices else indices[0]}"


def requirement(estimate: MemoryEstimate, device: str) -> dict[str, int]:
    """Bytes per resource a model with ``estimate`` takes on ``device``."""
    if device == CPU:
        return {RAM: estimate.total}
    return {RAM: estimate.ram, device: estimate.vram}


@dataclass(frozen=True)
class Resident:
    """A loaded model as the planner sees it. ``busy``: leased or on its way out, so not evictable now."""

    name: str
    usage: Mapping[str, int]
    last_used: float
    pinned: bool = False
    busy: bool = False


@dataclass(frozen=True)
class RoomPlan:
    """Evict these models (least recently used first), then load; or wait for a release and plan again."""

    evict: tuple[str, ...] = ()
    wait: bool = False


def plan_room(
    model: str,
    need: Mapping[str, int],
    available: Mapping[str, int],
    budgets: Mapping[str, int],
    residents: Sequence[Resident],
    max_active: int = 0,
) -> RoomPlan:
    """How to make room for ``model``, or InsufficientMemory when it can never fit.

    ``available``: bytes free now per resource (a resource missing from it is unlimited); evicting a
    resident frees its ``usage``. ``max_active`` > 0 caps how many models may be loaded. Only idle,
    unpinned residents are evicted, least recently used first, and only ones that free a resource
    that is short. When that is not enough but busy unpinned residents would cover the rest once
    they finish, the plan is to wait. Pinned residents never count as room.
    """
    short = {r: n - available[r] for r, n in need.items() if r in available and n > available[r]}
    over = len(residents) + 1 - max_active if max_active > 0 else 0
    evict: list[str] = []
    for resident in sorted(residents, key=lambda r: r.last_used):
        if not short and over <= 0:
            break
        if resident.busy or resident.pinned:
            continue
        if over <= 0 and not any(resident.usage.get(r, 0) > 0 for r in short):
            continue
        evict.append(resident.name)
        over -= 1
        for resource in list(short):
            short[resource] -= resident.usage.get(resource, 0)
            if short[resource] <= 0:
                del short[resource]
    if not short and over <= 0:
        return RoomPlan(evict=tuple(evict))
    later = [r for r in residents if r.busy and not r.pinned]
    for resource, missing in short.items():
        freed_later = sum(r.usage.get(resource, 0) for r in later)
        if freed_later < missing:
            _raise_never_fits(model, resource, need, available, budgets, residents)
    if over > len(later):
        pinned = sorted(r.name for r in residents if r.pinned)
        raise InsufficientMemory(
            f"cannot load model {model!r}: max_active={max_active} models are loaded and "
            f"{len(pinned)} of them are pinned ({', '.join(pinned)}); unpin one or raise max_active",
            needed=1,
            available=max_active - len(pinned),
            device="max_active",
        )
    return RoomPlan(wait=True)


def _raise_never_fits(
    model: str,
    resource: str,
    need: Mapping[str, int],
    available: Mapping[str, int],
    budgets: Mapping[str, int],
    residents: Sequence[Resident],
) -> None:
    reachable = available[resource] + sum(r.usage.get(resource, 0) for r in residents if not r.pinned)
    device = CPU if resource == RAM else resource
    where = "RAM budget" if resource == RAM else f"{resource} memory"
    raise InsufficientMemory(
        f"model {model!r} needs {_mib(need[resource])} MiB on {device} but at most "
        f"{_mib(reachable)} MiB can be made available ({where} {_mib(budgets.get(resource, 0))} MiB; "
        "pinned models and other use hold the rest)",
        needed=need[resource],
        available=max(reachable, 0),
        device=device,
    )


def _mib(size: int) -> str:
    return f"{size / _MIB:.0f}"
