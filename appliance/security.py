"""Secure defaults at the door: API keys, the request-body limit, CORS, and the exposed-bind warning.

Keys are accepted from `Authorization: Bearer`, `x-api-key` and `xi-api-key` and compared in
constant time against every configured key. With keys set, every route needs one except the
health probes and the web UI's static shell, which the app names when it builds this layer.
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from fastapi import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from appliance.config import Settings
from appliance.config_values import read_keys_file
from appliance.errors import error_response

logger = logging.getLogger(__name__)

KEY_HEADERS = (b"authorization", b"x-api-key", b"xi-api-key")


@dataclass(frozen=True)
class PublicRoutes:
    """Routes that answer without a key: exact paths, and GET/HEAD paths under the UI prefixes."""

    paths: frozenset[str]
    get_paths: frozenset[str] = frozenset()
    get_prefixes: tuple[str, ...] = ()

    def allows(self, method: str, path: str) -> bool:
        if path in self.paths:
            return True
        if method not in ("GET", "HEAD"):
            return False
        return path in self.get_paths or any(path.startswith(p) for p in self.get_prefixes)


def load_api_keys(settings: Settings) -> tuple[str, ...]:
    """Keys from the settings and the optional keys file, deduplicated, order kept."""
    keys = list(settings.api_keys)
    if settings.api_keys_file is not None:
        try:
            keys.extend(read_keys_file(settings.api_keys_file))
        except OSError as exc:
            raise ValueError(f"cannot read the API keys file {settings.api_keys_file}: {exc.strerror}") from exc
    return tuple(dict.fromkeys(k for k in keys if k))


def presented_key(scope: Scope) -> str | None:
    for name, value in scope.get("headers", ()):
        if name not in KEY_HEADERS:
            continue
        text = value.decode("latin-1").strip()
        if name == b"authorization":
            scheme, _, token = text.partition(" ")
            if scheme.lower() != "bearer":
                continue
            text = token.strip()
        if text:
            return text
    return None


def key_matches(presented: str, keys: Iterable[str]) -> bool:
    """Constant-time comparison against every key (no early exit that would leak which one)."""
    given = presented.encode("utf-8")
    match = False
    for key in keys:
        match |= hmac.compare_digest(given, key.encode("utf-8"))
    return match


class ApiKeyMiddleware:
    def __init__(self, app: ASGIApp, keys: tuple[str, ...], public: PublicRoutes) -> None:
        self.app = app
        self.keys = keys
        self.public = public

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket") or not self.keys:
            await self.app(scope, receive, send)
            return
        if scope["type"] == "http" and self.public.allows(scope["method"], scope["path"]):
            await self.app(scope, receive, send)
            return
        key = presented_key(scope)
        if key is not None and key_matches(key, self.keys):
            await self.app(scope, receive, send)
            return
        if scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1008})
            return
        message = "missing API key" if key is None else "invalid API key"
        response = error_response(
            401,
            f"{message}: send it as 'Authorization: Bearer <key>' (or the x-api-key header)",
            "authentication_error",
            code="invalid_api_key",
            headers={"WWW-Authenticate": "Bearer"},
        )
        await response(scope, receive, send)


class BodyLimitMiddleware:
    """413 for bodies over the limit: at once from Content-Length, or while a chunked body streams."""

    def __init__(self, app: ASGIApp, limit_bytes: int, path_limits: Mapping[str, int] | None = None) -> None:
        self.app = app
        self.limit = limit_bytes
        self.path_limits = dict(path_limits or {})  # exact paths with their own limit (file uploads)

    @staticmethod
    def _too_large(limit: int) -> str:
        return f"request body is larger than the upload limit of {limit // (1024 * 1024)} MB"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.path_limits.get(scope.get("path", ""), self.limit)
        declared = _content_length(scope)
        if declared == -1:
            response = error_response(400, "invalid Content-Length header", "invalid_request_error", code="invalid_request")
            await response(scope, receive, send)
            return
        if declared is not None and declared > limit:
            response = error_response(413, self._too_large(limit), "invalid_request_error", code="payload_too_large")
            await response(scope, receive, send)
            return
        received = 0

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    # FastAPI re-raises HTTPException from body parsing as is; the handler envelopes it.
                    raise HTTPException(413, detail=self._too_large(limit))
            return message

        await self.app(scope, counting_receive, send)


def _content_length(scope: Scope) -> int | None:
    """The declared length, None when absent, -1 when malformed."""
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            text = value.decode("latin-1").strip()
            return int(text) if text.isdigit() else -1
    return None


def cors_middleware(settings: Settings) -> Middleware | None:
    """CORS only when asked for, and then only for the listed origins."""
    if not settings.cors:
        return None
    if not settings.cors_allow_origins:
        logger.warning("event=cors_without_origins hint='--cors is on but no --cors-allow-origins: no origin is allowed'")
        return None
    return Middleware(
        CORSMiddleware,
        allow_origins=list(settings.cors_allow_origins),
        allow_methods=["GET", "POST", "PUT", "DELETE", "OPTIONS"],
        allow_headers=["Authorization", "Content-Type", "X-API-Key", "XI-API-Key", "X-Correlation-ID"],
        expose_headers=["X-Correlation-ID", "Retry-After"],
        allow_credentials=False,
        max_age=600,
    )


def warn_if_exposed(settings: Settings, keys: tuple[str, ...]) -> None:
    if keys or settings.binds_loopback_only:
        return
    banner = "!" * 78
    logger.warning(
        "%s\nevent=exposed_without_keys address=%s: this server listens beyond this machine and anyone "
        "who can reach it may use every model and read every store. Set --api-keys (or "
        "APPLIANCE_API_KEYS) or bind 127.0.0.1.\n%s",
        banner,
        settings.address,
        banner,
    )
