"""A fake media model for the browser tests of the Images, Audio and Models pages, registered by
tests/browser/serve.py as backend `media-fake` (its usecases come from the YAML's `known_usecases`).

Images are real PNGs of the asked size, coloured from the prompt, seed and index; speech is a tone
whose length follows the text; a transcript describes the uploaded file (a WAV's length and rate,
or the container its first bytes name), so a test can tell which file was sent; a sound is a tone of
the asked duration. Speech knows the voices amy and ben (another is a 400). `media_server` starts
an appliance with these models and the fake chat ones.
"""

from __future__ import annotations

import hashlib
import math
import struct
import threading
import wave
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

from inference.backends.fake import FakeBackend
from inference.capabilities import Capability
from inference.errors import InvalidRequest
from inference.media import (
    AudioChunk,
    GeneratedImages,
    ImageRequest,
    Segment,
    SoundRequest,
    SpeechRequest,
    Transcript,
    TranscriptionRequest,
)

if TYPE_CHECKING:
    from harness import UIServer

RATE = 16_000
SECONDS_PER_CHAR = 0.02
VOICES = ("amy", "ben")

MEDIA_MODELS = {
    "painter": "name: painter\nbackend: media-fake\nknown_usecases: [image]\n",
    # An image model whose load fails: the page must show the API's message.
    "smudge": "name: smudge\nbackend: media-fake\nknown_usecases: [image]\noptions: ['fail_load:true']\n",
    "speaker": "name: speaker\nbackend: media-fake\nknown_usecases: [tts]\n",
    "listener": "name: listener\nbackend: media-fake\nknown_usecases: [transcription]\n",
    "foley": "name: foley\nbackend: media-fake\nknown_usecases: [sound]\n",
    # Slow to load and with a known size, so the Models page can show it loading, then its memory.
    "heavy": "name: heavy\nbackend: fake\nknown_usecases: [chat]\noptions: ['load_delay_ms:1500', 'memory_mb:48']\n",
}


def media_server(root: Path, *flags: str, extra: dict[str, str] | None = None) -> UIServer:
    """An appliance (no built-in models) with the media fakes, the chat fakes and `extra`."""
    from harness import FAKE_MODELS, UIServer  # the test side only: the server process needs no pytest

    return UIServer(root, {**FAKE_MODELS, **MEDIA_MODELS, **(extra or {})}, *flags)


class MediaFake(FakeBackend):
    name: ClassVar[str] = "media-fake"
    capabilities: ClassVar[frozenset[Capability]] = FakeBackend.capabilities | frozenset(
        {Capability.IMAGE, Capability.SPEAK, Capability.TRANSCRIBE, Capability.SOUND}
    )

    def generate_images(self, request: ImageRequest, cancel: threading.Event | None = None) -> GeneratedImages:
        self._require_loaded()
        width, height = request.width or 64, request.height or 64
        images = []
        for index in range(request.n):
            digest = hashlib.sha256(f"{request.prompt}\x00{request.seed}\x00{index}".encode()).digest()
            images.append(_png(width, height, digest[:3], digest[3:6]))
        return GeneratedImages(png=images, seed=request.seed)

    def speak(self, request: SpeechRequest, cancel: threading.Event | None = None) -> Iterator[AudioChunk]:
        self._require_loaded()
        if request.voice not in (None, *VOICES):
            raise InvalidRequest(
                f"voice {request.voice!r} is not one of this model's voices: {', '.join(VOICES)}", param="voice"
            )
        speed = request.speed or 1.0
        for sentence in (s for s in request.text.replace("!", ".").replace("?", ".").split(".") if s.strip()):
            if cancel is not None and cancel.is_set():
                return
            yield AudioChunk(_tone(len(sentence) * SECONDS_PER_CHAR / speed, 220.0), RATE)

    def transcribe(self, request: TranscriptionRequest) -> Transcript:
        self._require_loaded()
        text, seconds = _describe(request.audio_path)
        segment = Segment(id=0, start=0.0, end=seconds, text=" " + text, tokens=list(text.encode())[:32])
        return Transcript(text=text, language=request.language or "en", duration=seconds, segments=[segment])

    def generate_sound(self, request: SoundRequest, cancel: threading.Event | None = None) -> AudioChunk:
        self._require_loaded()
        return AudioChunk(_tone(request.duration_seconds or 1.0, 440.0), RATE)


def _describe(path: Path) -> tuple[str, float]:
    """What the file is, as a sentence a test can check, and its length in seconds (0 if unknown)."""
    head = path.read_bytes()[:12]
    size = path.stat().st_size
    if head[:4] == b"RIFF" and head[8:12] == b"WAVE":
        with wave.open(str(path), "rb") as audio:
            seconds = audio.getnframes() / audio.getframerate()
            return f"heard {seconds:.1f} seconds of WAV at {audio.getframerate()} Hz", seconds
    kind = "WebM" if head[:4] == b"\x1a\x45\xdf\xa3" else "Ogg" if head[:4] == b"OggS" else "unknown"
    return f"heard {size} bytes of {kind} audio", 0.0


def _tone(seconds: float, hz: float) -> bytes:
    count = max(1, int(seconds * RATE))
    return b"".join(
        struct.pack("<h", int(8000 * math.sin(2 * math.pi * hz * i / RATE))) for i in range(count)
    )


def _png(width: int, height: int, left: bytes, right: bytes) -> bytes:
    """An RGB PNG: a horizontal gradient from colour `left` to colour `right`."""
    row = bytearray([0])  # filter type 0 for every row
    for x in range(width):
        t = x / max(1, width - 1)
        row += bytes(round(a + (b - a) * t) for a, b in zip(left, right, strict=True))
    raw = bytes(row) * height

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw, 6)) + chunk(b"IEND", b"")
