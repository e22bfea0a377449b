"""Parallel requests end to end: a server started with --parallel-requests, the official openai client.

Three chat streams at once from a model with ``parallel:3`` slots must overlap in time and each
match what the same model config answers with parallel requests turned off for it.
"""

from __future__ import annotations

import shutil
import threading
import time
from collections.abc import Iterator

import openai
import pytest

from fixtures.gguf_models import TinyModels
from support import Server, free_port, write

MODEL_YAML = """
name: {name}
backend: llama-cpp
context_size: 512
threads: 1
parallel_requests: {parallel}
options: ["parallel:3"]
parameters:
  model: tiny-chatml.gguf
"""
NO_END = {str(token): -100 for token in range(5)}  # the tiny model's control tokens: runs reach max_tokens


@pytest.fixture(scope="module")
def sdk(tiny_models: TinyModels, tmp_path_factory: pytest.TempPathFactory) -> Iterator[openai.OpenAI]:
    root = tmp_path_factory.mktemp("parallel-server")
    models = root / "models"
    models.mkdir()
    shutil.copy(tiny_models.chat, models / "tiny-chatml.gguf")
    write(models / "together.yaml", MODEL_YAML.format(name="together", parallel="null"))  # the server's flag
    write(models / "alone.yaml", MODEL_YAML.format(name="alone", parallel="false"))
    port = free_port()
    server = Server(["--address", f"127.0.0.1:{port}", "--models-path", str(models), "--parallel-requests"], root, port)
    server.wait_healthy()
    yield openai.OpenAI(base_url=server.base + "/v1", api_key="none", max_retries=0, timeout=60)
    server.stop()


def chat(sdk: openai.OpenAI, model: str, question: str, start: threading.Barrier | None = None) -> dict[str, object]:
    """One streamed greedy chat: its text, finish reason, and when its first and last chunks came."""
    if start is not None:
        start.wait(timeout=30)
    stream = sdk.chat.completions.create(
        model=model,
        messages=[{"role": "user", "content": question}],
        max_tokens=300,
        temperature=0,
        logit_bias=NO_END,
        stream=True,
    )
    parts, finish, times = [], None, []
    for chunk in stream:
        if not chunk.choices:
            continue
        choice = chunk.choices[0]
        if choice.delta.content:
            parts.append(choice.delta.content)
            times.append(time.monotonic())
        finish = choice.finish_reason or finish
    return {"text": "".join(parts), "finish": finish, "first": times[0], "last": times[-1]}


def test_three_streams_at_once_overlap_and_match_the_serial_answers(sdk: openai.OpenAI) -> None:
    questions = ["hello world", "the user said yes", "true or false?"]
    start = threading.Barrier(len(questions))
    results: list[dict[str, object] | None] = [None] * len(questions)

    def client(index: int) -> None:
        results[index] = chat(sdk, "together", questions[index], start)

    threads = [threading.Thread(target=client, args=(i,)) for i in range(len(questions))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert all(result is not None for result in results)
    done = [result for result in results if result is not None]
    # Every stream was still producing when the last one began: they were decoded together.
    assert max(float(r["first"]) for r in done) < min(float(r["last"]) for r in done)  # type: ignore[arg-type]
    expected = [chat(sdk, "alone", question) for question in questions]
    assert [(r["text"], r["finish"]) for r in done] == [(e["text"], e["finish"]) for e in expected]
    assert all(r["finish"] == "length" and r["text"] for r in done)
