"""ModelConfig.usecases: LocalAI's known_usecases spellings, and the inference table without them."""

from __future__ import annotations

import pytest

from inference.capabilities import Capability
from inference.catalog.config import ModelConfig
from inference.catalog.usecases import capabilities_for, unknown_usecases


def usecases(**fields):
    return set(ModelConfig.model_validate({"name": "m", **fields}).usecases)


@pytest.mark.parametrize(
    ("known", "expected"),
    [
        (["chat"], {"chat"}),
        (["FLAG_CHAT", "FLAG_COMPLETION"], {"chat", "completion"}),
        (["completion", "edit"], {"completion", "edit"}),
        (["embeddings"], {"embeddings"}),
        (["rerank"], {"rerank"}),
        (["image"], {"image"}),
        (["tts"], {"tts"}),
        (["transcript"], {"transcription"}),
        (["transcription"], {"transcription"}),
        (["FLAG_SOUND_GENERATION"], {"sound"}),
        (["sound"], {"sound"}),
        (["tokenize"], {"tokenize"}),
        (["FLAG_LLM"], {"chat", "completion", "edit"}),
        (["vad"], set()),
        (["Chat", "vision"], {"chat"}),
    ],
)
def test_known_usecases_are_normalised_and_authoritative(known, expected):
    # backend llama-cpp would infer chat+completion+edit+tokenize; known_usecases wins.
    assert usecases(backend="llama-cpp", known_usecases=known) == expected


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"backend": "llama-cpp"}, {"chat", "completion", "edit", "tokenize"}),
        ({"backend": "llama"}, {"chat", "completion", "edit", "tokenize"}),
        ({"backend": "llama-cpp", "embeddings": True}, {"chat", "completion", "edit", "tokenize", "embeddings"}),
        ({"backend": "sentencetransformers"}, {"embeddings"}),
        ({"backend": "sentence-transformers", "reranking": True}, {"rerank"}),
        ({"backend": "diffusers"}, {"image"}),
        ({"backend": "diffusers", "diffusers": {"pipeline_type": "StableDiffusionPipeline"}}, {"image"}),
        ({"backend": "diffusers", "diffusers": {"pipeline_type": "AudioLDM2Pipeline"}}, {"sound"}),
        ({"backend": "faster-whisper"}, {"transcription"}),
        ({"backend": "whisper"}, {"transcription"}),
        ({"backend": "piper"}, {"tts"}),
        ({"backend": "fake"}, {"chat", "completion", "embeddings", "rerank", "tokenize"}),
        ({"backend": "vllm"}, {"chat", "completion"}),
        ({}, {"chat", "completion"}),
        ({"embeddings": True}, {"embeddings"}),
        ({"backend": "rerankers", "reranking": True}, {"rerank"}),
    ],
)
def test_usecases_are_inferred_from_backend_and_flags(fields, expected):
    assert usecases(**fields) == expected


def test_unknown_usecase_spellings_are_reported():
    assert unknown_usecases(["chat", "FLAG_VAD", "video"]) == ["FLAG_VAD", "video"]


def test_capabilities_follow_usecases():
    assert capabilities_for({"chat", "edit", "tts", "transcription"}) == {
        Capability.CHAT,
        Capability.COMPLETE,
        Capability.SPEAK,
        Capability.TRANSCRIBE,
    }
