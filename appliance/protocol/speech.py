"""Text-to-speech bodies: OpenAI's audio/speech, LocalAI's /tts, ElevenLabs' text-to-speech.

Each turns into one ``SpeechRequest``. Beyond the originals, the OpenAI and LocalAI bodies take an
optional ``speaker`` (a speaker name or id of a multi-speaker voice, next to ``voice``).
"""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import ConfigDict, Field, field_validator

from appliance.protocol.base import NOT_BLANK, SPACE, JsonInt, ModelName, RequestBody
from inference.catalog.known_backends import DEFAULT_BACKENDS
from inference.media import MAX_SPEED, MIN_SPEED, SpeechRequest

ResponseFormat = Literal["wav", "pcm", "mp3", "opus", "aac", "flac"]
# ElevenLabs' output_format: codec_samplerate[_bitrate], e.g. mp3_44100_128, pcm_16000.
_CODECS = ("mp3", "pcm", "wav", "opus", "flac", "aac")
_OUTPUT_FORMAT = re.compile(rf"^({'|'.join(_CODECS)})_([0-9]{{4,6}})(?:_([0-9]{{1,4}}))?$")
# The same for the schema, which has no flags: any case, white space around (as parsed below);
# empty is no output_format (the default, WAV at the voice's rate).
OUTPUT_FORMAT_PATTERN = (
    f"^$|^[{SPACE}]*("
    + "|".join("".join(f"[{c.lower()}{c.upper()}]" if c.isalpha() else c for c in codec) for codec in _CODECS)
    + f")_[0-9]{{4,6}}(_[0-9]{{1,4}})?[{SPACE}]*$"
)


def _not_blank(value: str) -> str:
    if not value.strip():
        raise ValueError("must not be empty: give the text to speak")
    return value


def _spoken_text() -> Any:
    """The field `_not_blank` checks, as the schema states it: some character other than white space."""
    return Field(json_schema_extra={"pattern": NOT_BLANK}, description="The text to speak (not just white space)")


class VoiceRef(RequestBody):
    """OpenAI's custom voice object ``{"id": "voice_1234"}``."""

    model_config = ConfigDict(extra="allow")

    id: str


class SpeechBody(RequestBody):
    """OpenAI ``POST /v1/audio/speech``. ``response_format`` defaults to ``wav`` (LocalAI's answer;
    OpenAI's default is mp3). ``instructions`` is accepted and ignored: piper voices take none."""

    model_config = ConfigDict(extra="allow")

    model: ModelName | None = None
    input: str = _spoken_text()
    voice: str | VoiceRef | None = None
    instructions: str | None = None
    response_format: ResponseFormat = "wav"
    speed: float = Field(1.0, ge=MIN_SPEED, le=MAX_SPEED, allow_inf_nan=False)
    stream_format: Literal["audio", "sse"] | None = None
    speaker: str | JsonInt | None = None

    _input = field_validator("input")(_not_blank)

    def voice_name(self) -> str | None:
        return self.voice.id if isinstance(self.voice, VoiceRef) else self.voice

    def to_speech(self) -> SpeechRequest:
        return SpeechRequest(text=self.input, voice=self.voice_name(), speaker=self.speaker, speed=self.speed)


class LocalAITTSBody(RequestBody):
    """LocalAI ``POST /tts``: ``backend`` must match the model's backend when given; ``language`` is
    passed on (piper voices speak their own language and ignore it). ``stream`` is ours: send the
    audio as it is synthesized."""

    model_config = ConfigDict(extra="allow")

    model: ModelName | None = None
    input: str = _spoken_text()
    voice: str | None = None
    backend: str | None = Field(
        None,
        description="The model's own backend (or its alias), or empty",
        json_schema_extra={
            "anyOf": [
                {"enum": ["", *sorted({n for s in DEFAULT_BACKENDS for n in (s.name, *s.aliases)})]},
                {"type": "null"},
            ]
        },
    )
    language: str | None = None
    response_format: ResponseFormat = "wav"
    speed: float | None = Field(None, ge=MIN_SPEED, le=MAX_SPEED, allow_inf_nan=False)
    speaker: str | JsonInt | None = None
    stream: bool = False

    _input = field_validator("input")(_not_blank)

    def to_speech(self) -> SpeechRequest:
        return SpeechRequest(
            text=self.input, voice=self.voice, speaker=self.speaker, speed=self.speed, language=self.language
        )


class VoiceSettings(RequestBody):
    model_config = ConfigDict(extra="allow")

    speed: float | None = Field(None, ge=MIN_SPEED, le=MAX_SPEED, allow_inf_nan=False)


class ElevenLabsTTSBody(RequestBody):
    """ElevenLabs ``POST /v1/text-to-speech/{voice_id}``: ``text``, ``model_id``, ``language_code``,
    ``voice_settings.speed``; other ElevenLabs fields are accepted and ignored."""

    model_config = ConfigDict(extra="allow")

    text: str = _spoken_text()
    model_id: ModelName | None = None
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
