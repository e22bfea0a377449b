"""A question in chat with the documents toggle on: the built-in MiniLM embeds a real PDF, the answer
(from a fake model that cites the sources it is given) shows numbered citations, and [n] opens its
source with the file, page, section, excerpt and score. The test writes the README's screenshot."""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from fixtures.documents import manual_sections, write_text_pdf
from harness import ROOT, assert_accessible

SCREENSHOT = ROOT / "docs" / "screenshots" / "chat-citation.png"


def ingest_manual(base: str, folder: Path, name: str) -> tuple[str, str]:
    """Upload a 3-page manual into a new vector store; (store id, store name) once it is searchable."""
    pdf = write_text_pdf(folder, "field-manual.pdf", pages=3)
    with httpx.Client(base_url=base, timeout=120) as http:
        uploaded = http.post("/v1/files", files={"file": (pdf.name, pdf.read_bytes())}, data={"purpose": "assistants"})
        assert uploaded.status_code == 200, uploaded.text
        store = http.post("/v1/vector_stores", json={"name": name, "file_ids": [uploaded.json()["id"]]})
        assert store.status_code == 200, store.text
        store_id = store.json()["id"]
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            counts = http.get(f"/v1/vector_stores/{store_id}").json()["file_counts"]
            if counts["completed"] == 1:
                return store_id, name
            assert counts["failed"] == 0, counts
            time.sleep(0.2)
    raise AssertionError("the manual was not ingested")


@pytest.mark.slow
def test_an_answer_cites_a_document_page_and_the_citation_opens(
    open_page: Any, ui_server: Any, tmp_path: Path
) -> None:
    _, store_name = ingest_manual(ui_server.base, tmp_path, "ui-chat-manual")
    section = manual_sections(3)[1]  # page 2
    page = open_page("chat", viewport={"width": 1440, "height": 900}).page
    page.get_by_label("Model").select_option("citer")
    page.get_by_label("Documents").check()
    page.get_by_role("group", name="Answer from these vector stores").get_by_label(store_name, exact=False).check()
    box = page.get_by_role("textbox", name="Message", exact=True)
    box.fill(f"error code {section.code} means")  # every word is in the page: passes the relevance floor
    with page.expect_request("**/v1/chat/completions") as caught:
        box.press("Enter")
    assert caught.value.post_data_json["file_search"]["vector_store_ids"], caught.value.post_data_json
    answer = page.get_by_role("article", name="Answer").last
    page.wait_for_function(
        "() => document.querySelector('[aria-busy=false][aria-label=Answer] .markdown[data-state=done]')", timeout=120_000
    )
    assert not answer.locator(".message-error").count(), answer.inner_text()
    # The sources list shows the file and page of each citation; the answer's [n] are buttons.
    chips = answer.locator(".sources")
    assert chips.count(), answer.inner_text()
    assert "field-manual.pdf, page 2" in chips.inner_text(), chips.inner_text()
    markers = answer.locator(".markdown").get_by_role("button", name="Source 1")
    assert markers.count() >= 1
    markers.first.click()
    panel = page.get_by_role("dialog", name="Source 1: field-manual.pdf, page 2")
    panel.wait_for()
    assert panel.get_by_test_id("citation-page").inner_text() == "2"
    assert section.code in panel.get_by_label("Excerpt").inner_text()
    assert "Troubleshooting" in panel.inner_text() or section.title.split(" ", 1)[1] in panel.inner_text()
    assert panel.get_by_text("yes, the answer names it").count() == 1
    assert_accessible(page, "Chat with a citation open")
    SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOT))
    assert SCREENSHOT.stat().st_size > 10_000
    # The file itself opens (fetched with the key as a blob) at the cited page.
    with page.expect_request("**/v1/files/*/content") as fetched, page.expect_popup() as popup:
        panel.get_by_role("button", name="Open the file").click()
    assert fetched.value.url.endswith("/content")
    popup.value.wait_for_url(re.compile(r"^blob:"), wait_until="commit")
    assert popup.value.url.startswith(f"blob:{ui_server.base}/") and popup.value.url.endswith("#page=2"), popup.value.url
    popup.value.close()
    page.keyboard.press("Escape")
    assert page.get_by_role("dialog").count() == 0
    # The citation survives a reload: it is kept with the conversation.
    page.reload()
    page.get_by_role("complementary", name="Conversations").locator(".conv-link").first.click()
    page.get_by_role("article", name="Answer").last.locator(".markdown").get_by_role("button", name="Source 1").first.click()
    page.get_by_role("dialog", name="Source 1: field-manual.pdf, page 2").wait_for()
