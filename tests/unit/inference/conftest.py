"""Fixtures for the inference library tests: a YAML writer into the suite's `models_path`."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

WriteYaml = Callable[[str, Any], Path]


@pytest.fixture
def write_yaml(models_path: Path) -> WriteYaml:
    """Write ``data`` (a Python value dumped as YAML, or raw text) to ``models_path / name``."""

    def write(name: str, data: Any) -> Path:
        path = models_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(data if isinstance(data, str) else yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
        return path

    return write
