"""Integration fixtures: the tiny GGUF models, built once per test session into a temp folder."""

from __future__ import annotations

import pytest

from fixtures.gguf_models import TinyModels, build_tiny_models


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory: pytest.TempPathFactory) -> TinyModels:
    """Paths of the tiny chat, non-ChatML, template-less and embedding models (see `TinyModels`)."""
    return build_tiny_models(tmp_path_factory.mktemp("gguf-models"))
