"""Interrupted downloads: never a half file under a model's name, resume with `Range` after `kill -9` or a
dropped connection, a changed upstream file never spliced, cancel.

The loopback gallery holds a model file after N bytes until the test lets it go, so "mid-download" is an
exact point rather than a race; its request log shows every `Range: bytes=N-` the appliance sent.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from fixtures.gallery_client import GalleryAppliance, assert_succeeded, chat_blob, files_under, leftovers, sha256_of
from fixtures.gallery_server import GalleryServer, gguf_entry

BLOB = "/blobs/resume.gguf"


class Rig:
    """A gallery with one model file, and the folders an appliance runs on (kept across restarts)."""

    def __init__(self, root: Path) -> None:
        self.root, self.models, self.data = root, root / "models", root / "data"
        self.blob = chat_blob(root / "src", "resume-model", seed=7, large=True)
        self.hold_at = len(self.blob) // 2
        self.gallery = GalleryServer()
        self.publish(self.blob)
        self.servers: list[GalleryAppliance] = []

    def publish(self, blob: bytes) -> None:
        served = self.gallery.add(BLOB, blob)
        self.blob = blob
        self.gallery.publish_index([gguf_entry("resumable", "resume.gguf", self.gallery.url(BLOB), served.sha256)])

    def start(self) -> GalleryAppliance:
        server = GalleryAppliance(self.root, self.models, self.data, galleries=[self.gallery.gallery("test")])
        self.servers.append(server)
        return server

    def partials(self) -> dict[Path, int]:
        """Files holding the start of the blob anywhere in the models and data paths, with their sizes."""
        sizes = files_under(self.models, self.data)
        return {path: sizes[path] for path in leftovers(self.blob, self.models, self.data)}

    def wait_written(self, server: GalleryAppliance, job_id: str, at_least: int, timeout: float = 30) -> None:
        """Until a partial of `at_least` bytes is on disk and the job reports some progress."""
        deadline = time.monotonic() + timeout
        while True:
            job = server.job(job_id)
            if any(size >= at_least for size in self.partials().values()):
                return
            assert time.monotonic() < deadline, (job, self.partials())
            time.sleep(0.05)

    def close(self) -> None:
        for server in self.servers:  # whatever a failed test left running
            server.stop()
        self.gallery.close()


@pytest.fixture
def rig(tmp_path: Path) -> Iterator[Rig]:
    made = Rig(tmp_path)
    yield made
    made.close()


def test_no_half_file_under_the_name_while_downloading(rig: Rig) -> None:
    gate = rig.gallery.hold(BLOB, at=rig.hold_at)
    server = rig.start()
    try:
        job_id = server.apply(id="test@resumable")
        gate.wait_reached()
        rig.wait_written(server, job_id, 1)
        for _ in range(10):  # the whole time it is held: nothing under the name, not offered, not done
            assert not (rig.models / "resume.gguf").exists()
            assert "resumable" not in server.model_ids()
            job = server.job(job_id)
            assert job["processed"] is False and 0 <= float(job["progress"]) < 100, job
            time.sleep(0.05)
        gate.release()
        assert_succeeded(server.wait_job(job_id))
        assert sha256_of(rig.models / "resume.gguf") == rig.gallery.file(BLOB).sha256
        assert "resumable" in server.model_ids()
        assert list(rig.partials()) == [rig.models / "resume.gguf"]  # no temporary left behind
    finally:
        gate.release()
        server.stop()


def test_kill9_mid_download_then_apply_again_resumes_with_range(rig: Rig) -> None:
    held_at = rig.hold_at
    gate = rig.gallery.hold(BLOB, at=held_at)
    server = rig.start()
    job_id = server.apply(id="test@resumable")
    gate.wait_reached()
    rig.wait_written(server, job_id, held_at // 2)
    server.kill()
    gate.release()
    rig.gallery.set(BLOB, gate=None)

    assert not (rig.models / "resume.gguf").exists()
    kept = rig.partials()
    assert kept, "no partial download kept on disk to resume from"
    assert all(0 < size <= held_at for size in kept.values()), kept

    again = rig.start()
    try:
        assert not (rig.models / "resume.gguf").exists()  # a restart promotes nothing
        assert "resumable" not in again.model_ids()
        rig.gallery.clear_log()
        again.install(id="test@resumable")
        starts = rig.gallery.range_starts(BLOB)
        assert starts and starts[0] > 0, [(r.method, r.headers.get("range"), r.status) for r in rig.gallery.requests]
        assert starts[0] == max(kept.values()), (starts, kept)
        ranged = [r for r in rig.gallery.requests_for(BLOB, "GET") if r.range_start is not None]
        assert ranged[0].status == 206 and ranged[0].sent == len(rig.blob) - starts[0]
        assert rig.gallery.bytes_served(BLOB) < len(rig.blob)  # the first half was not fetched again
        assert sha256_of(rig.models / "resume.gguf") == rig.gallery.file(BLOB).sha256
        assert list(rig.partials()) == [rig.models / "resume.gguf"]
        reply = again.sdk.chat.completions.create(
            model="resumable", messages=[{"role": "user", "content": "hello"}], max_tokens=4, temperature=0
        )
        assert reply.choices[0].finish_reason in ("stop", "length")
    finally:
        again.stop()


def test_a_changed_upstream_file_is_not_spliced_onto_a_partial(rig: Rig) -> None:
    old = rig.blob
    gate = rig.gallery.hold(BLOB, at=rig.hold_at)
    server = rig.start()
    job_id = server.apply(id="test@resumable")
    gate.wait_reached()
    rig.wait_written(server, job_id, rig.hold_at // 2)
    server.kill()
    gate.release()
    new = chat_blob(rig.root / "src", "resume-model", seed=8, large=True)
    assert new[:4096] == old[:4096] and new != old  # same header, other weights: a splice would look plausible
    rig.publish(new)  # new bytes, new ETag, new sha256 in the index

    again = rig.start()
    try:
        rig.gallery.clear_log()
        again.install(id="test@resumable")
        # One apply, no failed attempt: a resume conditional on the old validator (If-Range) gets the whole
        # new file; an unconditional one would splice and fail the sha256.
        assert (rig.models / "resume.gguf").read_bytes() == new
    finally:
        again.stop()


def test_a_dropped_connection_resumes_with_range(rig: Rig) -> None:
    cut = rig.hold_at
    rig.gallery.set(BLOB, cut_at=cut)
    server = rig.start()
    try:
        job = server.wait_job(server.apply(id="test@resumable"))
        if job["error"]:  # no retry inside the job: applying again must resume
            job = server.wait_job(server.apply(id="test@resumable"))
        assert_succeeded(job)
        starts = rig.gallery.range_starts(BLOB)
        log = [(r.headers.get("range"), r.status, r.sent) for r in rig.gallery.requests]
        assert starts and 0 < starts[0] <= cut, log
        assert sha256_of(rig.models / "resume.gguf") == rig.gallery.file(BLOB).sha256
    finally:
        server.stop()


def test_cancel_ends_the_job_and_leaves_no_file_under_the_name(rig: Rig) -> None:
    gate = rig.gallery.hold(BLOB, at=rig.hold_at)
    server = rig.start()
    try:
        job_id = server.apply(id="test@resumable")
        gate.wait_reached()
        rig.wait_written(server, job_id, 1)
        response = server.http.post(f"/models/jobs/{job_id}/cancel")
        assert response.status_code in (200, 202), response.text
        job = server.wait_job(job_id, timeout=15)
        assert job.get("cancelled") is True or "cancel" in str(job["message"]).lower(), job
        assert job["progress"] != 100 or job.get("cancelled"), job
        assert not (rig.models / "resume.gguf").exists()
        assert "resumable" not in server.model_ids()
        assert rig.partials() == {}  # ENGINE.md: a cancelled download's partial is removed
        again = server.http.post(f"/models/jobs/{job_id}/cancel")
        assert again.status_code in (200, 202, 409), again.text  # cancelling a finished job is no crash
        gate.release()
        rig.gallery.set(BLOB, gate=None)
        rig.gallery.clear_log()
        server.install(id="test@resumable")
        assert sha256_of(rig.models / "resume.gguf") == rig.gallery.file(BLOB).sha256
    finally:
        gate.release()
        server.stop()
