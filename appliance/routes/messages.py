"""POST /v1/messages: Anthropic's Messages API, whole or streamed, on the same chat service as
/v1/chat/completions (the official `anthropic` client works with `base_url` pointing here).

`x-api-key` carries the key as the client sends it; `anthropic-version` and `anthropic-beta` are
accepted and not needed. Errors take Anthropic's shape (see appliance.anthropic_errors).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import AsyncIterator
from typing import Any

import orjson
from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response, StreamingResponse

from appliance.anthropic_errors import anthropic_error_body
from appliance.errors import MODEL_ERRORS, domain_status, error_responses
from appliance.openapi import event_stream
from appliance.protocol.messages import (
    AnthropicError,
    MessageResponse,
    MessagesRequest,
    MessageUsage,
    TextOut,
    ToolUseOut,
    tool_use_id,
)
from appliance.services import Services, services
from appliance.streaming import cancel_on_disconnect, prime
from inference.errors import InferenceError
from inference.services.textgen import Delta, Done, TextEvent, ToolCalls

logger = logging.getLogger(__name__)

router = APIRouter(tags=["messages"])


@router.post(
    "/messages",
    response_model=MessageResponse,
    responses=error_responses(*MODEL_ERRORS, model=AnthropicError)
    | {200: event_stream("The message, or with `stream: true` Anthropic's events (message_start ... message_stop)")},
)
async def create_message(
    body: MessagesRequest, request: Request, svc: Services = Depends(services)
) -> Response | MessageResponse:
    config = svc.text.model_config(body.model)
    events = svc.text.chat(
        body.model,
        body.message_dicts(),
        body.to_sampling(config),
        tools=body.tool_dicts(),
        tool_choice=body.tool_choice_value(),
    )
    message_id = f"msg_{uuid.uuid4().hex}"
    if body.stream:
        primed = await prime(events)
        return StreamingResponse(
            _sse_body(_stream_events(primed, body, message_id)),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )
    (result,) = await cancel_on_disconnect(request, svc.text.collect(events, config))
    content: list[TextOut | ToolUseOut] = [ToolUseOut.of(call) for call in result.tool_calls]
    if result.text or not content:
        content.insert(0, TextOut(text=result.text or ""))
    stop_reason, stop_sequence = body.stop_reason(result.finish_reason, result.stop_sequence)
    return MessageResponse(
        id=message_id,
        model=body.model,
        content=content,
        stop_reason=stop_reason,
        stop_sequence=stop_sequence,
        usage=MessageUsage(input_tokens=result.prompt_tokens, output_tokens=result.completion_tokens),
    )


async def _stream_events(
    events: AsyncIterator[TextEvent], body: MessagesRequest, message_id: str
) -> AsyncIterator[dict[str, Any]]:
    """Anthropic's event order: message_start, ping, per block start/deltas/stop, message_delta, message_stop.

    A text block opens with the first text; tool calls follow as tool_use blocks, each with its
    whole input as one `input_json_delta`. The prompt's token count is known only at the end, so
    message_start says 0 and message_delta carries both counts (the client takes the later one).
    """
    message = {
        "id": message_id,
        "type": "message",
        "role": "assistant",
        "model": body.model,
        "content": [],
        "stop_reason": None,
        "stop_sequence": None,
        "usage": {"input_tokens": 0, "output_tokens": 0},
    }
    yield {"type": "message_start", "message": message}
    yield {"type": "ping"}
    index = 0
    text_open = False
    try:
        async for event in events:
            if isinstance(event, Delta):
                if not text_open:
                    yield _text_block_start(index)
                    text_open = True
                text = {"type": "text_delta", "text": event.text}
                yield {"type": "content_block_delta", "index": index, "delta": text}
            elif isinstance(event, ToolCalls):
                if text_open:
                    yield {"type": "content_block_stop", "index": index}
                    index, text_open = index + 1, False
                for call in event.calls:
                    block = {"type": "tool_use", "id": tool_use_id(call.id), "name": call.name, "input": {}}
                    yield {"type": "content_block_start", "index": index, "content_block": block}
                    delta = {"type": "input_json_delta", "partial_json": call.arguments}
                    yield {"type": "content_block_delta", "index": index, "delta": delta}
                    yield {"type": "content_block_stop", "index": index}
                    index += 1
            elif isinstance(event, Done):
                if text_open or index == 0:  # a reply with no text at all still has its (empty) text block
                    if not text_open:
                        yield _text_block_start(index)
                    yield {"type": "content_block_stop", "index": index}
                stop_reason, stop_sequence = body.stop_reason(event.finish_reason, event.stop_sequence)
                yield {
                    "type": "message_delta",
                    "delta": {"stop_reason": stop_reason, "stop_sequence": stop_sequence},
                    "usage": {"input_tokens": event.prompt_tokens, "output_tokens": event.completion_tokens},
                }
                yield {"type": "message_stop"}
    finally:
        await events.aclose()  # type: ignore[attr-defined]


def _text_block_start(index: int) -> dict[str, Any]:
    return {"type": "content_block_start", "index": index, "content_block": {"type": "text", "text": ""}}


def _event(payload: dict[str, Any]) -> bytes:
    return b"event: " + payload["type"].encode() + b"\ndata: " + orjson.dumps(payload) + b"\n\n"


async def _sse_body(events: AsyncIterator[dict[str, Any]]) -> AsyncIterator[bytes]:
    """Named SSE events; a failure after the first byte is one `error` event in Anthropic's shape."""
    try:
        async for payload in events:
            yield _event(payload)
    except InferenceError as exc:
        status, _ = domain_status(exc)
        message = exc.message if status != 500 else "internal error"
        logger.warning("event=stream_error code=%s status=%d", exc.code, status)
        yield _event(anthropic_error_body(status, message, exc.code))
    except Exception:
        logger.exception("event=stream_failed")
        yield _event(anthropic_error_body(500, "internal error"))
