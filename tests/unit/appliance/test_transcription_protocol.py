"""The transcription form and its bodies: SRT/VTT timing syntax, cue hygiene, verbose_json's shape."""

from __future__ import annotations

from pathlib import Path

import pytest

from appliance.errors import BadRequest
from appliance.protocol.transcriptions import TranscriptionForm, timestamp, to_srt, to_vtt, verbose_json
from inference.media import Segment, Transcript, Word


def seg(index: int, start: float, end: float, text: str, words: list[Word] | None = None) -> Segment:
    return Segment(id=index, start=start, end=end, text=text, tokens=[1, 2], words=words)


@pytest.mark.parametrize(
    ("seconds", "srt", "vtt"),
    [
        (0.0, "00:00:00,000", "00:00:00.000"),
        (1.5, "00:00:01,500", "00:00:01.500"),
        (59.9996, "00:01:00,000", "00:01:00.000"),  # rounds to the millisecond, carrying over
        (3723.456, "01:02:03,456", "01:02:03.456"),
        (360000.25, "100:00:00,250", "100:00:00.250"),  # hours grow past two digits
        (-0.3, "00:00:00,000", "00:00:00.000"),  # never negative
    ],
)
def test_timestamps(seconds: float, srt: str, vtt: str) -> None:
    assert timestamp(seconds, separator=",") == srt
    assert timestamp(seconds, separator=".") == vtt


def test_srt_numbers_cues_and_skips_empty_segments() -> None:
    segments = [seg(0, 0.0, 1.25, " Hello"), seg(1, 1.25, 1.5, "   "), seg(2, 3661.0, 3662.5, " world")]
    assert to_srt(segments) == (
        "1\n00:00:00,000 --> 00:00:01,250\nHello\n\n2\n01:01:01,000 --> 01:01:02,500\nworld\n"
    )


def test_vtt_has_its_header_and_dot_milliseconds() -> None:
    segments = [seg(0, 0.0, 1.25, " Hello"), seg(1, 7200.5, 7201.0, "again")]
    assert to_vtt(segments) == (
        "WEBVTT\n\n00:00:00.000 --> 00:00:01.250\nHello\n\n02:00:00.500 --> 02:00:01.000\nagain\n"
    )


def test_cue_text_cannot_break_the_syntax() -> None:
    segments = [seg(0, 2.0, 1.0, "a --> b\n\n\nc\r\n")]  # end before start, an arrow, blank lines
    assert to_srt(segments) == "1\n00:00:02,000 --> 00:00:02,000\na -> b\nc\n"
    assert to_vtt(segments) == "WEBVTT\n\n00:00:02.000 --> 00:00:02.000\na -> b\nc\n"


def test_no_segments_make_empty_subtitles() -> None:
    assert to_srt([]) == ""
    assert to_vtt([]) == "WEBVTT\n\n"


def test_form_reads_openai_and_localai_fields() -> None:
    form = TranscriptionForm.from_fields(
        {
            "model": ["whisper-1"],
            "language": [""],  # empty means absent
            "temperature": ["0.2"],
            "response_format": ["verbose_json"],
            "timestamp_granularities[]": ["word", "segment"],
            "translate": ["true"],
            "vad_filter": ["1"],
            "some_future_field": ["kept quietly"],
        }
    )
    assert form.language is None and form.temperature == 0.2 and form.translate and form.task == "translate"
    assert form.timestamp_granularities == ["word", "segment"] and form.wants_words
    request = form.to_request(Path("/spool/upload-x"))
    assert request.word_timestamps and request.translate and request.vad_filter is True
    assert request.audio_path == Path("/spool/upload-x")
    fields = {"model": ["m"], "timestamp_granularities": ["segment,word"]}
    defaults = TranscriptionForm.from_fields(fields, translate=True)
    assert defaults.response_format == "json" and defaults.task == "translate" and defaults.wants_words


@pytest.mark.parametrize(
    ("fields", "param"),
    [
        ({}, "model"),
        ({"model": ["m"], "response_format": ["xml"]}, "response_format"),
        ({"model": ["m"], "temperature": ["hot"]}, "temperature"),
        ({"model": ["m"], "translate": ["maybe"]}, "translate"),
        ({"model": ["m"], "stream": ["true"]}, "stream"),
    ],
)
def test_bad_form_fields_are_named(fields: dict[str, list[str]], param: str) -> None:
    with pytest.raises(BadRequest) as caught:
        TranscriptionForm.from_fields(fields)
    assert caught.value.param == param and param in caught.value.message


def test_verbose_json_granularities() -> None:
    word = Word(0.0, 0.5, " Hi", 0.9)
    transcript = Transcript(text="Hi", language="en", duration=1.2, segments=[seg(0, 0.0, 1.0, " Hi", [word])])
    default = verbose_json(TranscriptionForm.from_fields({"model": ["m"]}), transcript)
    assert set(default) == {"task", "language", "duration", "text", "segments", "usage"}
    assert default["usage"] == {"type": "duration", "seconds": 2}
    assert set(default["segments"][0]) == {
        "id", "seek", "start", "end", "text", "tokens", "temperature", "avg_logprob", "compression_ratio",
        "no_speech_prob",
    }  # fmt: skip
    word_form = TranscriptionForm.from_fields({"model": ["m"], "timestamp_granularities[]": ["word"]})
    words = verbose_json(word_form, transcript)
    assert "segments" not in words
    assert words["words"] == [{"word": " Hi", "start": 0.0, "end": 0.5, "probability": 0.9}]
    both = verbose_json(
        TranscriptionForm.from_fields({"model": ["m"], "timestamp_granularities[]": ["word", "segment"]}), transcript
    )
    assert "segments" in both and "words" in both
