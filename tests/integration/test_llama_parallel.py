"""Parallel requests on llama.cpp: the batch engine through the Backend interface, on tiny GGUF models.

Each sequence decoded together with others must give exactly what the model gives it alone
(greedy), while joining, leaving, stopping and failing on its own. The serial backend (parallel
requests off) is the reference throughout.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from dataclasses import replace
from typing import Any

import pytest

from fixtures.gguf_models import TinyModels
from inference.backends.llama_cpp import LlamaCppBackend
from inference.catalog.config import ModelConfig
from inference.errors import ContextLengthExceeded
from inference.generation import Finished, GenerationEvent, ResponseFormat, SamplingParams, TextDelta

MakeBackend = Callable[..., LlamaCppBackend]
NO_END = {token: -100.0 for token in range(5)}  # the tiny chat model's control tokens: runs reach their limit
GREEDY = SamplingParams(max_tokens=32, temperature=0, logit_bias=NO_END)
PROMPTS = ("hello world", "the user said yes", "assistant: no, false and null", "true true system")


@pytest.fixture
def make_backend(tiny_models: TinyModels) -> Iterator[MakeBackend]:
    """Load a backend on the tiny chat model, parallel (``slots`` > 1) or serial; unloaded afterwards."""
    made: list[LlamaCppBackend] = []

    def make(slots: int = 4, **config: Any) -> LlamaCppBackend:
        path = tiny_models.chat
        config.setdefault("threads", 1)
        if slots > 1:
            config.update(parallel_requests=True, options=[f"parallel:{slots}"])
        backend = LlamaCppBackend(ModelConfig(name="tiny", parameters={"model": path.name}, **config), path.parent)
        made.append(backend)
        backend.load()
        return backend

    yield make
    for backend in made:
        backend.unload()


def collect(stream: Iterator[GenerationEvent]) -> tuple[str, Finished]:
    events = list(stream)
    finished = events[-1]
    assert isinstance(finished, Finished)
    assert all(isinstance(e, TextDelta) and e.text for e in events[:-1])
    assert sum(e.tokens for e in events[:-1] if isinstance(e, TextDelta)) <= finished.completion_tokens
    return "".join(e.text for e in events if isinstance(e, TextDelta)), finished


def serial(make_backend: MakeBackend, requests: list[tuple[str, SamplingParams]], **config: Any) -> list[Any]:
    reference = make_backend(slots=1, **config)
    return [collect(reference.generate(prompt, params)) for prompt, params in requests]


def together(backend: LlamaCppBackend, requests: list[tuple[str, SamplingParams]]) -> list[tuple[str, Finished]]:
    """Submit every request first (``generate`` queues its sequence at once), then read them all."""
    streams = [backend.generate(prompt, params) for prompt, params in requests]
    return [collect(stream) for stream in streams]


def test_parallel_backend_serves_its_slots_at_once(make_backend: MakeBackend) -> None:
    backend = make_backend(slots=3, context_size=256)
    assert (backend.max_concurrency, backend.concurrent_streams) == (3, True)
    assert backend.context_size() == 256  # every sequence gets the whole configured window
    serial_backend = make_backend(slots=1)
    assert (serial_backend.max_concurrency, serial_backend.concurrent_streams) == (1, False)


def test_one_greedy_sequence_equals_the_serial_result(make_backend: MakeBackend) -> None:
    requests = [(prompt, GREEDY) for prompt in PROMPTS]
    backend = make_backend()
    assert [collect(backend.generate(p, s)) for p, s in requests] == serial(make_backend, requests)


def test_concurrent_greedy_sequences_each_equal_their_serial_result(make_backend: MakeBackend) -> None:
    requests = [(prompt, replace(GREEDY, max_tokens=24 + 8 * i)) for i, prompt in enumerate(PROMPTS)]
    expected = serial(make_backend, requests)
    assert together(make_backend(), requests) == expected
    # More requests than slots: the rest wait for a free slot, then match too.
    more = requests + [(prompt + " again", GREEDY) for prompt in PROMPTS[:3]]
    assert together(make_backend(), more) == expected + serial(make_backend, more[4:])


def test_concurrent_requests_from_threads_equal_their_serial_result(make_backend: MakeBackend) -> None:
    requests = [(prompt, GREEDY) for prompt in PROMPTS]
    expected = serial(make_backend, requests)
    backend = make_backend()
    results: list[Any] = [None] * len(requests)
    start = threading.Barrier(len(requests))

    def client(index: int) -> None:
        start.wait(timeout=10)
        results[index] = collect(backend.generate(*requests[index]))

    threads = [threading.Thread(target=client, args=(i,)) for i in range(len(requests))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert results == expected


def test_a_sequence_joining_mid_flight_leaves_the_running_one_unchanged(make_backend: MakeBackend) -> None:
    first = ("hello world", replace(GREEDY, max_tokens=120))
    second = ("the user said yes", GREEDY)
    expected = serial(make_backend, [first, second])
    backend = make_backend()
    running = backend.generate(*first)
    head = [next(running) for _ in range(5)]  # the first is decoding before the second arrives
    joined = backend.generate(*second)
    assert collect(joined) == expected[1]
    text, finished = collect(running)
    assert ("".join(e.text for e in head if isinstance(e, TextDelta)) + text, finished) == expected[0]


def test_cancelling_one_sequence_leaves_the_others_intact(make_backend: MakeBackend) -> None:
    requests = [(prompt, replace(GREEDY, max_tokens=64)) for prompt in PROMPTS[:3]]
    expected = serial(make_backend, requests)
    backend = make_backend()
    cancel = threading.Event()
    streams = [backend.generate(*requests[0]), backend.generate(*requests[1], cancel), backend.generate(*requests[2])]
    cancelled: list[GenerationEvent] = []
    for event in streams[1]:
        cancelled.append(event)
        if len(cancelled) == 3:
            cancel.set()
    finished = cancelled[-1]
    assert isinstance(finished, Finished) and finished.finish_reason == "stop"
    assert 3 <= finished.completion_tokens < 64
    assert [collect(streams[0]), collect(streams[2])] == [expected[0], expected[2]]
    # Closing a stream early frees its slot too: a full set of new sequences still runs.
    abandoned = backend.generate(*requests[0])
    next(abandoned)
    abandoned.close()
    assert together(backend, requests + requests[:1]) == expected + expected[:1]


def test_stop_strings_max_tokens_and_finish_reasons_are_per_sequence(make_backend: MakeBackend) -> None:
    full, _ = serial(make_backend, [("hello world", replace(GREEDY, max_tokens=40))])[0]
    stop = full[len(full) // 2 : len(full) // 2 + 3]
    requests = [
        ("hello world", replace(GREEDY, max_tokens=40, stop=("\x00never", stop))),
        ("hello world", replace(GREEDY, max_tokens=5)),
        ("the user said yes", SamplingParams(max_tokens=40, temperature=0)),  # may end on its own
        ("the user said yes", replace(GREEDY, max_tokens=0)),
    ]
    expected = serial(make_backend, requests)
    results = together(make_backend(), requests)
    assert results == expected
    assert results[0][0] == full[: full.index(stop)] and results[0][1].finish_reason == "stop"
    assert results[0][1].stop_sequence == stop
    assert results[1][1].finish_reason == "length" and results[1][1].completion_tokens == 5
    assert results[3][1] == Finished("length", results[3][1].prompt_tokens, 0)


def test_context_overflow_is_checked_per_sequence(make_backend: MakeBackend) -> None:
    backend = make_backend(slots=2, context_size=64)
    with pytest.raises(ContextLengthExceeded) as raised:
        backend.generate("hello", SamplingParams(max_tokens=100))
    assert raised.value.context_size == 64
    # Two sequences at once, each running to the end of its own full window.
    requests = [(prompt, replace(GREEDY, max_tokens=None)) for prompt in PROMPTS[:2]]
    results = together(backend, requests)
    for _text, finished in results:
        assert finished.finish_reason == "length" and finished.prompt_tokens + finished.completion_tokens == 64
    assert results == serial(make_backend, requests, context_size=64)


def test_a_later_long_request_fits_in_every_slot(make_backend: MakeBackend) -> None:
    backend = make_backend(slots=2, context_size=96)
    together(backend, [(prompt, replace(GREEDY, max_tokens=60)) for prompt in PROMPTS[:2]])
    long_prompt = "hello world " * 6
    long = [(long_prompt, replace(GREEDY, max_tokens=96 - len(backend.tokenize(long_prompt)) - 1))] * 2
    results = together(backend, long)
    assert results == serial(make_backend, long, context_size=96)
    assert all(finished.finish_reason == "length" for _text, finished in results)


def test_a_prompt_sharing_a_cached_prefix_gives_the_fresh_result(make_backend: MakeBackend) -> None:
    backend = make_backend(slots=2)
    base = "the user said yes and the assistant said"
    requests = [(base, GREEDY), (base + " no", GREEDY), (base, GREEDY), ("hello", GREEDY)]
    expected = serial(make_backend, requests)
    assert [collect(backend.generate(p, s)) for p, s in requests] == expected


def test_grammar_applies_to_its_own_sequence_only(make_backend: MakeBackend) -> None:
    schema = {"type": "object", "properties": {"answer": {"type": "boolean"}}, "required": ["answer"]}
    json_mode = SamplingParams(max_tokens=64, temperature=0, response_format=ResponseFormat("json_schema", schema))
    yes_no = SamplingParams(max_tokens=8, temperature=0, grammar='root ::= "yes" | "no"')
    requests = [("hello", json_mode), ("hello", GREEDY), ("hello", yes_no), ("hello world", GREEDY)]
    results = together(make_backend(), requests)
    assert results == serial(make_backend, requests)
    assert isinstance(json.loads(results[0][0])["answer"], bool)
    assert results[2][0] in ("yes", "no")


def test_seeded_sampling_per_sequence_matches_serial(make_backend: MakeBackend) -> None:
    sampled = SamplingParams(max_tokens=24, temperature=0.9, logit_bias=NO_END)
    requests = [("hello", replace(sampled, seed=seed)) for seed in (1, 2, 1)]
    results = together(make_backend(), requests)
    assert results == serial(make_backend, requests)
    assert results[0] == results[2] != results[1]


def test_a_stream_outliving_its_model_fails_cleanly(make_backend: MakeBackend) -> None:
    backend = make_backend()
    stream = backend.generate("hello", replace(GREEDY, max_tokens=400, logit_bias=NO_END), None)
    next(stream)
    waiting = backend.generate("hello world", GREEDY)
    backend.unload()
    with pytest.raises(RuntimeError, match="unloaded"):
        list(stream)
    with pytest.raises(RuntimeError, match="unloaded"):
        list(waiting)



def test_a_failed_decode_fails_its_sequences_and_the_engine_carries_on(
    make_backend: MakeBackend, monkeypatch: pytest.MonkeyPatch
) -> None:
    import llama_cpp

    backend = make_backend(slots=2)
    expected = serial(make_backend, [("hello", GREEDY)])
    monkeypatch.setattr(llama_cpp, "llama_decode", lambda ctx, batch: -3)
    with pytest.raises(RuntimeError, match="llama_decode failed"):
        collect(backend.generate("hello", GREEDY))
    monkeypatch.undo()
    assert [collect(backend.generate("hello", GREEDY))] == expected  # its slot was cleared, not poisoned
