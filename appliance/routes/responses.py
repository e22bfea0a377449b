"""OpenAI's Responses API: create (whole or streamed), retrieve, delete, list input items."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from appliance.errors import MODEL_ERRORS, STORE_ERRORS, BadRequest, error_responses
from appliance.openapi import event_stream
from appliance.protocol.responses import (
    RESULTS_INCLUDE,
    InputItemsPage,
    ResponseCreateRequest,
    ResponseDeleted,
    ResponseObject,
)
from appliance.protocol.vector_stores import PageLimit, PageOrder, list_params
from appliance.responses.events import event_stream_response
from appliance.services import Services, services
from appliance.streaming import cancel_on_disconnect

router = APIRouter(tags=["responses"])


@router.post(
    "/responses",
    response_model=None,
    responses=error_responses(*MODEL_ERRORS, *STORE_ERRORS)
    | {
        200: {
            "model": ResponseObject,
            **event_stream("The response, or with `stream: true` its typed events (response.created ... "
                           "response.completed)"),
        }
    },
)
async def create_response(
    body: ResponseCreateRequest, request: Request, svc: Services = Depends(services)
) -> Response | dict[str, Any]:
    prepared = await svc.responses.prepare(body)
    if body.stream:
        return event_stream_response(await svc.responses.stream(prepared))
    return await cancel_on_disconnect(request, svc.responses.create(prepared))


@router.get(
    "/responses/{response_id}",
    response_model=None,
    responses=error_responses(400, 404) | {200: {"model": ResponseObject}},
)
async def retrieve_response(response_id: str, request: Request, svc: Services = Depends(services)) -> dict[str, Any]:
    if request.query_params.get("stream", "false").lower() in ("1", "true"):
        raise BadRequest("streaming a stored response is not supported; retrieve it whole", param="stream")
    return await svc.responses.get(response_id, _include_results(request))


@router.delete(
    "/responses/{response_id}", response_model=None, responses=error_responses(404) | {200: {"model": ResponseDeleted}}
)
async def delete_response(response_id: str, svc: Services = Depends(services)) -> dict[str, Any]:
    return await svc.responses.delete(response_id)


@router.get(
    "/responses/{response_id}/input_items",
    response_model=None,
    responses=error_responses(400, 404) | {200: {"model": InputItemsPage}},
)
async def list_input_items(
    response_id: str,
    request: Request,
    limit: PageLimit = 20,
    order: PageOrder = "desc",
    after: str | None = None,
    svc: Services = Depends(services),
) -> dict[str, Any]:
    params = list_params(limit, order, after, None)
    return await svc.responses.input_items(
        response_id,
        limit=params["limit"],
        order=params["order"],
        after=after,
        include_results=_include_results(request),
    )


def _include_results(request: Request) -> bool:
    """`include` as a repeated parameter or as the SDK's `include[]`."""
    values = [*request.query_params.getlist("include"), *request.query_params.getlist("include[]")]
    return RESULTS_INCLUDE in values
