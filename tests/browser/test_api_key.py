"""The API-key flow in a browser: a server started with --api-keys refuses the UI until the key is
saved (the UI asks for it on the 401 and shows the server's message), then everything works and the
key is sent as a bearer token with every request."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from harness import FAKE_MODELS, assert_accessible


def test_a_server_with_keys_refuses_until_the_key_is_saved(
    make_server: Callable[..., Any], open_page: Callable[..., Any]
) -> None:
    server = make_server({"chatty": FAKE_MODELS["chatty"]}, "--api-keys", "sesame-1234")
    handle = open_page("chat", server=server)
    page = handle.page
    # The shell itself is public; the first API call gets 401 and the UI asks for the key.
    prompt = page.get_by_role("dialog", name="API key needed")
    prompt.wait_for()
    assert_accessible(page, "the API-key prompt")
    prompt.get_by_role("button", name="Close").click()
    refused = page.get_by_role("alert").filter(has_text="Could not list the models")
    assert "key" in refused.inner_text().lower(), refused.inner_text()  # the server's own message
    # A wrong key is still refused, with the server's message.
    page.get_by_role("link", name="Settings").click()
    page.get_by_role("textbox", name="API key").fill("wrong")
    page.get_by_role("button", name="Save key").click()
    page.get_by_role("link", name="System").click()
    page.get_by_role("dialog", name="API key needed").wait_for()
    page.get_by_role("dialog", name="API key needed").get_by_role("button", name="Close").click()
    assert page.get_by_role("alert").filter(has_text="Could not load the system status").count() == 1
    # The right key, saved in Settings, opens everything.
    page.get_by_role("link", name="Settings").click()
    page.get_by_role("textbox", name="API key").fill("sesame-1234")
    page.get_by_role("button", name="Save key").click()
    page.get_by_text("Key saved in this browser.").wait_for()
    page.get_by_role("link", name="System").click()
    page.get_by_test_id("version").wait_for()
    page.get_by_role("link", name="Chat").click()
    page.get_by_role("combobox", name="Model", exact=True).select_option("chatty")  # exact: "Loaded models" on the page before matches "Model" too
    with page.expect_request("**/v1/chat/completions") as caught:
        box = page.get_by_role("textbox", name="Message", exact=True)
        box.fill("hello with a key")
        box.press("Enter")
    assert caught.value.headers["authorization"] == "Bearer sesame-1234"
    page.get_by_role("article", name="Answer").locator(".message-stats").get_by_text("tokens/s").wait_for()
    # Kept in the browser: a reload needs no prompt.
    page.reload()
    page.get_by_role("combobox", name="Model", exact=True).select_option("chatty")
    assert page.get_by_role("dialog", name="API key needed").count() == 0


def test_the_prompt_saves_the_key_and_the_page_reloads_its_data(
    make_server: Callable[..., Any], open_page: Callable[..., Any]
) -> None:
    server = make_server({"chatty": FAKE_MODELS["chatty"]}, "--api-keys", "sesame-5678")
    page = open_page("system", server=server).page
    prompt = page.get_by_role("dialog", name="API key needed")
    prompt.get_by_role("textbox", name="API key").fill("sesame-5678")
    prompt.get_by_role("button", name="Save key").click()
    assert page.get_by_role("dialog", name="API key needed").count() == 0
    page.get_by_test_id("version").wait_for()  # the page loaded again with the key
