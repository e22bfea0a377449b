"""The UI shell as served: index.html with versioned asset URLs and no cache, versioned assets cached
for a year, plain /static revalidated, no path escapes, the token changes when a file changes, and
with keys set the shell stays public while the API does not."""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from pathlib import Path

from fastapi import FastAPI
from fastapi.testclient import TestClient

import webui


def test_the_page_links_versioned_assets_and_is_never_cached(make_app: Callable[..., FastAPI]) -> None:
    with TestClient(make_app()) as client:
        page = client.get("/")
        assert page.status_code == 200 and page.headers["cache-control"] == "no-cache"
        assert webui.ASSETS_MARKER not in page.text
        token = webui.asset_token()
        assert f'src="/static/{token}/js/main.js"' in page.text
        asset = client.get(f"/static/{token}/js/main.js")
        assert asset.status_code == 200 and asset.headers["cache-control"] == webui.LONG_CACHE
        assert asset.headers["content-type"].startswith(("text/javascript", "application/javascript"))
        plain = client.get("/static/css/app.css")
        assert plain.status_code == 200 and plain.headers["cache-control"] == "no-cache"
        assert client.get(f"/static/{token}/../__init__.py").status_code == 404
        assert client.get(f"/static/{token}/nothing.js").status_code == 404


def test_the_token_changes_when_a_file_changes(tmp_path: Path) -> None:
    (tmp_path / "a.js").write_text("one")
    first = webui.asset_token(tmp_path)
    assert re.fullmatch(r"v[0-9a-f]{12}", first) and webui.asset_token(tmp_path) == first
    (tmp_path / "a.js").write_text("two!")
    second = webui.asset_token(tmp_path)
    os.utime(tmp_path / "a.js", ns=(1, 1))
    assert len({first, second, webui.asset_token(tmp_path)}) == 3


def test_with_keys_the_shell_is_public_and_the_api_is_not(make_app: Callable[..., FastAPI]) -> None:
    with TestClient(make_app(api_keys=["k-123"])) as client:
        token = webui.asset_token()
        for path in ("/", "/favicon.ico", f"/static/{token}/js/api.js", "/static/vendor/VENDOR.json"):
            assert client.get(path).status_code == 200, path
        assert client.get("/v1/models").status_code == 401
        assert client.get("/v1/models", headers={"Authorization": "Bearer k-123"}).status_code == 200


def test_every_page_module_in_the_router_exists() -> None:
    router = (webui.STATIC_DIR / "js" / "router.js").read_text()
    pages = re.findall(r'import\("\./pages/(\w+)\.js"\)', router)
    assert pages == ["chat", "documents", "images", "audio", "models", "stores", "settings", "system"]
    for name in pages:
        assert (webui.STATIC_DIR / "js" / "pages" / f"{name}.js").is_file(), name
