"""Multipart uploads streamed to a private spool folder, and removed however the request ends.

``receive_upload`` parses a ``multipart/form-data`` body as it arrives: small text fields are kept
in memory (bounded in number and size), the one file field is written chunk by chunk, off the event
loop, to a fresh file made by ``mkstemp`` (mode 0600) under ``<data_path>/tmp/uploads`` (mode 0700).
The client's filename never reaches a path or a command. The file is deleted when the ``async with``
block ends: after the response is built, on a 4xx, on an exception, or when the client goes away.
"""

from __future__ import annotations

import asyncio
import codecs
import contextlib
import logging
import os
import tempfile
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from fastapi import Request
from python_multipart.exceptions import FormParserError
from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.requests import ClientDisconnect

from appliance.errors import BadRequest

logger = logging.getLogger(__name__)

UPLOADS_FOLDER = Path("tmp") / "uploads"
MAX_FIELDS = 64
MAX_FIELD_BYTES = 64 * 1024
FLUSH_BYTES = 1 << 20  # file data is written off the event loop in pieces of about this size


def upload_folder(data_path: Path) -> Path:
    """Where uploads wait while a request uses them."""
    return data_path / UPLOADS_FOLDER


@dataclass
class Upload:
    """A parsed multipart body: text fields by name (a name may repeat) and the spooled file, if any."""

    fields: dict[str, list[str]] = field(default_factory=dict)
    path: Path | None = None  # the spooled file; None when the body had no file field
    size: int = 0
    filename: str | None = None  # as the client sent it: for messages only, never for paths
    content_type: str | None = None

    def value(self, name: str) -> str | None:
        """The last value of a field, or None when absent."""
        values = self.fields.get(name)
        return values[-1] if values else None

    def values(self, name: str) -> list[str]:
        return self.fields.get(name, [])


@contextlib.asynccontextmanager
async def receive_upload(request: Request, folder: Path, *, file_field: str = "file") -> AsyncIterator[Upload]:
    """Parse the request's multipart body, spooling ``file_field`` to a new file under ``folder``.

    Raises BadRequest for a body that is not multipart, is malformed, ends early, holds a second
    file or too many or too large fields, or when the client disconnects mid-upload; the
    middleware's 413 for a body over the upload limit passes through. The file is gone afterwards.
    """
    upload = Upload()
    try:
        await _MultipartReader(request, folder, file_field, upload).read()
        yield upload
    finally:
        if upload.path is not None:
            with contextlib.suppress(FileNotFoundError):
                upload.path.unlink()


class _MultipartReader:
    """Feeds the body to python-multipart and acts on its callbacks between chunks."""

    def __init__(self, request: Request, folder: Path, file_field: str, upload: Upload) -> None:
        self.request = request
        self.folder = folder
        self.file_field = file_field
        self.upload = upload
        self.charset = "utf-8"
        self.header_name = b""
        self.header_value = b""
        self.headers: dict[bytes, bytes] = {}
        self.part_name: str | None = None
        self.part_is_file = False
        self.part_data = bytearray()
        self.file: IO[bytes] | None = None
        self.pending = bytearray()  # file bytes parsed but not yet written
        self.field_count = 0
        self.ended = False
        self.problem: str | None = None  # raised after the callback returns, so the parser stays sane

    async def read(self) -> None:
        content_type = self.request.headers.get("content-type", "")
        kind, params = parse_options_header(content_type)
        if kind != b"multipart/form-data":
            raise BadRequest(
                "send the audio as multipart/form-data with the file in a 'file' field "
                f"(got Content-Type {content_type or 'none'!r})",
                param=self.file_field,
            )
        boundary = params.get(b"boundary")
        if not boundary:
            raise BadRequest("the multipart Content-Type header has no boundary", param=self.file_field)
        charset = params.get(b"charset", b"utf-8").decode("latin-1")
        with contextlib.suppress(LookupError):
            self.charset = codecs.lookup(charset).name
        parser = MultipartParser(
            boundary,
            {
                "on_part_begin": self._part_begin,
                "on_header_field": self._header_field,
                "on_header_value": self._header_value,
                "on_header_end": self._header_end,
                "on_headers_finished": self._headers_finished,
                "on_part_data": self._part_data,
                "on_part_end": self._part_end,
                "on_end": self._end,
            },
        )
        try:
            async for chunk in self.request.stream():
                try:
                    parser.write(chunk)
                except FormParserError as exc:
                    raise BadRequest(f"the multipart body is malformed: {exc}", param=self.file_field) from None
                if self.problem is not None:
                    raise BadRequest(self.problem, param=self.file_field)
                if len(self.pending) >= FLUSH_BYTES:
                    await self._flush()
            await self._flush()
            if not self.ended:
                raise BadRequest(
                    "the multipart body ended before its closing boundary; send the whole form",
                    param=self.file_field,
                )
        except ClientDisconnect:
            raise BadRequest("the client went away before the upload was complete") from None
        finally:
            if self.file is not None:
                await asyncio.to_thread(self.file.close)

    # python-multipart callbacks: plain functions, no awaiting; file bytes are queued in `pending`.

    def _part_begin(self) -> None:
        self.headers = {}
        self.part_name = None
        self.part_is_file = False
        self.part_data = bytearray()

    def _header_field(self, data: bytes, start: int, end: int) -> None:
        self.header_name += data[start:end]

    def _header_value(self, data: bytes, start: int, end: int) -> None:
        self.header_value += data[start:end]

    def _header_end(self) -> None:
        self.headers[self.header_name.lower()] = self.header_value
        self.header_name = b""
        self.header_value = b""

    def _headers_finished(self) -> None:
        _, options = parse_options_header(self.headers.get(b"content-disposition"))
        name = options.get(b"name")
        if name is None:
            self.problem = "a multipart part has no name in its Content-Disposition header"
            return
        self.part_name = self._decode(name)
        if b"filename" not in options and self.part_name != self.file_field:
            self.field_count += 1
            if self.field_count > MAX_FIELDS:
                self.problem = f"too many form fields: at most {MAX_FIELDS} are accepted"
            return
        if self.part_name != self.file_field:
            self.problem = f"unexpected file in form field {self.part_name!r}: send the audio as '{self.file_field}'"
            return
        if self.upload.path is not None:
            self.problem = f"send one file: the form holds more than one '{self.file_field}' field"
            return
        self.part_is_file = True
        self.upload.filename = self._decode(options[b"filename"]) if b"filename" in options else None
        content_type = self.headers.get(b"content-type")
        self.upload.content_type = content_type.decode("latin-1") if content_type else None
        self.folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        handle, name = tempfile.mkstemp(prefix="upload-", dir=self.folder)
        self.upload.path = Path(name)
        self.file = os.fdopen(handle, "wb")

    def _part_data(self, data: bytes, start: int, end: int) -> None:
        if self.problem is not None:
            return
        if self.part_is_file:
            self.pending += data[start:end]
            self.upload.size += end - start
        elif self.part_name is not None:
            self.part_data += data[start:end]
            if len(self.part_data) > MAX_FIELD_BYTES:
                self.problem = f"form field {self.part_name!r} is longer than {MAX_FIELD_BYTES // 1024} KiB"

    def _part_end(self) -> None:
        if self.problem is None and self.part_name is not None and not self.part_is_file:
            self.upload.fields.setdefault(self.part_name, []).append(self._decode(bytes(self.part_data)))

    def _end(self) -> None:
        self.ended = True

    async def _flush(self) -> None:
        if self.pending and self.file is not None:
            data, self.pending = bytes(self.pending), bytearray()
            await asyncio.to_thread(self.file.write, data)

    def _decode(self, raw: bytes) -> str:
        return raw.decode(self.charset, errors="replace")
