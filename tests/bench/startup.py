"""Benchmark: seconds from process start to the first 200 on /healthz, and idle RSS.

Runs the appliance (`python -m appliance run`, empty models path) and, side by side in the same
run, a bare FastAPI + uvicorn app with a single /healthz route as the floor any FastAPI server
pays. Median of 5 runs each; prints one JSON line. Usage: python tests/bench/startup.py [--runs N]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

BARE_APP = """
import uvicorn
from fastapi import FastAPI
app = FastAPI()
@app.get("/healthz")
def healthz():
    return {"status": "ok"}
uvicorn.run(app, host="127.0.0.1", port=%d, log_level="warning")
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


def measure(command: list[str], port: int, cwd: Path) -> tuple[float, float]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("APPLIANCE_", "LOCALAI_"))}
    started = time.perf_counter()
    proc = subprocess.Popen(command, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}/healthz"
    try:
        with httpx.Client(timeout=1.0) as client:
            while True:
                if proc.poll() is not None:
                    raise RuntimeError(f"{command} exited with {proc.returncode}")
                if time.perf_counter() - started > 60:
                    raise RuntimeError(f"{command} not healthy after 60 s")
                try:
                    if client.get(url).status_code == 200:
                        break
                except httpx.TransportError:
                    time.sleep(0.005)
            ready = time.perf_counter() - started
            for _ in range(20):  # warm the request path before reading idle memory
                client.get(url)
        time.sleep(1.0)
        return ready, rss_mb(proc.pid)
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    appliance_ready, appliance_rss, bare_ready, bare_rss = [], [], [], []
    with tempfile.TemporaryDirectory() as tmp:
        cwd = Path(tmp)
        (cwd / "models").mkdir()
        for _ in range(args.runs):
            port = free_port()
            ready, rss = measure(
                [sys.executable, "-m", "appliance", "run", "--address", f"127.0.0.1:{port}",
                 "--models-path", str(cwd / "models"), "--data-path", str(cwd / "data"), "--log-level", "warning"],
                port, cwd,
            )
            appliance_ready.append(ready)
            appliance_rss.append(rss)
            port = free_port()
            ready, rss = measure([sys.executable, "-c", BARE_APP % port], port, cwd)
            bare_ready.append(ready)
            bare_rss.append(rss)
    result = {
        "bench": "startup",
        "runs": args.runs,
        "machine": f"{platform.machine()} {os.cpu_count()} cpus, python {platform.python_version()}",
        "ready_s": round(statistics.median(appliance_ready), 3),
        "idle_rss_mb": round(statistics.median(appliance_rss), 1),
        "bare_fastapi_ready_s": round(statistics.median(bare_ready), 3),
        "bare_fastapi_idle_rss_mb": round(statistics.median(bare_rss), 1),
        "ready_ratio_vs_bare": round(statistics.median(appliance_ready) / statistics.median(bare_ready), 2),
        "rss_ratio_vs_bare": round(statistics.median(appliance_rss) / statistics.median(bare_rss), 2),
        "targets": {"ready_s": 2.0, "idle_rss_mb": 150},
        "meets_targets": statistics.median(appliance_ready) < 2.0 and statistics.median(appliance_rss) < 150,
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
