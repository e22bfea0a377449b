"""Benchmark: text generation through the appliance's streaming API against raw llama-cpp-python.

One run, one synthetic GGUF (random weights, hidden 1024, 12 layers, f16 by default: compute
dominates), the same prompt and greedy settings both ways, 128 tokens, median of 5:
  (a) in-process `Llama.create_completion(stream=True)`;
  (b) the appliance's `POST /v1/completions` with `stream: true`, from another process over HTTP.
Then 4 concurrent streams through the API: aggregate tokens/s and how evenly they were served.
Prints one JSON line. Usage: python tests/bench/chat.py [--runs 5] [--tokens 128] [--ftype f16]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/ for fixtures and support

from fixtures.gguf_models import write_bench_gguf  # noqa: E402
from support import Server, free_port, write  # noqa: E402

PROMPT = "the user said hello world and the assistant said"


def raw_stream(llm: object, tokens: int) -> tuple[float, float, int]:
    """(ttft seconds, decode tokens/s, tokens) for one raw streamed completion."""
    started = time.perf_counter()
    first = last = 0.0
    count = 0
    for chunk in llm.create_completion(PROMPT, max_tokens=tokens, temperature=0, top_k=1, stream=True):  # type: ignore[attr-defined]
        if chunk["choices"][0]["finish_reason"]:  # the closing chunk carries no token
            continue
        now = time.perf_counter()
        if count == 0:
            first = now
        last = now
        count += 1
    return first - started, (count - 1) / (last - first) if count > 1 else 0.0, count


def api_stream(base: str, tokens: int, client: httpx.Client) -> tuple[float, float, int, float, float]:
    """(ttft, decode tokens/s, tokens, start, end) for one streamed completion through the API."""
    body = {"model": "bench", "prompt": PROMPT, "max_tokens": tokens, "temperature": 0, "top_k": 1, "stream": True}
    started = time.perf_counter()
    first = last = 0.0
    count = 0
    with client.stream("POST", base + "/v1/completions", json=body) as response:
        response.raise_for_status()
        for line in response.iter_lines():
            if not line.startswith("data: ") or line == "data: [DONE]":
                continue
            chunk = json.loads(line[6:])
            if not chunk.get("choices") or chunk["choices"][0].get("finish_reason"):
                continue
            now = time.perf_counter()
            if count == 0:
                first = now
            last = now
            count += 1
    ended = time.perf_counter()
    rate = (count - 1) / (last - first) if count > 1 else 0.0
    return first - started, rate, count, started, ended


def jain(values: list[float]) -> float:
    """Jain's fairness index: 1.0 when every stream got the same rate, 1/n when one got all."""
    return sum(values) ** 2 / (len(values) * sum(v * v for v in values))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--tokens", type=int, default=128)
    parser.add_argument("--ftype", choices=["f16", "q8_0"], default="f16")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--concurrent", type=int, default=4)
    args = parser.parse_args()

    from llama_cpp import Llama

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        models = root / "models"
        models.mkdir()
        built = time.perf_counter()
        model = write_bench_gguf(models / "bench.gguf", ftype=args.ftype)
        build_s = time.perf_counter() - built
        write(
            models / "bench.yaml",
            f"name: bench\nbackend: llama-cpp\ncontext_size: 2048\nthreads: {args.threads}\n"
            "parameters:\n  model: bench.gguf\n",
        )

        llm = Llama(str(model), n_ctx=2048, n_threads=args.threads, verbose=False)
        raw_stream(llm, 8)  # warm-up
        port = free_port()
        server = Server(
            ["--address", f"127.0.0.1:{port}", "--models-path", str(models), "--log-level", "warning"], root, port
        )
        try:
            server.wait_healthy(timeout=60)
            with httpx.Client(timeout=300) as client:
                api_stream(server.base, 8, client)  # loads the model and warms up
                raw, api = [], []
                for _ in range(args.runs):  # interleaved so drifts in machine load hit both alike
                    raw.append(raw_stream(llm, args.tokens))
                    api.append(api_stream(server.base, args.tokens, client))
                del llm

                results: list[tuple[float, float, int, float, float] | None] = [None] * args.concurrent

                def worker(i: int) -> None:
                    with httpx.Client(timeout=600) as own:
                        results[i] = api_stream(server.base, args.tokens, own)

                wall_start = time.perf_counter()
                threads = [threading.Thread(target=worker, args=(i,)) for i in range(args.concurrent)]
                for thread in threads:
                    thread.start()
                for thread in threads:
                    thread.join()
                wall = time.perf_counter() - wall_start
        finally:
            server.stop()

    done = [r for r in results if r is not None]
    raw_tps = statistics.median(r[1] for r in raw)
    api_tps = statistics.median(a[1] for a in api)
    raw_ttft = statistics.median(r[0] for r in raw)
    api_ttft = statistics.median(a[0] for a in api)
    per_stream = [count / (end - start) for _, _, count, start, end in done]
    print(
        json.dumps(
            {
                "bench": "chat",
                "machine": f"{platform.machine()} {os.cpu_count()} cpus, python {platform.python_version()}",
                "model": f"synthetic llama hidden 1024 x 12 layers {args.ftype}, built in {build_s:.1f} s",
                "threads": args.threads,
                "tokens": args.tokens,
                "runs": args.runs,
                "tokens_generated": {"raw": [r[2] for r in raw], "api": [a[2] for a in api]},
                "raw_tokens_per_s": round(raw_tps, 1),
                "api_tokens_per_s": round(api_tps, 1),
                "tokens_per_s_ratio_api_over_raw": round(api_tps / raw_tps, 3),
                "raw_ttft_ms": round(raw_ttft * 1000, 1),
                "api_ttft_ms": round(api_ttft * 1000, 1),
                "ttft_overhead_ms": round((api_ttft - raw_ttft) * 1000, 1),
                "concurrent_streams": args.concurrent,
                "concurrent_aggregate_tokens_per_s": round(sum(d[2] for d in done) / wall, 1),
                "concurrent_tokens_each": [d[2] for d in done],
                "concurrent_ttft_s": sorted(round(d[0], 2) for d in done),
                "concurrent_completion_s": sorted(round(d[4] - d[3], 2) for d in done),
                "concurrent_fairness_jain": round(jain(per_stream), 3),
                "targets": {"tokens_per_s_ratio": 0.95, "ttft_overhead_ms": 15},
            }
        )
    )


if __name__ == "__main__":
    main()
