"""Health, readiness, version and what is loaded: the routes operators and orchestrators poll."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse

from appliance import __version__
from appliance.protocol.system import Health, Readiness, SystemInfo, Version
from appliance.services import Services, services

router = APIRouter(tags=["system"])


@router.get("/healthz", response_model=Health)
async def healthz() -> dict[str, str]:
    """The process is up and answering; says nothing about models."""
    return {"status": "ok"}


@router.get(
    "/readyz",
    response_model=None,
    responses={
        200: {"model": Readiness, "description": "Ready: start-up and preloads are done"},
        503: {"model": Readiness, "description": "Still starting or preloading"},
    },
)
async def readyz(svc: Services = Depends(services)) -> JSONResponse:
    """503 until start-up and the preloads have finished; a failed preload is reported, not fatal."""
    state = svc.readiness
    body: dict[str, Any] = {
        "status": "ready" if state.ready else "starting",
        "pending_preloads": list(state.pending),
        "failed_preloads": dict(state.failed),
    }
    return JSONResponse(body, status_code=200 if state.ready else 503)


@router.get("/version", response_model=Version)
async def version() -> dict[str, str]:
    return {"version": __version__, "name": "appliance"}


@router.get("/system", response_model=None, responses={200: {"model": SystemInfo}})
async def system(svc: Services = Depends(services)) -> dict[str, Any]:
    """LocalAI's /system: the backends this server knows and the models loaded now."""
    return {
        "backends": svc.registry.names(),
        "loaded_models": [
            {
                "id": m.name,
                "backend": m.backend,
                "status": m.status,
                "device": m.device,
                "memory_bytes": m.memory.total,
            }
            for m in svc.scheduler.models()
        ],
    }
