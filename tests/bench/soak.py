"""Benchmark: a soak — many minutes of mixed concurrent traffic against one real server, and its health after.

One real server (`python -m appliance run`, loopback only) with real tiny models built from code: a ChatML GGUF
chat model (llama.cpp), the built-in MiniLM embedder (`all-minilm-l6-v2`), a tiny cross-encoder for rerank, a
tiny piper voice for speech and a tiny CTranslate2 whisper for transcription. The server's TMPDIR is a fresh
folder of its own. --workers concurrent clients (one asyncio loop, one connection pool) pick requests from a
weighted mix until the run ends:
  chat      streamed chat completions read to the end, streamed ones the client drops after a few chunks
            (a closed connection mid-stream), non-streamed ones;
  vectors   embeddings (1-8 inputs), rerank (4-8 documents), `/stores/set|find|delete` on a bounded key pool;
  documents an upload (`POST /v1/files`) attached to a vector store (`POST /v1/vector_stores/{id}/files`),
            polled until it ends; the store keeps a rolling window of --window files, the oldest detached and
            deleted (`DELETE`s of the store file and the file) as new ones arrive; `/v1/vector_stores/{id}/search`
            (hybrid, some with a rerank model);
  audio     `/v1/audio/speech` (WAV) and `/v1/audio/transcriptions` (a short tone WAV, multipart).
The traffic runs --warmup seconds first, then --duration seconds measured. Three times — after the warm-up
(start), half way (middle) and at the end — the clients pause until nothing is in flight and no document is
being ingested, close their pooled connections (only the server's own sockets are counted), the server gets
a few seconds to settle, and its process tree is sampled from /proc: resident memory (VmRSS), open file
descriptors (/proc/PID/fd, also by kind) and threads, of the main process and of the tree (extraction children
included). Before the start sample, bursts of cheap reads reach every thread of the server's pool: each opens
its own SQLite reader on first use, a bounded number that the start should already count. Samples taken under
load every few seconds give the peak. At the end, with the server idle, whatever is left in its TMPDIR, in the
data path's tmp/ folder and any `*.tmp` / `.tmp-*` file in the data path is listed; again after a clean
shutdown (SIGINT).

Prints ONE JSON line: requests per route, statuses per route (errors by status: 4xx, 5xx, `timeout` and
`transport` for client-side failures, `stream_error` for an error event inside a 200 stream, `ingest_failed`
for a document that ended `failed`), p50/p99 per route over the measured part, the samples and growth ratios,
the files left, server-log errors, and pass/fail against the aims: no 5xx, no error but 429/503, memory after
warm-up growing under 10 %, no file-descriptor growth, no temporary file left. Progress goes to stderr.
Usage: python tests/bench/soak.py [--duration 600] [--warmup 60] [--workers 12] [--workdir DIR]
       (--duration 60 --warmup 15 for a quick check)
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import os
import platform
import random
import re
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # everything here is local; never wait on the hub
HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != HERE]  # tests/bench/stores.py shadows `stores`
sys.path.insert(0, str(REPO / "tests"))  # for support and fixtures

import httpx  # noqa: E402
from support import Server, free_port, write  # noqa: E402

STARTED = time.perf_counter()
CHAT_MODEL = "soak-chat"
EMBED_MODEL = "all-minilm-l6-v2"
RERANK_MODEL = "soak-reranker"
VOICE_MODEL = "soak-voice"
WHISPER_MODEL = "soak-whisper"
STORE = "soak"
KEY_DIM = 32
KEY_POOL = 400
NO_END = {str(token): -100 for token in range(5)}  # the tiny chat model's control tokens: runs reach max_tokens
ALLOWED_ERRORS = {"429", "503"}  # what overload is meant to answer
MEMORY_GROWTH_LIMIT = 0.10
SETTLE_S = 3.0
SAMPLE_EVERY_S = 5.0
SERVER_ERROR = re.compile(r"status=5\d\d|Traceback|event=ingest_crashed")
WORDS = ("the", "pump", "valve", "sensor", "filter", "manual", "error", "code", "replace", "inspect", "pressure",
         "hello", "world", "maintenance", "calibration", "bearing", "fan", "belt", "board", "shift")
QUERIES = ("how do I replace the feed pump", "error code for the pressure sensor", "cooling fan vibrates",
           "calibration of the flow meter", "torque for the mounting bolts", "relief valve leaks at the seal",
           "what does the maintenance log record", "firmware update for the control board")

# Route labels, reported in this order.
CHAT_STREAM = "POST /v1/chat/completions stream"
CHAT_CANCEL = "POST /v1/chat/completions stream cancelled"
CHAT = "POST /v1/chat/completions"
EMBED = "POST /v1/embeddings"
RERANK = "POST /v1/rerank"
STORE_SET = "POST /stores/set"
STORE_FIND = "POST /stores/find"
STORE_DELETE = "POST /stores/delete"
FILE_UPLOAD = "POST /v1/files"
ATTACH = "POST /v1/vector_stores/{id}/files"
POLL = "GET /v1/vector_stores/{id}/files/{file_id}"
LIST_FILES = "GET /v1/vector_stores/{id}/files"
INGEST = "ingest (upload to completed)"
DETACH = "DELETE /v1/vector_stores/{id}/files/{file_id}"
FILE_DELETE = "DELETE /v1/files/{file_id}"
SEARCH = "POST /v1/vector_stores/{id}/search"
SPEECH = "POST /v1/audio/speech"
TRANSCRIBE = "POST /v1/audio/transcriptions"


# -- output -------------------------------------------------------------------------------------------------------

def log(message: str) -> None:
    print(f"[{time.perf_counter() - STARTED:7.1f}s] {message}", file=sys.stderr, flush=True)


def percentile(ordered: list[float], q: float) -> float:
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def ratio(after: float, before: float) -> float | None:
    return round(after / before, 4) if before else None


# -- the server's process tree, from /proc -------------------------------------------------------------------------

def _children(pid: int) -> list[int]:
    """Every descendant of `pid` (a walk over /proc/*/stat parents)."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parents[int(entry.name)] = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):  # gone meanwhile
                continue
    found, frontier = [], [pid]
    while frontier:
        parent = frontier.pop()
        kids = [child for child, of in parents.items() if of == parent]
        found += kids
        frontier += kids
    return found


def _status(pid: int) -> dict[str, int]:
    values: dict[str, int] = {}
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            key, _, rest = line.partition(":")
            if key in ("VmRSS", "RssAnon", "Threads"):
                values[key] = int(rest.split()[0])
    except OSError:
        pass
    return values


def _fds(pid: int) -> int:
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return 0


def _cpu_ticks(pid: int) -> int:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return sum(int(f) for f in fields[11:15])  # utime stime cutime cstime
    except (OSError, IndexError, ValueError):
        return 0


def fd_kinds(pid: int) -> dict[str, int]:
    """The server's open descriptors by kind: socket, pipe, anon_inode:[...], or the file's path."""
    kinds: collections.Counter[str] = collections.Counter()
    try:
        names = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return {}
    for name in names:
        try:
            target = os.readlink(f"/proc/{pid}/fd/{name}")
        except OSError:
            continue
        kinds[re.sub(r":\[\d+\]$", "", target)] += 1
    return dict(sorted(kinds.items()))


def sample_tree(pid: int, kinds: bool = False) -> dict[str, Any]:
    """Resident memory, open descriptors and threads of the server and of its whole process tree."""
    main = _status(pid)
    kids = _children(pid)
    tree_rss = main.get("VmRSS", 0) + sum(_status(kid).get("VmRSS", 0) for kid in kids)
    return {
        "rss_mb": round(main.get("VmRSS", 0) / 1024, 1),
        "rss_anon_mb": round(main.get("RssAnon", 0) / 1024, 1),
        "tree_rss_mb": round(tree_rss / 1024, 1),
        "fds": _fds(pid),
        "tree_fds": _fds(pid) + sum(_fds(kid) for kid in kids),
        "threads": main.get("Threads", 0),
        "children": len(kids),
        **({"fd_kinds": fd_kinds(pid)} if kinds else {}),
    }


def machine_busy() -> tuple[int, int]:
    """(busy, total) jiffies of the whole machine since boot."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:8]]
    return sum(values) - values[3] - values[4], sum(values)


# -- the traffic ---------------------------------------------------------------------------------------------------

@dataclass
class Route:
    """What one route answered: latencies of the measured part, statuses of the whole run."""

    latencies: list[float] = field(default_factory=list)
    statuses: collections.Counter[str] = field(default_factory=collections.Counter)
    warmup_statuses: collections.Counter[str] = field(default_factory=collections.Counter)


@dataclass
class Phase:
    """Where the run is: measured or not, clients let go or paused (and how many requests are in flight)."""

    measuring: bool = False
    running: asyncio.Event = field(default_factory=asyncio.Event)
    stop: bool = False
    in_flight: int = 0
    idle: asyncio.Event = field(default_factory=asyncio.Event)


class Traffic:
    """The request mix and what each request answered."""

    def __init__(self, connect: Callable[[], httpx.AsyncClient], documents: list[tuple[str, bytes, str]],
                 audio: bytes, window: int, seed: int, only: set[str] | None = None) -> None:
        self.connect = connect
        self.client = connect()
        self.documents = documents
        self.audio = audio
        self.window_size = window
        self.rng = random.Random(seed)
        self.routes: dict[str, Route] = collections.defaultdict(Route)
        self.phase = Phase()
        self.vector_store = ""
        self.window: collections.deque[str] = collections.deque()
        self.uploads = 0
        self.mix: list[tuple[Callable[[], Awaitable[None]], float]] = [
            (self.chat_stream, 3.0), (self.chat_cancel, 2.0), (self.chat, 2.0),
            (self.embeddings, 3.0), (self.rerank, 2.0),
            (self.store_set, 2.0), (self.store_find, 2.0), (self.store_delete, 1.0),
            (self.document, 0.6), (self.search, 2.5),
            (self.speech, 1.0), (self.transcription, 1.0),
        ]  # fmt: skip
        if only:
            self.mix = [(op, weight) for op, weight in self.mix if op.__name__ in only]

    async def reconnect(self) -> None:
        """Close every pooled connection (a quiet sample counts only the server's own sockets), open a new pool."""
        await self.client.aclose()
        self.client = self.connect()

    # recording

    def record(self, route: str, outcome: str, seconds: float | None) -> None:
        entry = self.routes[route]
        if self.phase.measuring:
            entry.statuses[outcome] += 1
            if seconds is not None and outcome.startswith("2"):
                entry.latencies.append(seconds)
        else:
            entry.warmup_statuses[outcome] += 1

    async def call(self, route: str, method: str, url: str, **kwargs: Any) -> httpx.Response | None:
        """One request, timed and recorded; None when it got no response."""
        began = time.perf_counter()
        try:
            response = await self.client.request(method, url, **kwargs)
        except httpx.TimeoutException:
            self.record(route, "timeout", None)
            return None
        except httpx.TransportError as exc:
            self.record(route, f"transport:{type(exc).__name__}", None)
            return None
        self.record(route, str(response.status_code), time.perf_counter() - began)
        return response

    # chat

    def _chat_body(self, stream: bool, tokens: int) -> dict[str, Any]:
        words = " ".join(self.rng.choice(WORDS) for _ in range(self.rng.randrange(4, 16)))
        return {"model": CHAT_MODEL, "messages": [{"role": "system", "content": "You answer briefly."},
                                                  {"role": "user", "content": words}],
                "max_tokens": tokens, "temperature": 0.7, "seed": self.rng.randrange(1 << 30), "stream": stream,
                "logit_bias": NO_END}

    async def _stream(self, route: str, tokens: int, stop_after: int | None) -> None:
        began = time.perf_counter()
        chunks, outcome = 0, ""
        try:
            async with self.client.stream("POST", "/v1/chat/completions",
                                          json=self._chat_body(True, tokens)) as response:
                outcome = str(response.status_code)
                if response.status_code != 200:
                    await response.aread()
                else:
                    done = False
                    async for line in response.aiter_lines():
                        if not line.startswith("data: "):
                            continue
                        data = line[6:]
                        if data == "[DONE]":
                            done = True
                            break
                        if '"error"' in data and "error" in json.loads(data):
                            outcome = "stream_error"
                            break
                        chunks += 1
                        if stop_after is not None and chunks >= stop_after:
                            break  # leaving the block closes the connection mid-stream
                    if outcome == "200" and stop_after is None and not done:
                        outcome = "stream_truncated"
        except httpx.TimeoutException:
            outcome = "timeout"
        except httpx.TransportError as exc:
            outcome = f"transport:{type(exc).__name__}"
        seconds = time.perf_counter() - began
        self.record(route, outcome, seconds if outcome == "200" else None)

    async def chat_stream(self) -> None:
        await self._stream(CHAT_STREAM, self.rng.randrange(32, 96), None)

    async def chat_cancel(self) -> None:
        await self._stream(CHAT_CANCEL, 320, self.rng.randrange(1, 12))  # 512 context: prompt + 320 fit

    async def chat(self) -> None:
        response = await self.call(CHAT, "POST", "/v1/chat/completions",
                                   json=self._chat_body(False, self.rng.randrange(16, 64)))
        if response is not None and response.status_code == 200:
            assert response.json()["choices"][0]["message"]["content"] is not None

    # vectors

    def _sentence(self) -> str:
        return " ".join(self.rng.choice(WORDS) for _ in range(self.rng.randrange(3, 40)))

    async def embeddings(self) -> None:
        inputs = [self._sentence() for _ in range(self.rng.randrange(1, 9))]
        response = await self.call(EMBED, "POST", "/v1/embeddings", json={"model": EMBED_MODEL, "input": inputs})
        if response is not None and response.status_code == 200:
            assert len(response.json()["data"]) == len(inputs)

    async def rerank(self) -> None:
        documents = [self._sentence() for _ in range(self.rng.randrange(4, 9))]
        body = {"model": RERANK_MODEL, "query": self._sentence(), "documents": documents, "top_n": 3}
        await self.call(RERANK, "POST", "/v1/rerank", json=body)

    def _key(self, index: int) -> list[float]:
        rng = random.Random(index)  # key i is always the same vector: a set of it is an upsert
        return [rng.uniform(-1, 1) for _ in range(KEY_DIM)]

    async def store_set(self, indices: list[int] | None = None) -> None:
        chosen = indices or self.rng.sample(range(KEY_POOL), self.rng.randrange(1, 11))
        body = {"store": STORE, "keys": [self._key(i) for i in chosen], "values": [f"value {i}" for i in chosen]}
        await self.call(STORE_SET, "POST", "/stores/set", json=body)

    async def store_find(self) -> None:
        body = {"store": STORE, "key": self._key(self.rng.randrange(KEY_POOL * 2)), "topk": 5}
        await self.call(STORE_FIND, "POST", "/stores/find", json=body)

    async def store_delete(self) -> None:
        chosen = self.rng.sample(range(KEY_POOL), self.rng.randrange(1, 4))
        body = {"store": STORE, "keys": [self._key(i) for i in chosen]}
        await self.call(STORE_DELETE, "POST", "/stores/delete", json=body)

    # documents

    async def document(self) -> None:
        """Upload, attach, poll to the end; then keep the store to its rolling window."""
        name, data, media = self.documents[self.uploads % len(self.documents)]
        self.uploads += 1
        if media.startswith("text/"):  # a line of its own: not every upload is a duplicate of another
            data += f"\n\nUpload {self.uploads} of the soak, marker SOAK-{self.rng.randrange(10**9)}.\n".encode()
        began = time.perf_counter()
        uploaded = await self.call(FILE_UPLOAD, "POST", "/v1/files", files={"file": (name, data, media)},
                                   data={"purpose": "assistants"})
        if uploaded is None or uploaded.status_code != 200:
            return
        file_id = uploaded.json()["id"]
        attached = await self.call(ATTACH, "POST", f"/v1/vector_stores/{self.vector_store}/files",
                                   json={"file_id": file_id})
        if attached is None or attached.status_code != 200:
            await self.call(FILE_DELETE, "DELETE", f"/v1/files/{file_id}")
            return
        status = attached.json()["status"]
        deadline = time.monotonic() + 300
        while status == "in_progress" and time.monotonic() < deadline:
            await asyncio.sleep(0.25)
            polled = await self.call(POLL, "GET", f"/v1/vector_stores/{self.vector_store}/files/{file_id}")
            if polled is not None and polled.status_code == 200:
                status = polled.json()["status"]
        outcome = {"completed": "200", "failed": "ingest_failed", "in_progress": "ingest_stuck"}.get(status, status)
        self.record(INGEST, outcome, time.perf_counter() - began)
        self.window.append(file_id)
        while len(self.window) > self.window_size:
            await self.forget(self.window.popleft())

    async def forget(self, file_id: str) -> None:
        await self.call(DETACH, "DELETE", f"/v1/vector_stores/{self.vector_store}/files/{file_id}")
        await self.call(FILE_DELETE, "DELETE", f"/v1/files/{file_id}")

    async def list_files(self) -> None:
        await self.call(LIST_FILES, "GET", f"/v1/vector_stores/{self.vector_store}/files", params={"limit": 20})

    async def search(self) -> None:
        body: dict[str, Any] = {"query": self.rng.choice(QUERIES), "max_num_results": self.rng.randrange(3, 11)}
        if self.rng.random() < 0.3:
            body["ranking_options"] = {"rerank_model": RERANK_MODEL}
        await self.call(SEARCH, "POST", f"/v1/vector_stores/{self.vector_store}/search", json=body)

    # audio

    async def speech(self) -> None:
        body = {"model": VOICE_MODEL, "input": self._sentence() + ".", "voice": "alloy", "response_format": "wav"}
        response = await self.call(SPEECH, "POST", "/v1/audio/speech", json=body)
        if response is not None and response.status_code == 200:
            assert response.content[:4] == b"RIFF"

    async def transcription(self) -> None:
        await self.call(TRANSCRIBE, "POST", "/v1/audio/transcriptions",
                        files={"file": ("tone.wav", self.audio, "audio/wav")},
                        data={"model": WHISPER_MODEL, "response_format": "json"})

    # the workers

    async def worker(self) -> None:
        operations = [op for op, _ in self.mix]
        weights = [weight for _, weight in self.mix]
        phase = self.phase
        while True:
            await phase.running.wait()
            if phase.stop:
                return
            operation = self.rng.choices(operations, weights)[0]
            phase.in_flight += 1
            phase.idle.clear()
            try:
                await operation()
            except Exception as exc:  # a malformed 200 answer: count it, keep going
                self.record(f"client check ({operation.__name__})", type(exc).__name__, None)
            finally:
                phase.in_flight -= 1
                if phase.in_flight == 0:
                    phase.idle.set()

    async def pause(self) -> None:
        """Stop handing out new requests and wait for every one in flight (documents poll to their end)."""
        self.phase.running.clear()
        if self.phase.in_flight:
            await self.phase.idle.wait()

    def resume(self) -> None:
        self.phase.running.set()

    async def reach_every_thread(self, rounds: int = 4, width: int = 48) -> None:
        """Bursts of cheap reads of both databases: the server opens one SQLite reader per worker thread on first
        use (as many as its thread pool has), so the start sample should count them all."""
        for _ in range(rounds):
            await asyncio.gather(*(op() for _ in range(width // 2) for op in (self.store_find, self.list_files)))

    def report(self) -> dict[str, Any]:
        routes: dict[str, Any] = {}
        for name in sorted(self.routes, key=_route_order):
            entry = self.routes[name]
            ordered = sorted(entry.latencies)
            errors = {status: n for status, n in entry.statuses.items() if not status.startswith("2")}
            routes[name] = {
                "requests": sum(entry.statuses.values()),
                "errors": dict(sorted(errors.items())),
                "p50_ms": round(statistics.median(ordered) * 1000, 1) if ordered else None,
                "p99_ms": round(percentile(ordered, 0.99) * 1000, 1) if ordered else None,
                "warmup_requests": sum(entry.warmup_statuses.values()),
                "warmup_errors": {s: n for s, n in sorted(entry.warmup_statuses.items()) if not s.startswith("2")},
            }
        return routes


ROUTE_ORDER = (CHAT_STREAM, CHAT_CANCEL, CHAT, EMBED, RERANK, STORE_SET, STORE_FIND, STORE_DELETE, FILE_UPLOAD, ATTACH,
               POLL, LIST_FILES, INGEST, DETACH, FILE_DELETE, SEARCH, SPEECH, TRANSCRIBE)


def _route_order(name: str) -> tuple[int, str]:
    return (ROUTE_ORDER.index(name) if name in ROUTE_ORDER else len(ROUTE_ORDER), name)


# -- setup ---------------------------------------------------------------------------------------------------------

def build_models(models: Path, threads: int) -> dict[str, float]:
    """Every tiny model and one YAML naming them; seconds each build took."""
    from fixtures.gguf_models import write_chat_gguf
    from fixtures.piper_models import write_tiny_voice
    from fixtures.st_models import write_tiny_cross_encoder
    from fixtures.whisper_models import write_tiny_whisper

    spent: dict[str, float] = {}
    for name, build in (
        ("chat", lambda: write_chat_gguf(models / "soak-chat.gguf", context_length=512)),
        ("rerank", lambda: write_tiny_cross_encoder(models / "soak-reranker")),
        ("voice", lambda: write_tiny_voice(models / "soak-voice.onnx")),
        ("whisper", lambda: write_tiny_whisper(models / "soak-whisper")),
    ):
        began = time.perf_counter()
        build()
        spent[name] = round(time.perf_counter() - began, 1)
    write(models / "soak.yaml", (
        f"- name: {CHAT_MODEL}\n  backend: llama-cpp\n  context_size: 512\n  threads: {threads}\n"
        "  parameters: {model: soak-chat.gguf}\n"
        f"- name: {RERANK_MODEL}\n  backend: sentencetransformers\n  reranking: true\n  threads: {threads}\n"
        "  parameters: {model: soak-reranker}\n"
        f"- name: {VOICE_MODEL}\n  backend: piper\n  threads: {threads}\n  parameters: {{model: soak-voice.onnx}}\n"
        f"- name: {WHISPER_MODEL}\n  backend: whisper\n  threads: {threads}\n"
        "  parameters: {model: soak-whisper, temperature: 0, language: en}\n"
        "  options: ['beam_size:1', 'best_of:1', 'condition_on_previous_text:false']\n"
    ))  # fmt: skip
    return spent


def build_documents(folder: Path) -> list[tuple[str, bytes, str]]:
    """A few small documents in every common format: (name, bytes, media type)."""
    from fixtures.documents import write_docx, write_html, write_markdown, write_text, write_text_pdf

    folder.mkdir(parents=True, exist_ok=True)
    paths = [
        (write_text_pdf(folder, "manual.pdf", pages=3), "application/pdf"),
        (write_docx(folder, "manual.docx", sections=3),
         "application/vnd.openxmlformats-officedocument.wordprocessingml.document"),
        (write_html(folder, "page.html", sections=3), "text/html"),
        (write_markdown(folder, "manual.md", sections=4), "text/markdown"),
        (write_text(folder, "notes.txt", sections=4), "text/plain"),
    ]
    return [(path.name, path.read_bytes(), media) for path, media in paths]


def leftovers(data: Path, tmpdir: Path) -> dict[str, list[str]]:
    """Files left in the server's TMPDIR, in the data path's tmp/ folder, and temp-named files anywhere in the
    data path; and, apart, the folders in TMPDIR (a library's cache folder made at import, e.g. torch's)."""

    def files(root: Path) -> list[str]:
        return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()) if root.exists() else []

    def temp_named(path: Path) -> bool:
        return path.is_file() and (path.name.endswith(".tmp") or path.name.startswith(".tmp-"))

    named = sorted(str(p.relative_to(data)) for p in data.rglob("*")
                   if temp_named(p) and p.relative_to(data).parts[0] != "tmp") if data.exists() else []
    return {"tmpdir": files(tmpdir), "data_tmp": files(data / "tmp"), "data_temp_named": named,
            "tmpdir_folders": sorted(str(p.relative_to(tmpdir)) + "/" for p in tmpdir.rglob("*") if p.is_dir())}


def temp_files_left(left: dict[str, list[str]]) -> bool:
    return any(left[key] for key in ("tmpdir", "data_tmp", "data_temp_named"))


def server_errors(output: str, keep: int = 5) -> list[str]:
    """The server log's error lines, each traceback whole (its chain up to the last exception line); the first
    `keep` of them."""
    lines, found, at = output.splitlines(), [], 0
    chained = ("During handling", "The above exception")
    while at < len(lines) and len(found) < keep:
        if not SERVER_ERROR.search(lines[at]):
            at += 1
            continue
        block, traceback = [lines[at]], lines[at].startswith("Traceback")
        at += 1
        while traceback and at < len(lines):
            line = lines[at]
            block.append(line)
            at += 1
            if line[:1] not in (" ", "") and not line.startswith(("Traceback", *chained)):
                # the exception line: the chain goes on only if a "During handling" paragraph follows
                traceback = at + 1 < len(lines) and lines[at] == "" and lines[at + 1].startswith(chained)
        found.append("\n".join(block))
    return found


def folder_mb(root: Path) -> float:
    return round(sum(p.stat().st_size for p in root.rglob("*") if p.is_file()) / 1e6, 2) if root.exists() else 0.0


# -- the run -------------------------------------------------------------------------------------------------------

async def prepare(traffic: Traffic) -> dict[str, float]:
    """The vector store, the key pool, and one request of each kind (loads every model); seconds each took."""
    spent: dict[str, float] = {}
    created = await traffic.client.post("/v1/vector_stores", json={"name": "soak", "embedding_model": EMBED_MODEL})
    created.raise_for_status()
    traffic.vector_store = created.json()["id"]
    for name, first in (
        ("stores", lambda: traffic.store_set(list(range(KEY_POOL)))),
        ("embed", traffic.embeddings), ("rerank", traffic.rerank), ("chat", traffic.chat),
        ("speech", traffic.speech), ("transcription", traffic.transcription), ("document", traffic.document),
    ):  # fmt: skip
        began = time.perf_counter()
        await first()
        spent[name] = round(time.perf_counter() - began, 1)
    bad = {route: dict(entry.warmup_statuses) for route, entry in traffic.routes.items()
           if any(not status.startswith("2") for status in entry.warmup_statuses)}
    if bad:
        raise SystemExit(f"the first requests failed: {bad}")
    return spent


async def quiet_sample(traffic: Traffic, pid: int, label: str) -> dict[str, Any]:
    """Pause the clients, let the server settle, sample its tree."""
    began = time.perf_counter()
    await traffic.pause()
    await traffic.reconnect()
    await asyncio.sleep(SETTLE_S)
    sample = {"at": label, **sample_tree(pid, kinds=True), "pause_s": round(time.perf_counter() - began, 1)}
    log(f"sample {label}: {sample}")
    return sample


async def run_traffic(server: Server, args: argparse.Namespace, root: Path) -> dict[str, Any]:
    pid = server.proc.pid
    limits = httpx.Limits(max_connections=args.workers + 4, max_keepalive_connections=args.workers + 4)
    timeout = httpx.Timeout(args.request_timeout, connect=10)
    documents = build_documents(root / "documents")
    from fixtures.whisper_models import write_tone_wav

    audio = write_tone_wav(root / "tone.wav", seconds=args.audio_seconds).read_bytes()
    traffic = Traffic(lambda: httpx.AsyncClient(base_url=server.base, timeout=timeout, limits=limits), documents,
                      audio, args.window, args.seed, set(args.only.split(",")) if args.only else None)
    try:
        log("first requests (models load)")
        first_s = await prepare(traffic)
        log(f"first requests done: {first_s}")
        workers = [asyncio.create_task(traffic.worker()) for _ in range(args.workers)]
        peaks: list[dict[str, Any]] = []

        async def under_load(seconds: float) -> None:
            traffic.resume()
            end = time.monotonic() + seconds
            while (left := end - time.monotonic()) > 0:
                await asyncio.sleep(min(SAMPLE_EVERY_S, left))
                if traffic.phase.measuring:
                    peaks.append(sample_tree(pid))
                    log(f"under load: {peaks[-1]}")

        def cpu() -> tuple[int, int, float, float]:
            busy, total = machine_busy()
            server = sum(_cpu_ticks(p) for p in [pid, *_children(pid)])
            return busy, total, server / os.sysconf("SC_CLK_TCK"), time.process_time()

        log(f"warm-up: {args.warmup}s of traffic, {args.workers} workers")
        await under_load(args.warmup)
        await traffic.pause()
        await traffic.reach_every_thread()
        samples = [await quiet_sample(traffic, pid, "start")]
        traffic.phase.measuring = True
        cpu0, wall0 = cpu(), time.perf_counter()
        log(f"measured: {args.duration}s")
        await under_load(args.duration / 2)
        samples.append(await quiet_sample(traffic, pid, "middle"))
        await under_load(args.duration / 2)
        await traffic.pause()
        cpu1, wall1 = cpu(), time.perf_counter()
        traffic.phase.measuring = False
        traffic.phase.stop = True
        traffic.resume()
        await asyncio.gather(*workers)
        files = await traffic.client.get(f"/v1/vector_stores/{traffic.vector_store}/files", params={"limit": 100})
        in_store = len(files.json()["data"]) if files.status_code == 200 else None
        samples.append(await quiet_sample(traffic, pid, "end"))
    finally:
        await traffic.client.aclose()
    wall = wall1 - wall0  # includes the middle pause, as the CPU figures do
    load = {
        "machine_busy_share": round((cpu1[0] - cpu0[0]) / (cpu1[1] - cpu0[1]), 3) if cpu1[1] > cpu0[1] else None,
        "server_cores_busy": round((cpu1[2] - cpu0[2]) / wall, 2),
        "soak_client_cores_busy": round((cpu1[3] - cpu0[3]) / wall, 2),
        "cores": os.cpu_count(),
    }
    return {"traffic": traffic, "samples": samples, "peaks": peaks, "load": load, "first_s": first_s,
            "files_in_store_at_end": in_store}


def verdict(routes: dict[str, Any], samples: list[dict[str, Any]], left_idle: dict[str, list[str]],
            left_stopped: dict[str, list[str]], log_errors: list[str], exit_code: int | None) -> dict[str, Any]:
    statuses: collections.Counter[str] = collections.Counter()
    for entry in routes.values():
        statuses.update(entry["errors"])
        statuses.update(entry["warmup_errors"])
    start, end = samples[0], samples[-1]
    growth = (end["tree_rss_mb"] - start["tree_rss_mb"]) / start["tree_rss_mb"]
    main_growth = (end["rss_mb"] - start["rss_mb"]) / start["rss_mb"]
    checks = {
        # 503 is a 5xx, but the one overload is meant to give: "no 5xx" means none but that one.
        "no_5xx": not any(s.isdigit() and s.startswith("5") and s not in ALLOWED_ERRORS for s in statuses),
        "no_errors_but_429_503": all(s in ALLOWED_ERRORS for s in statuses),
        "memory_growth_under_10pct": growth < MEMORY_GROWTH_LIMIT and main_growth < MEMORY_GROWTH_LIMIT,
        "no_fd_growth": end["fds"] <= start["fds"] and end["tree_fds"] <= start["tree_fds"],
        "no_temp_file_left": not temp_files_left(left_idle) and not temp_files_left(left_stopped),
        "server_log_clean": not log_errors,
        "clean_shutdown": exit_code == 0,
    }
    return {"checks": checks, "pass": all(checks.values()), "errors_total": dict(sorted(statuses.items()))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=float, default=600.0, help="measured seconds of traffic (after warm-up)")
    parser.add_argument("--warmup", type=float, default=60.0, help="seconds of traffic before the start sample")
    parser.add_argument("--workers", type=int, default=12, help="concurrent clients")
    parser.add_argument("--window", type=int, default=8, help="documents the vector store keeps; older ones deleted")
    parser.add_argument("--threads", type=int, default=1, help="threads per model (2 cores: one each keeps it fair)")
    parser.add_argument("--audio-seconds", type=float, default=2.0)
    parser.add_argument("--request-timeout", type=float, default=180.0)
    parser.add_argument("--seed", type=int, default=15)
    parser.add_argument("--only", default=None, help="comma-separated operations of the mix (default: all)")
    parser.add_argument("--server-env", action="append", default=[], help="NAME=VALUE for the server (repeatable)")
    parser.add_argument("--workdir", type=Path, default=None, help="keep the run folder in it (default: temp, removed)")
    args = parser.parse_args()

    root = Path(tempfile.mkdtemp(prefix="soak-", dir=args.workdir))
    try:
        models, data, tmpdir = root / "models", root / "data", root / "server-tmp"
        tmpdir.mkdir()
        log("building models")
        build_s = build_models(models, args.threads)
        log(f"models built: {build_s}")
        port = free_port()
        server = Server(
            ["--address", f"127.0.0.1:{port}", "--models-path", str(models), "--data-path", str(data),
             "--log-level", "warning"],
            root, port, env={"TMPDIR": str(tmpdir), "HF_HUB_OFFLINE": "1",
                             **dict(item.split("=", 1) for item in args.server_env)},
        )  # fmt: skip
        exit_code: int | None = None
        try:
            server.wait_healthy(timeout=120)
            outcome = asyncio.run(run_traffic(server, args, root))
            data_mb = folder_mb(data)
            left_idle = leftovers(data, tmpdir)
        except BaseException:
            print(server.output()[-4000:], file=sys.stderr)
            raise
        finally:
            exit_code = server.stop()
        left_stopped = leftovers(data, tmpdir)
        log_errors = server_errors(server.output())
        traffic: Traffic = outcome["traffic"]
        routes = traffic.report()
        samples = outcome["samples"]
        start, middle, end = samples
        peak = max(outcome["peaks"], key=lambda s: s["tree_rss_mb"]) if outcome["peaks"] else None
        requests = sum(entry["requests"] for entry in routes.values())
        line = {
            "bench": "soak",
            "duration_s": args.duration,
            "warmup_s": args.warmup,
            "workers": args.workers,
            "threads_per_model": args.threads,
            "requests": requests,
            "requests_per_s": round(requests / args.duration, 1),
            "routes": routes,
            "memory": {
                "start": start, "middle": middle, "end": end, "peak_under_load": peak,
                "tree_rss_growth": ratio(end["tree_rss_mb"] - start["tree_rss_mb"], start["tree_rss_mb"]),
                "main_rss_growth": ratio(end["rss_mb"] - start["rss_mb"], start["rss_mb"]),
                "tree_rss_growth_second_half": ratio(end["tree_rss_mb"] - middle["tree_rss_mb"], middle["tree_rss_mb"]),
                "fd_growth": end["fds"] - start["fds"],
                "tree_fd_growth": end["tree_fds"] - start["tree_fds"],
                "thread_growth": end["threads"] - start["threads"],
            },  # fmt: skip
            "load": outcome["load"],
            "documents_uploaded": traffic.uploads,
            "files_in_store_at_end": outcome["files_in_store_at_end"],
            "data_path_mb_at_end": data_mb,
            "left_when_idle": left_idle,
            "left_after_shutdown": left_stopped,
            "server_log_errors": log_errors,
            "server_exit_code": exit_code,
            "first_request_s": outcome["first_s"],
            "model_build_s": build_s,
            "machine": f"{platform.machine()} {os.cpu_count()} cpus, python {platform.python_version()}",
        }
        line |= verdict(routes, samples, left_idle, left_stopped, log_errors, exit_code)
        print(json.dumps(line), flush=True)
    finally:
        if args.workdir is None:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
