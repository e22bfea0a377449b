"""The Models page in a real browser: every model with its backend, use cases and state; load shows
loading then ready with its memory and device, unload returns it to not loaded; a failing load shows
the API's message; the filter narrows the list (dark theme); the install panel lists a loopback gallery, installs a
model with its progress (percent and bytes) to done, after which the model is in the list and loads,
and a cancelled install leaves nothing behind; axe passes and the page fits 390 px."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from fixtures.gallery_server import GalleryServer, gguf_entry
from harness import UIServer, assert_accessible, require_browser
from media_backends import media_server

SIZE = 3 * 1024 * 1024  # the gallery's model file: held part-way so the page shows progress
HELD_AT = 1024 * 1024


@pytest.fixture(scope="module")
def gallery() -> Iterator[GalleryServer]:
    with GalleryServer() as served:
        entries = []
        for name, description in (("gallery-tiny", "A tiny fake chat model"), ("gallery-slow", "One to cancel")):
            blob = served.add(f"/blobs/{name}.bin", (name.encode() * SIZE)[:SIZE])
            entries.append(gguf_entry(
                name, f"{name}.bin", served.url(f"/blobs/{name}.bin"), blob.sha256, description=description,
                backend="fake", extra_config={"known_usecases": ["chat"], "options": ["memory_mb:3"]},
                tags=["test", "fake"],
            ))
        served.publish_index(entries)
        yield served


@pytest.fixture(scope="module")
def models_server(tmp_path_factory: pytest.TempPathFactory, gallery: GalleryServer) -> Iterator[UIServer]:
    require_browser()
    server = media_server(
        tmp_path_factory.mktemp("models"),
        "--galleries", json.dumps([gallery.gallery("loopback")]),
        "--allow-private-downloads",
    )
    yield server
    server.stop()


def row(page: Any, model: str) -> Any:
    return page.locator(f'tr[data-model="{model}"]')


def state_of(page: Any, model: str) -> Any:
    return row(page, model).locator(".model-state")


def loaded(server: UIServer) -> dict[str, Any]:
    return {m["id"]: m for m in httpx.get(server.base + "/system").json()["loaded_models"]}


def test_models_are_listed_loaded_and_unloaded(open_page: Callable[..., Any], models_server: UIServer) -> None:
    httpx.post(models_server.base + "/backend/shutdown", json={"model": "heavy"})
    page = open_page("models", server=models_server).page
    page.get_by_role("heading", level=1, name="Models").wait_for()
    row(page, "painter").wait_for()
    ids = httpx.get(models_server.base + "/v1/models").json()["data"]
    assert page.locator("tbody tr").count() == len(ids)
    painter = row(page, "painter").inner_text()
    assert "media-fake" in painter and "image" in painter
    assert state_of(page, "heavy").inner_text() == "Not loaded"
    assert_accessible(page, "Models (list)")

    page.get_by_role("button", name="Load heavy").click()
    state_of(page, "heavy").filter(has_text="Loading").wait_for()  # the load takes 1.5 s
    state_of(page, "heavy").filter(has_text="Ready").wait_for()
    heavy = row(page, "heavy")
    assert "48.0 MB" in heavy.locator('td[data-label="Memory"]').inner_text()
    assert heavy.locator('td[data-label="Device"]').inner_text() == "cpu"
    assert loaded(models_server)["heavy"]["status"] == "idle"

    heavy.get_by_role("button", name="Unload heavy").click()
    state_of(page, "heavy").filter(has_text="Not loaded").wait_for()
    assert "heavy" not in loaded(models_server)
    assert heavy.locator('td[data-label="Memory"]').inner_text() == "–"


def test_state_follows_loads_made_elsewhere(open_page: Callable[..., Any], models_server: UIServer) -> None:
    page = open_page("models", server=models_server).page
    state_of(page, "listener").wait_for()
    httpx.post(models_server.base + "/backend/shutdown", json={"model": "listener"})
    state_of(page, "listener").filter(has_text="Not loaded").wait_for()
    httpx.post(models_server.base + "/backend/load", json={"model": "listener"})
    state_of(page, "listener").filter(has_text="Ready").wait_for()  # the page polls /system


def test_a_failing_load_shows_the_api_message(open_page: Callable[..., Any], models_server: UIServer) -> None:
    page = open_page("models", server=models_server).page
    page.get_by_role("button", name="Load broken").click()
    state_of(page, "broken").filter(has_text="Load failed").wait_for()
    banner = page.locator(".error-item")
    banner.first.wait_for()
    message = banner.first.inner_text()
    assert "Could not load broken" in message and "configured to fail loading" in message, message
    assert "configured to fail loading" in row(page, "broken").inner_text()
    assert_accessible(page, "Models (load failed)")


def test_the_filter_narrows_the_list(open_page: Callable[..., Any], models_server: UIServer) -> None:
    dark = "localStorage.setItem('appliance.theme', 'dark');"
    page = open_page("models", server=models_server, init_scripts=(dark,)).page
    row(page, "painter").wait_for()
    page.get_by_label("Filter the models").fill("tts")
    row(page, "painter").wait_for(state="detached")
    assert page.locator("tbody tr").all_inner_texts()[0].startswith("speaker")
    assert page.locator("tbody tr").count() == 1
    assert_accessible(page, "Models (dark, filtered)")
    page.get_by_label("Filter the models").fill("no such model")
    page.get_by_text("No model matches the filter.").wait_for()


def test_a_gallery_model_installs_with_progress_and_appears(
    open_page: Callable[..., Any], models_server: UIServer, gallery: GalleryServer
) -> None:
    gate = gallery.hold("/blobs/gallery-tiny.bin", at=HELD_AT)
    page = open_page("models", server=models_server).page
    panel = page.get_by_role("region", name="Install from a gallery")
    panel.get_by_text("A tiny fake chat model").wait_for()
    panel.get_by_label("Filter the gallery").fill("tiny")
    assert panel.get_by_role("button", name="Install gallery-slow").count() == 0
    assert_accessible(page, "Models (gallery)")
    panel.get_by_role("button", name="Install gallery-tiny").click()

    gate.wait_reached(timeout=30)
    progress = panel.get_by_role("progressbar", name="Installing gallery-tiny")
    page.wait_for_function("(p) => p.value > 0", arg=progress.element_handle())
    value = float(progress.evaluate("(p) => p.value"))
    assert 0 < value < 100, value
    figures = panel.locator(".install-figures").first.inner_text()
    assert "of 3.0 MB" in figures and "%" in figures, figures
    assert_accessible(page, "Models (installing)")
    gate.release()

    panel.locator(".install-job").filter(has_text="Installed").wait_for(timeout=30_000)
    row(page, "gallery-tiny").wait_for()  # in the list without a reload
    assert "gallery-tiny" in {m["id"] for m in httpx.get(models_server.base + "/v1/models").json()["data"]}
    panel.get_by_text("Installed", exact=True).first.wait_for()  # the gallery entry says so too
    page.get_by_role("button", name="Load gallery-tiny").click()
    state_of(page, "gallery-tiny").filter(has_text="Ready").wait_for()


def test_a_cancelled_install_leaves_nothing(
    open_page: Callable[..., Any], models_server: UIServer, gallery: GalleryServer
) -> None:
    gate = gallery.hold("/blobs/gallery-slow.bin", at=HELD_AT)
    page = open_page("models", server=models_server, viewport={"width": 390, "height": 844}).page
    panel = page.get_by_role("region", name="Install from a gallery")
    panel.get_by_role("button", name="Install gallery-slow").click()
    gate.wait_reached(timeout=30)
    panel.get_by_role("progressbar", name="Installing gallery-slow").wait_for()
    overflow = page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
    assert overflow <= 0, f"the Models page scrolls sideways by {overflow}px at 390 px"
    panel.get_by_role("button", name="Cancel installing gallery-slow").click()
    job = panel.locator(".install-job").filter(has_text="gallery-slow")
    job.filter(has_text="Cancelling…").wait_for()
    gate.release()  # the download notices the cancel with its next bytes
    job.filter(has_text="Cancelled").wait_for()
    assert job.get_by_role("progressbar").count() == 0
    models = {m["id"] for m in httpx.get(models_server.base + "/v1/models").json()["data"]}
    assert "gallery-slow" not in models
    folder = models_server.log.parent / "models"
    assert not [p.name for p in folder.rglob("*gallery-slow*")], "a cancelled install left files behind"
    assert panel.get_by_role("button", name="Install gallery-slow").is_enabled()
    job.get_by_role("button", name="Dismiss gallery-slow").click()
    job.wait_for(state="detached")
