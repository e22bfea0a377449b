"""Load cooldowns: after a model fails to load, requests fail fast for a while instead of retrying.

The first failure starts a cooldown of ``base`` seconds; each consecutive failure doubles it up to
``cap``; a successful load forgets the model's failures. Time comes from the injected clock.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from inference.errors import ModelLoadFailed


@dataclass(frozen=True)
class _Failures:
    count: int
    until: float
    error: str


class LoadCooldowns:
    """Consecutive load failures per model. Use from one event loop."""

    def __init__(self, base: float, cap: float, clock: Callable[[], float]) -> None:
        self._base = base
        self._cap = max(cap, base)
        self._clock = clock
        self._failures: dict[str, _Failures] = {}

    def check(self, model: str) -> None:
        """Raise ModelLoadFailed with the seconds left when ``model`` is cooling down."""
        failures = self._failures.get(model)
        if failures is None:
            return
        remaining = failures.until - self._clock()
        if remaining > 0:
            raise ModelLoadFailed(
                f"model {model!r} failed to load {failures.count} time(s) in a row "
                f"(last error: {failures.error}); not retrying for {remaining:.1f} s",
                retry_after=remaining,
            )

    def failed(self, model: str, error: str) -> float:
        """Record a failure; returns the cooldown it starts, in seconds."""
        previous = self._failures.get(model)
        count = previous.count + 1 if previous else 1
        seconds = min(self._base * 2 ** (count - 1), self._cap) if self._base > 0 else 0.0
        self._failures[model] = _Failures(count, self._clock() + seconds, error)
        return seconds

    def succeeded(self, model: str) -> None:
        self._failures.pop(model, None)
