"""The Documents page in a real browser against the real app (MiniLM embeds): vector stores are
created and deleted; files are uploaded through the picker and by drag-and-drop, their progress
bars reach done, a bad file shows its reason, a large ingest and a slow upload are cancelled; search
shows the chunk with its page, section and scores; files are removed. Axe runs on each state, and
the README's mid-upload screenshot is taken here."""

from __future__ import annotations

import base64
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
from playwright.sync_api import expect

from fixtures.documents import write_corrupt_pdf, write_markdown, write_text_pdf
from harness import ROOT, assert_accessible

SCREENSHOT = ROOT / "docs" / "screenshots" / "documents-upload.png"
FINAL_STATES = ("completed", "failed", "cancelled")
DARK = "localStorage.setItem('appliance.theme', 'dark');"


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def make_store(server: Any, name: str) -> dict[str, Any]:
    response = httpx.post(server.base + "/v1/vector_stores", json={"name": name}, timeout=30)
    response.raise_for_status()
    return response.json()


def store_files(server: Any, store_id: str) -> list[dict[str, Any]]:
    response = httpx.get(f"{server.base}/v1/vector_stores/{store_id}/files?limit=100", timeout=30)
    response.raise_for_status()
    return response.json()["data"]


def uploaded_names(server: Any) -> set[str]:
    response = httpx.get(server.base + "/v1/files?limit=100", timeout=30)
    response.raise_for_status()
    return {f["filename"] for f in response.json()["data"]}


def upload_row(page: Any, name: str) -> Any:
    return page.get_by_test_id("upload").filter(has_text=name)


def wait_step(page: Any, name: str, steps: tuple[str, ...], timeout: float = 60_000) -> str:
    """Wait until the upload row of `name` is in one of `steps`; the step it is in."""
    row = upload_row(page, name)
    row.wait_for()
    selector = ", ".join(f'[data-step="{s}"]' for s in steps)
    row.locator(selector).wait_for(timeout=timeout)
    return row.locator(".upload-state").get_attribute("data-step")


def bar_value(page: Any, name: str) -> float:
    return float(page.get_by_label(f"Progress of {name}").get_attribute("value"))


def test_create_open_and_delete_a_store(open_page: Callable[..., Any], ui_server: Any) -> None:
    name = unique("ui-create")
    page = open_page("documents").page
    page.get_by_role("heading", level=1, name="Documents").wait_for()
    model = page.get_by_label("Embedding model")
    options = model.locator("option").all_inner_texts()
    assert options == ["The server's default", "all-minilm-l6-v2"], options  # only models that embed
    assert_accessible(page, "Documents (store list)")

    page.get_by_label("Name", exact=True).fill(name)
    model.select_option("all-minilm-l6-v2")
    page.get_by_role("button", name="Create").click()
    page.get_by_role("heading", level=2, name=name).wait_for()
    store_id = page.evaluate("location.hash").split("/")[-1]
    assert store_id.startswith("vs_")
    created = httpx.get(f"{ui_server.base}/v1/vector_stores/{store_id}").json()
    assert created["name"] == name and created["embedding_model"] == "all-minilm-l6-v2"
    assert "all-minilm-l6-v2" in page.locator(".figures").inner_text()
    page.get_by_text("No documents yet").wait_for()
    assert_accessible(page, "Documents (empty store)")

    page.get_by_role("link", name="All vector stores").click()
    row = page.get_by_role("row").filter(has=page.get_by_role("link", name=name))
    row.wait_for()
    row.get_by_role("button", name=f"Delete {name}").click()
    dialog = page.get_by_role("dialog", name=f"Delete {name}?")
    dialog.wait_for()
    assert_accessible(page, "Documents (delete dialog)")
    dialog.get_by_role("button", name="Delete").click()
    dialog.wait_for(state="detached")
    row.wait_for(state="detached")
    assert httpx.get(f"{ui_server.base}/v1/vector_stores/{store_id}").status_code == 404

    page.goto(ui_server.url(f"documents/{store_id}"))  # a deleted store says so, readably
    alert = page.locator(".page .error-inline")
    alert.wait_for()
    assert alert.inner_text().startswith("Could not open this vector store:")
    assert store_id in alert.inner_text()


def test_upload_progress_search_and_remove(open_page: Callable[..., Any], ui_server: Any, tmp_path: Path) -> None:
    store = make_store(ui_server, unique("ui-search"))
    marker = "Torque key QX7731 fits the zorblax flange."
    pdf = write_text_pdf(tmp_path, unique("manual") + ".pdf", pages=3, marker=marker, marker_page=2)
    page = open_page(f"documents/{store['id']}").page
    page.get_by_role("heading", level=2, name=store["name"]).wait_for()
    page.evaluate(  # every step the row passes through, to prove the bar moved through the ingest
        """() => { window.__steps = [];
        new MutationObserver(() => { for (const el of document.querySelectorAll('.upload-state')) {
          const s = el.dataset.step; if (window.__steps[window.__steps.length - 1] !== s) window.__steps.push(s); } })
        .observe(document.body, {subtree: true, childList: true, attributes: true, attributeFilter: ['data-step']}); }"""
    )
    page.get_by_label("Choose files").set_input_files(str(pdf))
    assert wait_step(page, pdf.name, FINAL_STATES) == "completed"
    assert bar_value(page, pdf.name) == 100
    state = upload_row(page, pdf.name).locator(".upload-state").inner_text()
    files = store_files(ui_server, store["id"])
    assert len(files) == 1 and files[0]["status"] == "completed"
    assert state == f"Ready: {files[0]['chunk_count']} chunks"
    steps = page.evaluate("window.__steps")
    assert steps[-1] == "completed" and "uploading" in steps and len(steps) >= 3, steps
    table_row = page.locator(f'tr[data-file-id="{files[0]["id"]}"]')
    assert table_row.locator(".file-name").inner_text() == pdf.name
    assert "Ready" in table_row.inner_text()

    page.get_by_label("Search this store").fill("QX7731 zorblax")
    page.get_by_role("button", name="Search", exact=True).click()
    first = page.get_by_test_id("hit").first
    first.wait_for()
    assert first.locator(".hit-file").inner_text() == pdf.name
    assert first.get_by_test_id("hit-page").inner_text() == "Page 2"
    assert first.locator(".hit-section").inner_text().endswith("2 Relief valve › 2.1 Troubleshooting")
    assert "zorblax flange" in first.locator(".hit-text").inner_text()
    score = first.locator('[data-score="score"]').inner_text()
    assert 0 < float(score) <= 1 and first.locator('[data-score="keyword_rank"]').inner_text() == "1"
    assert first.locator('[data-score="vector_rank"]').inner_text().isdigit()
    assert -1 <= float(first.locator('[data-score="cosine"]').inner_text()) <= 1
    assert_accessible(page, "Documents (store with a search result)")

    page.get_by_label("Ranking").select_option("keyword")
    page.get_by_role("button", name="Search", exact=True).click()
    expect(first.locator('[data-score="vector_rank"]')).to_have_text("–")  # keyword only: no vector side
    assert first.locator('[data-score="keyword_rank"]').inner_text() == "1"
    assert first.get_by_test_id("hit-page").inner_text() == "Page 2"

    table_row.get_by_role("button", name=f"Remove {pdf.name}").click()
    dialog = page.get_by_role("dialog", name=f"Remove {pdf.name}?")
    assert dialog.get_by_role("checkbox").is_checked()
    dialog.get_by_role("button", name="Remove").click()
    table_row.wait_for(state="detached")
    page.get_by_text("No documents yet").wait_for()
    assert store_files(ui_server, store["id"]) == []
    assert httpx.get(f"{ui_server.base}/v1/files/{files[0]['id']}").status_code == 404


def test_drop_several_files_and_see_a_failure_at_390_px_in_the_dark(
    open_page: Callable[..., Any], ui_server: Any, tmp_path: Path
) -> None:
    store = make_store(ui_server, unique("ui-drop"))
    good = write_markdown(tmp_path, unique("notes") + ".md")
    bad = write_corrupt_pdf(tmp_path, unique("broken") + ".pdf")
    page = open_page(f"documents/{store['id']}", viewport={"width": 390, "height": 844}, init_scripts=(DARK,)).page
    page.get_by_test_id("drop-zone").wait_for()
    assert page.evaluate("document.documentElement.dataset.theme") == "dark"
    files = [
        {"name": p.name, "type": "application/octet-stream", "data": base64.b64encode(p.read_bytes()).decode()}
        for p in (good, bad)
    ]
    page.evaluate(
        """(files) => { const dt = new DataTransfer();
        for (const f of files) { const bytes = Uint8Array.from(atob(f.data), (c) => c.charCodeAt(0));
          dt.items.add(new File([bytes], f.name, {type: f.type})); }
        const zone = document.querySelector('[data-testid="drop-zone"]');
        for (const type of ['dragenter', 'dragover', 'drop'])
          zone.dispatchEvent(new DragEvent(type, {dataTransfer: dt, bubbles: true, cancelable: true})); }""",
        files,
    )
    assert wait_step(page, good.name, FINAL_STATES) == "completed"
    assert wait_step(page, bad.name, FINAL_STATES) == "failed"
    by_name = {f["id"]: f for f in store_files(ui_server, store["id"])}
    failed = [f for f in by_name.values() if f["status"] == "failed"]
    assert len(by_name) == 2 and len(failed) == 1
    reason = failed[0]["last_error"]["message"]
    assert "could not be read as a PDF" in reason
    assert upload_row(page, bad.name).locator(".error-inline").inner_text() == reason
    assert page.locator(f'tr[data-file-id="{failed[0]["id"]}"] .file-error').inner_text() == reason
    page.get_by_role("status").filter(has_text="2 of 2 files finished").wait_for()
    overflow = page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
    assert overflow <= 0, f"the store page scrolls sideways by {overflow}px at 390 px"
    assert_accessible(page, "Documents (a failed file, dark, 390 px)")
    page.get_by_role("button", name="Clear finished").click()
    upload_row(page, good.name).wait_for(state="detached")


def test_cancel_a_large_ingest_with_a_screenshot_mid_upload(
    open_page: Callable[..., Any], ui_server: Any, tmp_path: Path
) -> None:
    store = make_store(ui_server, unique("ui-cancel"))
    small = write_text_pdf(tmp_path, "quick-start.pdf", pages=2)
    marker = "Only the big manual names WIDGET-99812."
    large = write_text_pdf(tmp_path, "service-manual.pdf", pages=300, marker=marker, marker_page=300)
    page = open_page(f"documents/{store['id']}", viewport={"width": 1100, "height": 860}).page
    page.get_by_role("heading", level=2, name=store["name"]).wait_for()
    page.get_by_label("Choose files").set_input_files([str(small), str(large)])
    assert wait_step(page, small.name, FINAL_STATES) == "completed"
    step = wait_step(page, large.name, ("extracting", "chunking", "embedding"))
    assert step in ("extracting", "chunking", "embedding")
    before = bar_value(page, large.name)
    page.get_by_role("heading", name="Add documents").scroll_into_view_if_needed()
    page.evaluate("window.scrollBy(0, -8)")
    SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOT))
    after = bar_value(page, large.name)
    assert 20 < before <= after < 100, (before, after)  # the picture shows a bar partly filled
    state = upload_row(page, large.name).locator(".upload-state").inner_text()
    assert state.startswith(("Reading pages", "Splitting", "Embedding")), state
    assert_accessible(page, "Documents (mid-upload)")

    page.get_by_role("button", name=f"Cancel {large.name}").click()
    assert wait_step(page, large.name, FINAL_STATES, timeout=20_000) == "cancelled"
    statuses = sorted(f["status"] for f in store_files(ui_server, store["id"]))
    assert statuses == ["cancelled", "completed"]
    search = f"{ui_server.base}/v1/vector_stores/{store['id']}/search"
    hits = httpx.post(search, json={"query": "WIDGET-99812"}, timeout=60).json()
    assert all(hit["filename"] != large.name for hit in hits["data"])  # nothing of a cancelled file is searchable
    page.get_by_test_id("files-ready").filter(has_text="1").wait_for()


def test_cancel_during_a_slow_upload(open_page: Callable[..., Any], ui_server: Any, tmp_path: Path) -> None:
    store = make_store(ui_server, unique("ui-slow"))
    large = write_text_pdf(tmp_path, unique("slow") + ".pdf", pages=300)
    page = open_page(f"documents/{store['id']}").page
    page.get_by_test_id("drop-zone").wait_for()
    cdp = page.context.new_cdp_session(page)  # a slow link: about 64 KB/s up, so the upload takes seconds
    cdp.send("Network.enable")
    cdp.send(
        "Network.emulateNetworkConditions",
        {"offline": False, "latency": 20, "downloadThroughput": -1, "uploadThroughput": 64 * 1024},
    )
    page.get_by_label("Choose files").set_input_files(str(large))
    wait_step(page, large.name, ("uploading",))
    page.get_by_role("button", name=f"Cancel {large.name}").click()
    assert wait_step(page, large.name, FINAL_STATES, timeout=20_000) == "cancelled"
    assert page.get_by_label(f"Progress of {large.name}").count() == 0
    page.wait_for_timeout(500)
    assert large.name not in uploaded_names(ui_server)  # the aborted upload left nothing behind
    assert store_files(ui_server, store["id"]) == []
