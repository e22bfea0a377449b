"""POST /v1/completions (streamed or whole) and POST /v1/edits."""

from __future__ import annotations

import time
import uuid
from dataclasses import replace
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from appliance.errors import MODEL_ERRORS, error_responses
from appliance.openapi import event_stream
from appliance.protocol.completions import Completion, CompletionChoice, CompletionRequest, Edit, EditChoice, EditRequest
from appliance.protocol.generation import TimingsOut, Usage
from appliance.services import Services, services
from appliance.streaming import cancel_on_disconnect, prime, sse_response
from inference.services.textgen import Delta, Done, TextEvent

router = APIRouter(tags=["completions"])


@router.post(
    "/completions",
    response_model=Completion,
    responses=error_responses(*MODEL_ERRORS)
    | {200: event_stream("The completion, or with `stream: true` its chunks as server-sent events then `[DONE]`")},
)
async def completions(
    body: CompletionRequest, request: Request, svc: Services = Depends(services)
) -> Response | Completion:
    config = svc.text.model_config(body.model)
    params = body.to_sampling(config)
    if body.max_tokens is None and config.parameters.max_tokens is None:
        params = replace(params, max_tokens=16)  # OpenAI's default for this endpoint
    events = svc.text.complete(body.model, body.prompts(), params, echo=body.echo)
    completion_id, created = f"cmpl-{uuid.uuid4().hex}", int(time.time())
    if body.stream:
        primed = await prime(events)
        include_usage = bool(body.stream_options and body.stream_options.include_usage)
        return sse_response(_chunks(primed, completion_id, created, body.model, include_usage))
    results = await cancel_on_disconnect(request, svc.text.collect(events, config))
    prompt_tokens = sum(r.prompt_tokens for r in results)
    completion_tokens = sum(r.completion_tokens for r in results)
    return Completion(
        id=completion_id,
        created=created,
        model=body.model,
        choices=[CompletionChoice(index=r.index, text=r.text or "", finish_reason=r.finish_reason) for r in results],
        usage=Usage.of(prompt_tokens, completion_tokens),
        timings=TimingsOut(**vars(results[-1].timings)) if len(results) == 1 else None,
    )


@router.post("/edits", response_model=Edit, responses=error_responses(*MODEL_ERRORS))
async def edits(body: EditRequest, request: Request, svc: Services = Depends(services)) -> Edit:
    config = svc.text.model_config(body.model)
    events = svc.text.edit(body.model, body.instruction, body.input, body.to_sampling(config))
    (result,) = await cancel_on_disconnect(request, svc.text.collect(events, config))
    return Edit(
        created=int(time.time()),
        model=body.model,
        choices=[EditChoice(index=0, text=result.text or "")],
        usage=Usage.of(result.prompt_tokens, result.completion_tokens),
    )


async def _chunks(
    events: AsyncIterator[TextEvent],
    completion_id: str,
    created: int,
    model: str,
    include_usage: bool,
) -> AsyncIterator[dict[str, Any]]:
    def chunk(index: int, text: str, finish_reason: str | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {
            "id": completion_id,
            "object": "text_completion",
            "created": created,
            "model": model,
            "choices": [{"index": index, "text": text, "finish_reason": finish_reason, "logprobs": None}],
        }
        if include_usage:
            body["usage"] = None
        return body

    prompt_tokens = completion_tokens = 0
    try:
        async for event in events:
            if isinstance(event, Delta):
                yield chunk(event.index, event.text)
            elif isinstance(event, Done):
                prompt_tokens += event.prompt_tokens
                completion_tokens += event.completion_tokens
                yield {**chunk(event.index, "", event.finish_reason), "timings": vars(event.timings)}
        if include_usage:
            usage = Usage.of(prompt_tokens, completion_tokens).model_dump()
            yield {**chunk(0, ""), "choices": [], "usage": usage}
    finally:
        await events.aclose()  # type: ignore[attr-defined]
