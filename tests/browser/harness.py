"""The browser tests' harness: a real appliance process, headless Debian chromium through Playwright,
a guard that fails a test on any request leaving the appliance, and an axe-core accessibility check.

Without chromium or playwright the browser tests skip with what to install; under CI (`CI` or
`APPLIANCE_REQUIRE_BROWSER` set, as .ci/run does) they fail instead, so CI can never skip them.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from support import free_port

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
CHROMIUM = os.environ.get("APPLIANCE_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
AXE = HERE / "vendor" / "axe.min.js"
SERIOUS = ("serious", "critical")
LOCAL_SCHEMES = ("data", "blob", "about", "chrome", "chrome-extension", "devtools")

# Chat models most journeys use; every one answers instantly unless said otherwise.
FAKE_MODELS = {
    "chatty": "name: chatty\nbackend: fake\nknown_usecases: [chat]\ncontext_size: 8192\n",
    # ~30 words at 40 ms a byte: a stream that lasts long enough to be stopped.
    "slowpoke": "name: slowpoke\nbackend: fake\nknown_usecases: [chat]\ncontext_size: 8192\noptions: ['token_delay_ms:40']\n",
    "broken": "name: broken\nbackend: fake\nknown_usecases: [chat]\noptions: ['fail_load:true']\n",
    "citer": "name: citer\nbackend: citing-fake\nknown_usecases: [chat]\ncontext_size: 8192\n",
    "writer": "name: writer\nbackend: markdown-fake\nknown_usecases: [chat]\ncontext_size: 65536\noptions: ['tokens:2000']\n",
}


def require_browser() -> None:
    """Skip (or, in CI, fail) when the browser or Playwright is missing."""
    missing = []
    if not Path(CHROMIUM).exists():
        missing.append(f"Debian's chromium at {CHROMIUM} (apt-get install -y chromium)")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        missing.append("playwright for Python (pip install -e '.[test]')")
    if not missing:
        return
    message = "browser tests need " + " and ".join(missing)
    if os.environ.get("CI") or os.environ.get("APPLIANCE_REQUIRE_BROWSER"):
        pytest.fail(message + " (CI must run them, not skip them)", pytrace=False)
    pytest.skip(message)


class UIServer:
    """`appliance run` (through tests/browser/serve.py, which adds the fake backends) on a free port."""

    def __init__(self, root: Path, models: dict[str, str], *args: str, builtin: bool = False) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.host = f"127.0.0.1:{self.port}"
        models_path = root / "models"
        models_path.mkdir(parents=True, exist_ok=True)
        for name, text in models.items():
            (models_path / f"{name}.yaml").write_text(text, encoding="utf-8")
        self.log = root / f"server-{self.port}.log"
        env = {k: v for k, v in os.environ.items() if not k.startswith(("APPLIANCE_", "LOCALAI_"))}
        env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "tests"), str(ROOT)])
        argv = [
            sys.executable, str(HERE / "serve.py"), "run",
            "--address", self.host, "--models-path", str(models_path), "--data-path", str(root / "data"),
            "--builtin-models" if builtin else "--no-builtin-models", *args,
        ]
        with self.log.open("wb") as out:
            self.proc = subprocess.Popen(argv, cwd=root, env=env, stdout=out, stderr=subprocess.STDOUT)
        self._wait_healthy(timeout=90)

    def _wait_healthy(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"server exited {self.proc.returncode}:\n{self.output()}")
            try:
                if httpx.get(self.base + "/healthz", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        self.stop()
        raise AssertionError(f"server not healthy after {timeout}s:\n{self.output()}")

    def url(self, route: str = "chat") -> str:
        return f"{self.base}/#/{route}"

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


class RequestGuard:
    """Aborts and records every request the page makes to a host other than the appliance's."""

    def __init__(self, allowed_host: str) -> None:
        self.allowed = allowed_host
        self.foreign: list[str] = []

    def handle(self, route: Any) -> None:
        url = route.request.url
        parts = urlsplit(url)
        # data:, blob: and the browser's own pages (its PDF viewer) never leave the machine.
        if parts.scheme in LOCAL_SCHEMES or parts.netloc == self.allowed:
            route.continue_()
            return
        self.foreign.append(url)
        route.abort("blockedbyclient")

    def check(self) -> None:
        assert not self.foreign, f"the page requested other hosts than the appliance: {self.foreign}"


def launch(playwright: Any) -> Any:
    """Headless chromium with a fresh temporary profile (Playwright makes a new user-data-dir per launch)."""
    return playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)


def assert_accessible(page: Any, what: str) -> list[dict[str, Any]]:
    """Run axe-core (injected from the vendored file, never served by the app) on the page as it is
    now; fail on any serious or critical violation. Returns all violations found (for reports)."""
    if not page.evaluate("() => typeof window.axe !== 'undefined'"):
        page.add_script_tag(path=str(AXE))
    result = page.evaluate("async () => (await axe.run(document, {resultTypes: ['violations']})).violations")
    bad = [v for v in result if v.get("impact") in SERIOUS]
    summary = [
        f"{v['impact']} {v['id']}: {v['help']} -> " + "; ".join(n["target"][0] if n["target"] else "?" for n in v["nodes"][:5])
        for v in bad
    ]
    assert not bad, f"axe on {what}:\n" + "\n".join(summary)
    return result


def long_tasks_observer() -> str:
    """Script (for add_init_script) that collects main-thread long tasks in window.__longTasks."""
    return (
        "window.__longTasks = [];"
        "new PerformanceObserver((list) => { for (const e of list.getEntries())"
        " window.__longTasks.push({start: e.startTime, duration: e.duration}); })"
        ".observe({type: 'longtask', buffered: true});"
    )


def saved_key_script(key: str) -> str:
    """Script (for add_init_script) that has the API key saved before the page loads."""
    return f"localStorage.setItem('appliance.apiKey', {json.dumps(key)});"
