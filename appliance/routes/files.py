"""OpenAI's Files API: upload (multipart, streamed to disk and hashed), list, get, content, delete.

A file is written to the document library before it is acknowledged; deleting it takes its chunks
out of every vector store it is in, and stops any ingest of it.
"""

from __future__ import annotations

import asyncio
import contextlib
import mimetypes
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, Request
from fastapi.responses import FileResponse

from appliance.errors import STORE_ERRORS, BadRequest, error_responses
from appliance.knowledge.ingest import IngestQueueFull
from appliance.openapi import form_body, media
from appliance.payloads.uploads import receive_upload, upload_folder
from appliance.protocol.vector_store_objects import (
    DeletedObject,
    FileObject,
    ListPage,
    deleted_object,
    file_object,
    list_object,
)
from appliance.protocol.vector_stores import (
    ACCEPTED_PURPOSES,
    FILE_PURPOSES,
    FileUpload,
    PageLimit,
    PageOrder,
    list_params,
)
from appliance.knowledge.service import sha256_of
from appliance.services import Services, services

router = APIRouter(tags=["files"])

MEDIA_TYPES = {".md": "text/markdown", ".markdown": "text/markdown", ".txt": "text/plain"}
_STORE_ERRORS = error_responses(*STORE_ERRORS)


@router.post(
    "/files",
    response_model=None,
    responses=_STORE_ERRORS | {200: {"model": FileObject}},
    openapi_extra=form_body(FileUpload, files=["file"]),
)
async def upload_file(request: Request, svc: Services = Depends(services)) -> dict[str, Any]:
    async with receive_upload(request, upload_folder(svc.settings.data_path)) as upload:
        purpose = upload.value("purpose")
        if purpose is None:
            raise BadRequest("missing required field 'purpose' (use 'assistants' or 'user_data')", param="purpose")
        if purpose not in ACCEPTED_PURPOSES:
            known = purpose in FILE_PURPOSES
            raise BadRequest(
                f"purpose {purpose!r} is {'not served here' if known else 'unknown'}; this server keeps files for "
                "'assistants' and 'user_data' (documents for vector stores)",
                param="purpose",
            )
        if upload.path is None:
            raise BadRequest("missing required field 'file'", param="file")
        if upload.size == 0:
            raise BadRequest("the uploaded file is empty", param="file")
        filename = _clean_name(upload.filename)
        digest = await asyncio.to_thread(sha256_of, upload.path)
        record = await svc.knowledge.run(
            "add_file", upload.path, filename=filename, purpose=purpose, sha256=digest, size=upload.size
        )
    return file_object(record)


@router.get("/files", response_model=None, responses=_STORE_ERRORS | {200: {"model": ListPage}})
async def list_files(
    purpose: str | None = None,
    limit: PageLimit = 20,
    order: PageOrder = "desc",
    after: str | None = None,
    before: str | None = None,
    svc: Services = Depends(services),
) -> dict[str, Any]:
    params = list_params(limit, order, after, before)
    page = await svc.knowledge.run("list_files", purpose=purpose, **params)
    return list_object(page, file_object)


@router.get("/files/{file_id}", response_model=None, responses=_STORE_ERRORS | {200: {"model": FileObject}})
async def get_file(file_id: str, svc: Services = Depends(services)) -> dict[str, Any]:
    return file_object(await svc.knowledge.run("get_file", file_id))


@router.get(
    "/files/{file_id}/content",
    response_class=FileResponse,
    responses=_STORE_ERRORS | {200: media("*/*", description="The file as uploaded, typed by its name")},
)
async def file_content(file_id: str, svc: Services = Depends(services)) -> FileResponse:
    record = await svc.knowledge.run("get_file", file_id)
    path = await svc.knowledge.run("file_path", file_id)
    media_type = MEDIA_TYPES.get(_suffix(record.filename)) or mimetypes.guess_type(record.filename)[0]
    return FileResponse(
        path,
        media_type=media_type or "application/octet-stream",
        headers={"Content-Disposition": f"inline; filename*=UTF-8''{quote(record.filename)}"},
    )


@router.delete("/files/{file_id}", response_model=None, responses=_STORE_ERRORS | {200: {"model": DeletedObject}})
async def delete_file(file_id: str, svc: Services = Depends(services)) -> dict[str, Any]:
    await svc.knowledge.run("get_file", file_id)  # 404 for an unknown id
    jobs = await svc.knowledge.ready_jobs()
    jobs.stop_file(file_id)
    revived = await svc.knowledge.run("delete_file", file_id)
    for store_id, heir in revived:  # a duplicate of the deleted file now holds its content: ingest it
        with contextlib.suppress(IngestQueueFull):  # it stays in_progress and resumes at the next start
            jobs.submit(store_id, heir)
    return deleted_object(file_id, "file")


def _clean_name(name: str | None) -> str:
    """The client's file name, for display only: the last path part, no control characters."""
    base = (name or "upload").replace("\\", "/").rsplit("/", 1)[-1]
    cleaned = "".join(ch for ch in base if ch.isprintable()).strip()
    return cleaned[:255] or "upload"


def _suffix(name: str) -> str:
    return ("." + name.rsplit(".", 1)[-1].lower()) if "." in name else ""
