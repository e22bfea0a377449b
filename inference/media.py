"""The media capabilities' request and result types, shared by backends, services and routes.

Images (IMAGE), speech-to-text (TRANSCRIBE), text-to-speech (SPEAK) and sound generation (SOUND)
each pass one of these plain, immutable values across the scheduler's thread boundary: routes
build requests from HTTP bodies, services hand them to a backend on the model's thread, and the
backend answers with the matching result type. ``MIN_SPEED``/``MAX_SPEED`` and
``check_speech_request`` are OpenAI's bounds on a speech request, shared by the protocol model, the
speech service and the piper backend. Nothing here imports a model runtime.

Audio crosses the boundary as 16-bit little-endian mono PCM plus its sample rate; ``wav_bytes``
and ``wav_header`` turn that into a RIFF/WAVE file, whole or as a streaming header.
"""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass, field
from pathlib import Path

from inference.errors import InvalidRequest

# -- images ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ImageRequest:
    """One images/generations call: ``n`` images of ``width`` x ``height`` pixels.

    ``width``/``height`` of None mean the model's native size. ``source`` is an encoded image
    (PNG/JPEG bytes) for image-to-image; ``steps`` and ``cfg_scale`` of None mean the model
    config's ``step``/``cfg_scale`` or the pipeline's defaults.
    """

    prompt: str
    width: int | None = None
    height: int | None = None
    negative_prompt: str | None = None
    n: int = 1
    seed: int | None = None
    steps: int | None = None
    cfg_scale: float | None = None
    source: bytes | None = None
    strength: float | None = None


@dataclass(frozen=True)
class GeneratedImages:
    """PNG-encoded images, in order, and the seed that made them (for reproducing them)."""

    png: list[bytes]
    seed: int | None = None


# -- speech-to-text -------------------------------------------------------------------------------


@dataclass(frozen=True)
class TranscriptionRequest:
    """Transcribe (or, with ``translate``, translate to English) the audio file at ``audio_path``."""

    audio_path: Path
    language: str | None = None
    prompt: str | None = None
    temperature: float | None = None
    translate: bool = False
    word_timestamps: bool = False
    vad_filter: bool | None = None  # None: the model config's choice


@dataclass(frozen=True)
class Word:
    start: float
    end: float
    word: str
    probability: float


@dataclass(frozen=True)
class Segment:
    id: int
    start: float
    end: float
    text: str
    tokens: list[int]
    temperature: float = 0.0
    avg_logprob: float = 0.0
    compression_ratio: float = 0.0
    no_speech_prob: float = 0.0
    words: list[Word] | None = None
    seek: int = 0  # the decoding window's start, in mel frames (OpenAI's verbose_json carries it)


@dataclass(frozen=True)
class Transcript:
    text: str
    language: str | None
    duration: float
    segments: list[Segment] = field(default_factory=list)


# -- text-to-speech and sound ---------------------------------------------------------------------


@dataclass(frozen=True)
class SpeechRequest:
    """Speak ``text``; ``voice`` names a voice file (None: the model's), ``speaker`` a speaker of it."""

    text: str
    voice: str | None = None
    speaker: str | int | None = None
    speed: float | None = None
    language: str | None = None


@dataclass(frozen=True)
class SoundRequest:
    """Generate a sound from a text description (LocalAI/ElevenLabs sound-generation)."""

    text: str
    duration_seconds: float | None = None
    prompt_influence: float | None = None
    do_sample: bool | None = None
    seed: int | None = None


@dataclass(frozen=True)
class AudioChunk:
    """A piece of mono audio: 16-bit little-endian PCM samples at ``sample_rate`` Hz."""

    pcm: bytes
    sample_rate: int

    @property
    def seconds(self) -> float:
        return len(self.pcm) / 2 / self.sample_rate


MIN_SPEED, MAX_SPEED = 0.25, 4.0  # OpenAI's range for `speed`


def check_speech_request(request: SpeechRequest) -> None:
    """Raise InvalidRequest for empty text or a speed outside [MIN_SPEED, MAX_SPEED]."""
    if not request.text or not request.text.strip():
        raise InvalidRequest("input must not be empty: give the text to speak", param="input")
    if request.speed is not None and not (
        math.isfinite(request.speed) and MIN_SPEED <= request.speed <= MAX_SPEED
    ):
        raise InvalidRequest(
            f"speed must be between {MIN_SPEED} and {MAX_SPEED}, got {request.speed}", param="speed"
        )


# -- WAV ------------------------------------------------------------------------------------------

# The data size a streaming header announces when the length is not known yet (players accept it).
UNKNOWN_LENGTH = 0xFFFFFFFF - 36


def wav_header(sample_rate: int, data_bytes: int = UNKNOWN_LENGTH, *, channels: int = 1) -> bytes:
    """The 44-byte RIFF/WAVE header of 16-bit PCM; pass no size when streaming."""
    block_align = channels * 2
    return b"".join(
        (
            b"RIFF",
            struct.pack("<I", min(36 + data_bytes, 0xFFFFFFFF)),
            b"WAVEfmt ",
            struct.pack("<IHHIIHH", 16, 1, channels, sample_rate, sample_rate * block_align, block_align, 16),
            b"data",
            struct.pack("<I", min(data_bytes, 0xFFFFFFFF)),
        )
    )


def wav_bytes(pcm: bytes, sample_rate: int) -> bytes:
    """A complete mono 16-bit WAV file holding ``pcm``."""
    return wav_header(sample_rate, len(pcm)) + pcm
