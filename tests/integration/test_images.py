"""Image generation end to end on a tiny real Stable Diffusion pipeline (TEST-MODELS.md section 2).

Through TestClient and the official openai client (in process and against uvicorn on a real port):
b64_json and url answers, the served files and their API-key check, image-to-image from a source
image, the LocalAI scheduler names, bad input as 400s, expiry and path traversal on the file route.
Images are noise: only sizes, counts and formats are asserted. Every call uses 32-64 px and 2 steps.
"""

from __future__ import annotations

import base64
import contextlib
import io
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest
import uvicorn
from fastapi.testclient import TestClient

from appliance.app import create_app
from appliance.config import Settings
from inference.catalog.config import ModelConfig
from inference.errors import InvalidModelConfig
from inference.media import ImageRequest
from inference.services.generated_files import GeneratedFiles
from support import assert_error, free_port, write

pytest.importorskip("diffusers")
from PIL import Image  # noqa: E402 - diffusers brings Pillow

# diffusers' schedulers hand torch tensors to numpy functions, which numpy 2 reports as deprecated.
pytestmark = [
    pytest.mark.filterwarnings("ignore:__array__ implementation doesn't accept a copy keyword:DeprecationWarning"),
    pytest.mark.filterwarnings("ignore:__array_wrap__ must accept context:DeprecationWarning"),
]

KEY = "sk-images"
MODEL = "tiny-sd-euler"
CONFIGS = f"""
- name: {MODEL}
  backend: diffusers
  parameters: {{model: tiny-sd}}
  step: 2
  cfg_scale: 5
  diffusers: {{scheduler_type: euler_a, pipeline_type: StableDiffusionPipeline, clip_skip: 1}}
- name: tiny-sd-bad-scheduler
  backend: diffusers
  parameters: {{model: tiny-sd}}
  diffusers: {{scheduler_type: warp_drive}}
- name: tiny-sd-bad-pipeline
  backend: diffusers
  parameters: {{model: tiny-sd}}
  diffusers: {{pipeline_type: NotAPipeline}}
"""


def models_folder(root: Path, tiny_stable_diffusion: Path) -> Path:
    models = root / "models"
    models.mkdir()
    (models / "tiny-sd").symlink_to(tiny_stable_diffusion, target_is_directory=True)
    write(models / "images.yaml", CONFIGS)
    return models


@pytest.fixture(scope="module")
def app_settings(tmp_path_factory: pytest.TempPathFactory, tiny_stable_diffusion: Path) -> Settings:
    root = tmp_path_factory.mktemp("images-api")
    return Settings(
        models_path=models_folder(root, tiny_stable_diffusion),
        data_path=root / "data",
        builtin_models=False,
        api_keys=[KEY],
        image_max_size="64x64",
        image_max_n=2,
    )


@pytest.fixture(scope="module")
def client(app_settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(app_settings), headers={"Authorization": f"Bearer {KEY}"}) as test_client:
        yield test_client


@pytest.fixture
def sdk(client: TestClient) -> openai.OpenAI:
    return openai.OpenAI(base_url=str(client.base_url) + "/v1", api_key=KEY, http_client=client, max_retries=0)


def png(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    assert image.format == "PNG"
    return image


def source_image(width: int = 40, height: int = 48) -> str:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), (200, 30, 30)).save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def generate(client: TestClient, path: str = "/v1/images/generations", **body: object) -> httpx.Response:
    return client.post(path, json={"model": MODEL, "prompt": "a red cat", **body})


# -- the scheduler table ------------------------------------------------------------------------


LOCALAI_SCHEDULERS = [
    "ddim", "pndm", "heun", "unipc", "euler", "euler_a", "lms", "k_lms", "dpm_2", "k_dpm_2", "dpm_2_a",
    "k_dpm_2_a", "dpmpp_2m", "k_dpmpp_2m", "dpmpp_sde", "k_dpmpp_sde", "dpmpp_2m_sde", "k_dpmpp_2m_sde",
]


@pytest.mark.parametrize("name", LOCALAI_SCHEDULERS)
def test_every_localai_scheduler_name_constructs(name: str, tiny_stable_diffusion: Path) -> None:
    import json

    from inference.backends.diffusers import SCHEDULER_NAMES, build_scheduler

    assert name in SCHEDULER_NAMES
    base = json.loads((tiny_stable_diffusion / "scheduler" / "scheduler_config.json").read_text())
    scheduler = build_scheduler(name.upper() if name == "euler_a" else name, base)
    assert type(scheduler).__name__.endswith("Scheduler")
    assert bool(scheduler.config.get("use_karras_sigmas")) == name.startswith("k_")
    scheduler.set_timesteps(2)
    assert len(scheduler.timesteps) >= 2


def test_scheduler_table_matches_localai() -> None:
    from inference.backends.diffusers import SCHEDULER_NAMES, scheduler_spec

    assert sorted(SCHEDULER_NAMES) == sorted(LOCALAI_SCHEDULERS)
    assert scheduler_spec("euler_a")[0] == "EulerAncestralDiscreteScheduler"
    assert scheduler_spec("k_dpmpp_2m") == (
        "DPMSolverMultistepScheduler", {"algorithm_type": "dpmsolver++", "solver_order": 2, "use_karras_sigmas": True}
    )
    for bad in ("warp_drive", "k_euler", "k_", ""):
        with pytest.raises(InvalidModelConfig, match="scheduler_type"):
            scheduler_spec(bad)


# -- generation over HTTP -----------------------------------------------------------------------


def test_b64_json_with_the_openai_client(sdk: openai.OpenAI) -> None:
    reply = sdk.images.generate(model=MODEL, prompt="a red cat", size="32x32", n=2, response_format="b64_json")
    assert isinstance(reply.created, int) and len(reply.data) == 2
    for item in reply.data:
        assert item.url is None
        image = png(base64.b64decode(item.b64_json or ""))
        assert image.size == (32, 32) and image.mode == "RGB"


def test_url_is_absolute_and_serves_the_png_behind_the_key(client: TestClient, sdk: openai.OpenAI) -> None:
    reply = sdk.images.generate(model=MODEL, prompt="a photo of a dog", size="64x48", response_format="url")
    assert len(reply.data) == 1 and reply.data[0].b64_json is None
    url = reply.data[0].url or ""
    assert url.startswith(str(client.base_url) + "/generated-images/") and url.endswith(".png")
    served = client.get(url)
    assert served.status_code == 200 and served.headers["content-type"] == "image/png"
    assert png(served.content).size == (64, 48)
    assert_error(client.get(url, headers={"Authorization": ""}), 401, code="invalid_api_key")


def test_url_is_the_default_and_files_land_under_the_data_path(client: TestClient, app_settings: Settings) -> None:
    response = generate(client, path="/images/generations", size="32x32", n=2)
    assert response.status_code == 200, response.text
    names = [item["url"].rsplit("/", 1)[1] for item in response.json()["data"]]
    assert len(set(names)) == 2
    folder = app_settings.data_path / "generated" / "images"
    for name in names:
        assert len(name) == 36 and (folder / name).is_file()


def test_native_size_when_no_size_is_given(client: TestClient) -> None:
    response = generate(client, response_format="b64_json")
    assert response.status_code == 200, response.text
    assert png(base64.b64decode(response.json()["data"][0]["b64_json"])).size == (32, 32)  # 16 x VAE factor 2


def test_localai_fields_and_the_same_seed_gives_the_same_image(client: TestClient) -> None:
    body = {"prompt": "a red cat | a dog", "size": "32x32", "response_format": "b64_json", "seed": 7, "step": 2}
    first = generate(client, **body)
    again = generate(client, **body)
    assert first.status_code == again.status_code == 200, first.text
    assert first.json()["data"] == again.json()["data"]
    other = generate(client, **{**body, "seed": 8, "num_inference_steps": 3, "negative_prompt": "blur"})
    assert other.status_code == 200, other.text
    assert other.json()["data"] != first.json()["data"]


@pytest.mark.parametrize("field", ["file", "src"])
def test_image_to_image_from_a_source(client: TestClient, field: str) -> None:
    sized = generate(client, size="32x32", response_format="b64_json", **{field: source_image()})
    assert sized.status_code == 200, sized.text
    assert png(base64.b64decode(sized.json()["data"][0]["b64_json"])).size == (32, 32)
    data_url = "data:image/png;base64," + source_image(24, 24)
    native = generate(client, response_format="b64_json", strength=0.5, n=2, **{field: data_url})
    assert native.status_code == 200, native.text
    images = [png(base64.b64decode(item["b64_json"])) for item in native.json()["data"]]
    assert [image.size for image in images] == [(32, 32), (32, 32)]


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"size": "65x64"}, "size"),
        ({"size": "64x60"}, "size"),
        ({"size": "72x64"}, "size"),  # over the 64x64 maximum
        ({"size": "big"}, "size"),
        ({"n": 3}, "n"),  # over the limit of 2
        ({"n": 0}, "n"),
        ({"prompt": "   "}, "prompt"),
        ({"prompt": "| only a negative"}, "prompt"),
        ({"step": 0}, "step"),
        ({"file": "not base64!"}, "file"),
        ({"src": base64.b64encode(b"not an image").decode()}, "file"),
        ({"file": "https://example.com/cat.png"}, "file"),
        ({"file": "data:image/png,rawbytes"}, "file"),
        ({"strength": 1.5, "file": source_image()}, "strength"),
    ],
)
def test_bad_input_is_a_400(client: TestClient, body: dict[str, object], param: str) -> None:
    assert_error(generate(client, **body), 400, param=param)


def test_missing_prompt_is_a_400(client: TestClient) -> None:
    assert_error(client.post("/v1/images/generations", json={"model": MODEL}), 400, param="prompt")


def test_config_errors_are_400s_that_name_the_field(client: TestClient) -> None:
    error = assert_error(generate(client, model="tiny-sd-bad-scheduler"), 400, param="diffusers.scheduler_type")
    assert "warp_drive" in error["message"] and "euler_a" in error["message"]
    assert_error(generate(client, model="tiny-sd-bad-pipeline"), 400, param="diffusers.pipeline_type")
    assert_error(generate(client, model="no-such-model"), 404, code="model_not_found")


def test_a_text_model_cannot_make_images(make_app: object, models_path: Path) -> None:
    write(models_path / "fake.yaml", "name: texty\nbackend: fake\n")
    with TestClient(make_app()) as plain:  # type: ignore[operator]
        assert_error(plain.post("/v1/images/generations", json={"model": "texty", "prompt": "x"}), 400,
                     code="capability_not_supported")
        # No model named and no image model configured: a clear 400, not a guess.
        assert_error(plain.post("/v1/images/generations", json={"prompt": "x"}), 400, param="model")


# -- the generated-files route ------------------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    [
        "/generated-images/..%2F..%2Fmodels%2Fimages.yaml",
        "/generated-images/../models/images.yaml",
        "/generated-images/%2e%2e",
        "/generated-images/" + "A" * 32 + ".png",
        "/generated-images/" + "0" * 32 + ".png",
        "/generated-images/" + "0" * 32 + ".png.tmp",
        "/generated-images/secret.txt",
    ],
)
def test_only_generated_names_are_served(client: TestClient, app_settings: Settings, path: str) -> None:
    folder = app_settings.data_path / "generated" / "images"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "secret.txt").write_text("not yours")
    assert_error(client.get(path), 404)


def test_expired_files_are_gone(client: TestClient, app_settings: Settings) -> None:
    url = generate(client, size="32x32").json()["data"][0]["url"]
    path = app_settings.data_path / "generated" / "images" / url.rsplit("/", 1)[1]
    assert client.get(url).status_code == 200
    old = time.time() - app_settings.generated_max_age - 5
    os.utime(path, (old, old))
    assert_error(client.get(url), 404)
    assert not path.exists()


def test_cleanup_removes_only_old_generated_files(tmp_path: Path) -> None:
    now = [1_000_000.0]
    files = GeneratedFiles(tmp_path / "images", max_age=3600, clock=lambda: now[0])
    old, fresh = files.save([b"old-png", b"fresh-png"])
    foreign = tmp_path / "images" / "keep-me.txt"
    foreign.write_text("not ours")
    os.utime(tmp_path / "images" / old, (now[0] - 4000, now[0] - 4000))
    os.utime(tmp_path / "images" / fresh, (now[0] - 10, now[0] - 10))
    assert files.cleanup() == 1
    assert files.find(old) is None and files.read(fresh) == b"fresh-png" and foreign.exists()
    now[0] += 3600
    assert files.find(fresh) is None and not (tmp_path / "images" / fresh).exists()
    assert files.cleanup() == 0 and files.find("../keep-me.txt") is None


# -- the backend directly -----------------------------------------------------------------------


def test_backend_stops_between_steps_when_cancelled(tiny_stable_diffusion: Path) -> None:
    from inference.backends.diffusers import DiffusersBackend, GenerationCancelled
    from inference.capabilities import Capability

    config = ModelConfig(name="sd", backend="diffusers", parameters={"model": tiny_stable_diffusion.name}, f16=True)
    backend = DiffusersBackend(config, tiny_stable_diffusion.parent)
    assert backend.supports(Capability.IMAGE) and not backend.supports(Capability.SOUND)  # known before load
    backend.load()
    try:
        cancel = threading.Event()
        cancel.set()
        with pytest.raises(GenerationCancelled):
            backend.generate_images(ImageRequest(prompt="a cat", width=32, height=32, steps=2), cancel)
        # f16 on a CPU stays float32 (and works).
        done = backend.generate_images(ImageRequest(prompt="a cat", width=32, height=32, steps=2), threading.Event())
        assert len(done.png) == 1 and isinstance(done.seed, int)
    finally:
        backend.unload()


# -- a real server on a real port --------------------------------------------------------------


@contextlib.contextmanager
def serve_in_thread(settings: Settings) -> Iterator[str]:
    """uvicorn serving ``create_app(settings)`` on a free loopback port from a thread (torch and
    diffusers are already imported here, which a subprocess would pay for again)."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(settings), host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, name="uvicorn-images", daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)


def test_openai_client_against_a_real_server(tmp_path: Path, tiny_stable_diffusion: Path) -> None:
    settings = Settings(
        models_path=models_folder(tmp_path, tiny_stable_diffusion),
        data_path=tmp_path / "data",
        builtin_models=False,
        api_keys=[KEY],
    )
    with serve_in_thread(settings) as base:
        sdk = openai.OpenAI(base_url=base + "/v1", api_key=KEY, max_retries=0, timeout=120)
        b64 = sdk.images.generate(model=MODEL, prompt="a cat", size="32x32", n=2, response_format="b64_json")
        assert [png(base64.b64decode(item.b64_json or "")).size for item in b64.data] == [(32, 32)] * 2
        url = sdk.images.generate(model=MODEL, prompt="a cat", size="64x64", response_format="url").data[0].url
        assert url is not None and url.startswith(base + "/generated-images/")
        assert png(httpx.get(url, headers={"Authorization": f"Bearer {KEY}"}).content).size == (64, 64)
        assert_error(httpx.get(url), 401, code="invalid_api_key")
        with pytest.raises(openai.BadRequestError):
            sdk.images.generate(model=MODEL, prompt="a cat", size="65x64")
