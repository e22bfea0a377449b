"""LocalAI's gallery routes on the app, against a real loopback gallery server: apply, jobs, events,
cancel, available, galleries, delete, preload; and every refusal in the error envelope."""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from fixtures.gallery_server import GalleryServer, file_entry, gguf_entry
from support import assert_error

DATA = os.urandom(400_000)
SHA = hashlib.sha256(DATA).hexdigest()
LOCALAI_FIELDS = {"processed", "progress", "file_name", "file_size", "downloaded_size", "message", "error",
                  "deletion", "gallery_element_name", "cancelled", "cancellable"}


@pytest.fixture
def gallery() -> Iterator[GalleryServer]:
    with GalleryServer() as server:
        server.add("/blobs/tiny.gguf", DATA)
        server.publish_index([
            gguf_entry("tiny", "tiny.gguf", server.url("/blobs/tiny.gguf"), SHA, backend="fake"),
            gguf_entry("broken", "broken.gguf", server.url("/blobs/tiny.gguf"), "0" * 64, backend="fake"),
        ])
        yield server


@pytest.fixture
def app_with(make_app: Callable[..., FastAPI], gallery: GalleryServer) -> Callable[..., TestClient]:
    clients: list[TestClient] = []

    def build(**overrides: Any) -> TestClient:
        values: dict[str, Any] = {"galleries": [gallery.gallery("test")], "allow_private_downloads": True}
        values.update(overrides)
        client = TestClient(make_app(**values))
        client.__enter__()
        clients.append(client)
        return client

    yield build
    for client in clients:
        client.__exit__(None, None, None)


@pytest.fixture
def client(app_with: Callable[..., TestClient]) -> TestClient:
    return app_with()


def wait(client: TestClient, job_id: str, timeout: float = 30.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        job = client.get(f"/models/jobs/{job_id}").json()
        if job["processed"]:
            return job
        assert time.monotonic() < deadline, job
        time.sleep(0.02)


def apply(client: TestClient, **body: Any) -> str:
    response = client.post("/models/apply", json=body)
    assert response.status_code == 200, response.text
    answer = response.json()
    assert set(answer) == {"uuid", "status"}
    assert answer["status"] == f"http://testserver/models/jobs/{answer['uuid']}"
    return answer["uuid"]


def model_ids(client: TestClient) -> set[str]:
    return {m["id"] for m in client.get("/v1/models").json()["data"]}


def test_apply_installs_and_the_model_answers_without_a_restart(client: TestClient, models_path: Path) -> None:
    assert "tiny" not in model_ids(client)
    job = wait(client, apply(client, id="test@tiny"))
    assert LOCALAI_FIELDS <= set(job)
    assert job["processed"] and job["error"] is None and job["progress"] == 100 and job["message"] == "completed"
    assert (job["state"], job["model"], job["gallery_element_name"], job["deletion"]) == ("completed", "tiny", "test@tiny", False)
    assert job["file_name"] == "tiny.gguf" and job["file_size"] == "390.6 KiB" and job["downloaded_bytes"] == len(DATA)
    assert (models_path / "tiny.gguf").read_bytes() == DATA
    assert "tiny" in model_ids(client)
    reply = client.post("/v1/chat/completions", json={"model": "tiny", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 4})
    assert reply.status_code == 200, reply.text
    assert client.get("/models/jobs").json()[job["uuid"]]["state"] == "completed"
    listed = {m["id"]: m for m in client.get("/models/available").json()}
    assert listed["test@tiny"]["installed"] is True and listed["test@broken"]["installed"] is False


def test_apply_with_a_name_overrides_and_extra_files(client: TestClient, gallery: GalleryServer, models_path: Path) -> None:
    extra = gallery.add("/blobs/extra.bin", b"extra bytes")
    job = wait(client, apply(client, id="tiny", name="renamed", overrides={"context_size": 64},
                             files=[file_entry("extra/extra.bin", gallery.url("/blobs/extra.bin"), extra)]))
    assert job["state"] == "completed", job
    assert "renamed" in model_ids(client) and "tiny" not in model_ids(client)
    assert "context_size: 64" in (models_path / "renamed.yaml").read_text()
    assert (models_path / "extra" / "extra.bin").read_bytes() == b"extra bytes"


def test_a_sha256_mismatch_fails_the_job_and_removes_the_file(client: TestClient, models_path: Path) -> None:
    job = wait(client, apply(client, id="test@broken"))
    assert job["processed"] and job["state"] == "failed" and "sha256 mismatch" in job["error"]
    assert job["message"].startswith("error: ")
    assert sorted(p.name for p in models_path.iterdir()) == []
    assert "broken" not in model_ids(client)


def test_the_size_cap_fails_the_job(app_with: Callable[..., TestClient], models_path: Path) -> None:
    client = app_with(max_download_size="100KB")
    job = wait(client, apply(client, id="test@tiny"))
    assert job["state"] == "failed" and "max-download-size" in job["error"]
    assert list(models_path.iterdir()) == []


def test_events_stream_progress_until_the_end(client: TestClient, gallery: GalleryServer) -> None:
    gallery.set("/blobs/tiny.gguf", rate=800_000)
    job_id = apply(client, id="test@tiny")
    events: list[dict[str, Any]] = []
    names: list[str] = []
    with client.stream("GET", f"/models/jobs/{job_id}/events") as response:
        assert response.status_code == 200 and response.headers["content-type"].startswith("text/event-stream")
        lines = list(response.iter_lines())
    for line in lines:
        if line.startswith("event:"):
            names.append(line.removeprefix("event:").strip())
        elif line.startswith("data:") and line != "data: [DONE]":
            events.append(json.loads(line.removeprefix("data:")))
    assert lines[-2:] == ["data: [DONE]", ""] or lines[-1] == "data: [DONE]"
    assert events[-1]["state"] == "completed" and events[-1]["progress"] == 100 and names[-1] == "job.completed"
    progress = [e["progress"] for e in events]
    assert progress == sorted(progress) and any(0 < p < 100 for p in progress), progress


def test_cancel_stops_a_download_and_leaves_nothing(client: TestClient, gallery: GalleryServer, models_path: Path) -> None:
    gate = gallery.hold("/blobs/tiny.gguf", at=100_000)
    job_id = apply(client, id="test@tiny")
    gate.wait_reached()
    cancelled = client.post(f"/models/jobs/{job_id}/cancel")
    assert cancelled.status_code == 200 and cancelled.json()["uuid"] == job_id
    job = wait(client, job_id, timeout=10)  # the held response is broken off: no need for the server to go on
    gate.release()
    assert job["state"] == "cancelled" and job["cancelled"] is True and job["message"] == "cancelled"
    assert list(models_path.iterdir()) == []
    assert_error(client.post(f"/models/jobs/{job_id}/cancel"), 409, code="job_finished")


def test_unknown_jobs_are_404(client: TestClient) -> None:
    assert_error(client.get("/models/jobs/nope"), 404, code="job_not_found")
    assert_error(client.get("/models/jobs/nope/events"), 404, code="job_not_found")
    assert_error(client.post("/models/jobs/nope/cancel"), 404, code="job_not_found")


@pytest.mark.parametrize(
    ("body", "status", "code", "param"),
    [
        ({}, 400, "invalid_source", "id"),
        ({"id": "test@nope"}, 404, "model_not_found", "id"),
        ({"id": "other@tiny"}, 404, "gallery_not_found", "id"),
        ({"id": "test@tiny", "name": "../../etc/evil"}, 400, "unsafe_path", "name"),
        ({"id": "test@tiny", "name": ".hidden"}, 400, "unsafe_path", "name"),
        ({"id": "test@tiny", "files": [{"filename": "../x.gguf", "uri": "https://example.com/x"}]}, 400, "unsafe_path", "files[0].filename"),
        ({"id": "test@tiny", "files": [{"filename": "/etc/x", "uri": "https://example.com/x"}]}, 400, "unsafe_path", "files[0].filename"),
        ({"id": "test@tiny", "files": [{"filename": "x.gguf", "uri": "http://example.com/x"}]}, 400, "invalid_source", "files[0].uri"),
        ({"id": "test@tiny", "files": [{"filename": "x.gguf", "uri": "ftp://example.com/x"}]}, 400, "invalid_source", None),
        ({"id": "test@tiny", "files": [{"filename": "x.gguf", "uri": "https://e/x", "sha256": "xyz"}]}, 400, "invalid_source", "files[0].sha256"),
        ({"url": "gopher://example.com/def.yaml"}, 400, "invalid_source", None),
        ({"config_url": "https://example.com/c.yaml", "name": "a/../../b"}, 400, "unsafe_path", "name"),
        ({"id": "test@tiny", "overrides": "not a mapping"}, 400, "invalid_request", "overrides"),
    ],
)
def test_bad_applies_are_refused_before_a_job_exists(client: TestClient, body: dict[str, Any], status: int, code: str, param: str | None) -> None:
    assert_error(client.post("/models/apply", json=body), status, code=code, param=param)
    assert client.get("/models/jobs").json() == {}


def test_a_definition_url_with_unsafe_files_fails_the_job(client: TestClient, gallery: GalleryServer, models_path: Path) -> None:
    gallery.add_yaml("/defs/evil.yaml", {"name": "evil", "config_file": {"backend": "fake"},
                                         "files": [{"filename": "../../escaped.gguf", "uri": gallery.url("/blobs/tiny.gguf"), "sha256": SHA}]})
    job = wait(client, apply(client, url=gallery.url("/defs/evil.yaml")))
    assert job["state"] == "failed" and "models path" in job["error"]
    assert not (models_path.parent / "escaped.gguf").exists() and list(models_path.iterdir()) == []


def test_loopback_galleries_need_the_setting(app_with: Callable[..., TestClient], gallery: GalleryServer) -> None:
    client = app_with(allow_private_downloads=False)
    assert_error(client.get("/models/available"), 502, code="gallery_unavailable", contains="--allow-private-downloads")
    assert_error(client.post("/models/apply", json={"id": "test@tiny"}), 502, code="gallery_unavailable")
    assert gallery.requests == []


def test_available_works_offline_from_the_last_good_index(app_with: Callable[..., TestClient], gallery: GalleryServer) -> None:
    first = app_with()
    assert {m["id"] for m in first.get("/models/available").json()} == {"test@tiny", "test@broken"}
    gallery.remove("/index.yaml")
    second = app_with()  # a new server process would start the same way: nothing in memory
    assert {m["id"] for m in second.get("/models/available").json()} == {"test@tiny", "test@broken"}


def test_galleries_can_be_listed_added_and_removed(client: TestClient, gallery: GalleryServer) -> None:
    assert client.get("/models/galleries").json() == [gallery.gallery("test")]
    other = {"name": "other", "url": gallery.url("/index.yaml")}
    assert client.post("/models/galleries", json=other).json() == [gallery.gallery("test"), other]
    assert_error(client.post("/models/galleries", json=other), 409, code="gallery_exists")
    assert_error(client.post("/models/galleries", json={"name": "x@y", "url": "https://e/i.yaml"}), 400, param="name")
    assert_error(client.post("/models/galleries", json={"name": "nourl"}), 400, param="url")
    assert "other@tiny" in {m["id"] for m in client.get("/models/available").json()}
    assert client.request("DELETE", "/models/galleries", json={"name": "other"}).json() == [gallery.gallery("test")]
    assert_error(client.request("DELETE", "/models/galleries", json={"name": "other"}), 404, code="gallery_not_found")


def test_delete_removes_the_config_and_its_files(client: TestClient, models_path: Path) -> None:
    wait(client, apply(client, id="test@tiny"))
    (models_path / "mine.gguf").write_bytes(b"not from a gallery")
    response = client.post("/models/delete/tiny")
    assert response.status_code == 200 and set(response.json()) == {"uuid", "status"}
    job = client.get(f"/models/jobs/{response.json()['uuid']}").json()
    assert job["deletion"] is True and job["state"] == "completed" and job["processed"]
    assert sorted(p.name for p in models_path.iterdir()) == ["mine.gguf"]
    assert "tiny" not in model_ids(client)
    assert_error(client.post("/models/delete/tiny"), 404, code="model_not_found")
    assert_error(client.post("/models/delete/..%2F..%2Fetc"), 400, code="unsafe_path")


def test_preload_installs_gallery_ids_before_ready(app_with: Callable[..., TestClient], gallery: GalleryServer, models_path: Path) -> None:
    gallery.set("/blobs/tiny.gguf", rate=1_000_000)
    client = app_with(preload_models=["test@tiny"])
    first = client.get("/readyz")
    assert first.status_code == 503 and first.json()["pending_preloads"] == ["test@tiny"]
    deadline = time.monotonic() + 30
    while client.get("/readyz").status_code != 200:
        assert time.monotonic() < deadline, client.get("/readyz").json()
        time.sleep(0.05)
    assert client.get("/readyz").json()["failed_preloads"] == {}
    assert "tiny" in model_ids(client) and (models_path / "tiny.yaml").exists()
    loaded = {m["id"] for m in client.get("/system").json()["loaded_models"]}
    assert "tiny" in loaded


def test_a_failed_preload_install_is_reported(app_with: Callable[..., TestClient]) -> None:
    client = app_with(preload_models=["test@broken"])
    deadline = time.monotonic() + 30
    while (ready := client.get("/readyz")).status_code != 200:
        assert time.monotonic() < deadline, ready.json()
        time.sleep(0.05)
    assert "sha256 mismatch" in ready.json()["failed_preloads"]["test@broken"]
