"""Anthropic's error shape on the Messages routes: `{"type": "error", "error": {"type", "message"}}`.

The app's handlers answer every error in its one envelope; on the Messages paths a pure-ASGI
middleware re-shapes those bodies (auth, body limit, validation, domain errors, 500s alike) with
the same HTTP status, so no other route changes. Streams send the same shape as an `error` event.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

MESSAGES_PATHS = ("/v1/messages", "/messages")

# HTTP status -> Anthropic error type; statuses not listed are api_error (5xx) or invalid_request_error.
_TYPE_BY_STATUS: Mapping[int, str] = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    503: "overloaded_error",
    504: "timeout_error",
}
# A 503 that waiting cannot cure (a backend whose library is missing) is no overload.
_TYPE_BY_CODE: Mapping[str, str] = {"backend_unavailable": "api_error"}


def anthropic_error_type(status: int, code: str | None = None) -> str:
    if code in _TYPE_BY_CODE:
        return _TYPE_BY_CODE[code]
    return _TYPE_BY_STATUS.get(status, "api_error" if status >= 500 else "invalid_request_error")


def anthropic_error_body(status: int, message: str, code: str | None = None) -> dict[str, Any]:
    return {"type": "error", "error": {"type": anthropic_error_type(status, code), "message": message}}


def _reshape(body: bytes, status: int) -> bytes:
    """The app's envelope in Anthropic's shape; any other body is passed on untouched."""
    try:
        parsed = orjson.loads(body)
    except orjson.JSONDecodeError:
        return body
    error = parsed.get("error") if isinstance(parsed, dict) else None
    if not isinstance(error, dict) or not isinstance(error.get("message"), str):
        return body
    code = error.get("code") if isinstance(error.get("code"), str) else None
    return orjson.dumps(anthropic_error_body(status, error["message"], code))


def _is_json(headers: Sequence[tuple[bytes, bytes]]) -> bool:
    return any(k.lower() == b"content-type" and v.startswith(b"application/json") for k, v in headers)


class AnthropicErrorMiddleware:
    """Re-shapes JSON error responses under `paths` (exact, or below them); outermost, so it also
    sees the key check's 401, the body limit's 413 and the last-resort 500."""

    def __init__(self, app: ASGIApp, paths: Sequence[str] = MESSAGES_PATHS) -> None:
        self.app = app
        self.paths = tuple(paths)

    def applies(self, path: str) -> bool:
        return any(path == p or path.startswith(p + "/") for p in self.paths)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not self.applies(scope["path"]):
            await self.app(scope, receive, send)
            return
        held: Message | None = None
        chunks: list[bytes] = []

        async def reshaping_send(message: Message) -> None:
            nonlocal held
            if message["type"] == "http.response.start":
                if message["status"] >= 400 and _is_json(message.get("headers", [])):
                    held = message  # error bodies are small: hold the start until the body is whole
                    return
            elif message["type"] == "http.response.body" and held is not None:
                chunks.append(message.get("body", b""))
                if message.get("more_body", False):
                    return
                body = _reshape(b"".join(chunks), held["status"])
                headers = [(k, v) for k, v in held.get("headers", []) if k.lower() != b"content-length"]
                headers.append((b"content-length", str(len(body)).encode("latin-1")))
                await send({**held, "headers": headers})
                await send({"type": "http.response.body", "body": body})
                return
            await send(message)

        await self.app(scope, receive, reshaping_send)
