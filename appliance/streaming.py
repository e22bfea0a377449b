"""Server-sent events for streamed generations, and the rules that make streams honest.

A stream is primed before the response starts, so errors known up front (unknown model, prompt too
long, queue full) are ordinary HTTP errors. An error after the first byte is sent as one `data:`
event in the error envelope, then `data: [DONE]`. A client that goes away cancels the generation.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Awaitable
from typing import Any, TypeVar

import orjson
from fastapi import Request
from fastapi.responses import StreamingResponse

from appliance.errors import domain_status, error_body
from inference.errors import InferenceError

logger = logging.getLogger(__name__)

T = TypeVar("T")

DONE = b"data: [DONE]\n\n"


async def prime(events: AsyncIterator[T]) -> AsyncIterator[T]:
    """Pull the first event now, so failures before any output surface as HTTP errors; the
    returned iterator replays it, then the rest, and closes the source however it ends."""
    try:
        first = await anext(events)
    except BaseException:
        await events.aclose()  # type: ignore[attr-defined]
        raise

    async def replay() -> AsyncIterator[T]:
        try:
            yield first
            async for event in events:
                yield event
        finally:
            await events.aclose()  # type: ignore[attr-defined]

    return replay()


def json_bytes(payload: Any) -> bytes:
    """JSON of ``payload``: orjson's (fast), or the standard library's for what orjson cannot write,
    integers beyond 64 bits, which clients may put in free-form objects (tool parameters, metadata)."""
    try:
        return orjson.dumps(payload)
    except TypeError:
        return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()


def encode_event(payload: Any) -> bytes:
    return b"data: " + json_bytes(payload) + b"\n\n"


async def _sse_body(chunks: AsyncIterator[dict[str, Any]]) -> AsyncIterator[bytes]:
    try:
        async for chunk in chunks:
            yield encode_event(chunk)
    except InferenceError as exc:
        status, type_ = domain_status(exc)
        message = exc.message if status != 500 else "internal error"
        logger.warning("event=stream_error code=%s status=%d", exc.code, status)
        yield encode_event(error_body(message, type_, exc.param, exc.code))
    except Exception:
        logger.exception("event=stream_failed")
        yield encode_event(error_body("internal error", "server_error", None, "internal_error"))
    yield DONE


def sse_response(chunks: AsyncIterator[dict[str, Any]]) -> StreamingResponse:
    return StreamingResponse(
        _sse_body(chunks),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


async def cancel_on_disconnect(request: Request, work: Awaitable[T]) -> T:
    """Run `work`, cancelling it if the client disconnects first (non-streaming requests)."""
    task = asyncio.ensure_future(work)

    async def watch() -> None:
        while True:
            message = await request.receive()
            if message["type"] == "http.disconnect":
                task.cancel()
                return

    watcher = asyncio.ensure_future(watch())
    try:
        return await task
    finally:
        watcher.cancel()
