"""Text-to-speech end to end with real piper on tiny voices built from code (TEST-MODELS.md section 4).

OpenAI ``/v1/audio/speech``, LocalAI ``/tts`` and ElevenLabs ``/v1/text-to-speech/{voice_id}``
through the app, then the official openai client against a real server process. Assertions are
about structure (WAV header, sample rate, lengths, which speaker or voice was used), never about
what a random voice sounds like. The tiny voices make ``ceil(2 x length_scale)`` frames of 256
samples per phoneme, so ``speed`` shows in the length.
"""

from __future__ import annotations

import base64
import io
import json
import shutil
import struct
import wave
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from fixtures.piper_models import PiperVoices
from inference.media import UNKNOWN_LENGTH
from support import Server, assert_error, free_port, write

TEXT = "Hello there. How are you today? Fine, thanks."

YAMLS = {
    # A config naming its voice file; the file is then not listed as a loose model of its own.
    "narrator.yaml": "name: narrator\nbackend: piper\nparameters:\n  model: yaml-voice.onnx\n",
    # tts.voice beside parameters.model: the speaker requests get when they name none.
    "carol.yaml": "name: carol-default\nbackend: piper\nparameters:\n  model: yaml-multi.onnx\ntts:\n  voice: carol\n",
    "chatty.yaml": "name: chatty\nbackend: fake\n",
}


def copy_voice(source: Path, models: Path, name: str) -> None:
    shutil.copy(source, models / name)
    shutil.copy(source.with_name(source.name + ".json"), models / (name + ".json"))


def populate(models: Path, voices: PiperVoices) -> Path:
    copy_voice(voices.single, models, "tiny-voice.onnx")
    copy_voice(voices.multi, models, "tiny-multi.onnx")
    copy_voice(voices.single, models, "yaml-voice.onnx")
    copy_voice(voices.multi, models, "yaml-multi.onnx")
    for name, text in YAMLS.items():
        write(models / name, text)
    return models


@pytest.fixture
def client(make_app: Callable[..., FastAPI], models_path: Path, piper_voices: PiperVoices) -> Iterator[TestClient]:
    populate(models_path, piper_voices)
    with TestClient(make_app()) as test_client:
        yield test_client


def wav_info(body: bytes) -> tuple[int, int, int, bytes]:
    """(channels, sample width, rate, PCM data) of a WAV file, via the standard library."""
    with wave.open(io.BytesIO(body)) as wav:
        header = (wav.getnchannels(), wav.getsampwidth(), wav.getframerate())
    assert body[36:40] == b"data"
    return (*header, body[44:])


def speech(client: TestClient, **body: Any) -> httpx.Response:
    body.setdefault("input", TEXT)
    return client.post("/v1/audio/speech", json=body)


# -- OpenAI /v1/audio/speech ---------------------------------------------------------------------


def test_wav_is_mono_16_bit_at_the_voice_rate_with_exact_sizes(client: TestClient, piper_voices: PiperVoices) -> None:
    response = speech(client, model="tiny-voice", voice="alloy")  # OpenAI's stock name: the default voice
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "audio/wav"
    assert response.headers["x-sample-rate"] == str(piper_voices.sample_rate)
    channels, width, rate, pcm = wav_info(response.content)
    assert (channels, width, rate) == (1, 2, piper_voices.sample_rate)
    assert pcm and len(pcm) % 512 == 0  # whole 256-sample frames
    assert struct.unpack("<II", response.content[4:8] + response.content[40:44]) == (36 + len(pcm), len(pcm))
    assert int(response.headers["content-length"]) == 44 + len(pcm)


def test_pcm_is_the_same_samples_without_a_header(client: TestClient) -> None:
    wav = speech(client, model="tiny-voice.onnx", response_format="wav")
    pcm = speech(client, model="tiny-voice.onnx", response_format="pcm")
    assert pcm.status_code == 200 and pcm.headers["content-type"] == "application/octet-stream"
    assert pcm.headers["x-sample-rate"] == "22050"
    assert pcm.content == wav_info(wav.content)[3]


def test_speed_changes_the_length(client: TestClient) -> None:
    lengths = {
        speed: len(speech(client, model="tiny-voice", response_format="pcm", speed=speed).content)
        for speed in (0.5, 1.0, 2.0)
    }
    assert lengths[0.5] == 2 * lengths[1.0] == 4 * lengths[2.0]


def test_multi_speaker_by_name_and_by_id(client: TestClient) -> None:
    def pcm(**body: Any) -> bytes:
        response = speech(client, model="tiny-multi", response_format="pcm", **body)
        assert response.status_code == 200, response.text
        return response.content

    bob_by_name, bob_by_id = pcm(voice="bob"), pcm(voice="1")
    assert bob_by_name == bob_by_id == pcm(voice="BOB") == pcm(voice="alloy", speaker=1)
    assert bob_by_name != pcm(voice="carol")
    assert pcm(voice="alloy") == pcm(voice="alice") == pcm()  # the default speaker (id 0)
    assert pcm(voice={"id": "carol"}) == pcm(voice="2")  # OpenAI's custom voice object


def test_a_single_speaker_voice_ignores_voice_names(client: TestClient) -> None:
    plain = speech(client, model="tiny-voice", response_format="pcm").content
    for voice in ("alloy", "nova", "someone", "21m00Tcm4TlvDq8ikWAM"):
        assert speech(client, model="tiny-voice", response_format="pcm", voice=voice).content == plain


def test_voice_can_name_another_voice_file(client: TestClient) -> None:
    """LocalAI's `voice`: a piper voice file under the models path, with or without `.onnx`."""
    reference = speech(client, model="tiny-multi", voice="bob", response_format="pcm").content
    for voice in ("tiny-multi.onnx", "tiny-multi"):
        other = speech(client, model="tiny-voice", voice=voice, speaker="bob", response_format="pcm")
        assert other.status_code == 200, other.text
        assert other.content == reference


@pytest.mark.parametrize(
    "voice", ["../tiny-multi.onnx", "/etc/passwd", "missing.onnx", "sub/dir", "a\\..\\b", "x" * 300 + ".onnx"]
)
def test_voice_files_outside_the_models_path_or_missing_are_refused(client: TestClient, voice: str) -> None:
    assert_error(speech(client, model="tiny-voice", voice=voice), 400, param="voice")


def test_a_voice_file_piper_cannot_load_is_refused(client: TestClient, models_path: Path) -> None:
    (models_path / "broken.onnx").write_bytes(b"not an onnx graph")
    shutil.copy(models_path / "tiny-voice.onnx.json", models_path / "broken.onnx.json")
    assert_error(speech(client, model="tiny-voice", voice="broken"), 400, param="voice", contains="broken.onnx")
    assert speech(client, model="tiny-voice", voice="alloy").status_code == 200  # the model is still fine


@pytest.mark.parametrize("fmt", ["mp3", "opus", "aac", "flac"])
def test_encoded_formats(client: TestClient, fmt: str) -> None:
    av = pytest.importorskip("av")
    response = speech(client, model="tiny-voice", response_format=fmt)
    assert response.status_code == 200, response.text
    media_types = {"mp3": "audio/mpeg", "opus": "audio/ogg", "aac": "audio/aac", "flac": "audio/flac"}
    assert response.headers["content-type"] == media_types[fmt]
    with av.open(io.BytesIO(response.content)) as container:
        stream = container.streams.audio[0]
        assert stream.codec_context.channels == 1
        assert sum(frame.samples for frame in container.decode(stream)) > 0


def test_streamed_wav_is_a_header_of_unknown_length_then_the_same_samples(client: TestClient) -> None:
    whole = wav_info(speech(client, model="tiny-multi", voice="carol").content)[3]
    with client.stream(
        "POST", "/v1/audio/speech", json={"model": "tiny-multi", "voice": "carol", "input": TEXT, "stream_format": "audio"}
    ) as response:
        assert response.status_code == 200
        assert "content-length" not in response.headers
        assert response.headers["content-type"] == "audio/wav"
        body = b"".join(response.iter_bytes())
    channels, width, rate, pcm = wav_info(body)
    assert (channels, width, rate) == (1, 2, 22050)
    assert struct.unpack("<I", body[40:44])[0] == UNKNOWN_LENGTH
    assert pcm == whole


def test_streamed_pcm_and_mp3(client: TestClient) -> None:
    whole = speech(client, model="tiny-voice", response_format="pcm").content
    streamed = speech(client, model="tiny-voice", response_format="pcm", stream_format="audio")
    assert streamed.status_code == 200 and streamed.content == whole
    av = pytest.importorskip("av")
    mp3 = speech(client, model="tiny-voice", response_format="mp3", stream_format="audio")
    assert mp3.status_code == 200 and mp3.headers["content-type"] == "audio/mpeg"
    with av.open(io.BytesIO(mp3.content)) as container:
        assert sum(frame.samples for frame in container.decode(container.streams.audio[0])) > 0


def test_sse_stream_format(client: TestClient) -> None:
    whole = speech(client, model="tiny-voice", response_format="pcm").content
    response = speech(client, model="tiny-voice", response_format="pcm", stream_format="sse")
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/event-stream")
    assert response.headers["x-sample-rate"] == "22050"
    events = [json.loads(line[6:]) for line in response.text.splitlines() if line.startswith("data: ")]
    assert [e["type"] for e in events[:-1]] == ["speech.audio.delta"] * (len(events) - 1) and len(events) >= 3
    assert events[-1]["type"] == "speech.audio.done" and events[-1]["usage"]["input_tokens"] > 0
    assert b"".join(base64.b64decode(e["audio"]) for e in events[:-1]) == whole


def test_the_model_may_be_left_out_when_one_voice_is_served(
    make_app: Callable[..., FastAPI], models_path: Path, piper_voices: PiperVoices
) -> None:
    copy_voice(piper_voices.single, models_path, "only.onnx")
    with TestClient(make_app()) as only:
        assert only.post("/v1/audio/speech", json={"input": TEXT}).status_code == 200
        assert only.post("/tts", json={"input": TEXT}).status_code == 200
    copy_voice(piper_voices.single, models_path, "second.onnx")
    with TestClient(make_app()) as two:
        assert_error(two.post("/v1/audio/speech", json={"input": TEXT}), 400, param="model", contains="2 text-to-speech")


# -- configs and discovery ------------------------------------------------------------------------


def test_loose_files_and_yaml_configs_are_tts_models(client: TestClient) -> None:
    models = {m["id"]: m for m in client.get("/v1/models").json()["data"]}
    assert {"tiny-voice.onnx", "tiny-multi.onnx", "narrator", "carol-default"} <= set(models)
    assert "yaml-voice.onnx" not in models  # claimed by the narrator config
    assert models["narrator"]["backend"] == "piper" and models["narrator"]["usecases"] == ["tts"]
    narrator = speech(client, model="narrator", response_format="pcm")
    assert narrator.status_code == 200
    assert narrator.content == speech(client, model="tiny-voice", response_format="pcm").content


def test_tts_voice_in_the_config_is_the_default_speaker(client: TestClient) -> None:
    default = speech(client, model="carol-default", response_format="pcm").content
    assert default == speech(client, model="tiny-multi", voice="carol", response_format="pcm").content
    assert speech(client, model="carol-default", voice="bob", response_format="pcm").content != default


# -- LocalAI /tts and ElevenLabs ------------------------------------------------------------------


def test_localai_tts(client: TestClient) -> None:
    response = client.post(
        "/tts", json={"model": "tiny-multi", "input": TEXT, "voice": "bob", "backend": "piper", "language": "en"}
    )
    assert response.status_code == 200 and response.headers["content-type"] == "audio/wav"
    channels, width, rate, pcm = wav_info(response.content)
    assert (channels, width, rate) == (1, 2, 22050)
    assert pcm == speech(client, model="tiny-multi", voice="bob", response_format="pcm").content
    streamed = client.post("/tts", json={"model": "tiny-multi", "input": TEXT, "voice": "bob", "stream": True})
    assert wav_info(streamed.content)[3] == pcm
    for field, value in (("backend", "whisper"), ("backend", "nope"), ("speaker", "zed")):
        bad = client.post("/tts", json={"model": "tiny-multi", "input": TEXT, field: value})
        assert_error(bad, 400, param=field)


def test_elevenlabs_voice_id_names_a_model_or_a_speaker(client: TestClient) -> None:
    as_model = client.post("/v1/text-to-speech/tiny-voice", json={"text": TEXT})
    assert as_model.status_code == 200 and as_model.headers["content-type"] == "audio/wav"
    assert wav_info(as_model.content)[3] == speech(client, model="tiny-voice", response_format="pcm").content
    as_speaker = client.post("/v1/text-to-speech/bob", json={"text": TEXT, "model_id": "tiny-multi"})
    assert as_speaker.status_code == 200
    assert wav_info(as_speaker.content)[3] == speech(client, model="tiny-multi", voice="bob", response_format="pcm").content
    streamed = client.post("/v1/text-to-speech/bob/stream", json={"text": TEXT, "model_id": "tiny-multi"})
    assert streamed.status_code == 200 and wav_info(streamed.content)[3] == wav_info(as_speaker.content)[3]
    assert_error(client.post("/v1/text-to-speech/zed", json={"text": TEXT, "model_id": "tiny-multi"}), 400, param="voice")
    assert_error(client.post("/v1/text-to-speech/bob", json={"text": TEXT, "model_id": "eleven_v3"}), 404, param="model")


def test_elevenlabs_output_format(client: TestClient) -> None:
    pytest.importorskip("av")
    native = speech(client, model="tiny-voice", response_format="pcm").content
    pcm = client.post("/v1/text-to-speech/tiny-voice", params={"output_format": "pcm_16000"}, json={"text": TEXT})
    assert pcm.status_code == 200 and pcm.headers["x-sample-rate"] == "16000"
    assert abs(len(pcm.content) - len(native) * 16000 / 22050) < 400
    mp3 = client.post("/v1/text-to-speech/tiny-voice/stream", params={"output_format": "mp3_44100_128"}, json={"text": TEXT})
    assert mp3.status_code == 200 and mp3.headers["content-type"] == "audio/mpeg" and mp3.headers["x-sample-rate"] == "44100"
    bad = client.post("/v1/text-to-speech/tiny-voice", params={"output_format": "ulaw_8000"}, json={"text": TEXT})
    assert_error(bad, 400, param="output_format", contains="mp3")


# -- bad input ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "body", "status", "param"),
    [
        ("/v1/audio/speech", {"model": "tiny-voice", "input": ""}, 400, "input"),
        ("/v1/audio/speech", {"model": "tiny-voice", "input": "   "}, 400, "input"),
        ("/v1/audio/speech", {"model": "tiny-voice"}, 400, "input"),
        ("/v1/audio/speech", {"model": "tiny-multi", "input": TEXT, "voice": "zed"}, 400, "voice"),
        ("/v1/audio/speech", {"model": "tiny-multi", "input": TEXT, "speaker": 7}, 400, "speaker"),
        ("/v1/audio/speech", {"model": "tiny-voice", "input": TEXT, "speaker": "1"}, 400, "speaker"),
        ("/v1/audio/speech", {"model": "tiny-voice", "input": TEXT, "speed": 0.1}, 400, "speed"),
        ("/v1/audio/speech", {"model": "tiny-voice", "input": TEXT, "speed": 4.5}, 400, "speed"),
        ("/v1/audio/speech", {"model": "tiny-voice", "input": TEXT, "response_format": "ogg"}, 400, "response_format"),
        ("/v1/audio/speech", {"model": "tiny-voice", "input": TEXT, "stream_format": "chunks"}, 400, "stream_format"),
        ("/v1/audio/speech", {"model": "chatty", "input": TEXT}, 400, "model"),
        ("/v1/audio/speech", {"model": "nope", "input": TEXT}, 404, "model"),
        ("/audio/speech", {"model": "tiny-multi", "input": TEXT, "voice": "zed", "stream_format": "audio"}, 400, "voice"),
        ("/audio/speech", {"model": "tiny-multi", "input": TEXT, "voice": "zed", "stream_format": "sse"}, 400, "voice"),
        ("/tts", {"model": "tiny-voice", "input": ""}, 400, "input"),
        ("/tts", {"model": "chatty", "input": TEXT}, 400, "model"),
        ("/v1/text-to-speech/tiny-voice", {"text": ""}, 400, "text"),
        ("/v1/text-to-speech/tiny-voice", {"text": TEXT, "voice_settings": {"speed": 9}}, 400, "voice_settings.speed"),
        ("/v1/text-to-speech/tiny-voice/stream", {"text": " "}, 400, "text"),
    ],
)
def test_bad_input_is_a_4xx_in_the_envelope(
    client: TestClient, path: str, body: dict[str, Any], status: int, param: str
) -> None:
    assert_error(client.post(path, json=body), status, param=param)


def test_not_a_tts_model_says_so(client: TestClient) -> None:
    error = assert_error(speech(client, model="chatty"), 400, code="capability_not_supported")
    assert "speak" in error["message"]


# -- the official openai client against a real server ---------------------------------------------


@pytest.fixture(scope="module")
def server(piper_voices: PiperVoices, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    root = tmp_path_factory.mktemp("speech-server")
    models = root / "models"
    models.mkdir()
    populate(models, piper_voices)
    port = free_port()
    server = Server(["--address", f"127.0.0.1:{port}", "--models-path", str(models)], root, port)
    server.wait_healthy()
    yield server
    server.stop()


@pytest.fixture
def sdk(server: Server) -> openai.OpenAI:
    return openai.OpenAI(base_url=server.base + "/v1", api_key="none", max_retries=0, timeout=60)


def test_openai_client_speech(sdk: openai.OpenAI) -> None:
    wav = sdk.audio.speech.create(model="tiny-multi", voice="bob", input=TEXT, response_format="wav")
    channels, width, rate, pcm = wav_info(wav.content)
    assert (channels, width, rate) == (1, 2, 22050) and pcm
    raw = sdk.audio.speech.create(model="tiny-multi", voice="bob", input=TEXT, response_format="pcm", speed=1.0)
    assert raw.content == pcm


def test_openai_client_streaming_response(sdk: openai.OpenAI) -> None:
    whole = sdk.audio.speech.create(model="tiny-voice", voice="alloy", input=TEXT, response_format="pcm").content
    with sdk.audio.speech.with_streaming_response.create(
        model="tiny-voice", voice="alloy", input=TEXT, response_format="wav", stream_format="audio"
    ) as response:
        assert response.headers["content-type"] == "audio/wav"
        assert response.headers.get("transfer-encoding") == "chunked"
        pieces = list(response.iter_bytes())
    body = b"".join(pieces)
    assert wav_info(body)[:3] == (1, 2, 22050) and body[44:] == whole


def test_openai_client_errors(sdk: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        sdk.audio.speech.create(model="tiny-multi", voice="zed", input=TEXT)
    assert caught.value.body["param"] == "voice"  # type: ignore[index]
    with pytest.raises(openai.BadRequestError):
        sdk.audio.speech.create(model="tiny-voice", voice="alloy", input=TEXT, speed=5.0)
