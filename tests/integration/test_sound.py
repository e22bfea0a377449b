"""Sound generation end to end on a tiny real AudioLDM pipeline (diffusers' own fast-test shapes).

``POST /v1/sound-generation`` (LocalAI's ElevenLabs-style body) answers a WAV: mono, 16-bit, at the
vocoder's 16 kHz, as long as asked. Audio is noise: only the WAV structure is asserted. Durations
stay at tens of milliseconds and the model config asks for 2 steps.
"""

from __future__ import annotations

import io
import threading
import wave
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from appliance.app import create_app
from appliance.config import Settings
from inference.catalog.config import ModelConfig
from inference.media import SoundRequest
from support import assert_error, write

pytest.importorskip("diffusers")

MODEL = "tiny-audio"
CONFIGS = f"""
- name: {MODEL}
  backend: diffusers
  parameters: {{model: tiny-audioldm}}
  step: 2
  diffusers: {{pipeline_type: AudioLDMPipeline, scheduler_type: ddim}}
- name: tiny-image
  backend: diffusers
  parameters: {{model: tiny-sd}}
  step: 2
"""


@pytest.fixture(scope="module")
def client(
    tmp_path_factory: pytest.TempPathFactory, tiny_audioldm: Path, tiny_stable_diffusion: Path
) -> Iterator[TestClient]:
    root = tmp_path_factory.mktemp("sound-api")
    models = root / "models"
    models.mkdir()
    (models / "tiny-audioldm").symlink_to(tiny_audioldm, target_is_directory=True)
    (models / "tiny-sd").symlink_to(tiny_stable_diffusion, target_is_directory=True)
    write(models / "sound.yaml", CONFIGS)
    settings = Settings(models_path=models, data_path=root / "data", builtin_models=False)
    with TestClient(create_app(settings)) as test_client:
        yield test_client


def read_wav(response: httpx.Response) -> tuple[wave.Wave_read, bytes]:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "audio/wav"
    assert response.content[:4] == b"RIFF" and response.content[8:16] == b"WAVEfmt "
    clip = wave.open(io.BytesIO(response.content))
    return clip, clip.readframes(clip.getnframes())


def test_wav_of_the_asked_duration(client: TestClient) -> None:
    body = {"model_id": MODEL, "text": "a hammer hitting wood", "duration_seconds": 0.05, "prompt_influence": 0.3}
    response = client.post("/v1/sound-generation", json=body)
    clip, frames = read_wav(response)
    assert (clip.getnchannels(), clip.getsampwidth(), clip.getframerate()) == (1, 2, 16000)
    assert clip.getnframes() == 800 and len(frames) == 1600  # 0.05 s at 16 kHz
    # A complete file, not a streaming header: RIFF and data sizes are the real ones.
    assert int.from_bytes(response.content[4:8], "little") == 36 + 1600
    assert int.from_bytes(response.content[40:44], "little") == 1600


def test_model_alias_default_duration_and_do_sample_false_repeats(client: TestClient) -> None:
    body = {"model": MODEL, "text": "rain on a roof", "do_sample": False}
    first_clip, first = read_wav(client.post("/sound-generation", json=body))
    _, again = read_wav(client.post("/v1/sound-generation", json=body))
    assert first_clip.getframerate() == 16000 and first_clip.getnframes() > 0  # the pipeline's own length
    assert first == again
    seeded = {"model_id": MODEL, "text": "rain on a roof", "duration_seconds": 0.03, "seed": 5}
    assert read_wav(client.post("/v1/sound-generation", json=seeded))[1] == read_wav(
        client.post("/v1/sound-generation", json=seeded)
    )[1]


def test_the_only_sound_model_is_used_when_none_is_named(client: TestClient) -> None:
    clip, _ = read_wav(client.post("/v1/sound-generation", json={"text": "a bell", "duration_seconds": 0.02}))
    assert clip.getnframes() == 320


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"duration_seconds": 0}, "duration_seconds"),
        ({"duration_seconds": -1}, "duration_seconds"),
        ({"duration_seconds": 31}, "duration_seconds"),
        ({"prompt_influence": 1.5}, "prompt_influence"),
        ({"prompt_influence": -0.1}, "prompt_influence"),
        ({"text": "  "}, "text"),
        ({"text": None}, "text"),
        ({"model_id": "tiny-image"}, "model"),  # an image model makes no sound
    ],
)
def test_bad_input_is_a_400(client: TestClient, body: dict[str, object], param: str) -> None:
    request = {"model_id": MODEL, "text": "a bell", "duration_seconds": 0.02, **body}
    assert_error(client.post("/v1/sound-generation", json=request), 400, param=param)


def test_a_sound_model_makes_no_images(client: TestClient) -> None:
    response = client.post("/v1/images/generations", json={"model": MODEL, "prompt": "a bell", "size": "32x32"})
    assert_error(response, 400, code="capability_not_supported")


def test_the_wrong_capability_is_refused_before_anything_loads(
    tmp_path: Path, tiny_audioldm: Path, tiny_stable_diffusion: Path
) -> None:
    models = tmp_path / "models"
    models.mkdir()
    (models / "tiny-audioldm").symlink_to(tiny_audioldm, target_is_directory=True)
    (models / "tiny-sd").symlink_to(tiny_stable_diffusion, target_is_directory=True)
    write(models / "sound.yaml", CONFIGS)
    settings = Settings(models_path=models, data_path=tmp_path / "data", builtin_models=False)
    with TestClient(create_app(settings)) as fresh:
        images = fresh.post("/v1/images/generations", json={"model": MODEL, "prompt": "a bell", "size": "32x32"})
        assert_error(images, 400, code="capability_not_supported")
        sound = fresh.post("/v1/sound-generation", json={"model_id": "tiny-image", "text": "a bell"})
        assert_error(sound, 400, code="capability_not_supported")
        stats = fresh.app.state.services.scheduler.stats()
        assert dict(stats.loads) == {} and stats.loaded == 0


def test_a_loose_audioldm_folder_is_a_sound_model(tiny_audioldm: Path, tmp_path: Path) -> None:
    models = tmp_path / "models"
    models.mkdir()
    (models / "loose-audio").symlink_to(tiny_audioldm, target_is_directory=True)
    settings = Settings(models_path=models, data_path=tmp_path / "data", builtin_models=False)
    with TestClient(create_app(settings)) as loose:
        card = loose.get("/v1/models").json()["data"]
        assert [(m["id"], m["usecases"]) for m in card] == [("loose-audio", ["sound"])]
        clip, _ = read_wav(
            loose.post("/v1/sound-generation", json={"model_id": "loose-audio", "text": "a bell", "duration_seconds": 0.02})
        )
        assert clip.getnframes() == 320


def test_backend_stops_between_steps_when_cancelled(tiny_audioldm: Path) -> None:
    from inference.backends.diffusers import DiffusersBackend, GenerationCancelled
    from inference.capabilities import Capability

    config = ModelConfig(name="audio", backend="diffusers", parameters={"model": tiny_audioldm.name}, step=2)
    backend = DiffusersBackend(config, tiny_audioldm.parent)
    assert backend.supports(Capability.SOUND) and not backend.supports(Capability.IMAGE)  # from model_index.json
    backend.load()
    try:
        cancel = threading.Event()
        cancel.set()
        with pytest.raises(GenerationCancelled):
            backend.generate_sound(SoundRequest(text="a bell", duration_seconds=0.02), cancel)
        clip = backend.generate_sound(SoundRequest(text="a bell", duration_seconds=0.02), threading.Event())
        assert clip.sample_rate == 16000 and len(clip.pcm) == 640
    finally:
        backend.unload()
