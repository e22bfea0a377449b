"""The HTTP side of store backups: a snapshot streamed out as a download, an upload fed to the importer.

The store work is blocking, so it runs in worker threads: the export reads one chunk per hop and
closes its snapshot however the response ends; the import's worker pulls the request body from the
event loop one chunk at a time, so the body is never held whole and the loop never waits on SQLite.
BodyLimitMiddleware still counts every chunk: an upload over the limit is 413, staging dropped.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
from collections.abc import AsyncIterator, Iterator
from typing import IO, TYPE_CHECKING
from urllib.parse import quote

from fastapi import Request
from fastapi.responses import StreamingResponse
from starlette.datastructures import UploadFile
from starlette.requests import ClientDisconnect

from appliance.errors import BadRequest

if TYPE_CHECKING:
    from stores.registry import StoreInfo, StoreRegistry
    from stores.transfer import StoreExport

logger = logging.getLogger(__name__)

BODY_CHUNK_TIMEOUT_S = 300.0  # a client silent this long mid-upload is gone
FILE_CHUNK_BYTES = 1 << 20


async def export_response(registry: StoreRegistry, name: str | None) -> StreamingResponse:
    """The store as a gzip download; an unknown store fails here, before any byte is sent."""
    from stores.transfer import MEDIA_TYPE, open_export

    export = await asyncio.to_thread(open_export, registry, name)
    filename = f"{export.name or 'default'}.store.jsonl.gz"
    headers = {"Content-Disposition": _attachment(filename)}
    return StreamingResponse(_drain(export), media_type=MEDIA_TYPE, headers=headers)


async def import_upload(request: Request, registry: StoreRegistry, *, name: str | None, replace: bool) -> StoreInfo:
    """Import the request body (raw gzip/JSONL, or multipart with a `file` field) into store `name`."""
    from stores.transfer import import_store

    if request.headers.get("content-type", "").startswith("multipart/form-data"):
        async with request.form(max_files=1, max_fields=8) as form:
            upload = form.get("file")
            if not isinstance(upload, UploadFile):
                raise BadRequest("a multipart upload needs the backup file in a 'file' field", param="file")
            chunks = _file_chunks(upload.file)
            return await asyncio.to_thread(import_store, registry, chunks, name=name, replace=replace)
    stream = request.stream()
    try:
        chunks = _pulled(stream, asyncio.get_running_loop())
        return await asyncio.to_thread(import_store, registry, chunks, name=name, replace=replace)
    except ClientDisconnect:
        raise BadRequest("the client went away before the upload was complete") from None
    finally:
        with contextlib.suppress(RuntimeError):  # still being pulled when this task was cancelled
            await stream.aclose()  # type: ignore[attr-defined]


async def _drain(export: StoreExport) -> AsyncIterator[bytes]:
    try:
        while (chunk := await asyncio.to_thread(export.next_chunk)) is not None:
            yield chunk
    finally:
        export.close()  # never blocks: a chunk still being read closes the snapshot when done


def _pulled(stream: AsyncIterator[bytes], loop: asyncio.AbstractEventLoop) -> Iterator[bytes]:
    """The request body as a blocking iterator for a worker thread, one chunk asked of the loop at a time."""
    while True:
        future = asyncio.run_coroutine_threadsafe(_next_chunk(stream), loop)
        try:
            chunk = future.result(timeout=BODY_CHUNK_TIMEOUT_S)
        except concurrent.futures.TimeoutError:
            future.cancel()
            raise BadRequest(f"the upload stalled: no data for {BODY_CHUNK_TIMEOUT_S:.0f} s") from None
        if chunk is None:
            return
        if chunk:
            yield chunk


async def _next_chunk(stream: AsyncIterator[bytes]) -> bytes | None:
    try:
        return await anext(stream)
    except StopAsyncIteration:
        return None


def _file_chunks(file: IO[bytes]) -> Iterator[bytes]:
    while chunk := file.read(FILE_CHUNK_BYTES):
        yield chunk


def _attachment(filename: str) -> str:
    """A Content-Disposition any client can read: an ASCII fallback plus the exact UTF-8 name."""
    fallback = "".join(c if c.isascii() and (c.isalnum() or c in "._-") else "_" for c in filename)
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(filename, safe='')}"
