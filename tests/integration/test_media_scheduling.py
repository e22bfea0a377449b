"""An image model and a chat model share one memory budget: each load evicts the other.

The budget is set between the larger model's estimate and the sum of both, so the scheduler can
hold either but never both; alternating requests must each succeed, every switch must evict the
idle model (counted in the scheduler's stats and /metrics), and neither may ever be refused.
"""

from __future__ import annotations

import base64
import io
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from appliance.app import create_app
from appliance.config import Settings
from fixtures.gguf_models import TinyModels
from inference.backends.registry import BackendRegistry
from inference.catalog.catalog import Catalog
from inference.catalog.config import ModelDefaults
from inference.scheduling.factory import RegistryBackendFactory
from support import write

pytest.importorskip("diffusers")
pytest.importorskip("llama_cpp")
Image = pytest.importorskip("PIL.Image")

CONFIGS = """
- name: painter
  backend: diffusers
  parameters: {model: tiny-sd}
  step: 2
- name: talker
  backend: llama-cpp
  context_size: 256
  threads: 1
  parameters: {model: chat.gguf}
"""


def estimates(models: Path) -> dict[str, int]:
    """What the scheduler will reserve for each model: its backend's own estimate, RAM only here."""
    catalog = Catalog(models, [], ModelDefaults())
    factory = RegistryBackendFactory(BackendRegistry(), models)
    out = {}
    for name in ("painter", "talker"):
        estimate = factory(catalog.get(name)).memory_estimate()
        out[name] = estimate.ram + estimate.vram
    return out


def test_image_and_chat_models_evict_each_other_under_a_small_budget(
    tmp_path: Path, tiny_models: TinyModels, tiny_stable_diffusion: Path
) -> None:
    models = tmp_path / "models"
    models.mkdir()
    (models / "tiny-sd").symlink_to(tiny_stable_diffusion, target_is_directory=True)
    (models / "chat.gguf").symlink_to(tiny_models.chat)
    write(models / "models.yaml", CONFIGS)
    sizes = estimates(models)
    budget = max(sizes.values()) + min(sizes.values()) // 2  # either fits, both never do
    settings = Settings(models_path=models, data_path=tmp_path / "data", builtin_models=False, memory_budget=budget)

    with TestClient(create_app(settings)) as client:
        scheduler = client.app.state.services.scheduler
        for round_ in range(2):
            image = client.post(
                "/v1/images/generations",
                json={"model": "painter", "prompt": "a red cat", "size": "32x32", "response_format": "b64_json"},
            )
            assert image.status_code == 200, image.text
            png = Image.open(io.BytesIO(base64.b64decode(image.json()["data"][0]["b64_json"])))
            assert png.size == (32, 32)
            assert [m.name for m in scheduler.models()] == ["painter"]

            chat = client.post(
                "/v1/chat/completions",
                json={"model": "talker", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 4, "temperature": 0},
            )
            assert chat.status_code == 200, chat.text
            assert [m.name for m in scheduler.models()] == ["talker"]

        stats = scheduler.stats()
        assert stats.loads == {"painter": 2, "talker": 2}
        # Each load after the first pushed the other model out: 2 evictions of the painter, 1 of the talker.
        assert stats.evictions == {"painter": 2, "talker": 1}
        metrics = client.get("/metrics").text
        assert 'model="painter"' in metrics and "evict" in metrics
