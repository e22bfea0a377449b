"""`appliance run` as a real process on a real port: serves /v1/models from a models path."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from inference.catalog.builtin_models import installed_builtin_models
from support import Server, free_port, write

# The models path's own models, and the built-ins of the packages installed here (embedder, chat model).
LISTED = sorted(["assistant", "embedder", "solo.gguf", *(m.name for m in installed_builtin_models())])


@pytest.fixture
def models(tmp_path: Path) -> Path:
    path = tmp_path / "models"
    write(path / "assistant.yaml", "name: assistant\nbackend: llama-cpp\nparameters:\n  model: a.gguf\n"
          "template:\n  chat: '{{.Input}}'\nunknown_field: kept\n")
    write(path / "embedders.yml", "- name: embedder\n  backend: fake\n  embeddings: true\n")
    (path / "a.gguf").write_bytes(b"GGUF" + bytes(28))
    (path / "solo.gguf").write_bytes(b"GGUF" + bytes(28))
    return path


@pytest.fixture
def serve(tmp_path: Path) -> Iterator:
    servers: list[Server] = []

    def start(*args: str) -> Server:
        port = free_port()
        server = Server(["--address", f"127.0.0.1:{port}", *args], tmp_path, port)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


def test_serves_models_from_a_models_path(serve, models: Path) -> None:
    server = serve("--models-path", str(models))
    server.wait_healthy()
    ids = sorted(m["id"] for m in httpx.get(server.base + "/v1/models").json()["data"])
    assert ids == LISTED
    assert httpx.get(server.base + "/readyz").status_code == 200
    response = httpx.get(server.base + "/v1/models/ghost")
    assert response.status_code == 404 and "GET /v1/models" in response.json()["error"]["message"]
    assert server.stop() == 0
    assert "event=startup" in server.output()


def test_localai_env_configures_and_keys_protect(tmp_path: Path, models: Path) -> None:
    port = free_port()
    env = {"LOCALAI_MODELS_PATH": str(models), "LOCALAI_API_KEY": "secret"}
    server = Server(["--address", f"127.0.0.1:{port}"], tmp_path, port, env=env)
    try:
        server.wait_healthy()
        assert httpx.get(server.base + "/v1/models").status_code == 401
        listed = httpx.get(server.base + "/v1/models", headers={"Authorization": "Bearer secret"}).json()
        assert sorted(m["id"] for m in listed["data"]) == LISTED
    finally:
        server.stop()


def test_exposed_bind_without_keys_warns(serve, tmp_path: Path) -> None:
    port = free_port()
    server = Server(["--address", f"0.0.0.0:{port}", "--models-path", str(tmp_path)], tmp_path, port)
    try:
        server.wait_healthy()
        assert "event=exposed_without_keys" in server.output()
    finally:
        server.stop()
    quiet = serve("--models-path", str(tmp_path))
    quiet.wait_healthy()
    assert "exposed_without_keys" not in quiet.output()


def test_bad_setting_exits_with_a_message(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "appliance", "run", "--upload-limit", "huge"],
        cwd=tmp_path, capture_output=True, text=True, timeout=60, check=False,
    )
    assert result.returncode == 2
    assert "--upload-limit" in result.stderr and "Traceback" not in result.stderr


def test_models_list_command(models: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "appliance", "models", "list", "--models-path", str(models)],
        capture_output=True, text=True, timeout=60, check=True,
    )
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["NAME", "BACKEND", "USECASES", "SOURCE"]
    names = [line.split()[0] for line in lines[1:]]
    assert names == LISTED  # the built-ins too
    assert "sentencetransformers" in lines[1] and "llama-cpp" in lines[2]
