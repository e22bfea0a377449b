"""The multipart spool: fields and the file parsed as the body streams, and the spooled file removed
on success, on malformed bodies and when the client goes away mid-upload."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path

import pytest
from starlette.requests import Request

from appliance.errors import BadRequest
from appliance.payloads.uploads import receive_upload

BOUNDARY = "xYz"


def part(name: str, value: str | bytes, filename: str | None = None) -> bytes:
    disposition = f'form-data; name="{name}"' + (f'; filename="{filename}"' if filename is not None else "")
    payload = value.encode() if isinstance(value, str) else value
    return f"--{BOUNDARY}\r\nContent-Disposition: {disposition}\r\n\r\n".encode() + payload + b"\r\n"


END = f"--{BOUNDARY}--\r\n".encode()


def request(chunks: Sequence[bytes], *, disconnect: bool = False, content_type: str | None = None) -> Request:
    messages = [{"type": "http.request", "body": c, "more_body": True} for c in chunks]
    last = {"type": "http.disconnect"} if disconnect else {"type": "http.request", "body": b"", "more_body": False}
    messages.append(last)

    async def receive() -> dict:
        return messages.pop(0)

    header = content_type or f"multipart/form-data; boundary={BOUNDARY}"
    headers = [(b"content-type", header.encode())]
    scope = {"type": "http", "method": "POST", "path": "/", "query_string": b"", "headers": headers}
    return Request(scope, receive)  # type: ignore[arg-type]


def run(req: Request, folder: Path) -> tuple[dict[str, list[str]], bytes | None, str | None]:
    async def scenario() -> tuple[dict[str, list[str]], bytes | None, str | None]:
        async with receive_upload(req, folder) as upload:
            data = upload.path.read_bytes() if upload.path is not None else None
            return upload.fields, data, upload.filename

    return asyncio.run(scenario())


def leftovers(folder: Path) -> list[Path]:
    return list(folder.iterdir()) if folder.exists() else []


def test_fields_and_file_arrive_and_the_file_is_removed_after(tmp_path: Path) -> None:
    audio = bytes(range(256)) * 10_000  # ~2.5 MB: several flushes
    body = part("model", "m") + part("file", audio, "../../a b.wav") + part("model", "n") + END
    chunks = [body[i : i + 65536] for i in range(0, len(body), 65536)]
    fields, data, filename = run(request(chunks), tmp_path / "spool")
    assert fields == {"model": ["m", "n"]} and data == audio and filename == "../../a b.wav"
    assert leftovers(tmp_path / "spool") == []


def test_a_client_gone_mid_upload_is_400_and_the_file_removed(tmp_path: Path) -> None:
    chunks = [part("model", "m") + part("file", b"RIFF" * 1000, "x.wav")[:2000]]
    with pytest.raises(BadRequest, match="went away"):
        run(request(chunks, disconnect=True), tmp_path)
    assert leftovers(tmp_path) == []


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (part("file", b"abc", "x.wav"), "closing boundary"),  # the stream ends without the end marker
        (part("file", b"a", "1.wav") + part("file", b"b", "2.wav") + END, "more than one"),
        (part("image", b"a", "1.png") + part("file", b"b", "2.wav") + END, "unexpected file"),
        (part("prompt", "p" * 70_000) + END, "longer than"),
        (b"".join(part(f"f{i}", "v") for i in range(65)) + END, "too many"),
    ],
)
def test_malformed_forms_are_400_and_leave_nothing(tmp_path: Path, body: bytes, message: str) -> None:
    with pytest.raises(BadRequest, match=message):
        run(request([body]), tmp_path)
    assert leftovers(tmp_path) == []


def test_a_body_that_is_not_multipart_is_400(tmp_path: Path) -> None:
    with pytest.raises(BadRequest, match="multipart/form-data"):
        run(request([b"{}"], content_type="application/json"), tmp_path)
    with pytest.raises(BadRequest, match="boundary"):
        run(request([b""], content_type="multipart/form-data"), tmp_path)
    assert leftovers(tmp_path) == []


def test_an_exception_inside_the_block_still_removes_the_file(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with receive_upload(request([part("file", b"data", "x.wav") + END]), tmp_path) as upload:
            assert upload.path is not None and upload.path.read_bytes() == b"data"
            raise RuntimeError("the model failed")

    with pytest.raises(RuntimeError):
        asyncio.run(scenario())
    assert leftovers(tmp_path) == []
