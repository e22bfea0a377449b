"""The pipe protocol between the pool and its worker processes: JSON lines, never pickle.

Parent -> child, one line per job: {"id", "path", "format", "limits"}.
Child -> parent: {"type": "ready"} once at start, then per job {"id", "type": "started"} as soon as
it has read the job (so a death before it is not the file's fault), any number of
{"id", "type": "progress", "done", "total"}, and exactly one of
{"id", "type": "error", "code", "message", "retire"} or {"id", "type": "result", "size"} followed by
`size` bytes of `ExtractedDocument.to_json()`. The parent validates everything it reads: the child
parses untrusted files.
"""

from __future__ import annotations

from typing import Any

import orjson

WORKER_MODULE = "appliance.knowledge.extraction.worker"
MAX_LINE_BYTES = 2**20
FORMAT_MODULES = {
    "pdf": "appliance.knowledge.extraction.formats.pdf",
    "docx": "appliance.knowledge.extraction.formats.docx",
    "html": "appliance.knowledge.extraction.formats.html",
    "markdown": "appliance.knowledge.extraction.formats.markdown",
    "text": "appliance.knowledge.extraction.formats.text",
}


class ProtocolError(Exception):
    """The other side wrote something that is not a message of this protocol."""


def encode(message: dict[str, Any]) -> bytes:
    return orjson.dumps(message) + b"\n"


def decode(line: bytes) -> dict[str, Any]:
    try:
        message = orjson.loads(line)
    except orjson.JSONDecodeError as exc:
        raise ProtocolError(f"not JSON: {exc}") from None
    if not isinstance(message, dict) or not isinstance(message.get("type", ""), str):
        raise ProtocolError("not a message object")
    return message


def job(job_id: int, path: str, format: str, limits: dict[str, Any]) -> bytes:
    return encode({"id": job_id, "path": path, "format": format, "limits": limits})


def expect_int(message: dict[str, Any], key: str, *, optional: bool = False) -> int | None:
    value = message.get(key)
    if value is None and optional:
        return None
    if type(value) is not int or value < 0:
        raise ProtocolError(f"{key} must be a non-negative integer")
    return value


def expect_str(message: dict[str, Any], key: str) -> str:
    value = message.get(key)
    if not isinstance(value, str):
        raise ProtocolError(f"{key} must be a string")
    return value
