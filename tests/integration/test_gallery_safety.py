"""Every download safety rule of issue 14, each against a real appliance server and loopback galleries.

Traversal in names and filenames, private/loopback/link-local addresses (and redirects to them) without
`--allow-private-downloads`, sha256 mismatches, plain http without a sha256, the size cap, `file://`
outside the models path, redirects to other schemes, and the API key on every gallery route. A refusal
is a 400 in the error envelope or a job that ends with an error; either way nothing is written where it
must not be, and a refused address is never connected to (the loopback servers log every request).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from fixtures.gallery_client import GalleryAppliance, assert_failed, chat_blob, files_under, leftovers
from fixtures.gallery_server import GalleryServer, gguf_entry
from fixtures.hf_mirror import HFMirror
from support import assert_error

# Words a refusal for an address should use (never "connection refused": that would be a connect attempt).
PRIVATE_WORDS = ("private", "loopback", "link-local", "local address", "not allowed", "forbidden", "allow-private")
PUBLIC_IP = "93.184.216.34"
NOWHERE = "http://127.0.0.1:1/x"  # a global address; HTTP_PROXY sends its requests to the loopback gallery


def refused(server: GalleryAppliance, body: dict[str, Any], *words: str) -> str:
    """Apply `body`: either a 400 now, or a job that fails naming one of `words`. Returns the message."""
    return refused_response(server, server.http.post("/models/apply", json=body), *words)


def refused_response(server: GalleryAppliance, response: httpx.Response, *words: str) -> str:
    if response.status_code != 200:
        error = assert_error(response, 400)
        text = error["message"].lower()
        if words:
            assert any(word in text for word in words), (words, error)
        return text
    return assert_failed(server.wait_job(response.json()["uuid"]), *words)


@dataclass
class Setup:
    root: Path
    models: Path
    data: Path
    outside: Path
    gallery: GalleryServer
    blobs: dict[str, bytes]
    server: GalleryAppliance


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Setup]:
    """A permissive server (private addresses allowed, 1 MiB cap) on a gallery full of traps."""
    root = tmp_path_factory.mktemp("gallery-safety")
    models, data, outside = root / "models", root / "data", root / "outside"
    (models / "src").mkdir(parents=True)
    outside.mkdir()
    blobs = {
        name: chat_blob(root / "blobs", name, seed=i)
        for i, name in enumerate(("good", "traversal", "badsha", "nosha", "redirect", "inside", "secret"))
    }
    blobs["big"] = os.urandom(3 * 1024 * 1024)
    (models / "src" / "inside.gguf").write_bytes(blobs["inside"])
    (outside / "secret.gguf").write_bytes(blobs["secret"])
    (models / "src" / "link.gguf").symlink_to(outside / "secret.gguf")

    gallery = GalleryServer()
    served = {name: gallery.add(f"/blobs/{name}.gguf", blob) for name, blob in blobs.items()}
    gallery.add("/blobs/big-unsized.gguf", blobs["big"], length=False)
    url = lambda name: gallery.url(f"/blobs/{name}.gguf")  # noqa: E731
    sha = lambda name: served[name].sha256  # noqa: E731
    gallery.redirect_chain("/r/good", "/blobs/redirect.gguf", hops=2)
    gallery.redirect_chain("/r/endless", "/r/endless", hops=1)  # redirects to itself
    gallery.redirect("/r/to-file", f"file://{outside / 'secret.gguf'}")
    entries = [
        gguf_entry("good", "good.gguf", url("good"), sha("good")),
        gguf_entry("dotdot-file", "../escaped.gguf", url("traversal"), sha("traversal")),
        gguf_entry("deep-dotdot-file", "sub/../../escaped-deep.gguf", url("traversal"), sha("traversal")),
        gguf_entry("absolute-file", str(outside / "absolute.gguf"), url("traversal"), sha("traversal")),
        gguf_entry("../dotdot-name", "name-trap.gguf", url("traversal"), sha("traversal")),
        gguf_entry("bad-sha", "badsha.gguf", url("badsha"), "0" * 64),
        gguf_entry("no-sha", "nosha.gguf", url("nosha"), None),
        gguf_entry("too-big", "big.gguf", url("big"), sha("big")),
        gguf_entry("too-big-unsized", "big-unsized.gguf", gallery.url("/blobs/big-unsized.gguf"), sha("big")),
        gguf_entry("redirected", "redirect.gguf", gallery.url("/r/good"), sha("redirect")),
        gguf_entry("redirect-loop", "loop.gguf", gallery.url("/r/endless"), sha("good")),
        gguf_entry("redirect-to-file", "to-file.gguf", gallery.url("/r/to-file"), sha("secret")),
        gguf_entry("file-inside", "copied-inside.gguf", f"file://{models / 'src' / 'inside.gguf'}", sha("inside")),
        gguf_entry("file-outside", "copied-outside.gguf", f"file://{outside / 'secret.gguf'}", sha("secret")),
        gguf_entry("file-symlink", "copied-link.gguf", f"file://{models / 'src' / 'link.gguf'}", sha("secret")),
        gguf_entry("file-dotdot", "copied-dotdot.gguf", f"file://{models}/../outside/secret.gguf", sha("secret")),
    ]
    gallery.publish_index(entries)
    server = GalleryAppliance(
        root, models, data, "--max-download-size", str(1024 * 1024), galleries=[gallery.gallery("test")]
    )
    yield Setup(root, models, data, outside, gallery, blobs, server)
    server.stop()
    gallery.close()


def outside_files(setup: Setup) -> set[Path]:
    """Files in the test root outside the models and data paths, the planted ones excepted."""
    found = set(files_under(setup.root)) - set(files_under(setup.models, setup.data))
    return {path for path in found if "blobs" not in path.parts and path.name not in ("secret.gguf",)
            and not path.name.startswith("server-")}


def test_the_control_install_works(setup: Setup) -> None:
    """The permissive server installs a good entry: the refusals below are about the trap, not the setup."""
    setup.server.install(id="test@good")
    assert (setup.models / "good.gguf").read_bytes() == setup.blobs["good"]


@pytest.mark.parametrize("entry", ["dotdot-file", "deep-dotdot-file", "absolute-file", "../dotdot-name"])
def test_traversal_in_gallery_names_and_filenames_is_refused(setup: Setup, entry: str) -> None:
    before = outside_files(setup)
    offered = {item["name"] for item in setup.server.available()}
    response = setup.server.http.post("/models/apply", json={"id": f"test@{entry}"})
    if response.status_code == 404:  # acceptable only for an entry the server does not offer at all
        assert entry not in offered, offered
    else:
        refused_response(setup.server, response)
    assert outside_files(setup) == before
    assert not (setup.root / "escaped.gguf").exists() and not (setup.outside / "absolute.gguf").exists()
    assert not (setup.root / "dotdot-name.yaml").exists()
    assert leftovers(setup.blobs["traversal"], setup.models, setup.data) == []


@pytest.mark.parametrize(
    "body",
    [
        {"id": "test@good", "name": "../outside-name"},
        {"id": "test@good", "name": ".."},
        {"id": "test@good", "name": "x\\..\\..\\y"},
        {"id": "test@good", "files": [{"filename": "../extra.gguf", "uri": NOWHERE, "sha256": "0" * 64}]},
        {"id": "test@good", "files": [{"filename": "/tmp/extra.gguf", "uri": NOWHERE, "sha256": "0" * 64}]},
    ],
    ids=["dotdot-name", "dotdot", "backslash-name", "dotdot-extra-file", "absolute-extra-file"],
)
def test_traversal_in_the_request_is_a_400(setup: Setup, body: dict[str, Any]) -> None:
    before = outside_files(setup)
    error = assert_error(setup.server.http.post("/models/apply", json=body), 400)
    assert error["param"] is None or error["param"].split(".")[0].split("[")[0] in ("name", "files", "filename"), error
    assert outside_files(setup) == before


@pytest.mark.parametrize("name", ["/abs/name", "a/../../b"])
def test_a_name_with_slashes_stays_one_file_name(setup: Setup, name: str) -> None:
    """LocalAI maps "/" in a model name to "__": such a name is refused or becomes one plain file name."""
    before = outside_files(setup)
    response = setup.server.http.post("/models/apply", json={"id": "test@good", "name": name})
    if response.status_code == 200:
        setup.server.wait_job(response.json()["uuid"])
        assert (setup.models / (name.replace("/", "__") + ".yaml")).exists()
    else:
        assert_error(response, 400)
    assert outside_files(setup) == before
    assert not (setup.root / "b.yaml").exists() and not Path("/abs/name.yaml").exists()


def test_delete_with_traversal_is_refused(setup: Setup) -> None:
    (setup.root / "victim.yaml").write_text("name: victim\n")
    response = setup.server.http.post("/models/delete/..%2Fvictim")
    assert response.status_code in (400, 404), response.text
    assert (setup.root / "victim.yaml").exists()


def test_sha256_mismatch_fails_and_leaves_nothing(setup: Setup) -> None:
    text = refused(setup.server, {"id": "test@bad-sha"}, "sha256", "checksum", "hash", "digest")
    assert "0" * 64 in text or "sha" in text
    assert leftovers(setup.blobs["badsha"], setup.models, setup.data, name="badsha") == []
    assert "bad-sha" not in setup.server.model_ids()
    assert not (setup.models / "bad-sha.yaml").exists()


def test_plain_http_without_sha256_is_refused_before_downloading(setup: Setup) -> None:
    refused(setup.server, {"id": "test@no-sha"}, "sha256", "https")
    assert setup.gallery.requests_for("/blobs/nosha.gguf", "GET") == []
    assert leftovers(setup.blobs["nosha"], setup.models, setup.data, name="nosha") == []


@pytest.mark.parametrize("entry", ["too-big", "too-big-unsized"])
def test_the_size_cap_fails_the_job_and_leaves_nothing(setup: Setup, entry: str) -> None:
    """The 3 MiB file against a 1 MiB cap: announced by Content-Length, or only found while reading."""
    refused(setup.server, {"id": f"test@{entry}"}, "size", "large", "limit", "max-download-size")
    assert leftovers(setup.blobs["big"], setup.models, setup.data, name="big") == []
    assert entry not in setup.server.model_ids()


def test_redirects_are_followed_and_checked(setup: Setup) -> None:
    setup.server.install(id="test@redirected")
    assert (setup.models / "redirect.gguf").read_bytes() == setup.blobs["redirect"]
    assert [r.status for r in setup.gallery.requests_for("/r/good.hop1")][-1:] == [302]
    refused(setup.server, {"id": "test@redirect-loop"}, "redirect")
    assert len(setup.gallery.requests_for("/r/endless")) <= 25  # a bound, not forever
    refused(setup.server, {"id": "test@redirect-to-file"})
    assert not (setup.models / "to-file.gguf").exists()
    assert leftovers(setup.blobs["secret"], setup.models, setup.data) == []


def test_file_uris_only_inside_the_models_path(setup: Setup) -> None:
    setup.server.install(id="test@file-inside")
    assert (setup.models / "copied-inside.gguf").read_bytes() == setup.blobs["inside"]
    for entry in ("file-outside", "file-symlink", "file-dotdot"):
        refused(setup.server, {"id": f"test@{entry}"}, "models path", "outside", "file")
    assert leftovers(setup.blobs["secret"], setup.models, setup.data) == []  # (the planted symlink is not a file)
    for name in ("copied-outside.gguf", "copied-link.gguf", "copied-dotdot.gguf"):
        assert not (setup.models / name).exists()


# --------------------------------------------------------------------------------------------------
# Without --allow-private-downloads.


@dataclass
class Strict:
    server: GalleryAppliance
    gallery: GalleryServer  # also the HTTP proxy, and the Hub of `hub`
    hub: HFMirror
    blobs: dict[str, bytes]
    defs: Path

    def definition(self, name: str, uri: str, sha256: str) -> str:
        """A model definition file inside the models path (file:// is allowed there) naming one file."""
        path = self.defs / f"{name}.yaml"
        path.write_text(
            yaml.safe_dump(
                {
                    "name": name,
                    "config_file": f"backend: llama-cpp\nparameters:\n  model: {name}.gguf\n",
                    "files": [{"filename": f"{name}.gguf", "uri": uri, "sha256": sha256}],
                }
            )
        )
        return f"file://{path}"


@pytest.fixture(scope="module")
def strict(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Strict]:
    """A default server (private addresses refused) whose HTTP_PROXY is a loopback gallery: a URL on a
    public IP literal reaches that gallery, so redirects from a "public" host can be tested offline.
    (An index or definition over plain http:// is refused from a public host, so the definitions are
    files in the models path.)"""
    root = tmp_path_factory.mktemp("gallery-strict")
    models = root / "models"
    defs = models / ".defs"
    defs.mkdir(parents=True)
    blobs = {name: chat_blob(root / "blobs", name, seed=i)
             for i, name in enumerate(("public", "private-target", "hub-ok", "hub-cdn"))}
    hub = HFMirror()
    gallery = hub.hub
    hub.add_file("owner/safe", "hub-ok.gguf", blobs["hub-ok"])
    hub.add_file("owner/cdn", "hub-cdn.gguf", blobs["hub-cdn"], cdn=True)  # 302 to a loopback "CDN"
    gallery.add("/blobs/public.gguf", blobs["public"])
    gallery.add("/blobs/private-target.gguf", blobs["private-target"])
    gallery.add_yaml("/defs/x.yaml", {"name": "x", "config_file": "backend: llama-cpp\n", "files": []})
    gallery.redirect("/blobs/to-loopback.gguf", gallery.url("/blobs/private-target.gguf"))
    gallery.redirect("/blobs/to-link-local.gguf", "http://169.254.169.254/latest/meta-data/")
    gallery.redirect("/blobs/to-localhost.gguf", f"http://localhost:{gallery.port}/blobs/private-target.gguf")
    gallery.redirect("/blobs/to-ten.gguf", "http://10.0.0.1/blobs/private-target.gguf")
    env = {"HTTP_PROXY": gallery.base, "http_proxy": gallery.base, "HF_ENDPOINT": f"http://{PUBLIC_IP}"}
    server = GalleryAppliance(root, models, root / "data", allow_private=False, env=env)
    yield Strict(server, gallery, hub, blobs, defs)
    server.stop()
    hub.close()


def test_a_public_address_installs_without_the_flag(strict: Strict) -> None:
    """The control: through the proxy, a public address works with private downloads off."""
    sha = hashlib.sha256(strict.blobs["public"]).hexdigest()
    url = strict.definition("public", f"http://{PUBLIC_IP}/blobs/public.gguf", sha)
    strict.server.install(url=url)
    assert (strict.server.models / "public.gguf").read_bytes() == strict.blobs["public"]
    assert strict.gallery.requests_for("/blobs/public.gguf", "GET"), "the file did not come through HTTP_PROXY"


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:{port}/defs/x.yaml",
        "http://localhost:{port}/defs/x.yaml",
        "http://[::1]:{port}/defs/x.yaml",
        "http://0.0.0.0:{port}/defs/x.yaml",
        "http://2130706433:{port}/defs/x.yaml",
        "http://[::ffff:127.0.0.1]:{port}/defs/x.yaml",
        "http://10.1.2.3/defs/x.yaml",
        "http://192.168.1.1/defs/x.yaml",
        "http://100.64.0.1/defs/x.yaml",
        "http://169.254.169.254/latest/meta-data/",
        "http://[fe80::1]/defs/x.yaml",
    ],
)
def test_private_addresses_are_refused_without_the_flag(strict: Strict, url: str) -> None:
    strict.gallery.clear_log()
    refused(strict.server, {"url": url.format(port=strict.gallery.port)}, *PRIVATE_WORDS)
    assert strict.gallery.requests == [], [r.path for r in strict.gallery.requests]


def test_a_private_file_uri_in_a_definition_is_refused(strict: Strict) -> None:
    sha = hashlib.sha256(strict.blobs["private-target"]).hexdigest()
    url = strict.definition("direct", strict.gallery.url("/blobs/private-target.gguf"), sha)
    strict.gallery.clear_log()
    refused(strict.server, {"url": url}, *PRIVATE_WORDS)
    assert strict.gallery.requests == []
    assert not (strict.server.models / "direct.gguf").exists()


@pytest.mark.parametrize("path", ["to-loopback", "to-link-local", "to-localhost", "to-ten"])
def test_a_redirect_to_a_private_address_is_refused(strict: Strict, path: str) -> None:
    sha = hashlib.sha256(strict.blobs["private-target"]).hexdigest()
    url = strict.definition(path, f"http://{PUBLIC_IP}/blobs/{path}.gguf", sha)
    strict.gallery.clear_log()
    refused(strict.server, {"url": url}, *PRIVATE_WORDS)
    assert [r.path for r in strict.gallery.requests] == [f"/blobs/{path}.gguf"]  # the first hop, no second
    assert leftovers(strict.blobs["private-target"], strict.server.models, strict.server.data) == []
    assert not (strict.server.models / f"{path}.gguf").exists()


def test_a_public_hub_installs_without_the_flag(strict: Strict) -> None:
    """The control for the Hub: HF_ENDPOINT on a public address (through the proxy) works."""
    sha = hashlib.sha256(strict.blobs["hub-ok"]).hexdigest()
    strict.server.install(url=strict.definition("hub-ok", "huggingface://owner/safe/hub-ok.gguf", sha))
    assert (strict.server.models / "hub-ok.gguf").read_bytes() == strict.blobs["hub-ok"]


def test_a_hub_redirect_to_a_private_address_is_refused(strict: Strict) -> None:
    """The Hub answers the file with a 302 to its CDN; here the CDN is on loopback: never fetched."""
    sha = hashlib.sha256(strict.blobs["hub-cdn"]).hexdigest()
    url = strict.definition("hub-cdn", "huggingface://owner/cdn/hub-cdn.gguf", sha)
    strict.gallery.clear_log()
    strict.hub.cdn.clear_log()
    refused(strict.server, {"url": url}, *PRIVATE_WORDS)
    fetched = [r.path for r in strict.gallery.requests if r.path.startswith("/repos/")]
    assert fetched == [] and strict.hub.cdn.requests == [], (fetched, strict.hub.cdn.requests)
    assert not (strict.server.models / "hub-cdn.gguf").exists()


# --------------------------------------------------------------------------------------------------
# The API key.

GALLERY_ROUTES = [
    ("GET", "/models/available", None),
    ("GET", "/models/galleries", None),
    ("POST", "/models/galleries", {"name": "x", "url": "https://example.invalid/index.yaml"}),
    ("DELETE", "/models/galleries", {"name": "x"}),
    ("POST", "/models/apply", {"id": "test@good"}),
    ("GET", "/models/jobs", None),
    ("GET", "/models/jobs/00000000-0000-0000-0000-000000000000", None),
    ("GET", "/models/jobs/00000000-0000-0000-0000-000000000000/events", None),
    ("POST", "/models/jobs/00000000-0000-0000-0000-000000000000/cancel", None),
    ("POST", "/models/delete/good", None),
]


def test_gallery_routes_need_the_api_key(tmp_path: Path) -> None:
    with GalleryServer() as gallery:
        gallery.publish_index([])
        server = GalleryAppliance(
            tmp_path, tmp_path / "models", tmp_path / "data", galleries=[gallery.gallery("test")], api_key="sesame"
        )
        try:
            for method, path, body in GALLERY_ROUTES:
                for headers in ({}, {"Authorization": "Bearer wrong"}, {"x-api-key": "wrong"}):
                    response = httpx.request(method, server.base + path, json=body, headers=headers, timeout=10)
                    assert_error(response, 401)
            for method, path in (("GET", "/models/available"), ("GET", "/models/galleries"), ("GET", "/models/jobs")):
                for headers in ({"Authorization": "Bearer sesame"}, {"x-api-key": "sesame"}):
                    response = httpx.request(method, server.base + path, headers=headers, timeout=10)
                    assert response.status_code == 200, (path, response.text)
        finally:
            server.stop()
