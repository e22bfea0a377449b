"""The scheduler seen through HTTP: a full queue is 429, a long wait 503, a stuck request 504."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path

import httpx
from fastapi import FastAPI

from support import assert_error, write

SLOW = "name: slow\nbackend: fake\noptions: ['token_delay_ms:40']\n"


def chat(max_tokens: int) -> dict:
    return {"model": "slow", "messages": [{"role": "user", "content": "go on"}], "max_tokens": max_tokens, "seed": 1}


async def serve(app: FastAPI, work: Callable[[httpx.AsyncClient], object]) -> object:
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test", timeout=30) as client:
            return await work(client)


def test_full_queue_is_429_with_retry_after(make_app: Callable[..., FastAPI], models_path: Path) -> None:
    write(models_path / "slow.yaml", SLOW)
    app = make_app(max_queued_requests=1)

    async def work(client: httpx.AsyncClient) -> list[httpx.Response]:
        first = asyncio.create_task(client.post("/v1/chat/completions", json=chat(25)))
        await asyncio.sleep(0.2)  # the first holds the model
        second = asyncio.create_task(client.post("/v1/chat/completions", json=chat(2)))
        await asyncio.sleep(0.1)  # the second waits in the queue
        third = await client.post("/v1/chat/completions", json=chat(2))
        return [await first, await second, third]

    first, second, third = asyncio.run(serve(app, work))
    assert first.status_code == 200 and second.status_code == 200
    assert_error(third, 429, code="rate_limit_exceeded")
    assert int(third.headers["retry-after"]) >= 1


def test_long_wait_is_503_with_retry_after(make_app: Callable[..., FastAPI], models_path: Path) -> None:
    write(models_path / "slow.yaml", SLOW)
    app = make_app(queue_timeout=0.3)

    async def work(client: httpx.AsyncClient) -> list[httpx.Response]:
        first = asyncio.create_task(client.post("/v1/chat/completions", json=chat(25)))
        await asyncio.sleep(0.2)
        second = await client.post("/v1/chat/completions", json=chat(2))
        return [await first, second]

    first, second = asyncio.run(serve(app, work))
    assert first.status_code == 200
    assert_error(second, 503, code="queue_timeout")
    assert "retry-after" in second.headers


def test_stuck_request_is_504_and_the_model_recovers(make_app: Callable[..., FastAPI], models_path: Path) -> None:
    write(models_path / "slow.yaml", SLOW)
    app = make_app(enable_watchdog_busy=True, watchdog_busy_timeout=0.4)

    async def work(client: httpx.AsyncClient) -> list[httpx.Response]:
        started = time.monotonic()
        stuck = await client.post("/v1/chat/completions", json=chat(500))  # ~20 s of tokens
        elapsed = time.monotonic() - started
        assert elapsed < 3, elapsed
        after = await client.post("/v1/chat/completions", json=chat(3))
        return [stuck, after]

    stuck, after = asyncio.run(serve(app, work))
    assert_error(stuck, 504, code="busy_timeout")
    assert after.status_code == 200 and after.json()["usage"]["completion_tokens"] == 3


def test_failed_load_answers_503_with_retry_after(make_app: Callable[..., FastAPI], models_path: Path) -> None:
    write(models_path / "broken.yaml", "name: broken\nbackend: fake\noptions: ['fail_load:true']\n")
    app = make_app()

    async def work(client: httpx.AsyncClient) -> list[httpx.Response]:
        body = {"model": "broken", "messages": [{"role": "user", "content": "x"}]}
        return [await client.post("/v1/chat/completions", json=body) for _ in range(2)]

    first, second = asyncio.run(serve(app, work))
    assert_error(first, 503, code="model_load_failed")
    assert_error(second, 503, code="model_load_failed")  # the cooldown answers without loading again
    assert int(second.headers["retry-after"]) >= 1
