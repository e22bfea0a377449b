"""The scheduler's limits: how many models, how much memory, how long to wait.

A frozen value the app builds from its settings and hands to ``ModelScheduler``, which passes it on
to ``ModelLifecycle``; both read it, so it lives apart from either.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class SchedulerConfig:
    """How many models, how much memory, how long to wait. Seconds for times, bytes for sizes."""

    max_active: int = 0  # 0 = unlimited; N = evict the LRU idle model beyond N (1 = single active backend)
    ram_budget: int | None = None  # bytes for models in system RAM; None = ram_fraction x physical RAM
    ram_fraction: float = 0.75
    idle_timeout: float | None = None  # unload a model idle this long; None = idle watchdog off
    busy_timeout: float | None = None  # expire a lease held this long; None = busy watchdog off
    max_waiting: int = 64  # requests waiting for a model at once; beyond -> Overloaded
    wait_timeout: float = 120.0  # longest one request waits for a lease; then WaitTimeout
    load_cooldown: float = 10.0  # after a failed load, fail fast this long (0 = retry at once)
    load_cooldown_max: float = 300.0  # the cooldown doubles per consecutive failure up to this
    watchdog_interval: float = 1.0
    unload_timeout: float = 30.0  # longest wait for one unload, and close()'s wait for loads

    def __post_init__(self) -> None:
        positive = {"wait_timeout": self.wait_timeout, "watchdog_interval": self.watchdog_interval}
        positive |= {"unload_timeout": self.unload_timeout, "idle_timeout": self.idle_timeout}
        positive |= {"busy_timeout": self.busy_timeout}
        for field, value in positive.items():
            if value is not None and value <= 0:
                raise ValueError(f"scheduler {field} must be positive, got {value!r}")
        counts = {"max_active": self.max_active, "max_waiting": self.max_waiting, "ram_budget": self.ram_budget}
        counts |= {"load_cooldown": self.load_cooldown, "load_cooldown_max": self.load_cooldown_max}
        for field, value in counts.items():
            if value is not None and value < 0:
                raise ValueError(f"scheduler {field} must not be negative, got {value!r}")
        if not 0 < self.ram_fraction <= 1:
            raise ValueError(f"scheduler ram_fraction must be in (0, 1], got {self.ram_fraction!r}")
