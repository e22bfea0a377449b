"""API keys: every registered route needs one when keys are set, except health and the UI shell.

The route walk enumerates `app.routes`, so a route added later without auth fails this suite.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from starlette.routing import BaseRoute, Mount, Route

from appliance.anthropic_errors import MESSAGES_PATHS
from support import assert_anthropic_error, assert_error

KEY = "sk-test-key"
PUBLIC = {("GET", "/healthz"), ("GET", "/readyz"), ("GET", "/"), ("GET", "/favicon.ico"), ("GET", "/static/app.js")}


def _concrete(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "x", path)


def flat_routes(app: FastAPI) -> list[tuple[BaseRoute, str, set[str] | None]]:
    """(route, full path, methods) for every route, looking inside included routers."""
    try:
        from fastapi.routing import iter_route_contexts  # FastAPI >= 0.16x includes routers lazily
    except ImportError:
        return [(r, getattr(r, "path", ""), getattr(r, "methods", None)) for r in app.routes]
    return [(ctx.original_route, ctx.path or "", ctx.methods) for ctx in iter_route_contexts(app.routes)]


def route_calls(app: FastAPI) -> list[tuple[str, str]]:
    """One (method, path) per method of every route and mount the app has."""
    calls: list[tuple[str, str]] = []
    for route, path, methods in flat_routes(app):
        if isinstance(route, Mount):
            calls.append(("GET", path + "/app.js"))
        elif isinstance(route, Route):
            for method in sorted(methods or {"GET"}):
                if method != "HEAD":
                    calls.append((method, _concrete(path)))
        else:  # a websocket or anything new: the walk must learn about it
            raise AssertionError(f"route walk does not know {type(route).__name__} {route!r}")
    return calls


@pytest.fixture
def keyed(make_app: Callable[..., FastAPI]) -> Iterator[TestClient]:
    with TestClient(make_app(api_keys=[KEY, "second-key"])) as client:
        yield client


def test_every_route_is_walked(keyed: TestClient) -> None:
    calls = route_calls(keyed.app)  # type: ignore[arg-type]
    paths = {path for _, path in calls}
    # The walk sees the real surface (a sanity check that it is not walking an empty list).
    assert {"/healthz", "/readyz", "/v1/models", "/models", "/version", "/system", "/openapi.json"} <= paths
    assert ("GET", "/static/app.js") in calls


def test_every_route_but_the_public_ones_needs_a_key(keyed: TestClient) -> None:
    open_routes = set()
    for method, path in route_calls(keyed.app):  # type: ignore[arg-type]
        response = keyed.request(method, path)
        if response.status_code == 401:
            if path in MESSAGES_PATHS:  # Anthropic's Messages API answers in Anthropic's shape
                assert_anthropic_error(response, 401, "authentication_error")
            else:
                assert_error(response, 401, code="invalid_api_key")
            assert response.headers["www-authenticate"] == "Bearer"
        else:
            open_routes.add((method, path))
    assert open_routes == PUBLIC


def test_every_route_accepts_a_valid_key(keyed: TestClient) -> None:
    for method, path in route_calls(keyed.app):  # type: ignore[arg-type]
        response = keyed.request(method, path, headers={"Authorization": f"Bearer {KEY}"})
        assert response.status_code != 401, (method, path, response.text)


@pytest.mark.parametrize(
    "headers",
    [
        {"Authorization": f"Bearer {KEY}"},
        {"Authorization": f"bearer {KEY}"},
        {"x-api-key": KEY},
        {"xi-api-key": KEY},
        {"Authorization": "Bearer second-key"},
    ],
)
def test_key_headers(keyed: TestClient, headers: dict[str, str]) -> None:
    assert keyed.get("/v1/models", headers=headers).status_code == 200


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer wrong"},
        {"Authorization": f"Basic {KEY}"},
        {"Authorization": KEY},
        {"x-api-key": KEY + "x"},
        {"x-api-key": KEY[:-1]},
        {"Authorization": "Bearer "},
    ],
)
def test_bad_or_missing_key(keyed: TestClient, headers: dict[str, str]) -> None:
    response = keyed.get("/v1/models", headers=headers)
    assert_error(response, 401, code="invalid_api_key")
    assert response.headers["www-authenticate"] == "Bearer"


def test_ui_shell_is_public_only_for_reads(keyed: TestClient) -> None:
    assert keyed.get("/").status_code == 200
    assert_error(keyed.post("/"), 401)


def test_no_keys_means_open(client: TestClient) -> None:
    assert client.get("/v1/models").status_code == 200


def test_keys_file(make_app: Callable[..., FastAPI], tmp_path: Path) -> None:
    keys_file = tmp_path / "keys.txt"
    keys_file.write_text("# team keys\nfrom-file\n\n  other  \n")
    with TestClient(make_app(api_keys_file=keys_file)) as client:
        assert client.get("/v1/models", headers={"x-api-key": "from-file"}).status_code == 200
        assert client.get("/v1/models", headers={"x-api-key": "other"}).status_code == 200
        assert_error(client.get("/v1/models", headers={"x-api-key": "# team keys"}), 401)
    keys_file.write_text('["json-key"]')
    with TestClient(make_app(api_keys_file=keys_file)) as client:
        assert client.get("/v1/models", headers={"x-api-key": "json-key"}).status_code == 200


def test_unreadable_keys_file_is_a_clear_error(make_app: Callable[..., FastAPI], tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="API keys file"):
        make_app(api_keys_file=tmp_path / "missing.txt")
