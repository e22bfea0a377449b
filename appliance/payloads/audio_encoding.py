"""Audio response formats: their content types, and encoders for whole files and for streams.

``wav`` and ``pcm`` (16-bit little-endian mono) need nothing; ``mp3``, ``opus`` (in Ogg), ``aac``
(ADTS) and ``flac`` are encoded in-process with PyAV, imported on first use, and are offered only
when it is installed. A streamed WAV starts with a header of unknown length. An encoder may also
resample (ElevenLabs' ``pcm_16000`` and friends), which needs PyAV too.
"""

from __future__ import annotations

import importlib.util
import io
from dataclasses import dataclass
from typing import Any

from appliance.errors import BadRequest
from inference.media import wav_header


@dataclass(frozen=True)
class AudioFormat:
    name: str
    media_type: str
    codec: str | None = None  # PyAV encoder; None: written here
    container: str | None = None


FORMATS: dict[str, AudioFormat] = {
    "wav": AudioFormat("wav", "audio/wav"),
    "pcm": AudioFormat("pcm", "application/octet-stream"),
    "mp3": AudioFormat("mp3", "audio/mpeg", "libmp3lame", "mp3"),
    "opus": AudioFormat("opus", "audio/ogg", "libopus", "ogg"),
    "aac": AudioFormat("aac", "audio/aac", "aac", "adts"),
    "flac": AudioFormat("flac", "audio/flac", "flac", "flac"),
}


# Bit rates (bit/s) an encoder opens with, where FFmpeg refuses others; an asked rate outside is
# clamped, as a sample rate the codec cannot take becomes the nearest one it can.
BIT_RATES: dict[str, tuple[int, int]] = {"libopus": (500, 256_000)}  # mono: libopus' limits


def pyav_installed() -> bool:
    return importlib.util.find_spec("av") is not None


def supported_formats() -> list[str]:
    return [name for name, fmt in FORMATS.items() if fmt.codec is None or pyav_installed()]


def audio_format(name: str, *, param: str = "response_format") -> AudioFormat:
    """The format called ``name``; BadRequest naming the supported ones otherwise."""
    fmt = FORMATS.get(name.strip().lower())
    if fmt is None or (fmt.codec is not None and not pyav_installed()):
        why = "needs PyAV (pip install av), which is not installed" if fmt is not None else "is not supported"
        raise BadRequest(
            f"{param} {name!r} {why}; supported: {', '.join(supported_formats())}", param=param
        )
    return fmt


class AudioEncoder:
    """Mono 16-bit PCM in, ``fmt`` bytes out, piece by piece: ``write`` each chunk, then ``close``.

    ``streaming`` writes a WAV header of unknown length and lets PyAV's muxers skip their
    end-of-file rewrites; off, the output is one complete, exactly sized file. ``sample_rate`` is
    the rate of the output (a codec that cannot take the input rate gets the nearest it can).
    """

    def __init__(
        self,
        fmt: AudioFormat,
        input_rate: int,
        *,
        output_rate: int | None = None,
        bit_rate: int | None = None,
        streaming: bool = False,
    ) -> None:
        self.fmt = fmt
        self.input_rate = input_rate
        self.streaming = streaming
        self.sample_rate = output_rate or input_rate
        self._pcm: list[bytes] = []  # whole (non-streaming) WAV collects until close
        self._started = False
        self._av: _PyAVEncoder | None = None
        self._resampler: _Resampler | None = None
        if fmt.codec is not None:
            self._av = _PyAVEncoder(fmt, input_rate, output_rate, bit_rate, seekable=not streaming)
            self.sample_rate = self._av.rate
        elif self.sample_rate != input_rate:
            if not pyav_installed():
                raise BadRequest(
                    f"resampling to {self.sample_rate} Hz needs PyAV (pip install av), which is not installed",
                    param="output_format",
                )
            self._resampler = _Resampler(input_rate, self.sample_rate)

    def write(self, pcm: bytes) -> bytes:
        if self._av is not None:
            return self._av.write(pcm)
        if self._resampler is not None:
            pcm = self._resampler.write(pcm)
        return self._plain(pcm)

    def close(self) -> bytes:
        if self._av is not None:
            return self._av.close()
        tail = self._resampler.close() if self._resampler is not None else b""
        out = self._plain(tail)
        if self.fmt.name == "wav" and not self.streaming:
            data = b"".join(self._pcm)
            return wav_header(self.sample_rate, len(data)) + data
        if self.fmt.name == "wav" and not self._started:
            out = wav_header(self.sample_rate) + out
        return out

    def _plain(self, pcm: bytes) -> bytes:
        if self.fmt.name == "wav" and not self.streaming:
            self._pcm.append(pcm)
            return b""
        if self.fmt.name == "wav" and not self._started:
            self._started = True
            return wav_header(self.sample_rate) + pcm
        return pcm


def encode(fmt: AudioFormat, pcm: bytes, input_rate: int, **options: Any) -> tuple[bytes, int]:
    """One whole file of ``pcm`` in ``fmt``, and its sample rate."""
    encoder = AudioEncoder(fmt, input_rate, **options)
    body = encoder.write(pcm) + encoder.close()
    return body, encoder.sample_rate


class _Sink:
    """A write-only file for PyAV: what the muxer wrote since the last ``take``. Not seekable,
    so muxers skip the header rewrites a stream cannot have."""

    def __init__(self) -> None:
        self._buffer = bytearray()

    def write(self, data: bytes) -> int:
        self._buffer += data
        return len(data)

    def take(self) -> bytes:
        out = bytes(self._buffer)
        self._buffer.clear()
        return out


def _frame(pcm: bytes, rate: int) -> Any:
    import av
    import numpy as np

    samples = np.frombuffer(pcm, dtype="<i2").reshape(1, -1)
    frame = av.AudioFrame.from_ndarray(samples, format="s16", layout="mono")
    frame.sample_rate = rate
    return frame


class _Resampler:
    """16-bit mono PCM from one rate to another with PyAV's resampler."""

    def __init__(self, input_rate: int, output_rate: int) -> None:
        import av

        self.input_rate = input_rate
        self._resampler = av.AudioResampler(format="s16", layout="mono", rate=output_rate)

    def write(self, pcm: bytes) -> bytes:
        if not pcm:
            return b""
        return _pcm_of(self._resampler.resample(_frame(pcm, self.input_rate)))

    def close(self) -> bytes:
        return _pcm_of(self._resampler.resample(None))


def _pcm_of(frames: list[Any]) -> bytes:
    return b"".join(frame.to_ndarray().astype("<i2").tobytes() for frame in frames)


class _PyAVEncoder:
    def __init__(
        self, fmt: AudioFormat, input_rate: int, output_rate: int | None, bit_rate: int | None, *, seekable: bool
    ) -> None:
        import av

        assert fmt.codec is not None and fmt.container is not None
        try:
            codec = av.codec.Codec(fmt.codec, "w")
        except Exception as exc:  # an FFmpeg build without this encoder
            raise BadRequest(
                f"response_format {fmt.name!r} is not available: this PyAV build has no {fmt.codec} encoder",
                param="response_format",
            ) from exc
        wanted = output_rate or input_rate
        rates = codec.audio_rates
        self.rate = wanted if not rates or wanted in rates else min([r for r in rates if r >= wanted] or [max(rates)])
        self.input_rate = input_rate
        self._file: io.BytesIO | _Sink = io.BytesIO() if seekable else _Sink()
        self._container = av.open(self._file, mode="w", format=fmt.container)
        self._stream = self._container.add_stream(fmt.codec, rate=self.rate, layout="mono")
        if bit_rate:
            low, high = BIT_RATES.get(fmt.codec, (1, bit_rate))
            self._stream.codec_context.bit_rate = min(max(bit_rate, low), high)
        self._resampler = av.AudioResampler(format=self._stream.codec_context.format, layout="mono", rate=self.rate)

    def write(self, pcm: bytes) -> bytes:
        if pcm:
            self._encode(self._resampler.resample(_frame(pcm, self.input_rate)))
        return self._take()

    def close(self) -> bytes:
        self._encode(self._resampler.resample(None))
        for packet in self._stream.encode(None):
            self._container.mux(packet)
        self._container.close()
        if isinstance(self._file, io.BytesIO):
            return self._file.getvalue()
        return self._file.take()

    def _encode(self, frames: list[Any]) -> None:
        for frame in frames:
            for packet in self._stream.encode(frame):
                self._container.mux(packet)

    def _take(self) -> bytes:
        return self._file.take() if isinstance(self._file, _Sink) else b""
