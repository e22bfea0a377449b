"""`appliance models install|available|remove` on a models path, against a loopback gallery, and the
gallery settings' parsing."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic import ValidationError

from appliance.cli import main
from appliance.config import Settings
from fixtures.gallery_server import GalleryServer, gguf_entry

DATA = os.urandom(120_000)
SHA = hashlib.sha256(DATA).hexdigest()


@pytest.fixture
def gallery() -> Iterator[GalleryServer]:
    with GalleryServer() as server:
        server.add("/blobs/tiny.gguf", DATA)
        server.publish_index([gguf_entry("tiny", "tiny.gguf", server.url("/blobs/tiny.gguf"), SHA)])
        yield server


def flags(tmp_path: Path, gallery: GalleryServer, *, private: bool = True) -> list[str]:
    args = ["--models-path", str(tmp_path / "models"), "--data-path", str(tmp_path / "data"),
            "--galleries", json.dumps([gallery.gallery("test")])]
    return args + (["--allow-private-downloads"] if private else [])


def test_install_available_remove(tmp_path: Path, gallery: GalleryServer, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["models", "available", *flags(tmp_path, gallery)]) == 0
    assert capsys.readouterr().out.strip() == "- test@tiny"
    assert main(["models", "install", "test@tiny", *flags(tmp_path, gallery)]) == 0
    captured = capsys.readouterr()
    assert captured.out.strip() == "installed tiny"
    assert "installing test@tiny" in captured.err and "100.0%" in captured.err  # the progress bar
    models = tmp_path / "models"
    assert (models / "tiny.gguf").read_bytes() == DATA and (models / "tiny.yaml").exists()
    assert main(["models", "available", *flags(tmp_path, gallery)]) == 0
    assert capsys.readouterr().out.strip() == "* test@tiny (installed)"
    assert main(["models", "available", "--json", *flags(tmp_path, gallery)]) == 0
    assert json.loads(capsys.readouterr().out)[0]["installed"] is True
    assert main(["models", "remove", "tiny", *flags(tmp_path, gallery)]) == 0
    assert capsys.readouterr().out.strip() == "removed tiny: tiny.gguf, tiny.yaml"
    assert sorted(p.name for p in models.iterdir()) == []


def test_install_by_url_with_a_name(tmp_path: Path, gallery: GalleryServer, capsys: pytest.CaptureFixture[str]) -> None:
    """A plain http:// URL is refused (no sha256 to check it by); a config URL brings its files."""
    assert main(["models", "install", gallery.url("/blobs/tiny.gguf"), *flags(tmp_path, gallery)]) == 1
    assert "sha256" in capsys.readouterr().err
    gallery.add_yaml("/configs/c.yaml", {"name": "c", "backend": "llama-cpp", "parameters": {"model": "tiny.gguf"},
                                          "download_files": [{"filename": "tiny.gguf", "uri": gallery.url("/blobs/tiny.gguf"), "sha256": SHA}]})
    assert main(["models", "install", gallery.url("/configs/c.yaml"), "--name", "named", *flags(tmp_path, gallery)]) == 0
    assert capsys.readouterr().out.strip() == "installed named"
    assert (tmp_path / "models" / "named.yaml").exists()


def test_failures_exit_1_with_the_reason(tmp_path: Path, gallery: GalleryServer, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["models", "install", "test@nope", *flags(tmp_path, gallery)]) == 1
    assert "no gallery model 'test@nope'" in capsys.readouterr().err
    assert main(["models", "install", "test@tiny", *flags(tmp_path, gallery, private=False)]) == 1
    assert "--allow-private-downloads" in capsys.readouterr().err
    assert main(["models", "remove", "../etc", *flags(tmp_path, gallery)]) == 1
    assert "'..'" in capsys.readouterr().err
    assert not (tmp_path / "models" / "tiny.gguf").exists()


@pytest.mark.parametrize(
    "value",
    [
        "not json",
        '{"name": "a", "url": "u"}',
        '[{"name": "a"}]',
        '[{"name": "a@b", "url": "u"}]',
        '[{"name": "a", "url": "u"}, {"name": "a", "url": "v"}]',
    ],
)
def test_bad_gallery_settings_are_refused(value: str) -> None:
    with pytest.raises(ValidationError):
        Settings(galleries=value)


def test_gallery_settings_take_localai_names(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GALLERIES", '[{"name": "localai", "url": "github:mudler/LocalAI/gallery/index.yaml@master"}]')
    assert Settings().galleries == [{"name": "localai", "url": "github:mudler/LocalAI/gallery/index.yaml@master"}]
    assert Settings().max_download_size == 64 * 1024**3 and Settings().allow_private_downloads is False
    with pytest.raises(ValidationError):
        Settings(max_download_size="lots")
