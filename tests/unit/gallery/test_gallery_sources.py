"""Source URIs, name and path safety, and the address policy: pure checks, no network."""

from __future__ import annotations

import ipaddress
import os
from pathlib import Path

import pytest

from appliance.gallery.errors import DownloadRefused, InvalidSource, UnsafeName
from appliance.gallery.fetch import normalize_sha256, require_integrity
from appliance.gallery.paths import check_filename, etag_path, install_name, partial_path, resolve_inside
from appliance.gallery.policy import AddressPolicy, is_public
from appliance.gallery.uris import looks_like_uri, parse_uri, resolve_relative

# ---------------------------------------------------------------------------------------- URIs


def test_https_and_http_urls() -> None:
    source = parse_uri("https://example.com/models/tiny.gguf?x=1")
    assert (source.kind, source.url, source.filename) == ("http", "https://example.com/models/tiny.gguf?x=1", "tiny.gguf")
    assert not source.is_plain_http
    assert parse_uri("http://10.0.0.5:8000/a%20b.gguf").is_plain_http
    assert parse_uri("http://10.0.0.5:8000/a%20b.gguf").filename == "a b.gguf"


@pytest.mark.parametrize(
    ("text", "repo", "path", "revision"),
    [
        ("huggingface://TheBloke/Model-GGUF/model.Q4_K_M.gguf", "TheBloke/Model-GGUF", "model.Q4_K_M.gguf", "main"),
        ("hf://owner/repo/sub/dir/file.bin", "owner/repo", "sub/dir/file.bin", "main"),
        ("huggingface://owner/repo/file.gguf@v1.0", "owner/repo", "file.gguf", "v1.0"),
        ("huggingface://owner/repo@dev/file.gguf", "owner/repo", "file.gguf", "dev"),
    ],
)
def test_hugging_face_sources(text: str, repo: str, path: str, revision: str) -> None:
    source = parse_uri(text)
    assert (source.kind, source.repo_id, source.repo_path, source.revision) == ("hf", repo, path, revision)
    assert source.filename == path.rsplit("/", 1)[-1]


@pytest.mark.parametrize(
    ("text", "url"),
    [
        ("github:mudler/LocalAI/gallery/index.yaml@master", "https://raw.githubusercontent.com/mudler/LocalAI/master/gallery/index.yaml"),
        ("github://owner/repo/a/b.yaml", "https://raw.githubusercontent.com/owner/repo/main/a/b.yaml"),
    ],
)
def test_github_sources_become_raw_urls(text: str, url: str) -> None:
    source = parse_uri(text)
    assert (source.kind, source.url) == ("http", url)


def test_file_sources_are_absolute_paths() -> None:
    assert parse_uri("file:///models/x.gguf").url == "/models/x.gguf"
    with pytest.raises(InvalidSource):
        parse_uri("file://relative/x.gguf")


@pytest.mark.parametrize(
    "text",
    [
        "",
        "ftp://example.com/x",
        "ollama://llama3",
        "example.com/x.gguf",
        "https://user:pass@example.com/x",
        "https:///nohost",
        "huggingface://owner/repo",  # no file
        "huggingface://owner/../file",
        "github:owner/repo",  # no path
        "github:owner/repo/../../x@main",
        "https://example.com/\nx",
        "https://example.com/" + "a" * 5000,
    ],
)
def test_bad_sources_are_refused(text: str) -> None:
    with pytest.raises(InvalidSource):
        parse_uri(text)


def test_looks_like_uri() -> None:
    assert looks_like_uri("hf://a/b/c") and looks_like_uri("HTTPS://x") and looks_like_uri("github:a/b/c")
    assert not looks_like_uri("localai@phi-2") and not looks_like_uri("phi-2")


@pytest.mark.parametrize(
    ("base", "reference", "expected"),
    [
        ("http://127.0.0.1:9/g/index.yaml", "defs/tiny.yaml", "http://127.0.0.1:9/g/defs/tiny.yaml"),
        ("github:mudler/LocalAI/gallery/index.yaml@master", "virtual.yaml", "github:mudler/LocalAI/gallery/virtual.yaml@master"),
        ("file:///m/gallery/index.yaml", "base.yaml", "file:///m/gallery/base.yaml"),
    ],
)
def test_relative_entry_urls_resolve_against_the_index(base: str, reference: str, expected: str) -> None:
    assert resolve_relative(base, reference) == expected


@pytest.mark.parametrize("reference", ["../secret.yaml", "a/../../b.yaml", "/etc/passwd", ""])
def test_relative_entry_urls_cannot_leave_the_gallery(reference: str) -> None:
    with pytest.raises(InvalidSource):
        resolve_relative("http://h/g/index.yaml", reference)


def test_plain_http_files_need_a_sha256() -> None:
    digest = "A" * 64
    assert normalize_sha256(digest) == "a" * 64
    assert normalize_sha256("sha256:" + "b" * 64) == "b" * 64
    assert normalize_sha256("") is None
    with pytest.raises(InvalidSource):
        normalize_sha256("abc")
    require_integrity(parse_uri("http://10.0.0.1/x.gguf"), "a" * 64)
    require_integrity(parse_uri("https://example.com/x.gguf"), None)
    with pytest.raises(InvalidSource, match="sha256"):
        require_integrity(parse_uri("http://10.0.0.1/x.gguf"), None)


# ---------------------------------------------------------------------------------------- names and paths


def test_model_names_follow_localai() -> None:
    assert install_name("phi-2") == "phi-2"
    assert install_name("org/model") == "org__model"  # LocalAI stores a '/' in a name as '__'


@pytest.mark.parametrize(
    "name", ["", "  ", "..", ".", "../x", "a/../../b", "/etc/passwd", ".hidden", "a\x00b", "a\\b", "C:evil", "x" * 201]
)
def test_unsafe_model_names_are_refused(name: str) -> None:
    with pytest.raises(UnsafeName):
        install_name(name)


def test_file_names_may_have_folders() -> None:
    assert check_filename("whisper/model.bin") == "whisper/model.bin"
    assert check_filename("a\\b.gguf") == "a/b.gguf"


@pytest.mark.parametrize(
    "filename", ["../x.gguf", "a/../../x", "/abs.gguf", "\\\\server\\share", "a//b", ".x.partial", "d/.git/config", "x\n.gguf", "C:\\x"]
)
def test_unsafe_file_names_are_refused(filename: str) -> None:
    with pytest.raises(UnsafeName):
        check_filename(filename)


def test_a_symlinked_folder_cannot_carry_a_file_outside(tmp_path: Path) -> None:
    models, outside = tmp_path / "models", tmp_path / "outside"
    models.mkdir()
    outside.mkdir()
    os.symlink(outside, models / "escape")
    (models / "inside").mkdir()
    assert resolve_inside(models, "inside/x.gguf") == models.resolve() / "inside" / "x.gguf"
    with pytest.raises(UnsafeName, match="outside"):
        resolve_inside(models, "escape/x.gguf")


def test_partial_names_are_hidden_beside_the_target(tmp_path: Path) -> None:
    target = tmp_path / "sub" / "tiny.gguf"
    assert partial_path(target) == tmp_path / "sub" / ".tiny.gguf.partial"
    assert etag_path(target) == tmp_path / "sub" / ".tiny.gguf.partial.etag"


# ---------------------------------------------------------------------------------------- address policy


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1", "10.1.2.3", "172.16.0.1", "192.168.1.1", "169.254.169.254", "100.64.0.1", "0.0.0.0",
        "224.0.0.1", "255.255.255.255", "192.0.2.1", "::1", "fe80::1", "fc00::1", "::", "ff02::1",
        "::ffff:127.0.0.1", "::ffff:169.254.169.254", "64:ff9b::7f00:1", "2002:7f00:1::1", "2002:a9fe:a9fe::1",
    ],
)
def test_non_public_addresses(address: str) -> None:
    assert not is_public(ipaddress.ip_address(address))


@pytest.mark.parametrize("address", ["93.184.216.34", "8.8.8.8", "2606:4700:4700::1111", "::ffff:8.8.8.8"])
def test_public_addresses(address: str) -> None:
    assert is_public(ipaddress.ip_address(address))


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "[::1]", "169.254.169.254", "10.0.0.1"])
def test_private_hosts_are_refused_by_default(host: str) -> None:
    with pytest.raises(DownloadRefused, match="--allow-private-downloads"):
        AddressPolicy().vet(host, 80)


def test_private_hosts_are_allowed_with_the_setting() -> None:
    addresses = AddressPolicy(allow_private=True).vet("localhost", 80)
    assert addresses and all(not is_public(a) for a in addresses)


def test_public_literals_pass() -> None:
    assert AddressPolicy().vet("93.184.216.34", 443) == [ipaddress.ip_address("93.184.216.34")]
