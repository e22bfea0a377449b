"""The bundled web UI: static files shipped inside the package, mounted on the app, no build step.

The UI talks only to the public HTTP API. Its shell (the page and its assets) is public so a
browser can load it before the user has typed an API key; everything it fetches needs the key.
"""

from __future__ import annotations

from pathlib import Path

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import FileResponse, Response
from starlette.staticfiles import StaticFiles

STATIC_DIR = Path(__file__).parent / "static"

# What the API-key layer must let through for a browser to load the shell.
SHELL_PATHS = frozenset({"/", "/favicon.ico"})
SHELL_PREFIXES = ("/static/",)


async def _index(_: Request) -> Response:
    return FileResponse(STATIC_DIR / "index.html", media_type="text/html")


async def _favicon(_: Request) -> Response:
    return FileResponse(STATIC_DIR / "favicon.svg", media_type="image/svg+xml")


def mount(app: Starlette) -> None:
    """Serve the UI at / and its assets under /static."""
    app.add_route("/", _index, methods=["GET"], include_in_schema=False)
    app.add_route("/favicon.ico", _favicon, methods=["GET"], include_in_schema=False)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
