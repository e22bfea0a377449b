"""The bundled web UI: static files shipped inside the package, mounted on the app, no build step.

The UI talks only to the public HTTP API. Its shell (the page and its assets) is public so a
browser can load it before the user has typed an API key; everything it fetches needs the key.
Asset URLs carry a token derived from the files (`/static/v<hash>/js/main.js`), so they are cached
for a year while the page itself is never cached: an upgrade, or an edited file, gets new URLs.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, Response
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

STATIC_DIR = Path(__file__).parent / "static"

# What the API-key layer must let through for a browser to load the shell.
SHELL_PATHS = frozenset({"/", "/favicon.ico"})
SHELL_PREFIXES = ("/static/",)

ASSETS_MARKER = "{{ASSETS}}"
_TOKEN = re.compile(r"^v[0-9a-f]{12}$")
LONG_CACHE = "public, max-age=31536000, immutable"
NO_CACHE = "no-cache"


def asset_token(root: Path = STATIC_DIR) -> str:
    """A short hash of every static file's path, size and modification time: changes with any edit."""
    digest = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        stat = path.stat()
        digest.update(f"{path.relative_to(root).as_posix()}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
    return "v" + digest.hexdigest()[:12]


class VersionedStaticFiles(StaticFiles):
    """/static/<token>/<path> is served with a year's cache, plain /static/<path> is revalidated each time."""

    async def get_response(self, path: str, scope: Scope) -> Response:
        first, _, rest = path.partition("/")
        versioned = bool(_TOKEN.match(first)) and bool(rest)
        response = await super().get_response(rest if versioned else path, scope)
        if response.status_code in (200, 304):
            response.headers["Cache-Control"] = LONG_CACHE if versioned else NO_CACHE
        return response


async def _index(_: Request) -> Response:
    page = (STATIC_DIR / "index.html").read_text(encoding="utf-8")
    page = page.replace(ASSETS_MARKER, f"/static/{asset_token()}")
    return HTMLResponse(page, headers={"Cache-Control": NO_CACHE})


async def _favicon(_: Request) -> Response:
    return FileResponse(STATIC_DIR / "favicon.svg", media_type="image/svg+xml")


def mount(app: Starlette) -> None:
    """Serve the UI at / and its assets under /static."""
    app.add_route("/", _index, methods=["GET"], include_in_schema=False)
    app.add_route("/favicon.ico", _favicon, methods=["GET"], include_in_schema=False)
    app.mount("/static", VersionedStaticFiles(directory=STATIC_DIR), name="static")
