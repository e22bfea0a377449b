"""POST /v1/chat/completions: OpenAI chat, streamed (SSE) or whole."""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from appliance.errors import MODEL_ERRORS, STORE_ERRORS, error_responses
from appliance.knowledge.answers import (
    AnswerPlan,
    citations,
    file_search_of,
    plan_answer,
    url_annotations,
)
from appliance.openapi import event_stream
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
REPLY_RESERVE = 512  # tokens kept free for the answer when the request sets no max_tokens


@router.post(
    "/chat/completions",
    response_model=ChatCompletion,
    responses=error_responses(*MODEL_ERRORS, *STORE_ERRORS)
    | {200: event_stream("The completion, or with `stream: true` its chunks as server-sent events then `[DONE]`")},
)
async def chat_completions(
    body: ChatCompletionRequest, request: Request, svc: Services = Depends(services)
) -> Response | ChatCompletion:
    config = svc.text.model_config(body.model)
    messages = body.message_dicts()
    plan: AnswerPlan | None = None
    if body.file_search is not None:
        plan = await plan_answer(
            svc.knowledge, svc.text, body.model, messages, file_search_of(body.file_search),
            reserve=body.requested_max_tokens() or REPLY_RESERVE,
        )
        if plan.refuse:
            return _refusal(body, plan)
        messages = plan.messages
    events = svc.text.chat(
        body.model,
        messages,
        body.to_sampling(config),
        tools=body.tool_dicts(),
        tool_choice=body.tool_choice_value(),
    )
    completion_id, created = f"chatcmpl-{uuid.uuid4().hex}", int(time.time())
    if body.stream:
        primed = await prime(events)
        include_usage = bool(body.stream_options and body.stream_options.include_usage)
        return sse_response(_chunks(primed, completion_id, created, body.model, include_usage, plan))
    (result,) = await cancel_on_disconnect(request, svc.text.collect(events, config))
    calls = [
        ToolCallOut(id=c.id, function=ToolCallFunction(name=c.name, arguments=c.arguments)) for c in result.tool_calls
    ]
    annotations = url_annotations(result.text, plan.sources) if plan is not None else None
    return ChatCompletion(
        id=completion_id,
        created=created,
        model=body.model,
        choices=[
            ChatChoice(
                index=0,
                message=AssistantMessage(content=result.text, tool_calls=calls or None, annotations=annotations),
                finish_reason=result.finish_reason,
            )
        ],
        usage=Usage.of(result.prompt_tokens, result.completion_tokens),
        timings=TimingsOut(**vars(result.timings)),
        citations=citations(result.text, plan.sources) if plan is not None else None,
        retrieval=plan.retrieval() if plan is not None else None,
    )


def _refusal(body: ChatCompletionRequest, plan: AnswerPlan) -> Response | ChatCompletion:
    """No source passed the floor: say so, without asking the model to guess."""
    completion_id, created = f"chatcmpl-{uuid.uuid4().hex}", int(time.time())
    if body.stream:

        async def chunks() -> AsyncIterator[dict[str, Any]]:
            base = {"id": completion_id, "object": "chat.completion.chunk", "created": created, "model": body.model}
            yield {**base, "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}],
                   "citations": [], "retrieval": plan.retrieval()}
            yield {**base, "choices": [{"index": 0, "delta": {"content": plan.refusal()}, "finish_reason": None}]}
            yield {**base, "choices": [{"index": 0, "delta": {"annotations": []}, "finish_reason": "stop"}],
                   "citations": [], "retrieval": plan.retrieval()}

        return sse_response(chunks())
    return ChatCompletion(
        id=completion_id,
        created=created,
        model=body.model,
        choices=[ChatChoice(index=0, message=AssistantMessage(content=plan.refusal(), annotations=[]), finish_reason="stop")],
        usage=Usage.of(0, 0),
        citations=[],
        retrieval=plan.retrieval(),
    )


async def _chunks(
    events: AsyncIterator[TextEvent],
    completion_id: str,
    created: int,
    model: str,
    include_usage: bool,
    plan: AnswerPlan | None = None,
) -> AsyncIterator[dict[str, Any]]:
    """OpenAI's chunk order: role, content deltas, finish, optional usage. With documents the first
    chunk lists the sources offered and the finish chunk the annotations and which were cited."""

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

    answer: list[str] = []
    if plan is None:
        yield chunk({"role": "assistant", "content": ""})
    else:
        yield chunk(
            {"role": "assistant", "content": ""},
            citations=[source.citation(False) for source in plan.sources],
            retrieval=plan.retrieval(),
        )
    try:
        async for event in events:
            if isinstance(event, Delta):
                answer.append(event.text)
                yield chunk({"content": event.text})
            elif isinstance(event, ToolCalls):
                calls = [
                    {"index": i, "id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}}
                    for i, c in enumerate(event.calls)
                ]
                yield chunk({"tool_calls": calls})
            elif isinstance(event, Done):
                if plan is None:
                    yield chunk({}, event.finish_reason, timings=vars(event.timings))
                else:
                    text = "".join(answer)
                    yield chunk(
                        {"annotations": url_annotations(text, plan.sources)},
                        event.finish_reason,
                        timings=vars(event.timings),
                        citations=citations(text, plan.sources),
                        retrieval=plan.retrieval(),
                    )
                if include_usage:
                    usage = Usage.of(event.prompt_tokens, event.completion_tokens).model_dump()
                    yield {**chunk({}), "choices": [], "usage": usage}
    finally:
        await events.aclose()  # type: ignore[attr-defined]
