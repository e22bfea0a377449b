"""Fixtures of the gallery unit tests: a loopback gallery server and an empty models path."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from fixtures.gallery_server import GalleryServer


@pytest.fixture
def server() -> Iterator[GalleryServer]:
    with GalleryServer() as served:
        yield served


@pytest.fixture
def models(tmp_path: Path) -> Path:
    path = tmp_path / "models"
    path.mkdir()
    return path
