"""--parallel-requests reaches the model configs: Settings -> ModelDefaults -> each catalog entry."""

from __future__ import annotations

from pathlib import Path

import pytest

from appliance.app import build_services
from appliance.config import Settings


@pytest.mark.parametrize("flag", [False, True])
def test_the_setting_becomes_each_model_s_default(tmp_path: Path, flag: bool) -> None:
    (tmp_path / "own.yaml").write_text("name: own\nbackend: llama-cpp\nparameters:\n  model: x.gguf\n")
    (tmp_path / "off.yaml").write_text(
        "name: off\nbackend: llama-cpp\nparallel_requests: false\nparameters:\n  model: x.gguf\n"
    )
    services = build_services(Settings(models_path=tmp_path, parallel_requests=flag, builtin_models=False))
    assert services.catalog.get("own").config.parallel_requests is flag
    assert services.catalog.get("off").config.parallel_requests is False
