"""The GPUs a memory probe reports: one ``GpuInfo`` per CUDA device this process can see.

Its own module so that the probes (``memory``), the NVML binding (``nvml``) and placement can all
name a device without importing each other.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class GpuInfo:
    """One CUDA device as the process sees it: ``index`` is the ``cuda:N`` index, sizes in bytes."""

    index: int
    name: str
    total: int
    free: int
