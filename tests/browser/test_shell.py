"""The shell in a real browser: every page opens from the nav, the theme switches and is kept, the
layout fits 390 px, Settings and System pass axe, and the assets are versioned and cached."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import re

import httpx

from harness import assert_accessible

PAGES = ["Chat", "Documents", "Images", "Audio", "Models", "Stores", "Settings", "System"]


def test_every_page_opens_from_the_nav(open_page: Callable[..., Any]) -> None:
    page = open_page("settings").page
    nav = page.get_by_role("navigation", name="Pages")
    assert nav.get_by_role("link").all_inner_texts() == PAGES
    for name in PAGES:
        nav.get_by_role("link", name=name, exact=True).click()
        page.get_by_role("heading", level=1, name=name).wait_for()
        assert nav.get_by_role("link", name=name, exact=True).get_attribute("aria-current") == "page"
        assert page.title().startswith(name)


def test_an_unknown_page_says_so(open_page: Callable[..., Any]) -> None:
    page = open_page("nowhere").page
    assert "There is no page \"nowhere\"" in page.get_by_role("alert").first.inner_text()


def test_settings_and_system_pass_axe_in_both_themes(open_page: Callable[..., Any]) -> None:
    page = open_page("settings").page
    assert_accessible(page, "Settings (light)")
    page.get_by_label("Dark").check()
    assert page.evaluate("document.documentElement.dataset.theme") == "dark"
    assert_accessible(page, "Settings (dark)")
    page.reload()
    page.get_by_role("heading", name="Settings").wait_for()
    assert page.evaluate("document.documentElement.dataset.theme") == "dark"  # kept in the browser
    page.get_by_role("link", name="System").click()
    page.get_by_test_id("version").wait_for()
    assert re.fullmatch(r"\d+\.\d+\.\d+.*", page.get_by_test_id("version").inner_text())
    assert_accessible(page, "System (dark)")


def test_theme_follows_the_system_until_chosen(browser: Any, ui_server: Any) -> None:
    context = browser.new_context(color_scheme="dark")
    try:
        page = context.new_page()
        page.goto(ui_server.url("settings"))
        page.get_by_role("heading", name="Settings").wait_for()
        assert page.evaluate("document.documentElement.dataset.theme") == "dark"
        page.get_by_label("Light").check()
        assert page.evaluate("document.documentElement.dataset.theme") == "light"
    finally:
        context.close()


def test_the_layout_fits_390_px(open_page: Callable[..., Any]) -> None:
    for route in ("chat", "settings", "system"):
        page = open_page(route, viewport={"width": 390, "height": 844}).page
        page.get_by_role("heading", level=1).first.wait_for() if route != "chat" else page.get_by_role("log").wait_for()
        overflow = page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
        assert overflow <= 0, f"{route} scrolls sideways by {overflow}px at 390 px"


def test_assets_are_versioned_and_cached(ui_server: Any) -> None:
    index = httpx.get(ui_server.base + "/")
    assert index.status_code == 200 and index.headers["cache-control"] == "no-cache"
    assets = re.findall(r'"(/static/v[0-9a-f]{12}/[^"]+)"', index.text)
    assert any(a.endswith("/js/main.js") for a in assets) and any("/vendor/preact/" in a for a in assets)
    for asset in (a for a in assets if not a.endswith("/")):  # an import-map prefix is not a file
        response = httpx.get(ui_server.base + asset)
        assert response.status_code == 200, asset
        assert response.headers["cache-control"] == "public, max-age=31536000, immutable", asset
    plain = httpx.get(ui_server.base + "/static/js/main.js")
    assert plain.status_code == 200 and plain.headers["cache-control"] == "no-cache"
    assert httpx.get(ui_server.base + "/static/v000000000000/../../__init__.py").status_code == 404


def test_system_shows_the_loaded_models_and_metrics(open_page: Callable[..., Any], ui_server: Any) -> None:
    loaded = httpx.post(ui_server.base + "/backend/load", json={"model": "chatty"}, timeout=60)
    assert loaded.status_code == 200, loaded.text
    page = open_page("system").page
    table = page.get_by_role("table", name="Loaded models")
    row = table.get_by_role("row").filter(has_text="chatty")
    row.wait_for()
    assert "fake" in row.inner_text() and "cpu" in row.inner_text()
    figures = page.locator(".figures")
    loaded_count = figures.locator("div").filter(has_text="Models loaded").locator("dd").inner_text()
    assert int(loaded_count.replace(",", "")) >= 1
    requests = int(figures.locator("div").filter(has_text="Requests served").locator("dd").inner_text().replace(",", ""))
    page.get_by_role("button", name="Refresh").click()
    page.wait_for_function(
        "before => Number(document.querySelector('.figures').innerText.match(/Requests served\\s+([\\d,]+)/)[1].replace(/,/g, '')) > before",
        arg=requests,
    )
