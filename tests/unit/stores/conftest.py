"""Fixtures for the stores library tests: a registry on a fresh data path."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from stores.registry import StoreRegistry


@pytest.fixture
def data_path(tmp_path: Path) -> Path:
    return tmp_path / "data"


@pytest.fixture
def registry(data_path: Path) -> Iterator[StoreRegistry]:
    with StoreRegistry(data_path) as reg:
        yield reg
