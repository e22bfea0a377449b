"""GET /v1/models (and /models): every configured model and every loose model file, OpenAI shape."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from support import assert_error, write


@pytest.fixture
def populated(models_path: Path) -> Path:
    write(
        models_path / "chat.yaml",
        "name: my-chat\nbackend: llama-cpp\nparameters:\n  model: tiny.gguf\ncontext_size: 512\n",
    )
    write(
        models_path / "several.yaml",
        "- name: fake-a\n  backend: fake\n- name: fake-b\n  backend: fake\n  known_usecases: [embeddings]\n",
    )
    (models_path / "tiny.gguf").write_bytes(b"GGUF" + b"\0" * 28)  # referenced by my-chat: not listed twice
    (models_path / "loose.gguf").write_bytes(b"GGUF" + b"\0" * 28)
    write(models_path / "broken.yaml", "name: [unclosed\n")
    return models_path


@pytest.mark.parametrize("path", ["/v1/models", "/models"])
def test_lists_configs_and_loose_files(make_app: Callable[..., FastAPI], populated: Path, path: str) -> None:
    with TestClient(make_app()) as client:
        response = client.get(path)
    assert response.status_code == 200
    body = response.json()
    assert body["object"] == "list"
    ids = [m["id"] for m in body["data"]]
    assert sorted(ids) == ["fake-a", "fake-b", "loose.gguf", "my-chat"]
    for card in body["data"]:
        assert card["object"] == "model"
        assert isinstance(card["created"], int) and card["created"] > 0
        assert isinstance(card["owned_by"], str)
    by_id = {m["id"]: m for m in body["data"]}
    assert by_id["loose.gguf"]["backend"] == "llama-cpp"
    assert "chat" in by_id["my-chat"]["usecases"]
    assert by_id["fake-b"]["usecases"] == ["embeddings"]


def test_config_file_setting_adds_models(make_app: Callable[..., FastAPI], tmp_path: Path) -> None:
    extra = write(tmp_path / "elsewhere" / "list.yaml", "- name: from-config-file\n  backend: fake\n")
    with TestClient(make_app(config_file=extra)) as client:
        ids = [m["id"] for m in client.get("/v1/models").json()["data"]]
    assert ids == ["from-config-file"]


def test_empty_models_path(client: TestClient) -> None:
    assert client.get("/v1/models").json() == {"object": "list", "data": []}


def test_missing_models_path_is_not_fatal(make_app: Callable[..., FastAPI], tmp_path: Path) -> None:
    with TestClient(make_app(models_path=tmp_path / "does-not-exist")) as client:
        assert client.get("/v1/models").json()["data"] == []


def test_retrieve(make_app: Callable[..., FastAPI], populated: Path) -> None:
    with TestClient(make_app()) as client:
        card = client.get("/v1/models/my-chat").json()
        assert card["id"] == "my-chat" and card["object"] == "model"
        assert client.get("/models/loose.gguf").json()["id"] == "loose.gguf"


def test_unknown_model_points_at_the_list(client: TestClient) -> None:
    error = assert_error(client.get("/v1/models/nope"), 404, code="model_not_found", param="model")
    assert "GET /v1/models" in error["message"]


@pytest.mark.parametrize("name", ["..%2F..%2Fetc%2Fpasswd", "%2Fetc%2Fpasswd", "a%2F..%2F..%2Fb"])
def test_traversal_in_model_name_is_refused(client: TestClient, name: str) -> None:
    response = client.get(f"/v1/models/{name}")
    assert 400 <= response.status_code < 500
    assert_error(response, response.status_code)


def test_openai_client_lists_models(make_app: Callable[..., FastAPI], populated: Path) -> None:
    openai = pytest.importorskip("openai")
    app = make_app(api_keys=["k1"])
    with TestClient(app) as client:
        sdk = openai.OpenAI(base_url=str(client.base_url) + "/v1", api_key="k1", http_client=client)
        assert sorted(m.id for m in sdk.models.list()) == ["fake-a", "fake-b", "loose.gguf", "my-chat"]
        with pytest.raises(openai.NotFoundError):
            sdk.models.retrieve("nope")
        bad = openai.OpenAI(base_url=str(client.base_url) + "/v1", api_key="wrong", http_client=client)
        with pytest.raises(openai.AuthenticationError):
            bad.models.list()


def test_new_model_file_shows_without_restart(client: TestClient, models_path: Path) -> None:
    assert client.get("/v1/models").json()["data"] == []
    write(models_path / "late.yaml", "name: late\nbackend: fake\n")
    assert [m["id"] for m in client.get("/v1/models").json()["data"]] == ["late"]
    assert client.get("/v1/models/late").status_code == 200
