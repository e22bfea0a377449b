"""FakeBackend: deterministic outputs and configurable load behaviour; the Backend base defaults."""

from __future__ import annotations

import math
import threading
from pathlib import Path

import pytest

from inference.backends.base import Backend, MemoryEstimate
from inference.backends.fake import FakeBackend
from inference.capabilities import Capability
from inference.catalog.config import ModelConfig
from inference.errors import CapabilityNotSupported, ContextLengthExceeded, InvalidModelConfig
from inference.generation import Finished, SamplingParams, TextDelta


def fake(models_path: Path = Path("."), **fields) -> FakeBackend:
    backend = FakeBackend(ModelConfig.model_validate({"name": "f", "backend": "fake", **fields}), models_path)
    backend.load()
    return backend


def complete(backend: FakeBackend, prompt: str, **params) -> tuple[str, Finished]:
    events = list(backend.generate(prompt, SamplingParams(**params)))
    *deltas, finished = events
    assert all(isinstance(d, TextDelta) for d in deltas) and isinstance(finished, Finished)
    assert finished.completion_tokens == sum(d.tokens for d in deltas)
    return "".join(d.text for d in deltas), finished


def test_generations_are_deterministic_across_instances():
    first = complete(fake(), "Hello there", max_tokens=200)
    second = complete(fake(), "Hello there", max_tokens=200)

    assert first == second
    text, finished = first
    assert text and finished.finish_reason == "stop"
    assert finished.prompt_tokens == len("Hello there".encode())
    assert finished.completion_tokens == len(text.encode())


def test_seed_and_prompt_change_the_generation():
    backend = fake()
    base = complete(backend, "prompt", max_tokens=500, seed=1)[0]

    assert complete(backend, "prompt", max_tokens=500, seed=2)[0] != base
    assert complete(backend, "prompt!", max_tokens=500, seed=1)[0] != base


def test_max_tokens_cuts_with_finish_reason_length():
    text, finished = complete(fake(), "a long answer please", max_tokens=5)

    assert finished.completion_tokens == 5 and len(text) == 5
    assert finished.finish_reason == "length"


def test_stop_sequences_cut_the_text():
    backend = fake()
    full = complete(backend, "stop me", max_tokens=500)[0]
    word = full.split()[1]

    text, finished = complete(backend, "stop me", max_tokens=500, stop=("zzz-never", " " + word))

    assert text == full[: full.index(" " + word)]
    assert finished.finish_reason == "stop"


def test_context_overflow_is_refused_before_generating():
    backend = fake(context_size=32)
    with pytest.raises(ContextLengthExceeded) as caught:
        list(backend.generate("x" * 30, SamplingParams(max_tokens=5)))
    assert (caught.value.prompt_tokens, caught.value.max_tokens, caught.value.context_size) == (30, 5, 32)
    assert complete(backend, "x" * 30)[1].completion_tokens <= 2  # no max_tokens: up to the context


def test_cancel_stops_the_stream():
    cancel = threading.Event()
    stream = fake().generate("cancel me please", SamplingParams(max_tokens=500), cancel)
    first = next(stream)
    assert isinstance(first, TextDelta)
    cancel.set()
    rest = list(stream)
    assert len(rest) == 1 and isinstance(rest[0], Finished)
    assert rest[0].completion_tokens == first.tokens


def test_chat_template_renders_roles_and_list_content():
    backend = fake()
    messages = [{"role": "system", "content": "be brief"}, {"role": "user", "content": [{"type": "text", "text": "hi"}]}]

    prompt = backend.apply_chat_template(messages)
    assert prompt.text == "system: be brief\nuser: hi\nassistant:"
    assert prompt.stop == ("\nuser:",)


def test_tokenize_round_trips():
    backend = fake()
    tokens = backend.tokenize("héllo wörld")

    assert tokens == list("héllo wörld".encode())
    assert backend.detokenize(tokens) == "héllo wörld"


def test_embeddings_are_deterministic_unit_vectors_of_the_configured_dimension():
    backend = fake(options=["dimensions:24"])

    a1, b = backend.embed(["cat", "dog"])
    (a2,) = fake(options=["dimensions:24"]).embed(["cat"])

    assert len(a1) == 24 and a1 == a2 and a1 != b
    assert math.isclose(sum(v * v for v in a1), 1.0, rel_tol=1e-9)
    assert len(fake().embed(["x"])[0]) == 16


def test_rerank_scores_query_word_overlap():
    scores = fake().rerank("red apple pie", ["a red apple", "blue sky", "Apple pie, red!"])

    assert scores == [pytest.approx(2 / 3), 0.0, 1.0]


def test_memory_estimate_comes_from_options_or_the_files_on_disk(tmp_path):
    assert fake(options=["memory_mb:3"]).memory_estimate() == MemoryEstimate(ram=3 * 1024 * 1024)
    assert fake(options=["memory_mb:3", "vram_mb:2"]).memory_estimate().vram == 2 * 1024 * 1024

    (tmp_path / "weights").mkdir()
    (tmp_path / "weights" / "a.bin").write_bytes(b"x" * 100)
    (tmp_path / "weights" / "b.bin").write_bytes(b"x" * 50)
    assert fake(tmp_path, parameters={"model": "weights"}).memory_estimate().ram == 150
    assert fake(tmp_path, parameters={"model": "missing"}).memory_estimate().ram == 0


def test_fail_load_option_makes_load_raise():
    backend = FakeBackend(ModelConfig.model_validate({"name": "f", "options": ["fail_load:true"]}), Path("."))

    with pytest.raises(RuntimeError, match="configured to fail"):
        backend.load()


def test_bad_option_values_are_invalid_config():
    with pytest.raises(InvalidModelConfig, match="memory_mb"):
        FakeBackend(ModelConfig.model_validate({"name": "f", "options": ["memory_mb:lots"]}), Path("."))


def test_calls_before_load_are_refused():
    backend = FakeBackend(ModelConfig.model_validate({"name": "f"}), Path("."))
    with pytest.raises(RuntimeError, match="not loaded"):
        backend.embed(["x"])


class SpeakOnly(Backend):
    name = "speak-only"
    capabilities = frozenset({Capability.SPEAK})

    def load(self) -> None:
        pass

    def unload(self) -> None:
        pass


@pytest.mark.parametrize(
    "call",
    [
        lambda b: list(b.generate("x", SamplingParams())),
        lambda b: b.apply_chat_template([{"role": "user", "content": "x"}]),
        lambda b: b.context_size(),
        lambda b: b.embed(["x"]),
        lambda b: b.rerank("q", ["d"]),
        lambda b: b.tokenize("x"),
        lambda b: b.detokenize([1]),
    ],
)
def test_unimplemented_capabilities_raise_capability_not_supported(call):
    backend = SpeakOnly(ModelConfig.model_validate({"name": "voice"}), Path("."))

    with pytest.raises(CapabilityNotSupported, match="voice"):
        call(backend)
    assert backend.supports("speak") and not backend.supports(Capability.CHAT)
