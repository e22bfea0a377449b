"""The vendored UI libraries are exactly what webui/static/vendor/VENDOR.json records (sha256 and
size of every file, nothing unrecorded), and index.html's import map points only at recorded files."""

from __future__ import annotations

import gzip
import hashlib
import json
import re
from pathlib import Path

import webui

ROOT = Path(__file__).resolve().parents[2]
VENDOR = webui.STATIC_DIR / "vendor"
MANIFEST = json.loads((VENDOR / "VENDOR.json").read_text())
PINNED = re.compile(r"^\d+\.\d+\.\d+$")


def test_every_vendored_file_matches_its_recorded_sha256_and_size() -> None:
    assert MANIFEST["files"], MANIFEST
    for entry in MANIFEST["files"]:
        data = (ROOT / entry["file"]).read_bytes()
        assert hashlib.sha256(data).hexdigest() == entry["sha256"], entry["file"]
        assert len(data) == entry["bytes"], entry["file"]
        assert len(gzip.compress(data, 9, mtime=0)) == entry["gzip_bytes"], entry["file"]
        assert PINNED.match(entry["version"]), entry  # an exact version, never a range


def test_nothing_unrecorded_is_vendored() -> None:
    recorded = {entry["file"] for entry in MANIFEST["files"]}
    for folder in (VENDOR, ROOT / "tests" / "browser" / "vendor"):
        for path in folder.rglob("*"):
            relative = path.relative_to(ROOT).as_posix()
            if path.is_file() and path.name != "VENDOR.json" and "/licenses/" not in relative:
                assert relative in recorded, f"{relative} is not in VENDOR.json (re-run ./scripts/vendor-webui)"


def test_totals_add_up_and_test_only_files_are_not_served() -> None:
    app = [e for e in MANIFEST["files"] if e["use"] == "app"]
    assert MANIFEST["app_total_bytes"] == sum(e["bytes"] for e in app)
    assert MANIFEST["app_total_gzip_bytes"] == sum(e["gzip_bytes"] for e in app)
    for entry in MANIFEST["files"]:
        served = entry["file"].startswith("webui/static/")
        assert served == (entry["use"] == "app"), entry  # axe-core (tests only) is never in the package
    every_package = {e["package"] for e in MANIFEST["files"]}
    assert every_package >= {"preact", "htm", "@preact/signals", "@preact/signals-core", "marked", "dompurify", "axe-core"}
    for package in every_package:
        safe = package.replace("@", "").replace("/", "-")
        use = next(e["use"] for e in MANIFEST["files"] if e["package"] == package)
        folder = VENDOR if use == "app" else ROOT / "tests" / "browser" / "vendor"
        assert (folder / "licenses" / f"{safe}.txt").is_file(), package


def test_the_import_map_points_at_vendored_files() -> None:
    page = (webui.STATIC_DIR / "index.html").read_text()
    block = re.search(r'<script type="importmap">(.*?)</script>', page, re.S)
    assert block is not None
    imports = json.loads(block.group(1).replace(webui.ASSETS_MARKER, "/static"))["imports"]
    recorded = {entry["file"] for entry in MANIFEST["files"] if entry["use"] == "app"}
    for name, url in imports.items():
        path = "webui" + url
        if url.endswith("/"):
            assert any(f.startswith(path) for f in recorded), (name, url)
        else:
            assert path in recorded, (name, url)
    assert "http" not in block.group(1)  # no CDN


def test_every_preloaded_module_exists() -> None:
    page = (webui.STATIC_DIR / "index.html").read_text()
    preloaded = re.findall(r'<link rel="modulepreload" href="\{\{ASSETS\}\}/([^"]+)">', page)
    assert "js/main.js" in preloaded and "js/pages/chat.js" in preloaded
    for path in preloaded:
        assert (webui.STATIC_DIR / path).is_file(), path
