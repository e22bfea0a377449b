"""Test helpers shared across suites: the one error-envelope assertion and small builders."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx


def assert_error(
    response: httpx.Response,
    status: int,
    *,
    code: str | None = None,
    param: str | None = None,
    contains: str | None = None,
) -> dict[str, Any]:
    """Pin the error envelope: status, exactly the four keys, and the expected code/param/message."""
    assert response.status_code == status, (response.status_code, response.text)
    assert response.headers["content-type"].startswith("application/json"), response.headers
    body = response.json()
    assert set(body) == {"error"}, body
    error = body["error"]
    assert set(error) == {"message", "type", "param", "code"}, error
    assert isinstance(error["message"], str) and error["message"], error
    assert isinstance(error["type"], str) and error["type"], error
    if code is not None:
        assert error["code"] == code, error
    if param is not None:
        assert error["param"] == param, error
    if contains is not None:
        assert contains.lower() in error["message"].lower(), error
    return error


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path
