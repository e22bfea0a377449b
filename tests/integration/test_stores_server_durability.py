"""`kill -9` a real server while a client writes batches to /stores/set, restart it on the same data
path: every acknowledged batch is there, no batch is half there, and `find` agrees with a numpy
reference — also after the FAISS checkpoint files are deleted and the index is rebuilt from SQLite.
"""

from __future__ import annotations

import shutil
import signal
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest

from support import Server, free_port

BATCHES, BATCH_SIZE, DIMENSION, TOPK = 50, 20, 16, 10
KEYS = np.random.default_rng(2024).normal(size=(BATCHES * BATCH_SIZE, DIMENSION)).astype(np.float32)
QUERIES = np.random.default_rng(7).normal(size=(5, DIMENSION)).astype(np.float32)
STORE = "durable"


def batch_keys(b: int) -> list[list[float]]:
    return KEYS[b * BATCH_SIZE : (b + 1) * BATCH_SIZE].tolist()


def batch_values(b: int) -> list[str]:
    return [f"b{b}-k{j}" for j in range(BATCH_SIZE)]


class Writer(threading.Thread):
    """Sends the batches one after another, recording which were acknowledged (HTTP 200 received).

    Sending batch ``kill_at`` also arms ``kill`` a moment later, so the server dies while that batch
    is in flight (or just after its answer); the writer waits for the kill before sending more, so
    the kill point does not depend on how fast the test's threads are scheduled.
    """

    def __init__(self, base: str, kill_at: int, kill: Callable[[], None]) -> None:
        super().__init__(daemon=True)
        self.base = base
        self.kill_at = kill_at
        self.kill = kill
        self.acked: list[int] = []
        self.sent: list[int] = []
        self.error: BaseException | None = None

    def run(self) -> None:
        with httpx.Client(base_url=self.base, timeout=10) as client:
            for b in range(BATCHES):
                killer = threading.Timer(0.002, self.kill) if b == self.kill_at else None
                if killer is not None:
                    killer.start()
                self.sent.append(b)
                try:
                    response = client.post("/stores/set", json={"store": STORE, "keys": batch_keys(b), "values": batch_values(b)})
                except httpx.TransportError:
                    break  # the server was killed under us: this batch may or may not have committed
                except BaseException as exc:  # surfaced by the test, not lost in the thread
                    self.error = exc
                    break
                finally:
                    if killer is not None:
                        killer.join(timeout=10)
                if response.status_code != 200:
                    self.error = AssertionError(f"batch {b}: {response.status_code} {response.text}")
                    break
                self.acked.append(b)


@pytest.fixture
def serve(tmp_path: Path) -> Iterator:
    servers: list[Server] = []
    data = tmp_path / "data"

    def start() -> Server:
        port = free_port()
        server = Server(["--address", f"127.0.0.1:{port}", "--data-path", str(data), "--no-builtin-models"], tmp_path, port)
        servers.append(server)
        server.wait_healthy(timeout=30)
        return server

    yield start
    for server in servers:
        if server.proc.poll() is None:
            server.proc.kill()
            server.proc.wait(timeout=10)


def post(client: httpx.Client, path: str, **body: object) -> dict:
    response = client.post(path, json={"store": STORE, **body})
    assert response.status_code == 200, response.text
    return response.json()


def present_batches(client: httpx.Client, maybe: set[int]) -> list[int]:
    """The batches found in the store; each one entirely, with its values, or not at all."""
    present = []
    for b in range(BATCHES):
        got = post(client, "/stores/get", keys=batch_keys(b))
        if got["values"]:
            assert got == {"keys": batch_keys(b), "values": batch_values(b)}, f"batch {b} is half-written"
            present.append(b)
        else:
            assert b in maybe, f"batch {b} was never acknowledged yet is missing"
    return present


def find_all(server: Server) -> list[dict]:
    with httpx.Client(base_url=server.base, timeout=10) as client:
        return [post(client, "/stores/find", key=q.tolist(), topk=TOPK) for q in QUERIES]


def assert_find_matches_reference(client: httpx.Client, present: list[int]) -> list[dict]:
    rows = np.concatenate([np.arange(b * BATCH_SIZE, (b + 1) * BATCH_SIZE) for b in present])
    values = np.array([f"b{i // BATCH_SIZE}-k{i % BATCH_SIZE}" for i in rows])
    unit = KEYS[rows].astype(np.float64)
    unit /= np.linalg.norm(unit, axis=1, keepdims=True)
    results = []
    for query in QUERIES:
        found = post(client, "/stores/find", key=query.tolist(), topk=TOPK)
        q = query.astype(np.float64) / np.linalg.norm(query)
        sims = unit @ q
        order = np.argsort(-sims, kind="stable")[:TOPK]
        assert found["similarities"] == pytest.approx(sims[order].tolist(), abs=1e-5)
        by_value = dict(zip(values.tolist(), sims.tolist(), strict=True))
        for value, sim in zip(found["values"], found["similarities"], strict=True):
            assert by_value[value] == pytest.approx(sim, abs=1e-5), value
        assert found["values"] == values[order].tolist()
        results.append(found)
    return results


@pytest.mark.timeout(60)
@pytest.mark.parametrize("kill_at", [5, 20, 45])
def test_kill_9_mid_stream_loses_no_acknowledged_batch(serve, tmp_path: Path, kill_at: int) -> None:
    server = serve()
    writer = Writer(server.base, kill_at, server.proc.kill)  # SIGKILL: no shutdown, no checkpoint
    writer.start()
    writer.join(timeout=30)
    assert not writer.is_alive() and writer.error is None, writer.error
    assert server.proc.wait(timeout=10) == -signal.SIGKILL
    acked = list(writer.acked)
    assert acked == list(range(len(acked))) and len(acked) in (kill_at, kill_at + 1)

    in_flight = set(writer.sent) - set(acked)
    assert len(in_flight) <= 1
    server = serve()
    with httpx.Client(base_url=server.base, timeout=10) as client:
        present = present_batches(client, maybe=in_flight | set(range(len(writer.sent), BATCHES)))
        assert set(acked) <= set(present) <= set(writer.sent)
        listed = {s["name"]: s for s in client.get("/stores").json()["stores"]}
        assert listed[STORE]["count"] == len(present) * BATCH_SIZE and listed[STORE]["dimension"] == DIMENSION
        first = assert_find_matches_reference(client, present)
    assert server.stop() == 0  # a clean stop checkpoints the index

    index_dir = tmp_path / "data" / "stores" / "index"
    assert list(index_dir.iterdir()), "a clean stop should have written the FAISS checkpoint"
    server = serve()
    from_checkpoint = find_all(server)
    assert server.stop() == 0
    assert "stores_index_loaded" in server.output() and from_checkpoint == first

    shutil.rmtree(index_dir)
    server = serve()
    rebuilt = find_all(server)
    assert server.stop() == 0
    assert "stores_index_rebuilt" in server.output() and rebuilt == from_checkpoint
