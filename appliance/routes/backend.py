"""LocalAI's backend control: monitor a model, load one now, shut one down; and GET /metrics."""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response

from appliance.errors import MODEL_ERRORS, BadRequest, error_responses
from appliance.openapi import media
from appliance.protocol.base import MODEL_NAME_PATTERN
from appliance.protocol.system import BackendState, ModelRequest, Unloaded
from appliance.services import Services, services
from inference.services.metrics import CONTENT_TYPE

router = APIRouter(tags=["backend"])

# The model is required: as `?model=`, or (LocalAI's way, which OpenAPI cannot describe) as
# `{"model": ...}` in the GET body. The schema states the query form.
_MONITOR_QUERY = {
    "parameters": [
        {
            "name": "model",
            "in": "query",
            "required": True,
            "schema": {"type": "string", "minLength": 1, "pattern": MODEL_NAME_PATTERN},
            "description": "The model to describe (LocalAI clients send {\"model\": ...} as a GET body instead)",
        }
    ]
}


def _describe(svc: Services, name: str) -> dict[str, Any]:
    state = svc.scheduler.state(name)
    if state is None:
        return {"model": name, "state": "UNINITIALIZED", "memory_info": None}
    return {
        "model": state.name,
        "backend": state.backend,
        "state": {"loading": "LOADING", "idle": "READY", "busy": "BUSY"}.get(state.status, state.status.upper()),
        "leases": state.leases,
        "device": state.device,
        "pinned": state.pinned,
        "memory_info": {
            "total": state.memory.total,
            "breakdown": {"ram": state.memory.ram, "vram": state.memory.vram},
        },
    }


@router.get(
    "/backend/monitor",
    response_model=None,
    responses=error_responses(400, 404) | {200: {"model": BackendState}},
    openapi_extra=_MONITOR_QUERY,
)
async def monitor(
    request: Request, model: str | None = Query(None, include_in_schema=False), svc: Services = Depends(services)
) -> dict[str, Any]:
    """LocalAI sends `{"model": …}` as a GET body; `?model=` works too."""
    if model is None:
        raw = await request.body()
        try:
            model = ModelRequest.model_validate(json.loads(raw or b"{}")).model
        except (ValueError, TypeError):
            raise BadRequest("name the model: GET /backend/monitor?model=<name>", param="model") from None
    entry = svc.catalog.get(model)
    return _describe(svc, entry.name)


@router.post(
    "/backend/load", response_model=None, responses=error_responses(*MODEL_ERRORS) | {200: {"model": BackendState}}
)
async def load(body: ModelRequest, svc: Services = Depends(services)) -> dict[str, Any]:
    state = await svc.scheduler.load(body.model)
    return _describe(svc, state.name)


@router.post("/backend/shutdown", response_model=None, responses=error_responses(400, 404) | {200: {"model": Unloaded}})
async def shutdown(body: ModelRequest, svc: Services = Depends(services)) -> dict[str, Any]:
    entry = svc.catalog.get(body.model)
    unloaded = await svc.scheduler.unload(entry.name)
    return {"model": entry.name, "unloaded": unloaded}


@router.get(
    "/metrics",
    response_class=Response,
    responses={200: media("text/plain", description="Prometheus text format", schema={"type": "string"})},
)
async def metrics(svc: Services = Depends(services)) -> Response:
    return Response(svc.metrics.render(), media_type=CONTENT_TYPE)
