"""huggingface:// and hf:// sources through a loopback Hugging Face mirror (`HF_ENDPOINT`): install,
CDN redirects, gated repos with `HF_TOKEN`, checksum, cancel, and the endpoint's address policy."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from fastapi import FastAPI
from fastapi.testclient import TestClient

from fixtures.hf_mirror import HFMirror

DATA = os.urandom(300_000)


@pytest.fixture
def hub(monkeypatch: pytest.MonkeyPatch) -> Iterator[HFMirror]:
    with HFMirror() as mirror:
        monkeypatch.setenv("HF_ENDPOINT", mirror.endpoint)
        monkeypatch.setenv("HF_HUB_DISABLE_TELEMETRY", "1")
        monkeypatch.delenv("HF_TOKEN", raising=False)
        yield mirror


@pytest.fixture
def client_with(make_app: Callable[..., FastAPI]) -> Iterator[Callable[..., TestClient]]:
    clients: list[TestClient] = []

    def build(**overrides: Any) -> TestClient:
        client = TestClient(make_app(**{"allow_private_downloads": True, **overrides}))
        client.__enter__()
        clients.append(client)
        return client

    yield build
    for client in clients:
        client.__exit__(None, None, None)


def definition(models_path: Path, name: str, uri: str, sha256: str | None = None) -> str:
    """A model definition inside the models path (a `file://` source needs no network)."""
    item = {"filename": f"{name}.gguf", "uri": uri}
    if sha256:
        item["sha256"] = sha256
    path = models_path / "defs" / f"{name}.yaml"
    path.parent.mkdir(exist_ok=True)
    path.write_text(yaml.safe_dump({"name": name, "config_file": {"backend": "fake", "parameters": {"model": f"{name}.gguf"}}, "files": [item]}))
    return f"file://{path}"


def run(client: TestClient, timeout: float = 30.0, **body: Any) -> dict[str, Any]:
    response = client.post("/models/apply", json=body)
    assert response.status_code == 200, response.text
    job_id = response.json()["uuid"]
    deadline = time.monotonic() + timeout
    while not (job := client.get(f"/models/jobs/{job_id}").json())["processed"]:
        assert time.monotonic() < deadline, job
        time.sleep(0.02)
    return job


def staged(models_path: Path) -> list[Path]:
    return [p for p in models_path.rglob("*") if p.name.endswith((".partial", ".etag", ".incomplete", ".tmp"))]


@pytest.mark.parametrize("cdn", [False, True])
def test_a_hub_file_installs(hub: HFMirror, client_with: Callable[..., TestClient], models_path: Path, cdn: bool) -> None:
    file = hub.add_file("owner/repo", "tiny.gguf", DATA, cdn=cdn)
    client = client_with()
    job = run(client, url=definition(models_path, "tiny", file.uri, file.sha256))
    assert job["state"] == "completed", job
    assert (models_path / "tiny.gguf").read_bytes() == DATA and staged(models_path) == []
    assert "tiny" in {m["id"] for m in client.get("/v1/models").json()["data"]}
    assert any(r.path.endswith("/resolve/main/tiny.gguf") for r in hub.hub.requests)


def test_hf_scheme_and_a_checksum_mismatch(hub: HFMirror, client_with: Callable[..., TestClient], models_path: Path) -> None:
    file = hub.add_file("owner/repo", "x.gguf", DATA)
    job = run(client_with(), url=definition(models_path, "x", file.hf_uri, "0" * 64))
    assert job["state"] == "failed" and "sha256 mismatch" in job["error"]
    assert not (models_path / "x.gguf").exists() and staged(models_path) == []


def test_gated_repos_need_hf_token(hub: HFMirror, client_with: Callable[..., TestClient], models_path: Path,
                                   monkeypatch: pytest.MonkeyPatch) -> None:
    file = hub.add_file("owner/gated", "g.gguf", DATA, token="hf_secret")
    client = client_with()
    job = run(client, url=definition(models_path, "g", file.uri, file.sha256))
    assert job["state"] == "failed" and "401" in job["error"]
    assert not (models_path / "g.gguf").exists()
    monkeypatch.setenv("HF_TOKEN", "hf_secret")
    assert run(client, url=definition(models_path, "g", file.uri, file.sha256))["state"] == "completed"
    assert (models_path / "g.gguf").read_bytes() == DATA


def test_a_loopback_endpoint_needs_the_setting(hub: HFMirror, client_with: Callable[..., TestClient], models_path: Path) -> None:
    file = hub.add_file("owner/repo", "p.gguf", DATA)
    job = run(client_with(allow_private_downloads=False), url=definition(models_path, "p", file.uri, file.sha256))
    assert job["state"] == "failed" and "--allow-private-downloads" in job["error"]
    assert hub.hub.requests == [] and not (models_path / "p.gguf").exists()


def test_cancel_a_hub_download(hub: HFMirror, client_with: Callable[..., TestClient], models_path: Path) -> None:
    file = hub.add_file("owner/repo", "c.gguf", DATA)
    gate = file.server.hold(file.path, at=64_000)
    client = client_with()
    response = client.post("/models/apply", json={"url": definition(models_path, "c", file.uri, file.sha256)})
    job_id = response.json()["uuid"]
    gate.wait_reached()
    assert client.post(f"/models/jobs/{job_id}/cancel").status_code == 200
    deadline = time.monotonic() + 10
    while not (job := client.get(f"/models/jobs/{job_id}").json())["processed"]:
        assert time.monotonic() < deadline, job
        time.sleep(0.02)
    gate.release()
    assert job["state"] == "cancelled", job
    assert not (models_path / "c.gguf").exists() and staged(models_path) == []


def test_the_token_goes_to_the_hub_and_never_to_its_cdn(hub: HFMirror, client_with: Callable[..., TestClient],
                                                       models_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_TOKEN", "hf_secret")
    file = hub.add_file("owner/gated", "t.gguf", DATA, token="hf_secret", cdn=True)
    assert run(client_with(), url=definition(models_path, "t", file.uri))["state"] == "completed"
    assert (models_path / "t.gguf").read_bytes() == DATA
    assert all(r.headers.get("authorization") == "Bearer hf_secret" for r in hub.hub.requests_for(f"/owner/gated/resolve/main/t.gguf"))
    assert hub.cdn.requests and all("authorization" not in r.headers for r in hub.cdn.requests)


def test_an_lfs_file_is_checked_against_the_sha256_the_hub_names(hub: HFMirror, client_with: Callable[..., TestClient],
                                                                 models_path: Path) -> None:
    """No sha256 in the definition: the Hub's X-Linked-Etag still catches a CDN serving other bytes."""
    file = hub.add_file("owner/repo", "l.gguf", DATA, cdn=True)
    hub.cdn.add(file.path, os.urandom(len(DATA)))  # the CDN now serves bytes the Hub did not name
    job = run(client_with(), url=definition(models_path, "l", file.uri))
    assert job["state"] == "failed" and "sha256 mismatch" in job["error"] and file.sha256 in job["error"]
    assert not (models_path / "l.gguf").exists()


def test_an_interrupted_hub_download_resumes(hub: HFMirror, client_with: Callable[..., TestClient], models_path: Path) -> None:
    file = hub.add_file("owner/repo", "r.gguf", DATA, cdn=True, cut_at=100_000)
    client = client_with()
    first = run(client, url=definition(models_path, "r", file.uri, file.sha256))
    assert first["state"] == "failed" and "resume" in first["error"]
    hub.cdn.set(file.path, cut_at=None)
    assert run(client, url=definition(models_path, "r", file.uri, file.sha256))["state"] == "completed"
    assert (models_path / "r.gguf").read_bytes() == DATA
    starts = [r.range_start for r in hub.cdn.requests_for(file.path, "GET")]
    assert starts[0] is None and starts[-1] is not None and starts[-1] > 0
