"""Memory probes: what the machine has, RAM and GPUs (what a model needs is the backend's
``MemoryEstimate``, ``inference.backends.base``).

An estimate is known before a model loads (file sizes, GGUF headers); the scheduler compares it
with the budget of the device the model will live on (see ``inference.scheduling.placement``) and
evicts idle models to make room. Probes never raise: a GPU that cannot be read is reported as no GPU.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from inference.scheduling.devices import GpuInfo
from inference.scheduling.nvml import Nvml, NvmlError

logger = logging.getLogger(__name__)

# cgroup v2, then v1: a container's memory limit, which os.sysconf does not see.
_CGROUP_LIMITS = (Path("/sys/fs/cgroup/memory.max"), Path("/sys/fs/cgroup/memory/memory.limit_in_bytes"))


class MemoryProbe(Protocol):
    """What the scheduler asks the machine. Both calls may block briefly; they run off the loop."""

    def ram_total(self) -> int:
        """Physical RAM (or the container's limit) in bytes; 0 when unknown."""
        ...

    def gpus(self) -> list[GpuInfo]:
        """The CUDA devices with their current free memory; empty without a usable GPU."""
        ...


@dataclass(frozen=True)
class FixedMemoryProbe:
    """A machine described by hand: tests, or a deployment that wants fixed numbers."""

    ram: int = 0
    devices: Sequence[GpuInfo] = ()

    def ram_total(self) -> int:
        return self.ram

    def gpus(self) -> list[GpuInfo]:
        return list(self.devices)


class SystemMemoryProbe:
    """RAM from the OS, capped by a cgroup limit; GPUs from NVML, else from torch if already imported.

    NVML is reached through ctypes (``libnvidia-ml.so.1``), so probing imports nothing heavy. torch is
    consulted only when something else already imported it. Thread-safe.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._nvml: Nvml | None = None
        self._nvml_tried = False
        self._failure_logged = False

    def ram_total(self) -> int:
        physical = _physical_ram()
        limit = _cgroup_limit()
        if limit and (not physical or limit < physical):
            return limit
        return physical

    def gpus(self) -> list[GpuInfo]:
        try:
            nvml = self._open_nvml()
            if nvml is not None:
                return nvml.gpus(os.environ.get("CUDA_VISIBLE_DEVICES"))
            return _torch_gpus()
        except Exception as exc:  # a probe never fails the caller: no readable GPU means no GPU
            self._log_failure(exc)
            return []

    def _open_nvml(self) -> Nvml | None:
        with self._lock:
            if not self._nvml_tried:
                self._nvml_tried = True
                try:
                    self._nvml = Nvml.open()
                except (OSError, NvmlError) as exc:
                    logger.debug("event=nvml_unavailable error=%s", exc)
            return self._nvml

    def _log_failure(self, exc: Exception) -> None:
        with self._lock:
            if self._failure_logged:
                return
            self._failure_logged = True
        logger.debug("event=gpu_probe_failed error=%r", exc)


def _physical_ram() -> int:
    try:
        return int(os.sysconf("SC_PAGE_SIZE")) * int(os.sysconf("SC_PHYS_PAGES"))
    except (AttributeError, ValueError, OSError):
        pass
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return 0


def _cgroup_limit() -> int:
    for path in _CGROUP_LIMITS:
        try:
            text = path.read_text().strip()
        except OSError:
            continue
        if text.isdigit():
            return int(text)
    return 0


def _torch_gpus() -> list[GpuInfo]:
    torch: Any = sys.modules.get("torch")
    if torch is None or not torch.cuda.is_available():
        return []
    found = []
    for index in range(torch.cuda.device_count()):
        free, total = torch.cuda.mem_get_info(index)
        found.append(GpuInfo(index, str(torch.cuda.get_device_name(index)), int(total), int(free)))
    return found
