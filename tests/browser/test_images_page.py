"""The Images page in a real browser: a prompt with size, steps and seed becomes an image shown in the
gallery (fetched with the key as a blob), downloadable and listed newest first with its parameters;
an API error is shown with its message; axe passes and the page fits 390 px."""

from __future__ import annotations

import base64
import struct
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from harness import UIServer, assert_accessible, require_browser, saved_key_script
from media_backends import MEDIA_MODELS, media_server

PNG = b"\x89PNG\r\n\x1a\n"
DARK = "localStorage.setItem('appliance.theme', 'dark');"


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory) -> Iterator[UIServer]:
    require_browser()
    server = media_server(tmp_path_factory.mktemp("images"))
    yield server
    server.stop()


def png_size(data: bytes) -> tuple[int, int]:
    assert data.startswith(PNG), data[:16]
    return struct.unpack(">II", data[16:24])


def generate(page: Any, prompt: str, *, model: str = "painter", size: str = "256x256", steps: str = "", seed: str = "") -> None:
    page.wait_for_load_state("networkidle")  # the model list has loaded: it no longer resets the choice
    page.get_by_label("Model").select_option(model)
    page.get_by_label("Prompt", exact=True).fill(prompt)
    page.get_by_label("Size").select_option(size)
    page.get_by_label("Steps").fill(steps)
    page.get_by_label("Seed").fill(seed)
    assert page.get_by_label("Model").input_value() == model
    page.get_by_role("button", name="Generate").click()


def shown_image(page: Any, prompt: str) -> Any:
    image = page.get_by_role("img", name=prompt, exact=True)
    image.wait_for()
    page.wait_for_function("(img) => img.complete && img.naturalWidth > 0", arg=image.element_handle())
    return image


def test_an_image_is_generated_shown_and_downloadable(open_page: Callable[..., Any], media: UIServer) -> None:
    page = open_page("images", server=media).page
    page.get_by_role("heading", level=1, name="Images").wait_for()
    assert_accessible(page, "Images (empty)")
    generate(page, "a red lighthouse at dusk", size="256x256", steps="4", seed="42")
    image = shown_image(page, "a red lighthouse at dusk")
    assert image.evaluate("(img) => [img.naturalWidth, img.naturalHeight]") == [256, 256]
    assert image.get_attribute("src").startswith("blob:")  # fetched with the key, never linked

    result = page.get_by_role("listitem").filter(has=image)
    params = result.locator("dl").inner_text()
    for shown in ("painter", "256x256", "4", "42"):
        assert shown in params, params
    link = result.get_by_role("link", name="Download")
    with page.expect_download() as info:
        link.click()
    download = info.value
    assert download.suggested_filename.endswith(".png")
    data = Path(download.path()).read_bytes()
    assert png_size(data) == (256, 256)
    # The same request through the API gives the same picture (the fake is deterministic).
    direct = httpx.post(
        media.base + "/v1/images/generations",
        json={"model": "painter", "prompt": "a red lighthouse at dusk", "size": "256x256", "step": 4, "seed": 42,
              "response_format": "b64_json"},
        timeout=30,
    )
    assert base64.b64decode(direct.json()["data"][0]["b64_json"]) == data

    generate(page, "a blue boat", size="512x768", seed="7")
    newest = shown_image(page, "a blue boat")
    assert newest.evaluate("(img) => [img.naturalWidth, img.naturalHeight]") == [512, 768]
    prompts = page.locator(".image-gallery > li .image-prompt").all_inner_texts()
    assert prompts == ["a blue boat", "a red lighthouse at dusk"]  # newest first
    assert_accessible(page, "Images (gallery)")

    # The gallery is kept for the session: away and back, both are still there.
    page.get_by_role("link", name="Models").click()
    page.get_by_role("heading", level=1, name="Models").wait_for()
    page.get_by_role("link", name="Images").click()
    shown_image(page, "a red lighthouse at dusk")
    assert page.locator(".image-gallery > li").count() == 2
    # "Use these settings" puts a result's parameters back into the form.
    page.get_by_role("listitem").filter(has_text="a red lighthouse at dusk").get_by_role("button", name="Use these settings").click()
    assert page.get_by_label("Prompt", exact=True).input_value() == "a red lighthouse at dusk"
    assert page.get_by_label("Seed").input_value() == "42"


def test_a_failing_model_shows_the_api_message(open_page: Callable[..., Any], media: UIServer) -> None:
    page = open_page("images", server=media).page
    generate(page, "anything", model="smudge")
    alert = page.locator(".media-form").get_by_role("alert")
    alert.wait_for()
    text = alert.inner_text()
    assert "Could not generate the image" in text and "is configured to fail loading" in text, text
    assert page.get_by_role("button", name="Generate").is_enabled()
    assert_accessible(page, "Images (error)")


def test_images_need_the_key_and_fit_390_px_in_the_dark(
    open_page: Callable[..., Any], make_server: Callable[..., UIServer]
) -> None:
    server = make_server({"painter": MEDIA_MODELS["painter"]}, "--api-keys", "secret")
    page = open_page("images", server=server, viewport={"width": 390, "height": 844},
                     init_scripts=(saved_key_script("secret"), DARK)).page
    generate(page, "a small green field", size="512x512")
    image = shown_image(page, "a small green field")
    assert image.evaluate("(img) => img.naturalWidth") == 512
    url = httpx.post(server.base + "/v1/images/generations", json={"prompt": "x", "size": "64x64"},
                     headers={"Authorization": "Bearer secret"}).json()["data"][0]["url"]
    assert httpx.get(url).status_code == 401  # a plain <img src=url> could not have shown it
    overflow = page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
    assert overflow <= 0, f"the Images page scrolls sideways by {overflow}px at 390 px"
    box = image.bounding_box()
    assert box is not None and box["width"] <= 390
    assert page.evaluate("document.documentElement.dataset.theme") == "dark"
    assert_accessible(page, "Images (dark, 390 px)")
