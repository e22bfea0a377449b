"""PiperBackend before loading: which file is the voice, and its memory estimate (file sizes).
Nothing here imports piper."""

from __future__ import annotations

from pathlib import Path

import pytest

from inference.backends.piper import PiperBackend
from inference.catalog.config import ModelConfig
from inference.errors import InvalidModelConfig


def backend(models_path: Path, **fields: object) -> PiperBackend:
    return PiperBackend(ModelConfig.model_validate({"name": "v", "backend": "piper", **fields}), models_path)


def voice_files(models_path: Path, name: str, onnx: int, config: int) -> None:
    (models_path / name).write_bytes(b"\0" * onnx)
    (models_path / f"{name}.json").write_bytes(b" " * config)


def test_the_voice_is_parameters_model_else_tts_voice(models_path: Path) -> None:
    assert backend(models_path, parameters={"model": "a.onnx"}, tts={"voice": "b"}).model_path() == models_path / "a.onnx"
    assert backend(models_path, tts={"voice": "b.onnx"}).model_path() == models_path / "b.onnx"
    assert backend(models_path).model_path() is None


def test_memory_estimate_is_the_voice_files(models_path: Path) -> None:
    voice_files(models_path, "a.onnx", 5000, 300)
    assert backend(models_path, parameters={"model": "a.onnx"}).memory_estimate().ram == 5300
    on_gpu = backend(models_path, parameters={"model": "a.onnx"}, cuda=True).memory_estimate()
    assert (on_gpu.ram, on_gpu.vram) == (300, 5000)
    assert backend(models_path, parameters={"model": "missing.onnx"}).memory_estimate().total == 0


def test_loading_without_a_voice_file_names_the_field(models_path: Path) -> None:
    with pytest.raises(InvalidModelConfig) as caught:
        backend(models_path).load()
    assert caught.value.param == "parameters.model"
