"""Fixtures for the browser tests (plain pytest fixtures, not the pytest-playwright plugin).

`ui_server`: one appliance process for the session with the fake chat models of harness.FAKE_MODELS
and the built-in models (MiniLM embeds documents). `make_server(models, *flags)`: a server of a test's
own (e.g. with --api-keys). `page`: a fresh browser context and page per test, guarded so any request
to another host, or an uncaught page error, fails the test.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from harness import FAKE_MODELS, RequestGuard, UIServer, launch, require_browser


@pytest.fixture(scope="session")
def playwright_driver() -> Iterator[Any]:
    require_browser()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as driver:
        yield driver


@pytest.fixture(scope="session")
def browser(playwright_driver: Any) -> Iterator[Any]:
    instance = launch(playwright_driver)
    yield instance
    instance.close()


@pytest.fixture(scope="session")
def ui_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[UIServer]:
    require_browser()
    server = UIServer(tmp_path_factory.mktemp("ui-server"), FAKE_MODELS, builtin=True)
    yield server
    server.stop()


@pytest.fixture
def make_server(tmp_path: Path) -> Iterator[Callable[..., UIServer]]:
    started: list[UIServer] = []

    def start(models: dict[str, str] | None = None, *flags: str) -> UIServer:
        server = UIServer(tmp_path / f"server-{len(started)}", FAKE_MODELS if models is None else models, *flags)
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


class BrowserPage:
    """A page in a fresh context, bound to the server its guard allows."""

    def __init__(self, browser: Any, server: UIServer, viewport: dict[str, int], init_scripts: list[str]) -> None:
        self.server = server
        self.guard = RequestGuard(server.host)
        self.errors: list[str] = []
        self.context = browser.new_context(viewport=viewport, service_workers="block")
        self.context.set_default_timeout(15_000)
        for script in init_scripts:
            self.context.add_init_script(script)
        self.context.route("**/*", self.guard.handle)
        self.page = self.context.new_page()
        self.page.on("pageerror", lambda error: self.errors.append(str(error)))

    def open(self, route: str = "chat") -> Any:
        self.page.goto(self.server.url(route))
        self.page.get_by_role("navigation", name="Pages").wait_for()
        return self.page

    def close(self) -> None:
        self.context.close()
        self.guard.check()
        assert not self.errors, f"uncaught errors in the page: {self.errors}"


@pytest.fixture
def open_page(browser: Any, ui_server: UIServer) -> Iterator[Callable[..., BrowserPage]]:
    """open_page(server=ui_server, route="chat", viewport=..., init_scripts=[...]) -> BrowserPage, opened."""
    pages: list[BrowserPage] = []

    def open_(
        route: str = "chat",
        *,
        server: UIServer | None = None,
        viewport: dict[str, int] | None = None,
        init_scripts: tuple[str, ...] = (),
    ) -> BrowserPage:
        handle = BrowserPage(browser, server or ui_server, viewport or {"width": 1280, "height": 800}, list(init_scripts))
        pages.append(handle)
        handle.open(route)
        return handle

    yield open_
    for handle in pages:
        handle.close()


@pytest.fixture
def page(open_page: Callable[..., BrowserPage]) -> Any:
    """The UI's chat page on the session server, in a fresh guarded context."""
    return open_page("chat").page
