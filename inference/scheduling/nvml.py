"""NVML through ctypes: the CUDA devices' names and memory, with no Python GPU package installed.

Only the few calls the memory probe needs. Devices are reported by their ``cuda:N`` index, following
``CUDA_VISIBLE_DEVICES`` (indices or UUIDs) the way CUDA numbers them for this process.
"""

from __future__ import annotations

import ctypes
from typing import Any

from inference.scheduling.devices import GpuInfo

LIBRARY = "libnvidia-ml.so.1"
_NAME_LENGTH = 96


class NvmlError(Exception):
    """An NVML call returned an error code."""


class _Memory(ctypes.Structure):
    _fields_ = [("total", ctypes.c_ulonglong), ("free", ctypes.c_ulonglong), ("used", ctypes.c_ulonglong)]


class Nvml:
    """An initialised NVML library. ``open`` raises OSError or NvmlError when there is none."""

    def __init__(self, lib: Any) -> None:
        self._lib = lib

    @classmethod
    def open(cls, library: str = LIBRARY) -> Nvml:
        lib = ctypes.CDLL(library)
        for name, argtypes in (
            ("nvmlInit_v2", []),
            ("nvmlDeviceGetCount_v2", [ctypes.POINTER(ctypes.c_uint)]),
            ("nvmlDeviceGetHandleByIndex_v2", [ctypes.c_uint, ctypes.POINTER(ctypes.c_void_p)]),
            ("nvmlDeviceGetHandleByUUID", [ctypes.c_char_p, ctypes.POINTER(ctypes.c_void_p)]),
            ("nvmlDeviceGetMemoryInfo", [ctypes.c_void_p, ctypes.POINTER(_Memory)]),
            ("nvmlDeviceGetName", [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_uint]),
        ):
            function = getattr(lib, name)
            function.argtypes = argtypes
            function.restype = ctypes.c_int
        nvml = cls(lib)
        nvml._check("nvmlInit_v2")
        return nvml

    def gpus(self, visible: str | None) -> list[GpuInfo]:
        """The devices CUDA shows this process, numbered as CUDA numbers them."""
        return [self._info(index, handle) for index, handle in enumerate(self._handles(visible))]

    def _handles(self, visible: str | None) -> list[ctypes.c_void_p]:
        if visible is None:
            count = ctypes.c_uint()
            self._check("nvmlDeviceGetCount_v2", ctypes.byref(count))
            return [self._by_index(i) for i in range(count.value)]
        handles = []
        for item in (part.strip() for part in visible.split(",")):
            # CUDA stops at the first invalid entry ("-1" is the usual way to hide every device).
            if item.isdigit():
                handles.append(self._by_index(int(item)))
            elif item.startswith(("GPU-", "MIG-")):
                handle = ctypes.c_void_p()
                self._check("nvmlDeviceGetHandleByUUID", item.encode(), ctypes.byref(handle))
                handles.append(handle)
            else:
                break
        return handles

    def _by_index(self, index: int) -> ctypes.c_void_p:
        handle = ctypes.c_void_p()
        self._check("nvmlDeviceGetHandleByIndex_v2", index, ctypes.byref(handle))
        return handle

    def _info(self, index: int, handle: ctypes.c_void_p) -> GpuInfo:
        memory = _Memory()
        self._check("nvmlDeviceGetMemoryInfo", handle, ctypes.byref(memory))
        name = ctypes.create_string_buffer(_NAME_LENGTH)
        self._check("nvmlDeviceGetName", handle, name, _NAME_LENGTH)
        return GpuInfo(index, name.value.decode(errors="replace"), int(memory.total), int(memory.free))

    def _check(self, function: str, *args: Any) -> None:
        code = getattr(self._lib, function)(*args)
        if code != 0:
            raise NvmlError(f"{function} returned NVML error {code}")
