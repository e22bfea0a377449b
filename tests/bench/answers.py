"""Benchmark: answers from documents with the built-in SmolLM2-135M-Instruct, and what the Responses
API's streaming costs over chat completions.

One server on an empty models path (the built-ins only), a 12-page PDF in a vector store, greedy
decoding throughout:
  (a) time to first token of a streamed chat-with-documents answer (`file_search`), cold (another
      conversation holds the model's cache), split into retrieval (the same query through
      `POST /v1/vector_stores/{id}/search`, timed alone), prefill (the reply's `timings.prompt_ms`:
      prompt processing plus one decode) and the rest (source fitting, template, HTTP);
  (b) follow-up questions in the same conversation (documents on every turn): each turn's prompt
      tokens, prefill and the tokens the llama.cpp prefix cache reused (the backend's DEBUG
      `event=llama_generated` line), and turns 2 and 3 again cold, after another conversation took
      the cache. The client sends earlier turns back as it wrote them, without the sources the
      server added; the server puts those sources back (appliance/knowledge/answers.py SourceMemory),
      so turn n reuses turn n-1's whole prompt and answer and prefills only its own turn;
  (c) `POST /v1/responses` streamed against `POST /v1/chat/completions` streamed on the same prompt,
      same max tokens, alternating runs, each after another conversation took the cache (so both
      prefill the prompt): total time and time to first token (medians of `--runs`, and the median
      of each back-to-back pair's ratio), and how long `response.completed` waits for the save.
Prints one JSON line (`loadavg_1m` before and after: another job on the cores spoils the figures).
Usage: python tests/bench/answers.py [--runs 15] [--ttft-runs 3] [--conversation-runs 3] [--tokens 64]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/ for fixtures and support

from fixtures.documents import write_text_pdf  # noqa: E402
from support import Server, free_port  # noqa: E402

MODEL = "smollm2-135m-instruct"
MARKER = "The Zephyr calibration passphrase is QUARTZ-7731; enter it on the service panel after every firmware update."
QUESTION = "Which error codes mean a component overheats, and how are they cleared?"  # five sources
FOLLOW_UP = "And what is the Zephyr calibration passphrase?"  # one source
THIRD = "How do I fix the relief valve?"  # one source
OTHER = [{"role": "user", "content": "Write one sentence about tea."}]  # takes the model's cache
STORY = "Write a short story about a lighthouse keeper who finds a message in a bottle during a storm."
GENERATED = re.compile(r"event=llama_generated model=\S+ prompt_tokens=(\d+) reused_tokens=(\d+)")


class Bench:
    def __init__(self, server: Server, client: httpx.Client) -> None:
        self.server = server
        self.http = client
        self._log_at = 0

    def post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        response = self.http.post(path, json=body)
        response.raise_for_status()
        return response.json()

    def evict(self) -> None:
        """Another conversation through the model: its cache keeps only the template's preamble."""
        self.post("/v1/chat/completions", {"model": MODEL, "messages": OTHER, "max_tokens": 1, "temperature": 0})

    def search_ms(self, store_id: str, query: str) -> float:
        started = time.perf_counter()
        page = self.post(f"/v1/vector_stores/{store_id}/search", {"query": query, "max_num_results": 5})
        assert page["data"], page
        return (time.perf_counter() - started) * 1000

    def reused(self) -> tuple[int, int]:
        """(prompt tokens, reused tokens) of the last generation since the previous call."""
        text = self.server.log.read_text(errors="replace")
        found = GENERATED.findall(text, self._log_at)
        self._log_at = len(text)
        assert found, "no event=llama_generated line: is the server at --log-level debug?"
        prompt, reused = found[-1]
        return int(prompt), int(reused)

    def chat_stream(self, body: dict[str, Any]) -> dict[str, Any]:
        """Stream a chat completion: ttft (first content), total, the text, the last chunk's extras."""
        body = {**body, "stream": True, "stream_options": {"include_usage": True}}
        started = time.perf_counter()
        ttft, text, last, usage = None, [], {}, {}
        with self.http.stream("POST", "/v1/chat/completions", json=body) as response:
            response.raise_for_status()
            for line in response.iter_lines():
                if not line.startswith("data: {"):
                    continue
                chunk = json.loads(line[6:])
                if chunk.get("usage"):
                    usage = chunk["usage"]
                if not chunk["choices"]:
                    continue
                choice = chunk["choices"][0]
                if choice["delta"].get("content"):
                    ttft = ttft if ttft is not None else time.perf_counter() - started
                    text.append(choice["delta"]["content"])
                if choice["finish_reason"]:
                    last = chunk
        total = time.perf_counter() - started
        assert ttft is not None and last, "the stream carried no text"
        return {"ttft": ttft, "total": total, "text": "".join(text), "last": last, "usage": usage}

    def responses_stream(self, body: dict[str, Any]) -> dict[str, Any]:
        """Stream a response: ttft (first text delta), total, the text, usage, and `store`: the wait
        from the message's `output_item.done` to `response.completed` (the response is saved then)."""
        started = time.perf_counter()
        ttft, text, final, event, item_done, closed = None, [], {}, "", 0.0, 0.0
        with self.http.stream("POST", "/v1/responses", json={**body, "stream": True}) as response:
            response.raise_for_status()
            for line in response.iter_lines():
                if line.startswith("event: "):
                    event = line[7:]
                elif line.startswith("data: "):
                    if event == "response.output_text.delta":
                        ttft = ttft if ttft is not None else time.perf_counter() - started
                        text.append(json.loads(line[6:])["delta"])
                    elif event == "response.output_item.done":
                        item_done = time.perf_counter()
                    elif event in ("response.completed", "response.incomplete"):
                        closed = time.perf_counter()
                        final = json.loads(line[6:])["response"]
        total = time.perf_counter() - started
        assert ttft is not None and final, "the stream carried no text"
        store = closed - item_done
        return {"ttft": ttft, "total": total, "text": "".join(text), "usage": final["usage"], "store": store}


def ask(question: str, store_id: str, tokens: int, history: list[dict[str, str]] | None = None) -> dict[str, Any]:
    return {
        "model": MODEL,
        "messages": [*(history or []), {"role": "user", "content": question}],
        "max_tokens": tokens,
        "temperature": 0,
        "file_search": {"vector_store_ids": [store_id]},
    }


def first_token(bench: Bench, store_id: str, runs: int) -> dict[str, Any]:
    """(a): cold time to first token of a chat-with-documents answer, split into its parts."""
    rows = []
    for _ in range(runs):
        bench.evict()
        retrieval = bench.search_ms(store_id, QUESTION)
        bench.evict()
        answer = bench.chat_stream(ask(QUESTION, store_id, 8))
        prompt_tokens, reused = bench.reused()
        prefill = answer["last"]["timings"]["prompt_ms"]
        rows.append((answer["ttft"] * 1000, retrieval, prefill, prompt_tokens, reused, answer["last"]["retrieval"]))
    ttft, retrieval, prefill = (statistics.median(r[i] for r in rows) for i in range(3))
    prompt_tokens, reused, found = rows[-1][3], rows[-1][4], rows[-1][5]
    return {
        "ttft_ms": round(ttft, 1),
        "retrieval_ms": round(retrieval, 1),
        "prefill_ms": round(prefill, 1),
        "other_ms": round(ttft - retrieval - prefill, 1),
        "prefill_share": round(prefill / ttft, 3),
        "retrieval_share": round(retrieval / ttft, 3),
        "prompt_tokens": prompt_tokens,
        "reused_tokens": reused,
        "prefill_tokens_per_s": round((prompt_tokens - reused) / prefill * 1000, 1),
        "sources": found,
    }


def follow_up(bench: Bench, store_id: str, tokens: int, runs: int) -> dict[str, Any]:
    """(b): a three-turn conversation with documents on every turn, each turn right after the one
    before (warm), then turns 2 and 3 again cold (after another conversation took the cache);
    `runs` times over the same requests, medians reported."""
    bodies: list[dict[str, Any]] = []
    history: list[dict[str, str]] = []
    for question in (QUESTION, FOLLOW_UP, THIRD):  # the conversation, built once: greedy answers
        bodies.append(ask(question, store_id, tokens, history))
        answer = bench.chat_stream(bodies[-1])
        history = [*history, {"role": "user", "content": question}, {"role": "assistant", "content": answer["text"]}]
    warm: list[list[tuple[float, int, int, int]]] = [[], [], []]  # per turn: (prefill ms, prompt, reused, sources)
    cold: list[list[tuple[float, int, int, int]]] = [[], [], []]
    for _ in range(runs):
        for runs_of, turns in ((warm, (0, 1, 2)), (cold, (1, 2))):
            for turn in turns:
                if runs_of is cold or turn == 0:
                    bench.evict()
                    bench.reused()
                answer = bench.chat_stream(bodies[turn])
                prompt_tokens, reused = bench.reused()
                sources = answer["last"]["retrieval"]["sources_used"]
                runs_of[turn].append((answer["last"]["timings"]["prompt_ms"], prompt_tokens, reused, sources))
    report: dict[str, Any] = {"runs": runs}
    for turn in range(3):
        prefill = statistics.median(row[0] for row in warm[turn])
        _, prompt_tokens, reused, sources = warm[turn][-1]
        report[f"turn{turn + 1}"] = {
            "prompt_tokens": prompt_tokens,
            "reused_tokens": reused,
            "reused_share": round(reused / prompt_tokens, 3),
            "prefill_ms": round(prefill, 1),
            "sources_used": sources,
        }
        if cold[turn]:
            cold_ms = statistics.median(row[0] for row in cold[turn])
            report[f"turn{turn + 1}_cold"] = {"reused_tokens": cold[turn][-1][2], "prefill_ms": round(cold_ms, 1)}
            report[f"turn{turn + 1}_warm_over_cold_prefill"] = round(prefill / cold_ms, 3)
    return report


def overhead(bench: Bench, runs: int, tokens: int) -> dict[str, Any]:
    """(c): Responses API streaming against chat completions streaming, alternating, same prompt."""
    messages = [{"role": "user", "content": STORY}]
    chat_body = {"model": MODEL, "messages": messages, "max_tokens": tokens, "temperature": 0}
    responses_body = {"model": MODEL, "input": STORY, "max_output_tokens": tokens, "temperature": 0}
    bench.chat_stream(chat_body)  # warm-up
    bench.responses_stream(responses_body)
    rows: dict[str, list[dict[str, Any]]] = {"chat": [], "responses": []}
    for run in range(runs):
        for kind in ("chat", "responses") if run % 2 == 0 else ("responses", "chat"):
            bench.evict()  # both prefill the same prompt (all but the template's preamble) every run
            run_one = bench.chat_stream if kind == "chat" else bench.responses_stream
            rows[kind].append(run_one(chat_body if kind == "chat" else responses_body))

    def ms(kind: str, key: str) -> float:
        return statistics.median(row[key] for row in rows[kind]) * 1000

    def paired(key: str) -> float:  # each run's pair ran back to back: drifts in machine load cancel
        return statistics.median(r[key] / c[key] for r, c in zip(rows["responses"], rows["chat"], strict=True))

    chat, responses = rows["chat"][-1], rows["responses"][-1]
    return {
        "runs": runs,
        "max_tokens": tokens,
        "completion_tokens": {
            "chat": chat["usage"]["completion_tokens"], "responses": responses["usage"]["output_tokens"]
        },
        "same_text": chat["text"] == responses["text"],
        "chat_total_ms": round(ms("chat", "total"), 1),
        "responses_total_ms": round(ms("responses", "total"), 1),
        "total_ratio_responses_over_chat": round(ms("responses", "total") / ms("chat", "total"), 3),
        "total_ratio_paired_median": round(paired("total"), 3),
        "chat_ttft_ms": round(ms("chat", "ttft"), 1),
        "responses_ttft_ms": round(ms("responses", "ttft"), 1),
        "ttft_ratio_responses_over_chat": round(ms("responses", "ttft") / ms("chat", "ttft"), 3),
        "ttft_ratio_paired_median": round(paired("ttft"), 3),
        "ttft_added_ms": round(ms("responses", "ttft") - ms("chat", "ttft"), 1),
        "responses_store_ms": round(ms("responses", "store"), 2),
    }  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=15, help="alternating pairs of (c)")
    parser.add_argument("--ttft-runs", type=int, default=3, help="cold answers of (a)")
    parser.add_argument("--conversation-runs", type=int, default=3, help="repeats of (b)")
    parser.add_argument("--tokens", type=int, default=64)
    parser.add_argument("--pages", type=int, default=12)
    args = parser.parse_args()
    load_before = os.getloadavg()[0]

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "models").mkdir()  # empty: the built-ins are all there is
        pdf = write_text_pdf(root, "manual.pdf", pages=args.pages, marker=MARKER, marker_page=args.pages // 2 + 1)
        port = free_port()
        server = Server(
            ["--address", f"127.0.0.1:{port}", "--models-path", str(root / "models"), "--data-path", str(root / "data"),
             "--log-level", "debug"],
            root, port, env={"HF_HUB_OFFLINE": "1"},
        )  # fmt: skip
        try:
            server.wait_healthy(timeout=60)
            with httpx.Client(base_url=server.base, timeout=600) as client:
                bench = Bench(server, client)
                file_id = client.post(
                    "/v1/files", files={"file": ("manual.pdf", pdf.read_bytes())}, data={"purpose": "assistants"}
                ).json()["id"]
                ingested = time.perf_counter()
                store_id = bench.post("/v1/vector_stores", {"name": "manual", "file_ids": [file_id]})["id"]
                while (store := client.get(f"/v1/vector_stores/{store_id}").json())["status"] == "in_progress":
                    time.sleep(0.1)
                ingest_s = time.perf_counter() - ingested
                assert store["file_counts"]["completed"] == 1, store
                bench.search_ms(store_id, QUESTION)  # loads the embedder, builds the vector cache
                bench.chat_stream(ask(QUESTION, store_id, 4))  # loads the chat model
                bench.reused()
                ttft = first_token(bench, store_id, args.ttft_runs)
                conversation = follow_up(bench, store_id, args.tokens, args.conversation_runs)
                responses = overhead(bench, args.runs, args.tokens)
        finally:
            server.stop()

    print(
        json.dumps(
            {
                "bench": "answers",
                "machine": f"{platform.machine()} {os.cpu_count()} cpus, python {platform.python_version()}",
                "model": MODEL,
                "loadavg_1m": [round(load_before, 2), round(os.getloadavg()[0], 2)],  # another job on the cores?
                "pdf_pages": args.pages,
                "ingest_s": round(ingest_s, 2),
                "first_token": ttft,
                "follow_up": conversation,
                "responses_vs_chat": responses,
                "targets": {"total_ratio_responses_over_chat": 1.05, "ttft_ratio_responses_over_chat": 1.05},
            }
        )
    )


if __name__ == "__main__":
    main()
