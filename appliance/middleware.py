"""The outermost request layer: correlation IDs, the access log, and the last-resort error boundary.

Pure ASGI (no BaseHTTPMiddleware) so streaming responses pass through untouched. Whatever escapes
the app becomes a 500 "internal error" envelope, with the traceback logged and never sent.
"""

from __future__ import annotations

import logging
import re
import time
import uuid

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from appliance.errors import http_error_response, internal_error_response
from appliance.logs import correlation_id
from inference.services.metrics import Metrics

logger = logging.getLogger(__name__)

CORRELATION_HEADER = "x-correlation-id"
# A client-chosen ID is echoed only when it is short and plain, so it cannot forge log lines.
_VALID_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")


class RequestContextMiddleware:
    def __init__(self, app: ASGIApp, metrics: Metrics | None = None) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        cid = _incoming_id(scope) or uuid.uuid4().hex
        token = correlation_id.set(cid)
        started = time.perf_counter()
        status = 500
        response_started = False

        async def send_with_id(message: Message) -> None:
            nonlocal status, response_started
            if message["type"] == "http.response.start":
                response_started = True
                status = message["status"]
                headers = [(k, v) for k, v in message.get("headers", []) if k.lower() != b"x-correlation-id"]
                headers.append((b"x-correlation-id", cid.encode("latin-1")))
                message = {**message, "headers": headers}
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except Exception as exc:  # the boundary: nothing escapes as a bare traceback
            if isinstance(exc, HTTPException):
                response = http_error_response(exc)
            else:
                logger.exception("event=unhandled_error method=%s path=%s", scope["method"], scope["path"])
                response = internal_error_response()
            if not response_started:
                await response(scope, receive, send_with_id)
            status = response.status_code
        finally:
            elapsed = time.perf_counter() - started
            logger.info(
                "event=request method=%s path=%s status=%d ms=%.1f", scope["method"], scope["path"], status, elapsed * 1000
            )
            if self.metrics is not None:
                self.metrics.observe_request(scope["method"], route_template(scope), status, elapsed)
            correlation_id.reset(token)


def route_template(scope: Scope) -> str:
    """The matched route as written (`/v1/models/{model_id}`), so metrics labels stay few."""
    route = scope.get("route")
    path_format = getattr(route, "path_format", None)
    if not path_format:
        return "unmatched"
    rendered = path_format
    for name, value in (scope.get("path_params") or {}).items():
        rendered = rendered.replace("{" + name + "}", str(value)).replace("{" + name + ":path}", str(value))
    path: str = scope["path"]
    prefix = path[: -len(rendered)] if rendered and path.endswith(rendered) else ""
    return prefix + path_format


def _incoming_id(scope: Scope) -> str | None:
    for key, value in scope.get("headers", ()):
        if key == b"x-correlation-id":
            text = value.decode("latin-1").strip()
            return text if _VALID_ID.fullmatch(text) else None
    return None
