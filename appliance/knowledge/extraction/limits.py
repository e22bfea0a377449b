"""The bounds one file's extraction runs under: time, memory, pages, bytes on disk and unpacked.

The pool checks `max_bytes` before a child sees the file; the child applies the rest (memory and CPU
as resource limits of its own process, pages and unpacked sizes before it parses).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class ExtractionLimits:
    timeout_s: float = 120.0  # wall clock per file, enforced by the parent
    memory_mb: int = 1024  # RLIMIT_AS of each child process
    max_pages: int = 2000
    max_bytes: int = 100 * 2**20  # the file on disk
    max_uncompressed_bytes: int = 200 * 2**20  # DOCX/zip members, checked from the zip directory BEFORE reading

    def __post_init__(self) -> None:
        if self.timeout_s <= 0:
            raise ValueError("timeout_s must be positive")
        for name in ("memory_mb", "max_pages", "max_bytes", "max_uncompressed_bytes"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ExtractionLimits:
        names = {field.name for field in dataclasses.fields(cls)}
        return cls(**{key: value for key, value in data.items() if key in names})
