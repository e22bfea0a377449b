"""The downloader against a real loopback HTTP server: checksum, size cap, temporary name, resume,
redirects vetted hop by hop, cancel, file:// confinement, one writer per partial."""

from __future__ import annotations

import hashlib
import os
import threading
from pathlib import Path

import pytest

from appliance.gallery.errors import (
    DownloadBusy,
    DownloadCancelled,
    DownloadFailed,
    DownloadRefused,
    DownloadTooLarge,
    InvalidSource,
)
from appliance.gallery.fetch import CancelToken, Fetcher, FetchLimits
from appliance.gallery.partial import PartialFile
from appliance.gallery.paths import etag_path, partial_path
from appliance.gallery.policy import AddressPolicy
from appliance.gallery.uris import parse_uri
from fixtures.gallery_server import GalleryServer

DATA = os.urandom(600_000)
SHA = hashlib.sha256(DATA).hexdigest()


def fetcher(models: Path, *, private: bool = True, **limits: int) -> Fetcher:
    return Fetcher(models, AddressPolicy(allow_private=private), FetchLimits(**limits))


def leftovers(models: Path) -> list[str]:
    return sorted(p.name for p in models.rglob("*") if p.name.startswith("."))


def test_download_verifies_and_renames_into_place(server: GalleryServer, models: Path) -> None:
    server.add("/tiny.gguf", DATA)
    seen: list[tuple[int, int | None]] = []
    target = models / "sub" / "tiny.gguf"
    assert fetcher(models).download(parse_uri(server.url("/tiny.gguf")), target, sha256=SHA,
                                    progress=lambda d, t: seen.append((d, t)))
    assert target.read_bytes() == DATA
    assert leftovers(models) == []
    assert seen[-1] == (len(DATA), len(DATA)) and len(seen) > 1
    # A verified copy is not fetched again.
    server.clear_log()
    assert not fetcher(models).download(parse_uri(server.url("/tiny.gguf")), target, sha256=SHA)
    assert server.requests_for("/tiny.gguf") == []


def test_sha256_mismatch_fails_and_leaves_nothing(server: GalleryServer, models: Path) -> None:
    server.add("/tiny.gguf", DATA)
    target = models / "tiny.gguf"
    with pytest.raises(DownloadFailed, match="sha256 mismatch"):
        fetcher(models).download(parse_uri(server.url("/tiny.gguf")), target, sha256="0" * 64)
    assert not target.exists() and leftovers(models) == []


def test_a_file_over_the_cap_fails_and_leaves_nothing(server: GalleryServer, models: Path) -> None:
    server.add("/big.gguf", DATA)
    target = models / "big.gguf"
    with pytest.raises(DownloadTooLarge, match="max-download-size"):
        fetcher(models, max_download_size=100_000).download(parse_uri(server.url("/big.gguf")), target, sha256=SHA)
    assert not target.exists() and leftovers(models) == []


def test_the_cap_holds_when_the_server_declares_no_size(server: GalleryServer, models: Path) -> None:
    """Without Content-Length (a chunked reply) the bytes themselves are counted."""
    server.add("/big.gguf", DATA, headers={"Transfer-Encoding": "chunked"})
    target = models / "big.gguf"
    with pytest.raises(DownloadFailed):
        fetcher(models, max_download_size=100_000).download(parse_uri(server.url("/big.gguf")), target, sha256=SHA)
    assert not target.exists() and leftovers(models) == []


def test_an_interrupted_download_resumes_with_range_and_if_range(server: GalleryServer, models: Path) -> None:
    served = server.add("/tiny.gguf", DATA, cut_at=250_000)
    target = models / "tiny.gguf"
    with pytest.raises(DownloadFailed, match="resume"):
        fetcher(models).download(parse_uri(server.url("/tiny.gguf")), target, sha256=SHA)
    assert not target.exists()
    kept = partial_path(target).stat().st_size
    assert 0 < kept < len(DATA)
    assert etag_path(target).read_text().strip() == served.etag
    server.set("/tiny.gguf", cut_at=None)
    server.clear_log()
    fetcher(models).download(parse_uri(server.url("/tiny.gguf")), target, sha256=SHA)
    assert target.read_bytes() == DATA and leftovers(models) == []
    (request,) = server.requests_for("/tiny.gguf", "GET")
    assert request.range_start == kept and request.headers["if-range"] == served.etag
    assert request.status == 206 and request.sent == len(DATA) - kept


def test_a_changed_file_on_the_server_starts_over(server: GalleryServer, models: Path) -> None:
    target = models / "tiny.gguf"
    partial_path(target).write_bytes(b"stale bytes of an older file")
    etag_path(target).write_text('"old-etag"\n')
    server.add("/tiny.gguf", DATA)
    fetcher(models).download(parse_uri(server.url("/tiny.gguf")), target, sha256=SHA)
    assert target.read_bytes() == DATA
    (request,) = server.requests_for("/tiny.gguf", "GET")
    assert request.range_start == len(b"stale bytes of an older file") and request.status == 200


def test_an_unsatisfiable_range_starts_over(server: GalleryServer, models: Path) -> None:
    target = models / "tiny.gguf"
    partial_path(target).write_bytes(os.urandom(len(DATA) + 10))  # longer than the file
    server.add("/tiny.gguf", DATA)
    fetcher(models).download(parse_uri(server.url("/tiny.gguf")), target, sha256=SHA)
    assert target.read_bytes() == DATA
    assert [r.status for r in server.requests_for("/tiny.gguf", "GET")] == [416, 200]


def test_a_partial_without_validator_resumes_only_under_a_sha256(server: GalleryServer, models: Path) -> None:
    """Without a validator nothing ties the bytes on disk to the file: resume, and let the sha256 judge."""
    target = models / "tiny.gguf"
    partial_path(target).write_bytes(DATA[:1000])
    server.add("/tiny.gguf", DATA)
    fetcher(models).download(parse_uri(server.url("/tiny.gguf")), target, sha256=SHA)
    assert target.read_bytes() == DATA
    assert [r.range_start for r in server.requests_for("/tiny.gguf", "GET")] == [1000]
    # Wrong bytes on disk are caught by the digest, removed, and the next try starts clean.
    (models / "tiny.gguf").unlink()
    partial_path(target).write_bytes(b"garbage!" * 125)
    with pytest.raises(DownloadFailed, match="sha256 mismatch"):
        fetcher(models).download(parse_uri(server.url("/tiny.gguf")), target, sha256=SHA)
    assert leftovers(models) == []
    fetcher(models).download(parse_uri(server.url("/tiny.gguf")), target, sha256=SHA)
    assert target.read_bytes() == DATA


def test_redirects_are_followed_a_bounded_number_of_times(server: GalleryServer, models: Path) -> None:
    server.add("/blob", DATA)
    first = server.redirect_chain("/start", "/blob", hops=3)
    fetcher(models).download(parse_uri(first), models / "a.gguf", sha256=SHA)
    assert (models / "a.gguf").read_bytes() == DATA
    loop = server.redirect_chain("/loop", "/blob", hops=12)
    with pytest.raises(DownloadFailed, match="redirects"):
        fetcher(models).download(parse_uri(loop), models / "b.gguf", sha256=SHA)
    assert not (models / "b.gguf").exists() and leftovers(models) == []


def test_loopback_is_refused_without_the_setting(server: GalleryServer, models: Path) -> None:
    server.add("/tiny.gguf", DATA)
    with pytest.raises(DownloadRefused, match="allow-private-downloads"):
        fetcher(models, private=False).download(parse_uri(server.url("/tiny.gguf")), models / "t.gguf", sha256=SHA)
    assert server.requests == [] and leftovers(models) == []


def test_a_redirect_to_a_private_address_is_refused(
    server: GalleryServer, models: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A public URL (reached through a proxy that lands on the loopback server) redirecting to
    127.0.0.1: the first hop passes the policy, the redirect does not."""
    server.add("/blob", DATA)
    server.redirect("/public", server.url("/blob"))
    monkeypatch.setenv("HTTP_PROXY", server.base)
    monkeypatch.setenv("http_proxy", server.base)
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    with pytest.raises(DownloadRefused, match="127.0.0.1"):
        fetcher(models, private=False).download(parse_uri("http://93.184.216.34/public"), models / "t.gguf", sha256=SHA)
    assert [r.path for r in server.requests] == ["/public"]  # the private hop was never requested
    assert not (models / "t.gguf").exists() and leftovers(models) == []
    # The same public URL without the redirect is fine: the refusal was the redirect's.
    server.add("/public", DATA)
    fetcher(models, private=False).download(parse_uri("http://93.184.216.34/public"), models / "t.gguf", sha256=SHA)
    assert (models / "t.gguf").read_bytes() == DATA


def test_cancel_stops_between_chunks_and_removes_the_partial(server: GalleryServer, models: Path) -> None:
    server.add("/slow.gguf", DATA, rate=400_000)
    token = CancelToken()

    def progress(done: int, total: int | None) -> None:
        if done > 100_000:
            token.cancel()

    with pytest.raises(DownloadCancelled):
        fetcher(models, chunk_size=16_384).download(
            parse_uri(server.url("/slow.gguf")), models / "s.gguf", sha256=SHA, progress=progress, cancel=token
        )
    assert not (models / "s.gguf").exists() and leftovers(models) == []


def test_http_errors_fail_with_the_status(server: GalleryServer, models: Path) -> None:
    with pytest.raises(DownloadFailed, match="HTTP 404"):
        fetcher(models).download(parse_uri(server.url("/missing")), models / "m.gguf", sha256=SHA)
    assert leftovers(models) == []


def test_plain_http_without_sha256_is_refused_before_any_request(server: GalleryServer, models: Path) -> None:
    server.add("/tiny.gguf", DATA)
    with pytest.raises(InvalidSource, match="sha256"):
        fetcher(models).download(parse_uri(server.url("/tiny.gguf")), models / "t.gguf")
    assert server.requests == []


def test_documents_over_http_only_from_lan_hosts(server: GalleryServer, models: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    server.add("/index.yaml", "- name: x\n")
    assert fetcher(models).fetch_document(parse_uri(server.url("/index.yaml"))) == b"- name: x\n"
    monkeypatch.setenv("HTTP_PROXY", server.base)
    monkeypatch.setenv("http_proxy", server.base)
    with pytest.raises(DownloadRefused, match="https"):
        fetcher(models).fetch_document(parse_uri("http://93.184.216.34/index.yaml"))


def test_documents_have_a_size_limit(server: GalleryServer, models: Path) -> None:
    server.add("/index.yaml", b"#" * 5000)
    with pytest.raises(DownloadFailed, match="too large"):
        fetcher(models, max_document_size=1000).fetch_document(parse_uri(server.url("/index.yaml")))


def test_file_sources_only_inside_the_models_path(models: Path, tmp_path: Path) -> None:
    (models / "src").mkdir()
    (models / "src" / "a.gguf").write_bytes(DATA)
    (tmp_path / "secret").write_bytes(b"secret")
    fetcher(models).download(parse_uri(f"file://{models}/src/a.gguf"), models / "copy.gguf", sha256=SHA)
    assert (models / "copy.gguf").read_bytes() == DATA
    with pytest.raises(InvalidSource, match="outside the models path"):
        fetcher(models).download(parse_uri(f"file://{tmp_path}/secret"), models / "stolen", sha256=None)
    os.symlink(tmp_path / "secret", models / "link")
    with pytest.raises(InvalidSource, match="outside the models path"):
        fetcher(models).fetch_document(parse_uri(f"file://{models}/link"))
    assert not (models / "stolen").exists()


def test_one_writer_per_partial(models: Path) -> None:
    target = models / "t.gguf"
    started, release = threading.Event(), threading.Event()

    def hold() -> None:
        with PartialFile(target) as part:
            part.write(b"x")
            started.set()
            release.wait(10)

    thread = threading.Thread(target=hold)
    thread.start()
    try:
        assert started.wait(10)
        with pytest.raises(DownloadBusy):
            PartialFile(target).__enter__()
    finally:
        release.set()
        thread.join(10)


def test_a_link_planted_as_the_partial_is_not_followed(server: GalleryServer, models: Path, tmp_path: Path) -> None:
    outside = tmp_path / "outside.bin"
    outside.write_bytes(b"untouched")
    target = models / "t.gguf"
    os.symlink(outside, partial_path(target))
    server.add("/t.gguf", DATA)
    with pytest.raises(OSError):
        fetcher(models).download(parse_uri(server.url("/t.gguf")), target, sha256=SHA)
    assert outside.read_bytes() == b"untouched" and not target.exists()


def test_cancel_breaks_a_read_from_a_silent_server(server: GalleryServer, models: Path) -> None:
    """A server that stops sending mid-file: the cancel ends the transfer at once, not at the read timeout."""
    import time

    server.add("/held.gguf", DATA)
    gate = server.hold("/held.gguf", at=100_000)
    token = CancelToken()
    outcome: list[BaseException] = []

    def run() -> None:
        try:
            fetcher(models).download(parse_uri(server.url("/held.gguf")), models / "h.gguf", sha256=SHA, cancel=token)
        except BaseException as exc:  # noqa: BLE001 - inspected below
            outcome.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    try:
        gate.wait_reached()
        time.sleep(0.2)
        started = time.monotonic()
        token.cancel()
        thread.join(10)
        assert not thread.is_alive() and time.monotonic() - started < 5
        assert len(outcome) == 1 and isinstance(outcome[0], DownloadCancelled)
        assert not (models / "h.gguf").exists() and leftovers(models) == []
    finally:
        gate.release()
        thread.join(10)
