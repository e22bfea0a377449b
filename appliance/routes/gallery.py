"""LocalAI's model gallery routes: apply, jobs, available models, galleries, delete; plus our job
events (SSE) and cancel. Plans and index reads run in worker threads; installs run as jobs."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import orjson
from fastapi import APIRouter, Depends, Request
from fastapi.responses import StreamingResponse

from appliance.gallery.errors import InvalidSource
from appliance.gallery.index import FileEntry, Gallery
from appliance.gallery.paths import install_name
from appliance.protocol.gallery import ApplyRequest, GalleryBody
from appliance.services import Services, services
from appliance.streaming import DONE

from appliance.errors import error_responses
from appliance.openapi import event_stream

router = APIRouter(tags=["gallery"])


def _job_url(request: Request, job_id: str) -> str:
    return str(request.url_for("model_job", job_id=job_id))


@router.post("/models/apply", responses=error_responses(400, 404, 429))
async def apply_model(body: ApplyRequest, request: Request, svc: Services = Depends(services)) -> dict[str, str]:
    """Install a gallery model (`id`), a model definition (`url`) or a model config (`config_url`)."""
    files = [FileEntry(f.filename, f.uri, f.sha256) for f in body.files]
    plan = await asyncio.to_thread(
        svc.gallery.plan,
        id=body.id,
        url=body.url,
        config_url=body.config_url,
        name=body.name,
        overrides=body.overrides,
        files=files,
    )
    job = await svc.gallery.submit(plan)
    return {"uuid": job.uuid, "status": _job_url(request, job.uuid)}


@router.get("/models/jobs")
async def list_jobs(svc: Services = Depends(services)) -> dict[str, dict[str, Any]]:
    return svc.gallery.jobs.all()


@router.get("/models/jobs/{job_id}", name="model_job", responses=error_responses(404))
async def get_job(job_id: str, svc: Services = Depends(services)) -> dict[str, Any]:
    return svc.gallery.jobs.snapshot(job_id)


@router.post("/models/jobs/{job_id}/cancel", responses=error_responses(404))
async def cancel_job(job_id: str, svc: Services = Depends(services)) -> dict[str, Any]:
    return svc.gallery.jobs.cancel(job_id)


@router.get(
    "/models/jobs/{job_id}/events",
    response_class=StreamingResponse,
    responses=error_responses(404) | {200: event_stream("Progress events until the job ends, then [DONE]")},
)
async def job_events(job_id: str, svc: Services = Depends(services)) -> StreamingResponse:
    """The job as server-sent events: now, on every change, and a last one when it ends."""
    svc.gallery.jobs.get(job_id)  # an unknown job is a 404 before the stream starts
    changes = svc.gallery.jobs.changes(job_id)
    return StreamingResponse(
        _events(changes),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


async def _events(changes: AsyncIterator[dict[str, Any] | None]) -> AsyncIterator[bytes]:
    async for body in changes:
        if body is None:
            yield b": keep-alive\n\n"
            continue
        yield b"event: job." + body["state"].encode() + b"\ndata: " + orjson.dumps(body) + b"\n\n"
    yield DONE


@router.get("/models/available")
async def available_models(svc: Services = Depends(services)) -> list[dict[str, Any]]:
    return await asyncio.to_thread(svc.gallery.available)


@router.get("/models/galleries")
async def list_galleries(svc: Services = Depends(services)) -> list[dict[str, str]]:
    return [g.as_dict() for g in svc.gallery.index.galleries()]


@router.post("/models/galleries", responses=error_responses(400, 409))
async def add_gallery(body: GalleryBody, svc: Services = Depends(services)) -> list[dict[str, str]]:
    if not body.url.strip():
        raise InvalidSource("a gallery needs a 'url' (its index.yaml)", param="url")
    galleries = svc.gallery.index.add(Gallery(body.name.strip(), body.url.strip()))
    return [g.as_dict() for g in galleries]


@router.delete("/models/galleries", responses=error_responses(404))
async def remove_gallery(body: GalleryBody, svc: Services = Depends(services)) -> list[dict[str, str]]:
    return [g.as_dict() for g in svc.gallery.index.remove(body.name.strip())]


@router.post("/models/delete/{name:path}", responses=error_responses(400, 404))
async def delete_model(name: str, request: Request, svc: Services = Depends(services)) -> dict[str, str]:
    """Remove an installed model: unloaded first, then its config and the files only it uses."""
    checked = install_name(name, field="name")
    if checked in svc.catalog:
        await svc.scheduler.unload(checked)
    job = await svc.gallery.delete(checked)
    return {"uuid": job.uuid, "status": _job_url(request, job.uuid)}
