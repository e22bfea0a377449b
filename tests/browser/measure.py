"""Measurements of the UI in a real browser, shared by tests/browser/test_performance.py (which holds
them to their budgets) and tests/bench/webui.py (which prints them): the first render of / on
loopback, main-thread long tasks while an answer of 2,000 tokens streams, the vendored assets' size."""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any

from harness import ROOT, RequestGuard, UIServer, long_tasks_observer

VENDOR_JSON = ROOT / "webui" / "static" / "vendor" / "VENDOR.json"


def first_render_ms(browser: Any, server: UIServer) -> float:
    """Milliseconds from navigation start to the first page (Chat) rendered by the app, cold cache."""
    context = browser.new_context()
    try:
        context.route("**/*", RequestGuard(server.host).handle)
        page = context.new_page()
        page.goto(server.base + "/")
        page.wait_for_function("() => performance.getEntriesByName('appliance:first-page').length > 0")
        page.get_by_role("log", name="Conversation").wait_for()
        return float(page.evaluate("performance.getEntriesByName('appliance:first-page')[0].startTime"))
    finally:
        context.close()


def stream_long_tasks(browser: Any, server: UIServer, model: str = "writer") -> dict[str, Any]:
    """Stream one long markdown answer; the main thread's long tasks (PerformanceObserver) meanwhile."""
    context = browser.new_context()
    try:
        context.route("**/*", RequestGuard(server.host).handle)
        context.add_init_script(long_tasks_observer())
        page = context.new_page()
        page.goto(server.url("chat"))
        page.get_by_label("Model").select_option(model)
        box = page.get_by_role("textbox", name="Message", exact=True)
        box.fill("write a long answer")
        page.evaluate("() => { window.__longTasks = []; }")
        started = page.evaluate("performance.now()")
        box.press("Enter")
        answer = page.get_by_role("article", name="Answer").last
        page.wait_for_function(
            "() => { const a = [...document.querySelectorAll('article[aria-label=Answer]')].pop();"
            " return a && a.getAttribute('aria-busy') === 'false' && a.querySelector('.markdown').dataset.state === 'done'; }",
            timeout=120_000,
        )
        ended = page.evaluate("performance.now()")
        page.wait_for_function(  # finished code blocks are highlighted (after the stream, at the latest)
            "() => { const a = [...document.querySelectorAll('article[aria-label=Answer]')].pop();"
            " return a.querySelectorAll('pre code').length === a.querySelectorAll('pre code.hljs').length; }"
        )
        tasks = page.evaluate("window.__longTasks")
        stats = answer.locator(".message-stats").inner_text()
        errors = answer.locator(".message-error").all_inner_texts()
        if not blocks_done(answer):
            errors.append("nothing rendered: " + answer.inner_text()[:300])
        blocks = answer.locator(".md-block").count()
        code = answer.locator("pre code.hljs").count()
        return {
            "stream_ms": round(ended - started, 1),
            "long_tasks": len(tasks),
            "long_task_offsets_ms": [[round(t["start"] - started), round(t["duration"])] for t in tasks],
            "longest_task_ms": round(max((t["duration"] for t in tasks), default=0.0), 1),
            "blocks": blocks,
            "highlighted_code_blocks": code,
            "stats": stats,
            "errors": errors,
        }
    finally:
        context.close()


def blocks_done(answer: Any) -> int:
    return int(answer.locator(".md-block").count())


def vendor_sizes(vendor_json: Path = VENDOR_JSON) -> dict[str, int]:
    """Bytes and gzipped bytes of the vendored files the app serves (each file alone, and all as one)."""
    files = [entry for entry in json.loads(vendor_json.read_text())["files"] if entry["use"] == "app"]
    data = b"".join((ROOT / entry["file"]).read_bytes() for entry in files)
    return {
        "vendor_files": len(files),
        "vendor_bytes": sum(entry["bytes"] for entry in files),
        "vendor_gzip_bytes": sum(entry["gzip_bytes"] for entry in files),
        "vendor_gzip_bytes_as_one": len(gzip.compress(data, 9, mtime=0)),
    }
