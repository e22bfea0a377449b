"""Benchmark: the web UI in headless Debian chromium against a real appliance on loopback.

Prints one JSON line: the first render of / (ms from navigation to the first page on screen; median
of 5, cold cache each), main-thread long tasks (PerformanceObserver 'longtask') while a fake model
streams a 2,000-token markdown answer (5 runs), and the vendored assets' bytes and gzipped bytes.
Usage: python tests/bench/webui.py [--runs N]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parent / "browser"), str(HERE.parent)]

from harness import FAKE_MODELS, UIServer, launch  # noqa: E402
from measure import first_render_ms, stream_long_tasks, vendor_sizes  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as tmp:
        server = UIServer(Path(tmp), FAKE_MODELS)
        try:
            with sync_playwright() as driver:
                browser = launch(driver)
                first_render_ms(browser, server)  # warm the server, not the browser (each run is a new context)
                renders = [first_render_ms(browser, server) for _ in range(args.runs)]
                streams = [stream_long_tasks(browser, server) for _ in range(args.runs)]
                browser.close()
        finally:
            server.stop()
    longest = [s["longest_task_ms"] for s in streams]
    record = {
        "bench": "webui",
        "cpus": os.cpu_count(),
        "load_average_1m": round(os.getloadavg()[0], 2),
        "first_render_ms_median": round(statistics.median(renders), 1),
        "first_render_ms_max": round(max(renders), 1),
        "stream_tokens": 2000,
        "stream_ms_median": round(statistics.median(s["stream_ms"] for s in streams), 1),
        "stream_longest_task_ms_per_run": longest,
        "stream_runs_without_long_task": sum(1 for value in longest if value == 0),
        "stream_runs_with_task_over_50ms": sum(1 for value in longest if value > 50),
        **vendor_sizes(),
    }
    print(json.dumps(record), flush=True)


if __name__ == "__main__":
    main()
