"""LlamaCppBackend on tiny random GGUF models, through the Backend interface only.

Random weights make the text meaningless, so tests assert structure and determinism: event order,
token counts, finish reasons, stop strings, grammar-shaped output, vector shapes. Never content.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from fixtures.gguf_models import TinyModels, write_chat_gguf
from inference.backends.llama_cpp import LlamaCppBackend
from inference.backends.text_stream import StopTextStream
from inference.capabilities import Capability
from inference.catalog.config import ModelConfig
from inference.errors import CapabilityNotSupported, ContextLengthExceeded, InvalidModelConfig, InvalidRequest
from inference.generation import Finished, GenerationEvent, ResponseFormat, SamplingParams, TextDelta

MakeBackend = Callable[..., LlamaCppBackend]
GREEDY = SamplingParams(max_tokens=24, temperature=0)
# The chat model's control tokens (<unk> <s> </s> <|im_start|> <|im_end|>): biasing them away keeps a
# random model from ending early, so runs reach the length limit.
NO_END = {token: -100.0 for token in range(5)}


@pytest.fixture
def make_backend(tiny_models: TinyModels) -> Iterator[MakeBackend]:
    """Build and load a backend for one of the tiny models; every one is unloaded after the test."""
    made: list[LlamaCppBackend] = []

    def make(model: Path | None = None, *, load: bool = True, **config: Any) -> LlamaCppBackend:
        path = model or tiny_models.chat
        # One thread: tiny models gain nothing from more, and on a busy CI machine llama.cpp's
        # spinning thread barrier can slow a multi-threaded decode by orders of magnitude.
        config.setdefault("threads", 1)
        backend = LlamaCppBackend(
            ModelConfig(name=path.stem, parameters={"model": path.name}, **config), path.parent
        )
        made.append(backend)
        if load:
            backend.load()
        return backend

    yield make
    for backend in made:
        backend.unload()


def run(backend: LlamaCppBackend, prompt: str, params: SamplingParams, **kwargs: Any) -> tuple[str, Finished]:
    events = list(backend.generate(prompt, params, **kwargs))
    assert_well_formed(events)
    finished = events[-1]
    assert isinstance(finished, Finished)
    return "".join(e.text for e in events if isinstance(e, TextDelta)), finished


def assert_well_formed(events: list[GenerationEvent]) -> None:
    """Deltas with text, then exactly one Finished whose count covers every delta's tokens."""
    *deltas, finished = events
    assert isinstance(finished, Finished)
    assert all(isinstance(e, TextDelta) and e.text for e in deltas)
    assert sum(e.tokens for e in deltas if isinstance(e, TextDelta)) <= finished.completion_tokens


# Loading and tokens


def test_importing_and_estimating_do_not_import_llama_cpp(tiny_models: TinyModels) -> None:
    probe = (
        "import sys\n"
        "from pathlib import Path\n"
        "from inference.backends.llama_cpp import LlamaCppBackend\n"
        "from inference.catalog.config import ModelConfig\n"
        f"backend = LlamaCppBackend(ModelConfig(name='m', parameters={{'model': {tiny_models.chat.name!r}}}), "
        f"Path({str(tiny_models.root)!r}))\n"
        "assert backend.memory_estimate().ram > 0 and backend.context_size() == 512\n"
        "print('llama_cpp' in sys.modules)\n"
    )
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False"


def test_load_and_unload(make_backend: MakeBackend) -> None:
    backend = make_backend(load=False)
    assert backend.context_size() == 512  # known from the header before loading
    backend.load()
    assert backend.context_size() == 512
    assert backend.tokenize("hello")
    backend.unload()
    backend.unload()  # safe twice
    with pytest.raises(RuntimeError, match="not loaded"):
        backend.tokenize("hello")


def test_context_size_follows_the_config(make_backend: MakeBackend) -> None:
    assert make_backend(context_size=128).context_size() == 128


def test_missing_model_file_is_a_clear_error(make_backend: MakeBackend, tiny_models: TinyModels) -> None:
    backend = make_backend(tiny_models.root / "absent.gguf", load=False)
    with pytest.raises(InvalidModelConfig, match="absent.gguf"):
        backend.load()


@pytest.mark.parametrize("model", ["chat", "chat_gpt2", "llama3"])
def test_tokenize_detokenize_round_trip(make_backend: MakeBackend, tiny_models: TinyModels, model: str) -> None:
    backend = make_backend(getattr(tiny_models, model))
    text = "hello world, the user said: caf\u00e9 \u20ac42!"
    tokens = backend.tokenize(text)
    assert tokens and all(isinstance(t, int) for t in tokens)
    assert backend.detokenize(tokens) == text


def test_special_token_text_becomes_one_control_token(make_backend: MakeBackend) -> None:
    backend = make_backend()
    (token,) = backend.tokenize("<|im_end|>")
    assert backend.detokenize([token]) == "<|im_end|>"


def test_detokenize_rejects_tokens_outside_the_vocabulary(make_backend: MakeBackend) -> None:
    with pytest.raises(InvalidRequest, match="vocabulary"):
        make_backend().detokenize([1, 10**6])


# Chat templates

MESSAGES = [
    {"role": "system", "content": "You are terse."},
    {"role": "user", "content": [{"type": "text", "text": "What is "}, {"type": "text", "text": "the weather?"}]},
]
TOOLS = [{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}]


def test_chatml_template_renders_messages_and_tools(make_backend: MakeBackend) -> None:
    prompt = make_backend().apply_chat_template(MESSAGES, tools=TOOLS)
    assert "<|im_start|>system\nYou are terse.<|im_end|>" in prompt.text
    assert "<|im_start|>user\nWhat is the weather?<|im_end|>" in prompt.text
    assert "get_weather" in prompt.text
    assert prompt.text.endswith("<|im_start|>assistant\n")
    assert "<|im_end|>" in prompt.stop


def test_tool_calls_and_tool_results_pass_through_the_template(make_backend: MakeBackend) -> None:
    call = {"id": "c1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Oslo"}'}}
    messages = [
        {"role": "user", "content": "weather?"},
        {"role": "assistant", "content": None, "tool_calls": [call]},
        {"role": "tool", "tool_call_id": "c1", "content": "sunny"},
    ]
    text = make_backend().apply_chat_template(messages, tools=TOOLS).text
    assert '"city": "Oslo"' in text  # the arguments string reached the template as an object
    assert "<|im_start|>tool\nsunny<|im_end|>" in text


def test_non_chatml_template_uses_its_own_tokens(make_backend: MakeBackend, tiny_models: TinyModels) -> None:
    backend = make_backend(tiny_models.llama3)
    prompt = backend.apply_chat_template(MESSAGES)
    assert prompt.text.startswith("<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nYou are terse.")
    assert prompt.text.endswith("<|start_header_id|>assistant<|end_header_id|>\n\n")
    assert "<|im_start|>" not in prompt.text
    assert "<|eot_id|>" in prompt.stop
    # The template writes BOS itself; generation must not add a second one.
    _, finished = run(backend, prompt.text, GREEDY)
    assert finished.prompt_tokens == len(backend.tokenize(prompt.text))


def test_model_without_template_falls_back_to_chatml(make_backend: MakeBackend, tiny_models: TinyModels) -> None:
    prompt = make_backend(tiny_models.no_template).apply_chat_template(MESSAGES)
    assert prompt.text.endswith("<|im_start|>assistant\n")
    assert "<|im_end|>" in prompt.stop


def test_template_that_rejects_the_messages_is_an_invalid_request(make_backend: MakeBackend, tmp_path: Path) -> None:
    template = "{% if messages[0]['role'] != 'user' %}{{ raise_exception('first message must be user') }}{% endif %}"
    backend = make_backend(write_chat_gguf(tmp_path / "strict.gguf", chat_template=template))
    with pytest.raises(InvalidRequest, match="first message must be user"):
        backend.apply_chat_template(MESSAGES)


# Generation


def test_generate_streams_deltas_then_one_finished(make_backend: MakeBackend) -> None:
    backend = make_backend()
    prompt = backend.apply_chat_template(MESSAGES)
    events = list(backend.generate(prompt.text, SamplingParams(max_tokens=16, stop=prompt.stop)))
    assert_well_formed(events)
    assert sum(isinstance(e, Finished) for e in events) == 1
    assert events[-1].prompt_tokens == len(backend.tokenize(prompt.text))


def test_max_tokens_finishes_with_length(make_backend: MakeBackend) -> None:
    text, finished = run(make_backend(), "hello", SamplingParams(max_tokens=7, temperature=0.7, logit_bias=NO_END))
    assert finished.finish_reason == "length"
    assert finished.completion_tokens == 7
    assert text


def test_without_max_tokens_generation_runs_to_the_context_end(make_backend: MakeBackend) -> None:
    backend = make_backend(context_size=48)
    _, finished = run(backend, "hello", SamplingParams(temperature=0, logit_bias=NO_END))
    assert finished.finish_reason == "length"
    assert finished.prompt_tokens + finished.completion_tokens == 48


def test_greedy_is_deterministic_across_calls_and_loads(make_backend: MakeBackend) -> None:
    first = make_backend()
    again = run(first, "hello", GREEDY)
    assert run(first, "hello", GREEDY) == again
    assert run(make_backend(), "hello", GREEDY) == again


def test_reusing_the_cached_prompt_prefix_gives_the_fresh_result(make_backend: MakeBackend) -> None:
    backend = make_backend()
    first_turn = backend.apply_chat_template(MESSAGES[:1]).text
    second_turn = backend.apply_chat_template(MESSAGES).text
    run(backend, first_turn, GREEDY)  # leaves the first turn in the KV cache
    assert run(backend, second_turn, GREEDY) == run(make_backend(), second_turn, GREEDY)
    assert run(backend, "hello", GREEDY) == run(make_backend(), "hello", GREEDY)  # shares no prefix


def test_a_seed_reproduces_sampled_text_on_a_fresh_load(make_backend: MakeBackend) -> None:
    params = SamplingParams(max_tokens=24, temperature=0.9, seed=1234, logit_bias=NO_END)
    first = run(make_backend(), "hello", params)
    assert run(make_backend(), "hello", params) == first
    backend = make_backend()
    others = {run(backend, "hello", replace(params, seed=seed))[0] for seed in (1, 2, 3)}
    assert len(others | {first[0]}) > 1  # seeds matter


def test_stop_strings_never_appear_in_the_output(make_backend: MakeBackend) -> None:
    params = SamplingParams(max_tokens=40, temperature=0, logit_bias=NO_END)
    full, _ = run(make_backend(), "hello", params)
    assert len(full) >= 12
    stop = full[len(full) // 2 : len(full) // 2 + 3]
    expected = full[: full.index(stop)]
    events = list(make_backend().generate("hello", replace(params, stop=("\x00never", stop))))
    assert_well_formed(events)
    text = "".join(e.text for e in events if isinstance(e, TextDelta))
    assert text == expected
    assert stop not in text
    assert events[-1].finish_reason == "stop" and events[-1].stop_sequence == stop


def test_cancel_stops_the_stream_early(make_backend: MakeBackend) -> None:
    cancel = threading.Event()
    events: list[GenerationEvent] = []
    for event in make_backend().generate("hello", SamplingParams(max_tokens=200, logit_bias=NO_END), cancel):
        events.append(event)
        if len(events) == 3:
            cancel.set()
    assert_well_formed(events)
    finished = events[-1]
    assert isinstance(finished, Finished)
    assert 3 <= finished.completion_tokens < 10


def test_a_stream_outliving_its_model_fails_cleanly(make_backend: MakeBackend) -> None:
    backend = make_backend()
    stream = backend.generate("hello", SamplingParams(max_tokens=50, logit_bias=NO_END))
    next(stream)
    backend.unload()
    with pytest.raises(RuntimeError, match="unloaded"):
        list(stream)


def test_context_overflow_raises_before_generating(make_backend: MakeBackend) -> None:
    backend = make_backend()
    prompt_tokens = len(backend.tokenize("hello"))
    with pytest.raises(ContextLengthExceeded) as raised:
        backend.generate("hello", SamplingParams(max_tokens=600))  # raises on the call itself
    assert (raised.value.prompt_tokens, raised.value.max_tokens, raised.value.context_size) == (
        prompt_tokens,
        600,
        512,
    )
    with pytest.raises(ContextLengthExceeded) as raised:
        backend.generate("hello world " * 100, SamplingParams())
    assert raised.value.prompt_tokens >= 512 and raised.value.context_size == 512
    # The model is still usable afterwards.
    assert run(backend, "hello", GREEDY)[1].completion_tokens > 0


# Constrained output


def test_json_object_response_format_yields_json(make_backend: MakeBackend) -> None:
    params = SamplingParams(max_tokens=256, temperature=0, response_format=ResponseFormat("json_object"))
    text, finished = run(make_backend(), "hello", params)
    if finished.finish_reason == "stop":
        assert isinstance(json.loads(text), dict)
    else:  # a random model may not close the object in time; what it wrote must still be JSON so far
        assert is_json_prefix(text)


def test_json_schema_response_format_yields_matching_json(make_backend: MakeBackend) -> None:
    schema = {
        "type": "object",
        "properties": {"answer": {"type": "boolean"}},
        "required": ["answer"],
        "additionalProperties": False,
    }
    params = SamplingParams(max_tokens=64, temperature=0, response_format=ResponseFormat("json_schema", schema))
    text, finished = run(make_backend(), "hello", params)
    assert finished.finish_reason == "stop"  # this schema admits only short documents
    value = json.loads(text)
    assert list(value) == ["answer"] and isinstance(value["answer"], bool)


def test_raw_gbnf_grammar_constrains_the_output(make_backend: MakeBackend) -> None:
    for seed in (1, 2, 3):
        params = SamplingParams(max_tokens=8, temperature=1.0, seed=seed, grammar='root ::= "yes" | "no"')
        text, finished = run(make_backend(), "hello", params)
        assert text in {"yes", "no"}
        assert finished.finish_reason == "stop"


def test_invalid_grammar_is_an_invalid_request(make_backend: MakeBackend) -> None:
    with pytest.raises(InvalidRequest) as raised:
        make_backend().generate("hello", SamplingParams(grammar="root ::= ["))
    assert raised.value.param == "grammar"


def test_logit_bias_forces_a_token(make_backend: MakeBackend) -> None:
    backend = make_backend()
    token = backend.tokenize("Q")[-1]  # SentencePiece puts a space piece first
    assert backend.detokenize([token]) == "Q"
    text, finished = run(backend, "hello", SamplingParams(max_tokens=5, logit_bias={token: 100.0}))
    assert text == "Q" * 5
    assert finished.completion_tokens == 5


def test_logit_bias_outside_the_vocabulary_is_an_invalid_request(make_backend: MakeBackend) -> None:
    with pytest.raises(InvalidRequest, match="logit_bias"):
        make_backend().generate("hello", SamplingParams(logit_bias={10**6: 1.0}))


# Embeddings


def test_embeddings_are_pooled_normalised_and_deterministic(make_backend: MakeBackend, tiny_models: TinyModels) -> None:
    backend = make_backend(tiny_models.embedding, embeddings=True)
    assert backend.supports(Capability.EMBED)
    vectors = backend.embed(["hello world", "the user", "hello world"])
    assert len(vectors) == 3 and all(len(v) == 64 for v in vectors)
    assert all(math.isclose(math.hypot(*v), 1.0, rel_tol=1e-4) for v in vectors)
    assert backend.embed(["hello world", "the user", "hello world"]) == vectors  # deterministic
    # The same text agrees wherever it sits in a batch (to float noise); different texts differ.
    assert vectors[0] == pytest.approx(vectors[2], abs=1e-6)
    assert backend.embed(["hello world"])[0] == pytest.approx(vectors[0], abs=1e-6)
    assert vectors[0] != pytest.approx(vectors[1], abs=1e-3)


def test_embeddings_pool_a_model_whose_file_sets_no_pooling(make_backend: MakeBackend) -> None:
    vectors = make_backend(embeddings=True).embed(["hello", "world"])
    assert [len(v) for v in vectors] == [64, 64]


def test_embed_needs_embeddings_enabled(make_backend: MakeBackend) -> None:
    backend = make_backend()
    assert not backend.supports(Capability.EMBED)
    with pytest.raises(CapabilityNotSupported):
        backend.embed(["hello"])


# Streaming text assembly (pure)


def test_split_utf8_characters_wait_for_their_last_byte() -> None:
    stream = StopTextStream()
    euro = "\u20ac".encode()
    assert [stream.push(euro[:1]), stream.push(euro[1:2]), stream.push(euro[2:])] == ["", "", "\u20ac"]
    assert stream.push(b"\xe2\x82") == "" and stream.finish() == ""  # an unfinished character is dropped


def test_stop_prefixes_are_held_back_then_released_or_dropped() -> None:
    stream = StopTextStream(["</end>"])
    assert stream.push(b"ab</") == "ab"
    assert stream.push(b"en") == ""
    assert stream.push(b"x") == "</enx"
    assert stream.push(b"y</e") == "y"
    assert stream.push(b"nd>tail") == "" and stream.stopped and stream.matched == "</end>"
    held = StopTextStream(["STOP"])
    assert held.push(b"the ST") == "the " and held.finish() == "ST" and held.matched is None
    first = StopTextStream(["b", "ab"])  # the stop that begins first is the one that ended the text
    assert first.push(b"xab") == "x" and first.matched == "ab"


def is_json_prefix(text: str) -> bool:
    """Whether ``text`` can be completed into valid JSON (tries short completions of its open parts)."""
    closers: list[str] = []
    in_string = escaped = False
    for char in text:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "{[":
            closers.append("}" if char == "{" else "]")
        elif char in "}]" and closers:
            closers.pop()
    tail = "".join(reversed(closers))
    string_fixes = ['"', 'n"', '0"', '00"', '000"', '0000"'] if in_string else [""]
    value_fixes = ["", ":0", "0", '"":0', "e", "ue", "rue", "alse", "lse", "se", "ull", "ll", "l", "e0"]
    for fix in string_fixes:
        for value in value_fixes:
            for after in ("", ":0"):  # a just-closed key still needs its value
                try:
                    json.loads(text + fix + value + after + tail)
                    return True
                except ValueError:
                    continue
    return not text.strip()
