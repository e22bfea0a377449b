"""OpenAI's audio transcriptions and translations: the multipart form's fields, and the five bodies.

The form is OpenAI's (``model``, ``language``, ``prompt``, ``temperature``, ``response_format``,
``timestamp_granularities[]``) plus LocalAI's ``translate`` flag and our ``vad_filter``. Answers are
``json`` (``{"text"}``), ``text``, ``srt``, ``vtt`` or ``verbose_json`` (task, language, duration,
text, segments and, with word granularity, words). Subtitle cues skip segments with no text.
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from appliance.errors import BadRequest, describe_validation_errors
from appliance.protocol.base import ModelName
from inference.media import Segment, Transcript, TranscriptionRequest

logger = logging.getLogger(__name__)

ResponseFormat = Literal["json", "text", "srt", "vtt", "verbose_json"]
Granularity = Literal["word", "segment"]
MEDIA_TYPES: Mapping[str, str] = {
    "json": "application/json",
    "verbose_json": "application/json",
    "text": "text/plain; charset=utf-8",
    "srt": "application/x-subrip; charset=utf-8",
    "vtt": "text/vtt; charset=utf-8",
}
# Form keys holding lists: clients send `key[]` (the openai SDK) or repeat `key`.
_LIST_FIELDS = ("timestamp_granularities",)


class TranscriptionForm(BaseModel):
    """The form fields of /v1/audio/transcriptions and /v1/audio/translations (the file aside)."""

    model_config = ConfigDict(extra="allow")

    model: ModelName
    language: str | None = None
    prompt: str | None = None
    temperature: float | None = Field(None, ge=0, le=1)
    response_format: ResponseFormat = "json"
    timestamp_granularities: list[Granularity] = Field(default_factory=list)
    translate: bool = False  # LocalAI's flag: translate to English on the transcriptions route
    vad_filter: bool | None = None  # ours: skip silence first (None: the model config's choice)
    stream: bool = Field(False, description="Not supported: false or absent", json_schema_extra={"const": False})

    @field_validator("stream")
    @classmethod
    def _no_stream(cls, value: bool) -> bool:
        if value:
            raise ValueError("streaming transcription is not supported; leave out stream")
        return value

    @classmethod
    def from_fields(cls, fields: Mapping[str, Sequence[str]], *, translate: bool = False) -> TranscriptionForm:
        """The form from multipart text fields (the last value of a repeated field wins); BadRequest
        naming every bad field. Empty values count as absent, as they do for OpenAI."""
        values: dict[str, Any] = {}
        lists: dict[str, list[str]] = {}
        for key, items in fields.items():
            name = key[:-2] if key.endswith("[]") else key
            if name in _LIST_FIELDS:
                lists.setdefault(name, []).extend(
                    part.strip() for item in items for part in item.split(",") if part.strip()
                )
            elif items and items[-1] != "":
                values[name] = items[-1]
        values.update(lists)
        if translate:
            values["translate"] = True
        try:
            form = cls.model_validate(values)
        except ValidationError as exc:
            message, param = describe_validation_errors(exc.errors())
            raise BadRequest(message, param=param) from None
        if form.model_extra:
            logger.debug("event=transcription_unknown_fields fields=%s", ",".join(sorted(form.model_extra)))
        return form

    @property
    def task(self) -> str:
        return "translate" if self.translate else "transcribe"

    @property
    def wants_words(self) -> bool:
        return "word" in self.timestamp_granularities

    def to_request(self, audio_path: Path) -> TranscriptionRequest:
        return TranscriptionRequest(
            audio_path=audio_path,
            language=self.language,
            prompt=self.prompt,
            temperature=self.temperature,
            translate=self.translate,
            # Words only show in verbose_json; elsewhere aligning them would be wasted time.
            word_timestamps=self.wants_words and self.response_format == "verbose_json",
            vad_filter=self.vad_filter,
        )


def verbose_json(form: TranscriptionForm, transcript: Transcript) -> dict[str, Any]:
    """OpenAI's verbose_json; segments unless only word granularity was asked, words when it was."""
    body: dict[str, Any] = {
        "task": form.task,
        "language": transcript.language or form.language or "",
        "duration": transcript.duration,
        "text": transcript.text,
    }
    if form.timestamp_granularities != ["word"]:
        body["segments"] = [_segment_json(segment) for segment in transcript.segments]
    if form.wants_words:
        body["words"] = [
            {"word": word.word, "start": word.start, "end": word.end, "probability": word.probability}
            for segment in transcript.segments
            for word in segment.words or ()
        ]
    body["usage"] = {"type": "duration", "seconds": math.ceil(transcript.duration)}
    return body


def _segment_json(segment: Segment) -> dict[str, Any]:
    return {
        "id": segment.id,
        "seek": segment.seek,
        "start": segment.start,
        "end": segment.end,
        "text": segment.text,
        "tokens": list(segment.tokens),
        "temperature": segment.temperature,
        "avg_logprob": segment.avg_logprob,
        "compression_ratio": segment.compression_ratio,
        "no_speech_prob": segment.no_speech_prob,
    }


# -- subtitles ------------------------------------------------------------------------------------


def timestamp(seconds: float, *, separator: str) -> str:
    """``HH:MM:SS<separator>mmm``, rounded to the millisecond; hours grow past two digits if needed."""
    total = max(0, round(seconds * 1000))
    hours, rest = divmod(total, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    secs, millis = divmod(rest, 1000)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}{separator}{millis:03d}"


def to_srt(segments: Iterable[Segment]) -> str:
    """SubRip: numbered cues, ``00:00:01,000 --> 00:00:02,500``, a blank line after each."""
    cues = []
    for number, (start, end, text) in enumerate(_cues(segments), start=1):
        cues.append(f"{number}\n{timestamp(start, separator=',')} --> {timestamp(end, separator=',')}\n{text}\n")
    return "\n".join(cues)


def to_vtt(segments: Iterable[Segment]) -> str:
    """WebVTT: the ``WEBVTT`` header, then cues timed ``00:00:01.000 --> 00:00:02.500``."""
    cues = [
        f"{timestamp(start, separator='.')} --> {timestamp(end, separator='.')}\n{text}\n"
        for start, end, text in _cues(segments)
    ]
    return "WEBVTT\n\n" + "\n".join(cues)


_BLANK_LINES = re.compile(r"\n\s*\n+")


def _cues(segments: Iterable[Segment]) -> Iterable[tuple[float, float, str]]:
    """(start, end, text) per segment with text; text that would break the cue syntax is tamed."""
    for segment in segments:
        # A blank line ends a cue and "-->" starts a timing line: neither may appear in cue text.
        text = _BLANK_LINES.sub("\n", segment.text.replace("\r", "")).strip().replace("-->", "->")
        if not text:
            continue
        start = max(0.0, segment.start)
        yield start, max(start, segment.end), text
