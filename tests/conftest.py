"""Suite-wide fixtures: an environment with no stray settings, and an app factory on temp paths."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from appliance.app import create_app
from appliance.config import Settings, env_names


@pytest.fixture(autouse=True)
def clean_settings_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No test may pick up a setting from the developer's or CI's environment."""
    names = {name for field in Settings.model_fields for name in env_names(field)}
    for key in list(os.environ):
        if key.upper() in names or key.upper().startswith(("APPLIANCE_", "LOCALAI_")):
            monkeypatch.delenv(key)


@pytest.fixture
def models_path(tmp_path: Path) -> Path:
    path = tmp_path / "models"
    path.mkdir()
    return path


@pytest.fixture
def make_settings(tmp_path: Path, models_path: Path) -> Callable[..., Settings]:
    def build(**overrides: Any) -> Settings:
        # Built-in models are off unless a test asks for them, so model lists hold only its own.
        values: dict[str, Any] = {"models_path": models_path, "data_path": tmp_path / "data", "builtin_models": False}
        values.update(overrides)
        return Settings(**values)

    return build


@pytest.fixture
def make_app(make_settings: Callable[..., Settings]) -> Callable[..., FastAPI]:
    def build(**overrides: Any) -> FastAPI:
        return create_app(make_settings(**overrides))

    return build


@pytest.fixture
def client(make_app: Callable[..., FastAPI]) -> Iterator[TestClient]:
    with TestClient(make_app()) as test_client:
        yield test_client


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """The browser tests run last: Playwright's sync API keeps an event loop running on the main
    thread while its session fixture lives, and asyncio.run() elsewhere refuses to start beside it."""
    browser = Path(__file__).parent / "browser"
    items.sort(key=lambda item: Path(str(item.path)).is_relative_to(browser))
