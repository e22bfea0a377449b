"""Gallery indexes (parsing, ids, the offline copy) and installs (plans, definitions, configs, removal)
against a real loopback server."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest
import yaml

from appliance.gallery.errors import (
    GalleryModelNotFound,
    GalleryNotFound,
    GalleryUnavailable,
    InvalidDefinition,
    InvalidSource,
    ModelNotInstalled,
    UnsafeName,
)
from appliance.gallery.fetch import CancelToken, Fetcher
from appliance.gallery.index import FileEntry, Gallery, GalleryIndex, parse_index
from appliance.gallery.install import Installer, merge, plan_for_config, plan_for_definition, plan_for_entry
from appliance.gallery.policy import AddressPolicy
from fixtures.gallery_server import GalleryServer, gguf_entry

DATA = os.urandom(50_000)
SHA = hashlib.sha256(DATA).hexdigest()


def make_index(server: GalleryServer, tmp_path: Path, models: Path, *names: str) -> GalleryIndex:
    galleries = [Gallery(name, server.url(f"/{name}/index.yaml")) for name in names or ("test",)]
    return GalleryIndex(galleries, tmp_path / "cache", Fetcher(models, AddressPolicy(allow_private=True)))


def install(models: Path, plan) -> str:  # type: ignore[no-untyped-def]
    installer = Installer(models, Fetcher(models, AddressPolicy(allow_private=True)))
    return installer.install(plan, lambda *a: None, CancelToken())


# ---------------------------------------------------------------------------------------- indexes


def test_index_entries_are_read_leniently() -> None:
    gallery = Gallery("g", "http://127.0.0.1:1/sub/index.yaml")
    text = yaml.safe_dump(
        [
            {"name": "good", "config_file": {"backend": "llama-cpp"}, "files": [{"filename": "a.gguf", "uri": "https://x/a", "sha": SHA}]},
            {"description": "no name"},
            "not a mapping",
            {"name": "bad-files", "config_file": {}, "files": [{"filename": "a"}]},
            {"name": "relative", "url": "defs/r.yaml", "tags": "one-tag"},
            {"name": "escaping", "url": "../../etc/passwd"},
        ]
    )
    models = parse_index(text.encode(), gallery)
    assert [m.name for m in models] == ["good", "relative"]
    assert models[0].files[0].sha256 == SHA  # LocalAI's older `sha` spelling
    assert models[1].url == "http://127.0.0.1:1/sub/defs/r.yaml" and models[1].tags == ("one-tag",)
    assert models[0].metadata(installed=True) == {
        "id": "g@good",
        "name": "good",
        "files": [{"filename": "a.gguf", "uri": "https://x/a", "sha256": SHA}],
        "gallery": {"name": "g", "url": gallery.url},
        "installed": True,
    }
    with pytest.raises(InvalidDefinition):
        parse_index(b"name: not-a-list", gallery)


def test_ids_find_models_across_galleries(server: GalleryServer, tmp_path: Path, models: Path) -> None:
    server.publish_index([gguf_entry("Tiny", "t.gguf", "https://x/t", SHA)], path="/a/index.yaml")
    server.publish_index([gguf_entry("other", "o.gguf", "https://x/o", SHA)], path="/b/index.yaml")
    index = make_index(server, tmp_path, models, "a", "b")
    assert index.find("b@other").gallery.name == "b"
    assert index.find("tiny").id == "a@Tiny"  # a bare name, case-insensitive, as LocalAI matches it
    with pytest.raises(GalleryModelNotFound):
        index.find("a@other")
    with pytest.raises(GalleryNotFound):
        index.find("c@Tiny")


def test_a_new_entry_is_found_without_waiting_for_the_cache(server: GalleryServer, tmp_path: Path, models: Path) -> None:
    server.publish_index([gguf_entry("one", "1.gguf", "https://x/1", SHA)], path="/test/index.yaml")
    index = make_index(server, tmp_path, models)
    assert [m.name for m in index.models()] == ["one"]
    server.publish_index([gguf_entry("one", "1.gguf", "https://x/1", SHA), gguf_entry("two", "2.gguf", "https://x/2", SHA)], path="/test/index.yaml")
    assert index.find("test@two").name == "two"


def test_the_last_good_index_serves_offline(server: GalleryServer, tmp_path: Path, models: Path) -> None:
    server.publish_index([gguf_entry("tiny", "t.gguf", "https://x/t", SHA)], path="/test/index.yaml")
    assert [m.id for m in make_index(server, tmp_path, models).models()] == ["test@tiny"]
    server.remove("/test/index.yaml")  # the gallery is gone (404); a fresh process still lists it
    assert [m.id for m in make_index(server, tmp_path, models).models()] == ["test@tiny"]
    never = GalleryIndex([Gallery("new", server.url("/new/index.yaml"))], tmp_path / "cache", Fetcher(models, AddressPolicy(True)))
    with pytest.raises(GalleryUnavailable, match="never cached"):
        never.models()


def test_galleries_can_be_added_and_removed(tmp_path: Path, models: Path) -> None:
    from appliance.gallery.errors import GalleryExists

    index = GalleryIndex([], tmp_path, Fetcher(models, AddressPolicy()))
    assert index.add(Gallery("a", "https://example.com/index.yaml")) == [Gallery("a", "https://example.com/index.yaml")]
    with pytest.raises(GalleryExists):
        index.add(Gallery("a", "https://example.com/other.yaml"))
    with pytest.raises(InvalidSource):
        index.add(Gallery("b@c", "https://example.com/index.yaml"))
    with pytest.raises(InvalidSource):
        index.add(Gallery("b", "ftp://example.com/index.yaml"))
    assert index.remove("a") == []
    with pytest.raises(GalleryNotFound):
        index.remove("a")


# ---------------------------------------------------------------------------------------- plans


def test_overrides_merge_deeply() -> None:
    assert merge({"a": 1, "p": {"x": 1, "y": 2}}, {"p": {"y": 3}, "b": [1]}) == {"a": 1, "p": {"x": 1, "y": 3}, "b": [1]}


@pytest.mark.parametrize(
    ("name", "files"),
    [
        ("../evil", []),
        (None, [FileEntry("../x.gguf", "https://example.com/x")]),
        (None, [FileEntry("/etc/cron.d/x", "https://example.com/x")]),
        (None, [FileEntry("sub/../../x", "https://example.com/x")]),
    ],
)
def test_plans_refuse_unsafe_names_at_request_time(models: Path, name: str | None, files: list[FileEntry]) -> None:
    server_entry = parse_index(yaml.safe_dump([gguf_entry("tiny", "t.gguf", "https://example.com/t", SHA)]).encode(), Gallery("g", "https://e/i.yaml"))[0]
    with pytest.raises(UnsafeName):
        plan_for_entry(models, server_entry, name=name, files=files)


def test_plans_refuse_unsafe_gallery_files(models: Path) -> None:
    entry = parse_index(yaml.safe_dump([gguf_entry("tiny", "../../t.gguf", "https://example.com/t", SHA)]).encode(), Gallery("g", "https://e/i.yaml"))[0]
    with pytest.raises(UnsafeName):
        plan_for_entry(models, entry)


def test_plans_refuse_plain_http_files_without_sha256(models: Path) -> None:
    entry = parse_index(yaml.safe_dump([gguf_entry("tiny", "t.gguf", "http://10.0.0.1/t", None)]).encode(), Gallery("g", "https://e/i.yaml"))[0]
    with pytest.raises(InvalidSource, match="sha256"):
        plan_for_entry(models, entry)


# ---------------------------------------------------------------------------------------- installs


def test_install_from_an_entry_writes_files_then_the_config(server: GalleryServer, tmp_path: Path, models: Path) -> None:
    server.add("/blobs/t.gguf", DATA)
    server.publish_index([gguf_entry("tiny", "t.gguf", server.url("/blobs/t.gguf"), SHA, overrides={"threads": 2})], path="/test/index.yaml")
    entry = make_index(server, tmp_path, models).find("test@tiny")
    plan = plan_for_entry(models, entry, name="mine", overrides={"context_size": 512, "parameters": {"top_k": 5}})
    assert install(models, plan) == "mine"
    config = yaml.safe_load((models / "mine.yaml").read_text())
    assert config["name"] == "mine" and config["threads"] == 2 and config["context_size"] == 512
    assert config["parameters"] == {"model": "t.gguf", "temperature": 0, "top_k": 5}
    assert (models / "t.gguf").read_bytes() == DATA
    record = yaml.safe_load((models / "._gallery_mine.yaml").read_text())
    assert record["files"] == [{"filename": "t.gguf", "uri": server.url("/blobs/t.gguf"), "sha256": SHA}]


def test_install_from_a_definition_url(server: GalleryServer, models: Path) -> None:
    """LocalAI's `url:` entries: a definition whose `config_file` is YAML text, with its own files."""
    server.add("/blobs/t.gguf", DATA)
    server.add_yaml(
        "/defs/base.yaml",
        {
            "name": "base",
            "config_file": "backend: llama-cpp\ncontext_size: 128\nparameters:\n  model: t.gguf\n",
            "files": [{"filename": "t.gguf", "uri": server.url("/blobs/t.gguf"), "sha256": SHA}],
            "prompt_templates": [{"name": "chatml", "content": "{{.Input}}"}],
        },
    )
    plan = plan_for_definition(models, server.url("/defs/base.yaml"), name=None, overrides={"f16": True}, files=())
    assert install(models, plan) == "base"
    config = yaml.safe_load((models / "base.yaml").read_text())
    assert config == {"backend": "llama-cpp", "context_size": 128, "parameters": {"model": "t.gguf"}, "f16": True, "name": "base"}
    assert (models / "chatml.tmpl").read_text() == "{{.Input}}"


def test_a_definition_with_unsafe_files_fails_before_any_download(server: GalleryServer, models: Path) -> None:
    server.add("/blobs/t.gguf", DATA)
    server.add_yaml("/defs/evil.yaml", {"name": "evil", "config_file": {"parameters": {"model": "t.gguf"}},
                                        "files": [{"filename": "../../evil.gguf", "uri": server.url("/blobs/t.gguf"), "sha256": SHA}]})
    with pytest.raises(UnsafeName):
        install(models, plan_for_definition(models, server.url("/defs/evil.yaml"), name=None, overrides=None, files=()))
    assert server.requests_for("/blobs/t.gguf") == [] and list(models.iterdir()) == []


def test_a_config_pointing_outside_fails_before_any_download(server: GalleryServer, models: Path) -> None:
    server.add("/blobs/t.gguf", DATA)
    server.add_yaml("/defs/evil.yaml", {"name": "evil", "config_file": {"parameters": {"model": "../../../etc/passwd"}},
                                        "files": [{"filename": "t.gguf", "uri": server.url("/blobs/t.gguf"), "sha256": SHA}]})
    with pytest.raises(InvalidDefinition, match="parameters.model"):
        install(models, plan_for_definition(models, server.url("/defs/evil.yaml"), name=None, overrides=None, files=()))
    assert server.requests_for("/blobs/t.gguf") == [] and list(models.iterdir()) == []


def test_install_from_a_config_url_brings_its_download_files(server: GalleryServer, models: Path) -> None:
    server.add("/blobs/t.gguf", DATA)
    server.add_yaml("/configs/c.yaml", {"name": "from-config", "backend": "llama-cpp", "parameters": {"model": "t.gguf"},
                                         "download_files": [{"filename": "t.gguf", "uri": server.url("/blobs/t.gguf"), "sha256": SHA}]})
    assert install(models, plan_for_config(models, server.url("/configs/c.yaml"), name=None, overrides=None, files=())) == "from-config"
    assert yaml.safe_load((models / "from-config.yaml").read_text())["parameters"]["model"] == "t.gguf"
    assert (models / "t.gguf").read_bytes() == DATA


def test_remove_keeps_files_another_model_uses(server: GalleryServer, tmp_path: Path, models: Path) -> None:
    server.add("/blobs/t.gguf", DATA)
    server.publish_index([gguf_entry("tiny", "t.gguf", server.url("/blobs/t.gguf"), SHA)], path="/test/index.yaml")
    entry = make_index(server, tmp_path, models).find("test@tiny")
    install(models, plan_for_entry(models, entry, name="one"))
    install(models, plan_for_entry(models, entry, name="two"))
    (models / "unrelated.txt").write_text("keep me")
    installer = Installer(models, Fetcher(models, AddressPolicy()))
    assert installer.remove("one") == ["one.yaml"]  # t.gguf is still two's
    assert (models / "t.gguf").exists()
    assert installer.remove("two") == ["t.gguf", "two.yaml"]
    assert sorted(p.name for p in models.iterdir()) == ["unrelated.txt"]
    with pytest.raises(ModelNotInstalled):
        installer.remove("two")
    with pytest.raises(UnsafeName):
        installer.remove("../unrelated")


def test_remove_never_touches_files_outside(models: Path, tmp_path: Path) -> None:
    outside = tmp_path / "precious.gguf"
    outside.write_bytes(b"x")
    (models / "._gallery_m.yaml").write_text(yaml.safe_dump({"files": [{"filename": "../precious.gguf", "uri": "https://x/y"}]}))
    (models / "m.yaml").write_text("name: m\nbackend: llama-cpp\n")
    Installer(models, Fetcher(models, AddressPolicy())).remove("m")
    assert outside.exists()
