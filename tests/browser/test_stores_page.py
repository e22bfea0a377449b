"""The Stores page in a real browser against the real app: a store filled through /stores/set shows
its count and dimension; export downloads its backup file; import loads one back under a new
name (and a file that is not a backup shows the server's reason); drop removes a store. Axe runs on
each state and the page fits 390 px."""

from __future__ import annotations

import gzip
import json
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from harness import assert_accessible


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def fill_store(server: Any, name: str, count: int, dimension: int) -> None:
    keys = [[float((i + j) % 7) + 0.5 for j in range(dimension)] for i in range(count)]
    values = [f"v{i}" for i in range(count)]
    response = httpx.post(server.base + "/stores/set", json={"store": name, "keys": keys, "values": values})
    assert response.status_code == 200, response.text


def store_names(server: Any) -> set[str]:
    return {s["name"] for s in httpx.get(server.base + "/stores").json()["stores"]}


def row(page: Any, name: str) -> Any:
    return page.locator(f'tr[data-store="{name}"]')


def test_a_store_shows_its_figures_and_exports(open_page: Callable[..., Any], ui_server: Any, tmp_path: Path) -> None:
    name = unique("ui-raw")
    fill_store(ui_server, name, count=3, dimension=5)
    page = open_page("stores").page
    page.get_by_role("heading", level=1, name="Stores").wait_for()
    line = row(page, name)
    line.wait_for()
    assert line.get_by_test_id("count").inner_text() == "3"
    assert line.get_by_test_id("dimension").inner_text() == "5"
    assert "exact" in line.inner_text() and "not needed" in line.inner_text()
    assert_accessible(page, "Stores (list)")

    with page.expect_download() as download:
        line.get_by_role("button", name=f"Export {name}").click()
    saved = tmp_path / "backup.gz"
    download.value.save_as(saved)
    assert download.value.suggested_filename == f"{name}.store.jsonl.gz"
    lines = [json.loads(text) for text in gzip.decompress(saved.read_bytes()).decode().splitlines()]
    assert lines[0]["format"] == "appliance.store" and lines[0]["store"]["name"] == name
    assert sorted(entry["value"] for entry in lines[1:-1]) == ["v0", "v1", "v2"]
    assert lines[-1] == {"end": True, "count": 3, "sha256": lines[-1]["sha256"]}


def test_import_a_backup_then_drop_it(open_page: Callable[..., Any], ui_server: Any, tmp_path: Path) -> None:
    source, copy = unique("ui-src"), unique("ui-copy")
    fill_store(ui_server, source, count=4, dimension=3)
    backup = tmp_path / "source.store.jsonl.gz"
    backup.write_bytes(httpx.post(ui_server.base + "/stores/export", json={"store": source}).content)
    page = open_page("stores").page
    row(page, source).wait_for()

    page.get_by_label("Backup file (from Export)").set_input_files(str(backup))
    page.get_by_label("Store name").fill(copy)
    page.get_by_role("button", name="Import").click()
    page.get_by_role("status").filter(has_text=f"Imported {copy}: 4 vectors").wait_for()
    row(page, copy).wait_for()
    assert row(page, copy).get_by_test_id("count").inner_text() == "4"
    assert row(page, copy).get_by_test_id("dimension").inner_text() == "3"
    assert copy in store_names(ui_server)

    junk = tmp_path / "not-a-backup.gz"
    junk.write_bytes(gzip.compress(b'{"hello": "world"}\n'))
    page.get_by_label("Backup file (from Export)").set_input_files(str(junk))
    page.get_by_label("Store name").fill(unique("ui-junk"))
    page.get_by_role("button", name="Import").click()
    error = page.locator(".error-inline").filter(has_text="Could not import:")
    error.wait_for()
    assert len(error.inner_text()) > len("Could not import: ") + 10  # the server's reason, not a blank
    assert_accessible(page, "Stores (import error)")

    row(page, copy).get_by_role("button", name=f"Drop {copy}").click()
    dialog = page.get_by_role("dialog", name=f"Drop {copy}?")
    dialog.wait_for()
    assert "4 vectors" in dialog.inner_text()
    assert_accessible(page, "Stores (drop dialog)")
    dialog.get_by_role("button", name="Drop").click()
    row(page, copy).wait_for(state="detached")
    names = store_names(ui_server)
    assert copy not in names and source in names


def test_the_stores_page_fits_390_px_in_the_dark(open_page: Callable[..., Any], ui_server: Any) -> None:
    name = unique("ui-narrow-store-with-a-long-name")
    fill_store(ui_server, name, count=2, dimension=4)
    dark = "localStorage.setItem('appliance.theme', 'dark');"
    page = open_page("stores", viewport={"width": 390, "height": 844}, init_scripts=(dark,)).page
    row(page, name).wait_for()
    overflow = page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
    assert overflow <= 0, f"the stores page scrolls sideways by {overflow}px at 390 px"
    assert page.evaluate("document.documentElement.dataset.theme") == "dark"
    assert_accessible(page, "Stores (dark, 390 px)")
