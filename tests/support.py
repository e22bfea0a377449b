"""Test helpers shared across suites: the one error-envelope assertion, a real server process, builders."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
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


def assert_anthropic_error(
    response: httpx.Response, status: int, type_: str, *, contains: str | None = None
) -> str:
    """Pin Anthropic's error shape (the Messages API's): {"type": "error", "error": {"type", "message"}}."""
    assert response.status_code == status, (response.status_code, response.text)
    assert response.headers["content-type"].startswith("application/json"), response.headers
    body = response.json()
    assert set(body) == {"type", "error"} and body["type"] == "error", body
    assert set(body["error"]) == {"type", "message"} and body["error"]["type"] == type_, body
    message = body["error"]["message"]
    assert isinstance(message, str) and message, body
    if contains is not None:
        assert contains.lower() in message.lower(), message
    return message


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Server:
    def __init__(self, args: list[str], cwd: Path, port: int, env: dict[str, str] | None = None) -> None:
        self.base = f"http://127.0.0.1:{port}"
        self.log = cwd / f"server-{port}.log"
        child_env = {k: v for k, v in os.environ.items() if not k.startswith(("APPLIANCE_", "LOCALAI_"))}
        child_env.update(env or {})
        with self.log.open("wb") as out:  # the child keeps its own copy of the descriptor
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "appliance", "run", *args],
                cwd=cwd,
                env=child_env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )

    def wait_healthy(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"server exited {self.proc.returncode}:\n{self.output()}")
            try:
                if httpx.get(self.base + "/healthz", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                time.sleep(0.05)
        raise AssertionError(f"server not healthy after {timeout}s:\n{self.output()}")

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode


class ServerWithClients:
    """A `Server` process with an httpx client (`http`) and the openai client (`sdk`) on it: kill it,
    stop it and close the clients the same way in every fixture that holds one."""

    server: Server
    http: httpx.Client
    sdk: Any

    def kill(self) -> None:
        """SIGKILL: no shutdown hooks, no flush beyond what was committed."""
        self.close_clients()
        self.server.proc.kill()
        assert self.server.proc.wait(timeout=10) == -signal.SIGKILL

    def stop(self) -> None:
        """SIGINT and wait; safe to call twice or after `kill`."""
        self.close_clients()
        if self.server.proc.poll() is None:
            self.server.stop()

    def close_clients(self) -> None:
        self.http.close()
        self.sdk.close()
