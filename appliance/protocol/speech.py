"""Text-to-speech bodies: OpenAI's audio/speech, LocalAI's /tts, ElevenLabs' text-to-speech.

Each turns into one ``SpeechRequest``. Beyond the originals, the OpenAI and LocalAI bodies take an
optional ``speaker`` (a speaker name or id of a multi-speaker voice, next to ``voice``).
"""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from inference.media import MAX_SPEED, MIN_SPEED, SpeechRequest

ResponseFormat = Literal["wav", "pcm", "mp3", "opus", "aac", "flac"]
# ElevenLabs' output_format: codec_samplerate[_bitrate], e.g. mp3_44100_128, pcm_16000.
_OUTPUT_FORMAT = re.compile(r"^(mp3|pcm|wav|opus|flac|aac)_(\d{4,6})(?:_(\d{1,4}))?$")


def _not_blank(value: str) -> str:
    if not value.strip():
        raise ValueError("must not be empty: give the text to speak")
    return value


class VoiceRef(BaseModel):
    """OpenAI's custom voice object ``{"id": "voice_1234"}``."""

    model_config = ConfigDict(extra="allow")

    id: str


class SpeechBody(BaseModel):
    """OpenAI ``POST /v1/audio/speech``. ``response_format`` defaults to ``wav`` (LocalAI's answer;
    OpenAI's default is mp3). ``instructions`` is accepted and ignored: piper voices take none."""

    model_config = ConfigDict(extra="allow")

    model: str | None = Field(None, min_length=1)
    input: str
    voice: str | VoiceRef | None = None
    instructions: str | None = None
    response_format: ResponseFormat = "wav"
    speed: float = Field(1.0, ge=MIN_SPEED, le=MAX_SPEED, allow_inf_nan=False)
    stream_format: Literal["audio", "sse"] | None = None
    speaker: str | int | None = None

    _input = field_validator("input")(_not_blank)

    def voice_name(self) -> str | None:
        return self.voice.id if isinstance(self.voice, VoiceRef) else self.voice

    def to_speech(self) -> SpeechRequest:
        return SpeechRequest(text=self.input, voice=self.voice_name(), speaker=self.speaker, speed=self.speed)


class LocalAITTSBody(BaseModel):
    """LocalAI ``POST /tts``: ``backend`` must match the model's backend when given; ``language`` is
    passed on (piper voices speak their own language and ignore it). ``stream`` is ours: send the
    audio as it is synthesized."""

    model_config = ConfigDict(extra="allow")

    model: str | None = Field(None, min_length=1)
    input: str
    voice: str | None = None
    backend: str | None = None
    language: str | None = None
    response_format: ResponseFormat = "wav"
    speed: float | None = Field(None, ge=MIN_SPEED, le=MAX_SPEED, allow_inf_nan=False)
    speaker: str | int | None = None
    stream: bool = False

    _input = field_validator("input")(_not_blank)

    def to_speech(self) -> SpeechRequest:
        return SpeechRequest(
            text=self.input, voice=self.voice, speaker=self.speaker, speed=self.speed, language=self.language
        )


class VoiceSettings(BaseModel):
    model_config = ConfigDict(extra="allow")

    speed: float | None = Field(None, ge=MIN_SPEED, le=MAX_SPEED, allow_inf_nan=False)


class ElevenLabsTTSBody(BaseModel):
    """ElevenLabs ``POST /v1/text-to-speech/{voice_id}``: ``text``, ``model_id``, ``language_code``,
    ``voice_settings.speed``; other ElevenLabs fields are accepted and ignored."""

    model_config = ConfigDict(extra="allow")

    text: str
    model_id: str | None = Field(None, min_length=1)
    language_code: str | None = None
    voice_settings: VoiceSettings | None = None

    _text = field_validator("text")(_not_blank)

    def to_speech(self, voice: str | None) -> SpeechRequest:
        speed = self.voice_settings.speed if self.voice_settings is not None else None
        return SpeechRequest(text=self.text, voice=voice, speed=speed, language=self.language_code)


def parse_output_format(value: str) -> tuple[str, int, int | None]:
    """ElevenLabs ``output_format`` as (format, sample rate, bit rate in bit/s or None)."""
    match = _OUTPUT_FORMAT.match(value.strip().lower())
    if match is None:
        raise ValueError(
            f"output_format {value!r} is not supported; use codec_samplerate[_bitrate] with codec "
            "mp3, pcm, wav, opus, flac or aac (e.g. mp3_44100_128, pcm_16000)"
        )
    codec, rate, kbps = match.groups()
    return codec, int(rate), int(kbps) * 1000 if kbps else None


def usage(text: str) -> dict[str, Any]:
    """The ``usage`` of a ``speech.audio.done`` event: input counted in characters (no tokenizer)."""
    return {"input_tokens": len(text), "output_tokens": 0, "total_tokens": len(text)}
