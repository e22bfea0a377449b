"""Speech-to-text end to end on a tiny real CTranslate2 whisper model: every response format through
the official openai client against a real server, discovery and the `whisper` alias, VAD, and bad
input answered with a clear 4xx while the upload spool is emptied after every request.

The model's weights are random: tests check structure (subtitle syntax, segment fields), never text.
"""

from __future__ import annotations

import os
import re
import shutil
import stat
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from fastapi.testclient import TestClient

from appliance.app import create_app
from appliance.config import Settings
from appliance.payloads.uploads import upload_folder
from fixtures.whisper_models import write_tone_encoded, write_tone_wav
from inference.backends.faster_whisper import FasterWhisperBackend
from inference.catalog.config import ModelConfig
from inference.media import TranscriptionRequest
from support import Server, assert_error, free_port, write

MODEL = "whisper-1"
FAST = "options: ['beam_size:1', 'best_of:1', 'condition_on_previous_text:false']\n"
SEGMENT_FIELDS = {
    "id": int, "seek": int, "start": float, "end": float, "text": str, "tokens": list, "temperature": float,
    "avg_logprob": float, "compression_ratio": float, "no_speech_prob": float,
}  # fmt: skip
SRT_CUE = re.compile(r"(\d+)\n(\d{2,}):(\d{2}):(\d{2}),(\d{3}) --> (\d{2,}):(\d{2}):(\d{2}),(\d{3})\n(.+)")
VTT_CUE = re.compile(r"(\d{2,}):(\d{2}):(\d{2})\.(\d{3}) --> (\d{2,}):(\d{2}):(\d{2})\.(\d{3})\n(.+)")


@dataclass(frozen=True)
class Paths:
    models: Path
    data: Path
    audio: Path

    @property
    def spool(self) -> Path:
        return upload_folder(self.data)

    def assert_spool_empty(self) -> None:
        leftovers = list(self.spool.iterdir()) if self.spool.exists() else []
        assert leftovers == [], leftovers


@pytest.fixture(scope="module")
def paths(tiny_whisper: Path, tmp_path_factory: pytest.TempPathFactory) -> Paths:
    root = tmp_path_factory.mktemp("transcription")
    models = root / "models"
    shutil.copytree(tiny_whisper, models / "tiny-whisper")  # used by the YAML configs
    shutil.copytree(tiny_whisper, models / "loose-whisper")  # found by discovery, default config
    write(
        models / "whisper.yaml",
        f"- name: {MODEL}\n  backend: whisper\n  parameters:\n    model: tiny-whisper\n    temperature: 0\n  {FAST}"
        "- name: whisper-vad\n  backend: faster-whisper\n  parameters:\n    model: tiny-whisper\n"
        "    temperature: 0\n    language: en\n"
        "  options: ['beam_size:1', 'best_of:1', 'condition_on_previous_text:false', 'vad_filter:true']\n"
        "- name: embedder\n  backend: fake\n  embeddings: true\n",
    )
    audio = root / "audio"
    write_tone_wav(audio / "tone.wav")
    write_tone_encoded(audio / "tone.mp3", codec="mp3")
    write_tone_encoded(audio / "tone.flac", codec="flac")
    write(audio / "not-audio.wav", "this is a text file wearing a .wav name\n" * 20)
    (audio / "header-only.wav").write_bytes((audio / "tone.wav").read_bytes()[:44])
    (audio / "picture.png").write_bytes(_tiny_png())
    (audio / "empty.wav").write_bytes(b"")
    return Paths(models=models, data=root / "data", audio=audio)


@pytest.fixture(scope="module")
def client(paths: Paths) -> Iterator[TestClient]:
    settings = Settings(models_path=paths.models, data_path=paths.data, builtin_models=False, upload_limit=1)
    with TestClient(create_app(settings)) as test_client:
        yield test_client


@pytest.fixture(scope="module")
def server(paths: Paths) -> Iterator[Server]:
    port = free_port()
    args = ["--address", f"127.0.0.1:{port}", "--models-path", str(paths.models), "--data-path", str(paths.data)]
    running = Server([*args, "--no-builtin-models", "--upload-limit", "1"], paths.data.parent, port)
    try:
        running.wait_healthy()
        yield running
    finally:
        running.stop()


@pytest.fixture(scope="module")
def sdk(server: Server) -> openai.OpenAI:
    return openai.OpenAI(base_url=server.base + "/v1", api_key="none", max_retries=0, timeout=60)


def transcribe(client: TestClient, file: tuple[str, bytes, str] | None, route: str = "/v1/audio/transcriptions",
               **fields: Any) -> httpx.Response:  # fmt: skip
    data = {"model": MODEL, "language": "en", **fields}
    if file is not None:
        return client.post(route, data=data, files={"file": file})
    boundary = "f0rm"  # a multipart form with text fields only: httpx would send it urlencoded
    parts = "".join(
        f"--{boundary}\r\nContent-Disposition: form-data; name=\"{k}\"\r\n\r\n{v}\r\n" for k, v in data.items()
    )
    headers = {"Content-Type": f"multipart/form-data; boundary={boundary}"}
    return client.post(route, content=f"{parts}--{boundary}--\r\n".encode(), headers=headers)


def audio_file(paths: Paths, name: str, content_type: str = "audio/wav") -> tuple[str, bytes, str]:
    return (name, (paths.audio / name).read_bytes(), content_type)


# -- through the official openai client, against a real server ------------------------------------


@pytest.mark.parametrize("response_format", ["json", "text", "srt", "vtt", "verbose_json"])
def test_openai_client_gets_every_response_format(sdk: openai.OpenAI, paths: Paths, response_format: str) -> None:
    with (paths.audio / "tone.wav").open("rb") as file:
        result = sdk.audio.transcriptions.create(
            model=MODEL, file=file, response_format=response_format, language="en"  # type: ignore[arg-type]
        )
    if response_format == "json":
        assert isinstance(result.text, str) and result.text  # type: ignore[union-attr]
    elif response_format == "text":
        assert isinstance(result, str) and result.strip()
    elif response_format == "srt":
        assert isinstance(result, str)
        assert_valid_srt(result)
    elif response_format == "vtt":
        assert isinstance(result, str)
        assert_valid_vtt(result)
    else:
        body = result.to_dict()  # type: ignore[union-attr]
        assert body["task"] == "transcribe" and body["language"] == "en"
        assert abs(body["duration"] - 1.0) < 0.05
        assert_segments(body["segments"])
        assert "words" not in body
    paths.assert_spool_empty()


def test_openai_client_verbose_json_with_word_and_segment_timestamps(sdk: openai.OpenAI, paths: Paths) -> None:
    with (paths.audio / "tone.wav").open("rb") as file:
        result = sdk.audio.transcriptions.create(
            model=MODEL,
            file=file,
            response_format="verbose_json",
            timestamp_granularities=["word", "segment"],
            language="en",
            temperature=0.0,
            prompt="a test tone",
        )
    assert result.segments and result.words is not None
    assert_segments([segment.to_dict() for segment in result.segments])
    assert result.words, "word timestamps were asked for"
    for word in result.words:
        assert isinstance(word.word, str) and 0.0 <= word.start <= word.end
    paths.assert_spool_empty()


@pytest.mark.parametrize("response_format", ["json", "verbose_json", "srt"])
def test_openai_client_translations(sdk: openai.OpenAI, paths: Paths, response_format: str) -> None:
    with (paths.audio / "tone.mp3").open("rb") as file, warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # the SDK marks translations deprecated
        result = sdk.audio.translations.create(
            model=MODEL, file=file, response_format=response_format  # type: ignore[arg-type]
        )
    if response_format == "json":
        assert isinstance(result.text, str)  # type: ignore[union-attr]
    elif response_format == "srt":
        assert_valid_srt(result)  # type: ignore[arg-type]
    else:
        body = result.to_dict()  # type: ignore[union-attr]
        assert body["task"] == "translate"
        assert_segments(body["segments"])
    paths.assert_spool_empty()


def test_openai_client_sees_bad_audio_as_a_400(sdk: openai.OpenAI, paths: Paths) -> None:
    with (paths.audio / "not-audio.wav").open("rb") as file, pytest.raises(openai.BadRequestError) as caught:
        sdk.audio.transcriptions.create(model=MODEL, file=file)
    assert caught.value.status_code == 400
    assert "not a decodable audio file" in caught.value.message
    paths.assert_spool_empty()


def test_real_server_refuses_a_chunked_upload_over_the_limit(server: Server, paths: Paths) -> None:
    """No Content-Length: the limit trips mid-stream, after the spool file was opened; it is removed."""
    boundary = "b0undary"

    def body() -> Iterator[bytes]:
        yield (f"--{boundary}\r\nContent-Disposition: form-data; name=\"model\"\r\n\r\n{MODEL}\r\n"
               f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"big.wav\"\r\n"
               "Content-Type: audio/wav\r\n\r\n").encode()  # fmt: skip
        for _ in range(24):
            yield bytes(64 * 1024)
        yield f"\r\n--{boundary}--\r\n".encode()

    response = httpx.post(
        server.base + "/v1/audio/transcriptions",
        content=body(),
        headers={"Content-Type": f"multipart/form-data; boundary={boundary}"},
        timeout=30,
    )
    assert_error(response, 413, code="payload_too_large")
    paths.assert_spool_empty()


# -- in process ----------------------------------------------------------------------------------


def test_upload_is_spooled_privately_and_removed(
    client: TestClient, paths: Paths, monkeypatch: pytest.MonkeyPatch
) -> None:
    service = client.app.state.services.transcription  # type: ignore[attr-defined]
    original = service.transcribe
    seen: list[tuple[Path, bool, int]] = []

    async def spy(model: str, request: Any) -> Any:
        path = request.audio_path
        seen.append((path, path.is_file(), stat.S_IMODE(os.stat(path).st_mode)))
        return await original(model, request)

    monkeypatch.setattr(service, "transcribe", spy)
    evil = ("../../etc/evil name;rm -rf.wav", (paths.audio / "tone.wav").read_bytes(), "audio/wav")
    response = transcribe(client, evil)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/json")
    assert set(response.json()) == {"text"} and isinstance(response.json()["text"], str)
    [(path, existed, mode)] = seen
    assert existed and path.parent == paths.spool and mode == 0o600
    assert "evil" not in path.name and path.name.startswith("upload-")
    assert stat.S_IMODE(paths.spool.stat().st_mode) == 0o700
    paths.assert_spool_empty()


@pytest.mark.parametrize("name", ["tone.mp3", "tone.flac"])
def test_compressed_formats_are_decoded_in_process(client: TestClient, paths: Paths, name: str) -> None:
    response = transcribe(client, audio_file(paths, name, "application/octet-stream"), response_format="verbose_json")
    assert response.status_code == 200, response.text
    assert abs(response.json()["duration"] - 1.0) < 0.05
    paths.assert_spool_empty()


def test_routes_answer_without_v1_and_translate_flag(client: TestClient, paths: Paths) -> None:
    tone = audio_file(paths, "tone.wav")
    flagged = transcribe(client, tone, "/audio/transcriptions", response_format="verbose_json", translate="true")
    assert flagged.status_code == 200, flagged.text
    assert flagged.json()["task"] == "translate"
    routed = transcribe(client, tone, "/audio/translations", response_format="verbose_json", language="de")
    assert routed.status_code == 200 and routed.json()["task"] == "translate"
    assert routed.json()["language"] == "de"
    words_only = transcribe(client, tone, response_format="verbose_json", **{"timestamp_granularities[]": "word"})
    assert words_only.status_code == 200
    assert "segments" not in words_only.json() and isinstance(words_only.json()["words"], list)
    paths.assert_spool_empty()


def test_loose_folder_is_discovered_with_the_default_config(client: TestClient, paths: Paths) -> None:
    listed = {m["id"]: m for m in client.get("/v1/models").json()["data"]}
    assert listed["loose-whisper"]["usecases"] == ["transcription"]
    assert listed[MODEL]["usecases"] == ["transcription"]  # `backend: whisper`, LocalAI's alias
    response = client.post(
        "/v1/audio/transcriptions",
        data={"model": "loose-whisper", "temperature": "0", "response_format": "srt"},  # language detected
        files={"file": audio_file(paths, "tone.wav")},
    )
    assert response.status_code == 200, response.text
    assert_valid_srt(response.text)
    paths.assert_spool_empty()


def test_vad_option_skips_silence_and_the_request_overrides_it(client: TestClient, paths: Paths) -> None:
    tone = audio_file(paths, "tone.wav")
    silent = transcribe(client, tone, model="whisper-vad", response_format="verbose_json")
    assert silent.status_code == 200, silent.text
    assert silent.json()["segments"] == [] and silent.json()["text"] == ""  # a tone is no speech
    assert transcribe(client, tone, model="whisper-vad", response_format="srt").text == ""
    assert transcribe(client, tone, model="whisper-vad", response_format="vtt").text == "WEBVTT\n\n"
    heard = transcribe(client, tone, model="whisper-vad", response_format="verbose_json", vad_filter="false")
    assert heard.status_code == 200 and heard.json()["segments"]
    paths.assert_spool_empty()


@pytest.mark.parametrize(
    ("file", "fields", "status", "param", "contains"),
    [
        ("not-audio.wav", {}, 400, "file", "not a decodable audio file"),
        ("picture.png", {}, 400, "file", "no audio stream"),
        ("header-only.wav", {}, 400, "file", "no audio samples"),
        ("empty.wav", {}, 400, "file", "empty"),
        (None, {}, 400, "file", "missing required field 'file'"),
        ("tone.wav", {"response_format": "xml"}, 400, "response_format", "response_format"),
        ("tone.wav", {"language": "klingon"}, 400, "language", "iso-639-1"),
        ("tone.wav", {"temperature": "5"}, 400, "temperature", "temperature"),
        ("tone.wav", {"timestamp_granularities[]": "sentence"}, 400, "timestamp_granularities.0", "timestamp"),
        ("tone.wav", {"stream": "true"}, 400, "stream", "not supported"),
        ("tone.wav", {"model": "ghost"}, 404, "model", "not found"),
        ("tone.wav", {"model": "embedder"}, 400, "model", "transcri"),
    ],
)
def test_bad_input_is_a_clear_4xx_and_leaves_no_file(
    client: TestClient, paths: Paths, file: str | None, fields: dict[str, str], status: int, param: str, contains: str
) -> None:
    response = transcribe(client, audio_file(paths, file) if file else None, **fields)
    error = assert_error(response, status, param=param, contains=contains)
    assert str(paths.data) not in error["message"]  # the spool path is never told
    paths.assert_spool_empty()


def test_not_multipart_and_missing_model_are_400(client: TestClient, paths: Paths) -> None:
    assert_error(client.post("/v1/audio/transcriptions", json={"model": MODEL}), 400, contains="multipart/form-data")
    response = client.post("/v1/audio/transcriptions", files={"file": audio_file(paths, "tone.wav")})
    assert_error(response, 400, param="model", contains="model")
    paths.assert_spool_empty()


def test_upload_over_the_limit_is_413(client: TestClient, paths: Paths) -> None:
    response = transcribe(client, ("big.wav", bytes(1024 * 1024 + 1), "audio/wav"))
    assert_error(response, 413, code="payload_too_large")
    paths.assert_spool_empty()


# -- the backend itself ---------------------------------------------------------------------------


@pytest.mark.parametrize("wants_cuda", [False, True])
def test_backend_places_the_model_and_picks_the_compute_type(paths: Paths, wants_cuda: bool) -> None:
    """CPU gets int8; `cuda: true` gets the GPU and float16 where CTranslate2 sees one, else CPU/int8."""
    import ctranslate2

    device = "cuda" if wants_cuda and ctranslate2.get_cuda_device_count() > 0 else "cpu"
    config = ModelConfig.model_validate(
        {"name": "direct", "backend": "whisper", "cuda": wants_cuda, "threads": 1,
         "parameters": {"model": "tiny-whisper"}, "options": ["beam_size:1", "best_of:1", "without_timestamps:true"]}
    )  # fmt: skip
    backend = FasterWhisperBackend(config, paths.models)
    backend.load()
    try:
        assert (backend.device, backend.compute_type) == (device, "int8" if device == "cpu" else "float16")
        transcript = backend.transcribe(TranscriptionRequest(paths.audio / "tone.wav", language="en", temperature=0.0))
        assert transcript.language == "en" and transcript.segments and abs(transcript.duration - 1.0) < 0.05
        [segment] = transcript.segments  # without timestamps: one segment for the one window
        assert (segment.start, segment.end) == (0.0, 1.0) and segment.tokens
    finally:
        backend.unload()


# -- structure checks -----------------------------------------------------------------------------


def assert_segments(segments: list[dict[str, Any]]) -> None:
    assert segments, "a tone through the tiny model always yields text"
    for index, segment in enumerate(segments):
        for field, kind in SEGMENT_FIELDS.items():
            assert isinstance(segment[field], kind) or (kind is float and isinstance(segment[field], int)), field
        assert segment["id"] == index
        assert 0.0 <= segment["start"] <= segment["end"]
        assert all(isinstance(token, int) for token in segment["tokens"]) and segment["tokens"]


def _seconds(h: str, m: str, s: str, ms: str) -> float:
    return int(h) * 3600 + int(m) * 60 + int(s) + int(ms) / 1000


def assert_valid_srt(text: str) -> None:
    blocks = text.strip("\n").split("\n\n")
    assert blocks and text.endswith("\n"), text
    for number, block in enumerate(blocks, start=1):
        match = SRT_CUE.fullmatch(block)
        assert match, block
        assert int(match.group(1)) == number
        assert _seconds(*match.group(2, 3, 4, 5)) <= _seconds(*match.group(6, 7, 8, 9))


def assert_valid_vtt(text: str) -> None:
    assert text.startswith("WEBVTT\n\n"), text
    blocks = text.removeprefix("WEBVTT\n\n").strip("\n").split("\n\n")
    for block in blocks:
        match = VTT_CUE.fullmatch(block)
        assert match, block
        assert _seconds(*match.group(1, 2, 3, 4)) <= _seconds(*match.group(5, 6, 7, 8))


def _tiny_png() -> bytes:
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)
    pixels = zlib.compress(b"\x00\xff\x00\x00")
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")
