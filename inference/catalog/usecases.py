"""What a model is for: the usecase set, LocalAI's spellings of it, and the inference table.

A config's ``known_usecases`` (LocalAI spellings such as ``chat``, ``FLAG_CHAT``, ``transcript``)
is authoritative when given. Otherwise the usecases follow from the backend and its flags, in the
one table below. ``capabilities_for`` maps usecases to the backend capabilities that serve them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from enum import StrEnum
from types import MappingProxyType

from inference.capabilities import Capability
from inference.catalog.known_backends import default_canonical_name


class Usecase(StrEnum):
    """An endpoint family a model can serve; members compare equal to their string values."""

    CHAT = "chat"
    COMPLETION = "completion"
    EDIT = "edit"
    EMBEDDINGS = "embeddings"
    RERANK = "rerank"
    IMAGE = "image"
    TTS = "tts"
    TRANSCRIPTION = "transcription"
    SOUND = "sound"
    TOKENIZE = "tokenize"


U = Usecase

# LocalAI's usecase names (lower-cased, FLAG_ prefix stripped) and our own spellings.
_SPELLINGS: Mapping[str, frozenset[Usecase]] = MappingProxyType(
    {
        "chat": frozenset({U.CHAT}),
        "completion": frozenset({U.COMPLETION}),
        "edit": frozenset({U.EDIT}),
        "llm": frozenset({U.CHAT, U.COMPLETION, U.EDIT}),
        "embeddings": frozenset({U.EMBEDDINGS}),
        "embedding": frozenset({U.EMBEDDINGS}),
        "rerank": frozenset({U.RERANK}),
        "image": frozenset({U.IMAGE}),
        "tts": frozenset({U.TTS}),
        "transcript": frozenset({U.TRANSCRIPTION}),
        "transcription": frozenset({U.TRANSCRIPTION}),
        "sound_generation": frozenset({U.SOUND}),
        "sound": frozenset({U.SOUND}),
        "tokenize": frozenset({U.TOKENIZE}),
    }
)

# Usecases by canonical backend name, before flags are considered.
_BACKEND_USECASES: Mapping[str, frozenset[Usecase]] = MappingProxyType(
    {
        "llama-cpp": frozenset({U.CHAT, U.COMPLETION, U.EDIT, U.TOKENIZE}),
        "sentencetransformers": frozenset({U.EMBEDDINGS}),
        "diffusers": frozenset({U.IMAGE}),
        "faster-whisper": frozenset({U.TRANSCRIPTION}),
        "piper": frozenset({U.TTS}),
        "fake": frozenset({U.CHAT, U.COMPLETION, U.EMBEDDINGS, U.RERANK, U.TOKENIZE}),
    }
)

# LocalAI's guess for a model it knows nothing about: a text-generation model.
_GUESS: frozenset[Usecase] = frozenset({U.CHAT, U.COMPLETION})

# diffusers pipeline classes that generate audio rather than images (compared lower-cased).
AUDIO_PIPELINES: frozenset[str] = frozenset(
    {"audioldmpipeline", "audioldm2pipeline", "stableaudiopipeline", "musicldmpipeline"}
)

USECASE_CAPABILITY: Mapping[Usecase, Capability] = MappingProxyType(
    {
        U.CHAT: Capability.CHAT,
        U.COMPLETION: Capability.COMPLETE,
        U.EDIT: Capability.COMPLETE,
        U.EMBEDDINGS: Capability.EMBED,
        U.RERANK: Capability.RERANK,
        U.IMAGE: Capability.IMAGE,
        U.TTS: Capability.SPEAK,
        U.TRANSCRIPTION: Capability.TRANSCRIBE,
        U.SOUND: Capability.SOUND,
        U.TOKENIZE: Capability.TOKENIZE,
    }
)


def is_audio_pipeline(pipeline_type: str | None) -> bool:
    return bool(pipeline_type) and pipeline_type.strip().lower() in AUDIO_PIPELINES


def parse_usecases(spellings: Iterable[str]) -> frozenset[Usecase]:
    """Our usecases for LocalAI ``known_usecases`` strings; spellings we do not serve are dropped."""
    found: set[Usecase] = set()
    for spelling in spellings:
        key = spelling.strip().lower()
        key = key.removeprefix("flag_")
        found |= _SPELLINGS.get(key, frozenset())
    return frozenset(found)


def unknown_usecases(spellings: Iterable[str]) -> list[str]:
    """The spellings ``parse_usecases`` drops (LocalAI usecases this server does not serve)."""
    return [s for s in spellings if s.strip().lower().removeprefix("flag_") not in _SPELLINGS]


def infer_usecases(
    backend: str | None,
    *,
    embeddings: bool = False,
    reranking: bool = False,
    pipeline_type: str | None = None,
) -> frozenset[Usecase]:
    """Usecases of a config without ``known_usecases``: by backend, then adjusted by its flags."""
    canonical = default_canonical_name(backend) if backend else None
    if canonical == "sentencetransformers":
        return frozenset({U.RERANK}) if reranking else frozenset({U.EMBEDDINGS})
    if canonical == "diffusers":
        return frozenset({U.SOUND}) if is_audio_pipeline(pipeline_type) else frozenset({U.IMAGE})
    if canonical is not None and canonical in _BACKEND_USECASES:
        found = set(_BACKEND_USECASES[canonical])
        if canonical == "llama-cpp":
            if embeddings:
                found.add(U.EMBEDDINGS)
            if reranking:
                found.add(U.RERANK)
        return frozenset(found)
    flagged = {U.EMBEDDINGS} if embeddings else set()
    if reranking:
        flagged.add(U.RERANK)
    return frozenset(flagged) or _GUESS


def capabilities_for(usecases: Iterable[str]) -> frozenset[Capability]:
    """The backend capabilities that serve ``usecases``."""
    return frozenset(USECASE_CAPABILITY[Usecase(u)] for u in usecases if u in USECASE_CAPABILITY)
