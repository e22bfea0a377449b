"""Installing models by name end to end: a loopback LocalAI gallery, a loopback Hugging Face mirror, a real
appliance server, the official openai client.

`POST /models/apply` installs a tiny real GGUF chat model; the job reaches `processed` with progress 100,
the model shows in /v1/models without a restart and answers a chat. Also: the job routes (404, list,
SSE progress), the last good index kept for /models/available when the gallery is gone, gallery ids in
`--preload-models` (with /readyz waiting), and the `appliance models install|available|remove` CLI.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from fixtures.gallery_client import GalleryAppliance, assert_succeeded, chat_blob, leftovers, sha256_of
from fixtures.gallery_server import GalleryServer, Served, gguf_entry
from fixtures.hf_mirror import HFMirror, HubFile
from support import assert_error

MESSAGES = [{"role": "user", "content": "hello world"}]
HF_TOKEN = "hf_loopback_test_token"


class Galleries:
    """The loopback gallery and HF mirror a module's tests share, with the blobs they serve."""

    def __init__(self, folder: Path) -> None:
        self.gallery = GalleryServer()
        self.hub = HFMirror()
        self.blobs: dict[str, bytes] = {
            name: chat_blob(folder, name, seed=seed, large=name == "slow")
            for seed, name in enumerate(("tiny", "slow", "hf", "hfcdn", "url", "gated"))
        }
        self.tiny = self.gallery.add("/blobs/tiny-chat.gguf", self.blobs["tiny"])
        self.slow = self.gallery.add("/blobs/slow-chat.gguf", self.blobs["slow"])
        self.hf: HubFile = self.hub.add_file("owner/tiny-GGUF", "tiny-hf.gguf", self.blobs["hf"])
        self.hfcdn: HubFile = self.hub.add_file("owner/cdn-GGUF", "tiny-cdn.gguf", self.blobs["hfcdn"], cdn=True)
        self.gated: HubFile = self.hub.add_file(
            "owner/gated-GGUF", "tiny-gated.gguf", self.blobs["gated"], cdn=True, token=HF_TOKEN
        )
        self.url_blob = self.gallery.add("/blobs/by-url.gguf", self.blobs["url"])
        # A model definition for a `url:` entry: LocalAI's format, config_file as a YAML string.
        self.gallery.add_yaml(
            "/defs/chatml.yaml",
            {
                "name": "chatml-base",
                "description": "ChatML base definition",
                "license": "apache-2.0",
                "config_file": "backend: llama-cpp\ncontext_size: 256\nthreads: 1\nparameters:\n  temperature: 0\n",
                "files": [],
            },
        )
        self.entries = [
            gguf_entry("tiny", "tiny-chat.gguf", self.tiny_url, self.tiny.sha256, description="A tiny ChatML model"),
            gguf_entry("slow", "slow-chat.gguf", self.gallery.url("/blobs/slow-chat.gguf"), self.slow.sha256),
            gguf_entry("owner/slashed", "tiny-chat.gguf", self.tiny_url, self.tiny.sha256),
            gguf_entry("hf-tiny", "tiny-hf.gguf", self.hf.uri, self.hf.sha256),
            gguf_entry("hf-cdn", "tiny-cdn.gguf", self.hfcdn.hf_uri, self.hfcdn.sha256),
            gguf_entry("hf-gated", "tiny-gated.gguf", self.gated.uri, None),  # verified by the Hub's X-Linked-Etag
            {
                "name": "by-definition",
                "url": self.gallery.url("/defs/chatml.yaml"),
                "description": "installed through a model definition",
                "license": "apache-2.0",
                "tags": ["test"],
                "overrides": {"parameters": {"model": "by-url.gguf"}},
                "files": [
                    {
                        "filename": "by-url.gguf",
                        "uri": self.gallery.url("/blobs/by-url.gguf"),
                        "sha256": self.url_blob.sha256,
                    }
                ],
            },
        ]
        self.gallery.publish_index(self.entries)
        self.env = {"HF_ENDPOINT": self.hub.endpoint, "HF_TOKEN": HF_TOKEN}

    @property
    def tiny_url(self) -> str:
        return self.gallery.url("/blobs/tiny-chat.gguf")

    def list(self) -> list[dict[str, str]]:
        return [self.gallery.gallery("test")]

    def close(self) -> None:
        self.gallery.close()
        self.hub.close()


@pytest.fixture(scope="module")
def galleries(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Galleries]:
    served = Galleries(tmp_path_factory.mktemp("gallery-blobs"))
    yield served
    served.close()


@pytest.fixture(scope="module")
def appliance(galleries: Galleries, tmp_path_factory: pytest.TempPathFactory) -> Iterator[GalleryAppliance]:
    root = tmp_path_factory.mktemp("gallery-install")
    server = GalleryAppliance(
        root, root / "models", root / "data", galleries=galleries.list(), env=galleries.env
    )
    yield server
    server.stop()


def chat_once(server: GalleryAppliance, model: str) -> None:
    reply = server.sdk.chat.completions.create(model=model, messages=MESSAGES, max_tokens=8, temperature=0)
    assert reply.choices[0].message.role == "assistant"
    assert isinstance(reply.choices[0].message.content, str)
    assert reply.usage.completion_tokens > 0


def test_available_lists_the_gallery_in_localai_shape(appliance: GalleryAppliance, galleries: Galleries) -> None:
    listed = {item["name"]: item for item in appliance.available()}
    assert {entry["name"] for entry in galleries.entries} <= set(listed), listed
    tiny = listed["tiny"]
    assert tiny["description"] == "A tiny ChatML model" and tiny["license"] == "apache-2.0"
    assert tiny["tags"] == ["test", "llm", "gguf"]
    assert tiny["gallery"]["name"] == "test" and tiny["gallery"]["url"].endswith("/index.yaml")
    assert not tiny.get("installed"), tiny
    response = appliance.http.get("/models/galleries")
    assert response.status_code == 200 and response.json() == galleries.list(), response.text


def test_openai_client_chats_with_a_model_installed_from_the_gallery(
    appliance: GalleryAppliance, galleries: Galleries
) -> None:
    assert "tiny" not in appliance.model_ids()
    job = appliance.install(id="test@tiny")
    assert job["file_size"] and job["downloaded_size"], job
    installed = appliance.models / "tiny-chat.gguf"
    assert sha256_of(installed) == galleries.tiny.sha256
    assert "tiny" in appliance.model_ids()  # no restart
    chat_once(appliance, "tiny")
    assert any(item["name"] == "tiny" and item.get("installed") for item in appliance.available())
    assert appliance.http.get("/models/jobs").status_code == 200


@pytest.mark.parametrize(
    ("entry", "filename", "blob"), [("hf-tiny", "tiny-hf.gguf", "hf"), ("hf-cdn", "tiny-cdn.gguf", "hfcdn")]
)
def test_a_model_fetched_through_a_loopback_hf_endpoint(
    appliance: GalleryAppliance, galleries: Galleries, entry: str, filename: str, blob: str
) -> None:
    before = len(galleries.hub.hub.requests)
    appliance.install(id=f"test@{entry}")
    assert (appliance.models / filename).read_bytes() == galleries.blobs[blob]
    hub_paths = [r.path for r in galleries.hub.hub.requests[before:]]
    assert any("/resolve/" in path and path.endswith(filename) for path in hub_paths), hub_paths
    assert entry in appliance.model_ids()
    chat_once(appliance, entry)


def test_a_gallery_name_with_a_slash_installs_under_localais_mapping(appliance: GalleryAppliance) -> None:
    """Gallery names such as "owner/model" are offered, so they can be installed ("/" -> "__" on disk)."""
    assert "owner/slashed" in {item["name"] for item in appliance.available()}
    appliance.install(id="test@owner/slashed")
    assert (appliance.models / "owner__slashed.yaml").exists()
    assert any("slashed" in model for model in appliance.model_ids()), appliance.model_ids()


def test_hf_token_goes_to_the_hub_and_not_to_its_cdn(appliance: GalleryAppliance, galleries: Galleries) -> None:
    hub_before, cdn_before = len(galleries.hub.hub.requests), len(galleries.hub.cdn.requests)
    appliance.install(id="test@hf-gated")
    assert (appliance.models / "tiny-gated.gguf").read_bytes() == galleries.blobs["gated"]
    hub_calls = [r for r in galleries.hub.hub.requests[hub_before:] if "gated" in r.path]
    cdn_calls = galleries.hub.cdn.requests[cdn_before:]
    assert hub_calls and all(r.headers.get("authorization") == f"Bearer {HF_TOKEN}" for r in hub_calls), hub_calls
    assert cdn_calls and all("authorization" not in r.headers for r in cdn_calls), cdn_calls


def test_a_model_definition_url_with_overrides_and_files(appliance: GalleryAppliance, galleries: Galleries) -> None:
    appliance.install(id="test@by-definition")
    assert (appliance.models / "by-url.gguf").read_bytes() == galleries.blobs["url"]
    chat_once(appliance, "by-definition")


def test_apply_by_url_with_name_and_hf_file(appliance: GalleryAppliance, galleries: Galleries) -> None:
    """LocalAI's `{"url": definition, "name", "files"}` form, the file from the HF mirror."""
    appliance.install(
        url=galleries.gallery.url("/defs/chatml.yaml"),
        name="hf-by-url",
        overrides={"parameters": {"model": "hf-by-url.gguf"}},
        files=[{"filename": "hf-by-url.gguf", "uri": galleries.hf.hf_uri, "sha256": galleries.hf.sha256}],
    )
    assert (appliance.models / "hf-by-url.gguf").read_bytes() == galleries.blobs["hf"]
    assert "hf-by-url" in appliance.model_ids()
    chat_once(appliance, "hf-by-url")


def test_unknown_job_is_404_and_unknown_gallery_model_fails(appliance: GalleryAppliance) -> None:
    assert_error(appliance.http.get("/models/jobs/00000000-0000-0000-0000-000000000000"), 404)
    assert_error(appliance.http.get("/models/jobs/00000000-0000-0000-0000-000000000000/events"), 404)
    assert_error(appliance.http.post("/models/jobs/00000000-0000-0000-0000-000000000000/cancel"), 404)
    response = appliance.http.post("/models/apply", json={"id": "test@no-such-model"})
    if response.status_code == 200:
        job = appliance.wait_job(response.json()["uuid"])
        assert job["error"] and "no-such-model" in f"{job['error']} {job['message']}", job
    else:
        assert_error(response, response.status_code, contains="no-such-model")
        assert response.status_code in (400, 404)
    assert_error(appliance.http.post("/models/apply", json={}), 400)
    assert_error(appliance.http.post("/models/apply", json={"id": "other@tiny"}), 404, contains="other")
    assert_error(appliance.http.post("/models/apply", json={"id": "nowhere-at-all"}), 404, contains="nowhere-at-all")


def test_events_stream_progress_until_done(appliance: GalleryAppliance, galleries: Galleries) -> None:
    gate = galleries.gallery.hold("/blobs/slow-chat.gguf", at=galleries.slow.size // 2)
    try:
        job_id = appliance.apply(id="test@slow", name="slow-events")
        gate.wait_reached()
        deadline = time.monotonic() + 30
        while float(appliance.job(job_id)["progress"]) == 0:  # the held half is written: progress shows
            assert time.monotonic() < deadline, appliance.job(job_id)
            time.sleep(0.05)
        seen: list[dict[str, object]] = []
        for event in appliance.events(job_id):
            seen.append(event)
            if len(seen) == 1:
                assert event["processed"] is False, event
                gate.release()
    finally:
        gate.release()
        galleries.gallery.set("/blobs/slow-chat.gguf", gate=None)
    assert len(seen) >= 2, seen
    progress = [float(event["progress"]) for event in seen]
    assert progress == sorted(progress), progress
    assert 0 < progress[0] < 100, seen[0]
    assert_succeeded(seen[-1])
    # A finished job's stream answers its final state and ends.
    final = list(appliance.events(job_id))
    assert final and final[-1]["processed"] is True


def test_jobs_list_holds_the_finished_jobs(appliance: GalleryAppliance) -> None:
    job_id = appliance.apply(id="test@tiny", name="tiny-again")
    appliance.wait_job(job_id)
    response = appliance.http.get("/models/jobs")
    assert response.status_code == 200, response.text
    jobs = response.json()
    assert job_id in jobs if isinstance(jobs, dict) else any(job.get("id", job.get("uuid")) == job_id for job in jobs)


def test_delete_removes_the_model_and_its_files(appliance: GalleryAppliance, galleries: Galleries) -> None:
    appliance.install(id="test@tiny", name="to-delete")
    assert "to-delete" in appliance.model_ids()
    response = appliance.http.post("/models/delete/to-delete")
    assert response.status_code == 200, response.text
    if "uuid" in response.json():
        appliance.wait_job(response.json()["uuid"])
    assert "to-delete" not in appliance.model_ids()
    assert not (appliance.models / "to-delete.yaml").exists()
    # The file shared with the model "tiny" stays: it is still in use.
    if (appliance.models / "tiny.yaml").exists():
        assert (appliance.models / "tiny-chat.gguf").exists()


def test_galleries_can_be_added_and_removed(appliance: GalleryAppliance, galleries: Galleries) -> None:
    extra = {"name": "extra", "url": galleries.gallery.url("/index.yaml")}
    response = appliance.http.post("/models/galleries", json=extra)
    assert response.status_code == 200, response.text
    assert extra in appliance.http.get("/models/galleries").json()
    assert any(item["gallery"]["name"] == "extra" for item in appliance.available())
    duplicate = appliance.http.post("/models/galleries", json=extra)
    assert duplicate.status_code in (400, 409), duplicate.text
    assert_error(duplicate, duplicate.status_code, contains="extra")
    response = appliance.http.request("DELETE", "/models/galleries", json={"name": "extra"})
    assert response.status_code == 200, response.text
    assert extra not in appliance.http.get("/models/galleries").json()
    assert_error(appliance.http.request("DELETE", "/models/galleries", json={"name": "extra"}), 404)


# --------------------------------------------------------------------------------------------------
# The last good index, preloads, the CLI: each with its own server.


def test_available_works_offline_after_the_gallery_is_gone(tmp_path: Path) -> None:
    blob = chat_blob(tmp_path, "offline")
    gallery = GalleryServer()
    served = gallery.add("/blobs/offline.gguf", blob)
    gallery.publish_index([gguf_entry("offline", "offline.gguf", gallery.url("/blobs/offline.gguf"), served.sha256)])
    galleries = [gallery.gallery("gone")]
    models, data = tmp_path / "models", tmp_path / "data"
    try:
        server = GalleryAppliance(tmp_path, models, data, galleries=galleries)
        try:
            assert [item["name"] for item in server.available()] == ["offline"]
            gallery.close()
            assert [item["name"] for item in server.available()] == ["offline"]  # the kept copy
        finally:
            server.stop()
    finally:
        gallery.close()
    # A fresh process, the gallery still gone: the copy kept on disk answers.
    again = GalleryAppliance(tmp_path, models, data, galleries=galleries)
    try:
        assert [item["name"] for item in again.available()] == ["offline"]
        job = again.wait_job(again.apply(id="gone@offline"))
        assert job["error"], job  # the index is known, the blob is not reachable
        assert leftovers(blob, models, name="offline.gguf") == []
    finally:
        again.stop()


def test_preload_installs_a_gallery_model_and_readyz_waits(tmp_path: Path) -> None:
    blob = chat_blob(tmp_path, "preload")
    with GalleryServer() as gallery:
        served = gallery.add("/blobs/preload.gguf", blob)
        gallery.publish_index([gguf_entry("pre", "preload.gguf", gallery.url("/blobs/preload.gguf"), served.sha256)])
        gate = gallery.hold("/blobs/preload.gguf", at=served.size // 3)
        server = GalleryAppliance(
            tmp_path, tmp_path / "models", tmp_path / "data", "--preload-models", "test@pre",
            galleries=[gallery.gallery("test")],
        )
        try:
            gate.wait_reached()
            ready = httpx.get(server.base + "/readyz", timeout=5)
            assert ready.status_code == 503, ready.text
            assert not (tmp_path / "models" / "preload.gguf").exists()
            gate.release()
            deadline = time.monotonic() + 60
            while httpx.get(server.base + "/readyz", timeout=5).status_code != 200:
                assert time.monotonic() < deadline, server.output()[-3000:]
                time.sleep(0.1)
            assert (tmp_path / "models" / "preload.gguf").read_bytes() == blob
            assert "pre" in server.model_ids()
            chat_once(server, "pre")
        finally:
            gate.release()
            server.stop()


def _cli(
    *args: str, cwd: Path, env: dict[str, str] | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    child_env = {k: v for k, v in os.environ.items() if not k.startswith(("APPLIANCE_", "LOCALAI_"))}
    child_env.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "appliance", "models", *args],
        cwd=cwd, env=child_env, capture_output=True, text=True, timeout=timeout,
    )


def test_cli_install_available_remove(tmp_path: Path) -> None:
    blob = chat_blob(tmp_path, "cli")
    models = tmp_path / "models"
    with GalleryServer() as gallery:
        served: Served = gallery.add("/blobs/cli.gguf", blob, rate=400_000)
        gallery.publish_index([gguf_entry("cli-tiny", "cli.gguf", gallery.url("/blobs/cli.gguf"), served.sha256)])
        common = ["--models-path", str(models), "--galleries", json.dumps([gallery.gallery("test")])]
        listed = _cli("available", *common, "--allow-private-downloads", cwd=tmp_path)
        assert listed.returncode == 0, listed.stderr
        assert "cli-tiny" in listed.stdout and "test" in listed.stdout

        done = _cli("install", "test@cli-tiny", *common, "--allow-private-downloads", cwd=tmp_path)
        assert done.returncode == 0, done.stdout + done.stderr
        assert sha256_of(models / "cli.gguf") == served.sha256
        shown = done.stdout + done.stderr
        assert "100" in shown and "%" in shown, shown  # a progress display that reached the end
        assert (models / "cli-tiny.yaml").exists()

        refused = _cli("install", "test@cli-tiny", "--models-path", str(tmp_path / "other"),
                       "--galleries", json.dumps([gallery.gallery("test")]), cwd=tmp_path)
        assert refused.returncode != 0
        assert "private" in (refused.stdout + refused.stderr).lower()
        assert not (tmp_path / "other" / "cli.gguf").exists()

        missing = _cli("install", "test@nope", *common, "--allow-private-downloads", cwd=tmp_path)
        assert missing.returncode != 0 and "nope" in missing.stdout + missing.stderr

        unverified = _cli("install", gallery.url("/blobs/cli.gguf"), *common, "--allow-private-downloads", cwd=tmp_path)
        assert unverified.returncode != 0 and "sha256" in unverified.stdout + unverified.stderr
        assert "Traceback" not in unverified.stderr

    with HFMirror() as hub:
        hf = hub.add_file("owner/cli-GGUF", "cli-hf.gguf", blob)
        by_url = _cli("install", hf.uri, "--name", "cli-hf", "--models-path", str(models), "--allow-private-downloads",
                      cwd=tmp_path, env={"HF_ENDPOINT": hub.endpoint})
        assert by_url.returncode == 0, by_url.stdout + by_url.stderr
        assert (models / "cli-hf.gguf").read_bytes() == blob
        assert any(r.path.endswith("/resolve/main/cli-hf.gguf") for r in hub.hub.requests)

    removed = _cli("remove", "cli-tiny", "--models-path", str(models), cwd=tmp_path)
    assert removed.returncode == 0, removed.stderr
    assert not (models / "cli.gguf").exists() and not (models / "cli-tiny.yaml").exists()
    again = _cli("remove", "cli-tiny", "--models-path", str(models), cwd=tmp_path)
    assert again.returncode != 0 and "cli-tiny" in again.stdout + again.stderr
    escape = _cli("remove", "../models", "--models-path", str(models), cwd=tmp_path)
    assert escape.returncode != 0
    assert models.exists()
