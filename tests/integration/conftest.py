"""Integration fixtures: the tiny GGUF models, built once per test session into a temp folder."""

from __future__ import annotations

from pathlib import Path

import pytest

from fixtures.gguf_models import TinyModels, build_tiny_models
from fixtures.piper_models import PiperVoices


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory: pytest.TempPathFactory) -> TinyModels:
    """Paths of the tiny chat, non-ChatML, template-less and embedding models (see `TinyModels`)."""
    return build_tiny_models(tmp_path_factory.mktemp("gguf-models"))


@pytest.fixture(scope="session")
def tiny_whisper(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny multilingual CTranslate2 whisper folder (see fixtures.whisper_models); skipped without
    faster-whisper, transformers or torch."""
    for module in ("faster_whisper", "ctranslate2", "transformers", "torch"):
        pytest.importorskip(module)
    from fixtures.whisper_models import write_tiny_whisper

    return write_tiny_whisper(tmp_path_factory.mktemp("whisper-model") / "tiny-whisper")


@pytest.fixture(scope="session")
def piper_voices(tmp_path_factory: pytest.TempPathFactory) -> PiperVoices:
    """A tiny single-speaker and a 3-speaker piper voice (see fixtures.piper_models); skipped without
    piper, torch or onnx."""
    for module in ("piper", "torch", "onnx"):
        pytest.importorskip(module)
    from fixtures.piper_models import build_piper_voices

    return build_piper_voices(tmp_path_factory.mktemp("piper-voices"))


@pytest.fixture(scope="session")
def tiny_stable_diffusion(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny StableDiffusionPipeline folder, 32x32 by default (see fixtures.diffusers_models);
    skipped without diffusers, transformers or torch."""
    for module in ("diffusers", "transformers", "torch"):
        pytest.importorskip(module)
    from fixtures.diffusers_models import write_tiny_stable_diffusion

    return write_tiny_stable_diffusion(tmp_path_factory.mktemp("diffusers-sd") / "tiny-sd")


@pytest.fixture(scope="session")
def tiny_audioldm(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny AudioLDMPipeline folder making 16 kHz audio (see fixtures.diffusers_models);
    skipped without diffusers, transformers or torch."""
    for module in ("diffusers", "transformers", "torch"):
        pytest.importorskip(module)
    from fixtures.diffusers_models import write_tiny_audioldm

    return write_tiny_audioldm(tmp_path_factory.mktemp("diffusers-audioldm") / "tiny-audioldm")
