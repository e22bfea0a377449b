"""The backends this server knows by name: LocalAI's names and aliases, and where each class lives.

Plain data, as ``"module:Class"`` strings, so the catalog can name a config's backend (and infer its
usecases) without importing any backend; ``inference.backends.registry`` turns a name into a class.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class BackendSpec:
    """Where a backend lives and what it needs, without importing it."""

    name: str
    target: str
    requires: tuple[str, ...] = ()
    extra: str = ""
    aliases: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        module, _, attr = self.target.partition(":")
        if not module or not attr:
            raise ValueError(f"backend target {self.target!r} must look like 'package.module:Class'")


DEFAULT_BACKENDS: tuple[BackendSpec, ...] = (
    BackendSpec(
        name="llama-cpp",
        target="inference.backends.llama_cpp:LlamaCppBackend",
        requires=("llama_cpp",),
        extra="chat",
        aliases=("llama", "llama.cpp", "llama-cpp-python"),
    ),
    BackendSpec(
        name="sentencetransformers",
        target="inference.backends.sentence_transformers:SentenceTransformersBackend",
        requires=("sentence_transformers", "torch"),
        extra="embed",
        aliases=("sentence-transformers", "sentence_transformers"),
    ),
    BackendSpec(
        name="diffusers",
        target="inference.backends.diffusers:DiffusersBackend",
        requires=("diffusers", "torch"),
        extra="image",
    ),
    BackendSpec(
        name="faster-whisper",
        target="inference.backends.faster_whisper:FasterWhisperBackend",
        requires=("faster_whisper",),
        extra="stt",
        aliases=("whisper", "faster_whisper"),
    ),
    BackendSpec(
        name="piper",
        target="inference.backends.piper:PiperBackend",
        requires=("piper",),
        extra="tts",
    ),
    BackendSpec(name="fake", target="inference.backends.fake:FakeBackend"),
)


def default_canonical_name(name: str) -> str | None:
    """The canonical name of a built-in backend or alias, or None; needs no registry object."""
    key = name.strip().lower()
    for spec in DEFAULT_BACKENDS:
        if key == spec.name or key in spec.aliases:
            return spec.name
    return None
