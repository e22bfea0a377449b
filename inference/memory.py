"""Memory: what a model needs (estimates) and what each device has (budgets and probes).

An estimate is known before a model loads (file sizes, GGUF headers); the scheduler compares it
with the budget of the device the model will live on and evicts idle models to make room.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class MemoryEstimate:
    """Bytes a model needs in system RAM and in GPU memory (VRAM) once loaded."""

    ram: int
    vram: int = 0

    @property
    def total(self) -> int:
        return self.ram + self.vram
