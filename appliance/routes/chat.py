"""POST /v1/chat/completions: OpenAI chat, streamed (SSE) or whole."""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from appliance.protocol.chat import (
    AssistantMessage,
    ChatChoice,
    ChatCompletion,
    ChatCompletionRequest,
    ToolCallFunction,
    ToolCallOut,
)
from appliance.protocol.generation import TimingsOut, Usage
from appliance.services import Services, services
from appliance.streaming import cancel_on_disconnect, prime, sse_response
from inference.services.textgen import Delta, Done, TextEvent, ToolCalls

router = APIRouter(tags=["chat"])


@router.post("/chat/completions", response_model=ChatCompletion)
async def chat_completions(
    body: ChatCompletionRequest, request: Request, svc: Services = Depends(services)
) -> Response | ChatCompletion:
    config = svc.text.model_config(body.model)
    events = svc.text.chat(
        body.model,
        body.message_dicts(),
        body.to_sampling(config),
        tools=body.tool_dicts(),
        tool_choice=body.tool_choice_value(),
    )
    completion_id, created = f"chatcmpl-{uuid.uuid4().hex}", int(time.time())
    if body.stream:
        primed = await prime(events)
        include_usage = bool(body.stream_options and body.stream_options.include_usage)
        return sse_response(_chunks(primed, completion_id, created, body.model, include_usage))
    (result,) = await cancel_on_disconnect(request, svc.text.collect(events, config))
    calls = [
        ToolCallOut(id=c.id, function=ToolCallFunction(name=c.name, arguments=c.arguments)) for c in result.tool_calls
    ]
    return ChatCompletion(
        id=completion_id,
        created=created,
        model=body.model,
        choices=[
            ChatChoice(
                index=0,
                message=AssistantMessage(content=result.text, tool_calls=calls or None),
                finish_reason=result.finish_reason,
            )
        ],
        usage=Usage.of(result.prompt_tokens, result.completion_tokens),
        timings=TimingsOut(**vars(result.timings)),
    )


async def _chunks(
    events: AsyncIterator[TextEvent],
    completion_id: str,
    created: int,
    model: str,
    include_usage: bool,
) -> AsyncIterator[dict[str, Any]]:
    """OpenAI's chunk order: role, content deltas, finish, optional usage."""

    def chunk(delta: dict[str, Any], finish_reason: str | None = None, **extra: Any) -> dict[str, Any]:
        body: dict[str, Any] = {
            "id": completion_id,
            "object": "chat.completion.chunk",
            "created": created,
            "model": model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason, "logprobs": None}],
        }
        if include_usage:
            body["usage"] = None
        body.update(extra)
        return body

    yield chunk({"role": "assistant", "content": ""})
    try:
        async for event in events:
            if isinstance(event, Delta):
                yield chunk({"content": event.text})
            elif isinstance(event, ToolCalls):
                calls = [
                    {"index": i, "id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}}
                    for i, c in enumerate(event.calls)
                ]
                yield chunk({"tool_calls": calls})
            elif isinstance(event, Done):
                yield chunk({}, event.finish_reason, timings=vars(event.timings))
                if include_usage:
                    usage = Usage.of(event.prompt_tokens, event.completion_tokens).model_dump()
                    yield {**chunk({}), "choices": [], "usage": usage}
    finally:
        await events.aclose()  # type: ignore[attr-defined]
