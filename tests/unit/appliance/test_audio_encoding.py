"""Audio response encoders: exact WAV files, streamed WAV behind an unknown-length header, raw PCM,
and the PyAV codecs (decoded back to check rate and channels), whole and streamed."""

from __future__ import annotations

import io
import math
import struct
import wave

import pytest

from appliance.errors import BadRequest
from appliance.payloads.audio_encoding import FORMATS, AudioEncoder, audio_format, encode, supported_formats
from inference.media import UNKNOWN_LENGTH

RATE = 22050


def tone(seconds: float = 0.5, rate: int = RATE) -> bytes:
    count = int(seconds * rate)
    return struct.pack(f"<{count}h", *(int(8000 * math.sin(i * 2 * math.pi * 440 / rate)) for i in range(count)))


def test_whole_wav_has_exact_sizes() -> None:
    pcm = tone()
    body, rate = encode(FORMATS["wav"], pcm, RATE)
    assert rate == RATE and len(body) == 44 + len(pcm)
    with wave.open(io.BytesIO(body)) as wav:
        assert (wav.getnchannels(), wav.getsampwidth(), wav.getframerate()) == (1, 2, RATE)
        assert wav.getnframes() * 2 == len(pcm)


def test_streamed_wav_sends_an_unknown_length_header_then_pcm() -> None:
    pcm = tone()
    encoder = AudioEncoder(FORMATS["wav"], RATE, streaming=True)
    pieces = [encoder.write(pcm[:1000]), encoder.write(pcm[1000:]), encoder.close()]
    assert pieces[0][:4] == b"RIFF" and len(pieces[0]) == 44 + 1000
    assert struct.unpack("<I", pieces[0][40:44])[0] == UNKNOWN_LENGTH
    assert pieces[1] == pcm[1000:] and pieces[2] == b""
    with wave.open(io.BytesIO(b"".join(pieces))) as wav:
        assert (wav.getnchannels(), wav.getsampwidth(), wav.getframerate()) == (1, 2, RATE)


def test_pcm_is_the_samples_unchanged() -> None:
    pcm = tone()
    assert encode(FORMATS["pcm"], pcm, RATE) == (pcm, RATE)
    encoder = AudioEncoder(FORMATS["pcm"], RATE, streaming=True)
    assert encoder.write(pcm[:10]) + encoder.write(pcm[10:]) + encoder.close() == pcm


def test_an_unknown_format_names_the_supported_ones() -> None:
    with pytest.raises(BadRequest) as caught:
        audio_format("ogg-vorbis")
    assert caught.value.param == "response_format"
    assert "wav" in caught.value.message and "pcm" in caught.value.message
    assert {"wav", "pcm"} <= set(supported_formats())


@pytest.mark.parametrize(("name", "rate"), [("mp3", RATE), ("opus", 24000), ("aac", RATE), ("flac", RATE)])
@pytest.mark.parametrize("streaming", [False, True])
def test_codecs_decode_back_to_mono_audio(name: str, rate: int, streaming: bool) -> None:
    av = pytest.importorskip("av")
    pcm = tone()
    encoder = AudioEncoder(FORMATS[name], RATE, streaming=streaming)
    half = len(pcm) // 4 * 2
    body = encoder.write(pcm[:half]) + encoder.write(pcm[half:]) + encoder.close()
    assert encoder.sample_rate == rate
    with av.open(io.BytesIO(body)) as container:
        stream = container.streams.audio[0]
        assert stream.codec_context.channels == 1
        decoded = sum(frame.samples for frame in container.decode(stream))
    # Opus always decodes at 48 kHz; the others at the encoded rate. Codecs pad a frame or two.
    decoded_rate = 48000 if name == "opus" else rate
    assert decoded >= 0.9 * len(pcm) / 2 * decoded_rate / RATE


def test_pcm_can_be_resampled() -> None:
    pytest.importorskip("av")
    pcm = tone(1.0)
    body, rate = encode(FORMATS["pcm"], pcm, RATE, output_rate=16000)
    assert rate == 16000
    assert abs(len(body) / 2 - 16000) < 200
