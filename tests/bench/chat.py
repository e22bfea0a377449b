"""Benchmark: text generation through the appliance's streaming API against raw llama-cpp-python.

One run, one synthetic GGUF (random weights, hidden 1024, 12 layers, f16 by default: compute
dominates), the same prompt and greedy settings both ways, 128 tokens, median of 5:
  (a) in-process `Llama.create_completion(stream=True)`;
  (b) the appliance's `POST /v1/completions` with `stream: true`, from another process over HTTP.
Then 4 concurrent streams through the API: aggregate tokens/s and how evenly they were served.
With ``--parallel N`` (default 4; 0 skips it) a second server started with ``--parallel-requests``
serves the same model with N slots decoded together by the batch engine: its single-stream runs are
interleaved with (b), and its concurrent streams are measured right after the serial ones. (A second
process, not a second model in the same one: two llama.cpp models in one process slow each other.)
Prints one JSON line. Usage: python tests/bench/chat.py [--runs 5] [--tokens 128] [--ftype f16] [--parallel 4]
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


def start_server(root: Path, models: Path, flags: list[str]) -> Server:
    port = free_port()
    args = ["--address", f"127.0.0.1:{port}", "--models-path", str(models), "--log-level", "warning", *flags]
    return Server(args, root, port)


def concurrent(base: str, streams: int, tokens: int) -> dict[str, object]:
    """``streams`` streamed completions at once: aggregate tokens/s, TTFTs, completion times, fairness.

    One asyncio client reads them all: client threads would fight the server for the same 2 cores
    (and its GIL-bound parsing) and measure the client more than the server.
    """

    async def one(client: httpx.AsyncClient) -> tuple[float, int, float, float]:
        body = {"model": "bench", "prompt": PROMPT, "max_tokens": tokens, "temperature": 0, "top_k": 1, "stream": True}
        started = time.perf_counter()
        first, count = 0.0, 0
        async with client.stream("POST", base + "/v1/completions", json=body) as response:
            response.raise_for_status()
            async for line in response.aiter_lines():
                if not line.startswith("data: ") or line == "data: [DONE]":
                    continue
                chunk = json.loads(line[6:])
                if not chunk.get("choices") or chunk["choices"][0].get("finish_reason"):
                    continue
                if count == 0:
                    first = time.perf_counter()
                count += 1
        return first - started, count, started, time.perf_counter()

    async def run_all() -> tuple[list[tuple[float, int, float, float]], float]:
        limits = httpx.Limits(max_connections=streams)
        async with httpx.AsyncClient(timeout=600, limits=limits) as client:
            started = time.perf_counter()
            done = await asyncio.gather(*(one(client) for _ in range(streams)))
            return list(done), time.perf_counter() - started

    done, wall = asyncio.run(run_all())
    per_stream = [count / (end - start) for _, count, start, end in done]
    return {
        "aggregate_tokens_per_s": round(sum(d[1] for d in done) / wall, 1),
        "tokens_each": [d[1] for d in done],
        "ttft_s": sorted(round(d[0], 2) for d in done),
        "completion_s": sorted(round(d[3] - d[2], 2) for d in done),
        "fairness_jain": round(jain(per_stream), 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--tokens", type=int, default=128)
    parser.add_argument("--ftype", choices=["f16", "q8_0"], default="f16")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--concurrent", type=int, default=4)
    parser.add_argument("--parallel", type=int, default=4, help="slots of the parallel model (0: skip it)")
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
            f"options: ['parallel:{max(1, args.parallel)}']\nparameters:\n  model: bench.gguf\n",
        )

        llm = Llama(str(model), n_ctx=2048, n_threads=args.threads, verbose=False)
        raw_stream(llm, 8)  # warm-up
        servers = [start_server(root, models, [])]
        if args.parallel:
            servers.append(start_server(root, models, ["--parallel-requests"]))
        try:
            with httpx.Client(timeout=300) as client:
                for server in servers:
                    server.wait_healthy(timeout=60)
                    api_stream(server.base, 8, client)  # loads the model and warms up
                raw, api, par = [], [], []
                for _ in range(args.runs):  # interleaved so drifts in machine load hit all alike
                    raw.append(raw_stream(llm, args.tokens))
                    api.append(api_stream(servers[0].base, args.tokens, client))
                    if args.parallel:
                        par.append(api_stream(servers[-1].base, args.tokens, client))
                del llm
                serial_many = concurrent(servers[0].base, args.concurrent, args.tokens)
                parallel_many = concurrent(servers[-1].base, args.concurrent, args.tokens) if par else {}
        finally:
            for server in servers:
                server.stop()

    raw_tps = statistics.median(r[1] for r in raw)
    api_tps = statistics.median(a[1] for a in api)
    raw_ttft = statistics.median(r[0] for r in raw)
    api_ttft = statistics.median(a[0] for a in api)
    parallel: dict[str, object] = {}
    if par:
        par_tps = statistics.median(p[1] for p in par)
        parallel = {
            "slots": args.parallel,
            "tokens_per_s": round(par_tps, 1),
            "tokens_per_s_ratio_over_serial_api": round(par_tps / api_tps, 3),
            "ttft_ms": round(statistics.median(p[0] for p in par) * 1000, 1),
            "concurrent": parallel_many,
            "concurrent_aggregate_ratio_over_serial": round(
                float(parallel_many["aggregate_tokens_per_s"]) / float(serial_many["aggregate_tokens_per_s"]), 2
            ),
        }
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
                **{f"concurrent_{key}": value for key, value in serial_many.items()},
                "parallel": parallel,
                "targets": {"tokens_per_s_ratio": 0.95, "ttft_overhead_ms": 15, "parallel_single_stream_ratio": 0.95},
            }
        )
    )


if __name__ == "__main__":
    main()
