"""Health, readiness (with preloads), version, /system, correlation IDs and CORS."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from appliance import __version__
from appliance.logs import CorrelationIdFilter
from support import write


def wait_ready(client: TestClient, timeout: float = 10.0) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        response = client.get("/readyz")
        if response.status_code == 200:
            return response.json()
        time.sleep(0.02)
    raise AssertionError(f"not ready after {timeout}s: {response.json()}")


def test_healthz(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}


def test_readyz_without_preloads(client: TestClient) -> None:
    assert wait_ready(client)["status"] == "ready"


def test_readyz_waits_for_preloads(make_app: Callable[..., FastAPI], models_path: Path) -> None:
    write(models_path / "slow.yaml", "name: slow\nbackend: fake\noptions: ['load_delay_ms:400']\n")
    with TestClient(make_app(preload_models=["slow"])) as client:
        first = client.get("/readyz")
        assert first.status_code == 503
        assert first.json()["pending_preloads"] == ["slow"]
        assert client.get("/healthz").status_code == 200  # alive while not ready
        body = wait_ready(client)
        assert body["failed_preloads"] == {}
        loaded = client.get("/system").json()["loaded_models"]
        assert [m["id"] for m in loaded] == ["slow"]
        assert loaded[0]["backend"] == "fake"


def test_failed_preload_is_reported_not_fatal(make_app: Callable[..., FastAPI], models_path: Path) -> None:
    write(models_path / "bad.yaml", "name: bad\nbackend: fake\noptions: ['fail_load:true']\n")
    with TestClient(make_app(preload_models=["bad", "ghost"])) as client:
        body = wait_ready(client)
        assert set(body["failed_preloads"]) == {"bad", "ghost"}
        assert "GET /v1/models" in body["failed_preloads"]["ghost"]
        assert client.get("/system").json()["loaded_models"] == []


def test_version(client: TestClient) -> None:
    assert client.get("/version").json()["version"] == __version__


def test_system_lists_backends(client: TestClient) -> None:
    body = client.get("/system").json()
    assert {"llama-cpp", "sentencetransformers", "diffusers", "faster-whisper", "piper", "fake"} <= set(body["backends"])
    assert body["loaded_models"] == []


def test_correlation_id_generated(client: TestClient) -> None:
    cid = client.get("/healthz").headers["x-correlation-id"]
    assert re.fullmatch(r"[0-9a-f]{32}", cid)
    assert client.get("/healthz").headers["x-correlation-id"] != cid


def test_correlation_id_echoed_and_logged(client: TestClient, caplog: pytest.LogCaptureFixture) -> None:
    caplog.handler.addFilter(CorrelationIdFilter())
    with caplog.at_level("INFO", logger="appliance.middleware"):
        response = client.get("/v1/models", headers={"X-Correlation-ID": "req-42.a"})
    assert response.headers["x-correlation-id"] == "req-42.a"
    lines = [r for r in caplog.records if "path=/v1/models" in r.getMessage()]
    assert lines and all(r.correlation_id == "req-42.a" for r in lines)


def test_correlation_id_with_odd_characters_is_replaced(client: TestClient) -> None:
    cid = client.get("/healthz", headers={"X-Correlation-ID": "bad id\twith spaces"}).headers["x-correlation-id"]
    assert re.fullmatch(r"[0-9a-f]{32}", cid)


def test_no_cors_by_default(client: TestClient) -> None:
    response = client.get("/v1/models", headers={"Origin": "http://evil.example"})
    assert "access-control-allow-origin" not in response.headers
    preflight = client.options(
        "/v1/models", headers={"Origin": "http://evil.example", "Access-Control-Request-Method": "GET"}
    )
    assert "access-control-allow-origin" not in preflight.headers


def test_cors_only_for_listed_origins(make_app: Callable[..., FastAPI]) -> None:
    app = make_app(cors=True, cors_allow_origins=["http://ui.local:3000"], api_keys=["k"])
    with TestClient(app) as client:
        ok = client.get("/v1/models", headers={"Origin": "http://ui.local:3000", "x-api-key": "k"})
        assert ok.headers["access-control-allow-origin"] == "http://ui.local:3000"
        other = client.get("/v1/models", headers={"Origin": "http://evil.example", "x-api-key": "k"})
        assert "access-control-allow-origin" not in other.headers
        preflight = client.options(
            "/v1/models",
            headers={
                "Origin": "http://ui.local:3000",
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "authorization,content-type",
            },
        )
        assert preflight.status_code == 200
        assert preflight.headers["access-control-allow-origin"] == "http://ui.local:3000"


def test_cors_without_origins_allows_none(make_app: Callable[..., FastAPI]) -> None:
    with TestClient(make_app(cors=True)) as client:
        response = client.get("/v1/models", headers={"Origin": "http://ui.local"})
        assert "access-control-allow-origin" not in response.headers


def test_web_ui_served_and_can_be_disabled(make_app: Callable[..., FastAPI]) -> None:
    with TestClient(make_app()) as client:
        page = client.get("/")
        assert page.status_code == 200 and "<title>The appliance</title>" in page.text
        script = re.search(r'src="(/static/[^"]+/js/main\.js)"', page.text)
        assert script is not None and client.get(script.group(1)).status_code == 200
    with TestClient(make_app(disable_web_ui=True)) as client:
        assert client.get("/").status_code == 404
        assert client.get(script.group(1)).status_code == 404
        assert client.get("/v1/models").status_code == 200
