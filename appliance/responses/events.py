"""Typed server-sent events as the Responses API sends them: `event: <type>` beside each `data:`.

Unlike chat completions there is no `data: [DONE]`: a stream ends after `response.completed`,
`response.incomplete` or `error`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from fastapi.responses import StreamingResponse

from appliance.streaming import json_bytes


def encode(event: dict[str, Any]) -> bytes:
    return b"event: " + str(event["type"]).encode() + b"\ndata: " + json_bytes(event) + b"\n\n"


async def _body(events: AsyncIterator[dict[str, Any]]) -> AsyncIterator[bytes]:
    try:
        async for event in events:
            yield encode(event)
    finally:
        await events.aclose()  # type: ignore[attr-defined]


def event_stream_response(events: AsyncIterator[dict[str, Any]]) -> StreamingResponse:
    return StreamingResponse(
        _body(events),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )
