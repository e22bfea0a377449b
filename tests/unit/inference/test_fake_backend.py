"""FakeBackend: deterministic outputs and configurable load behaviour; the Backend base defaults."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from inference.backends.base import Backend, Capability
from inference.backends.fake import FakeBackend
from inference.config import ModelConfig
from inference.errors import CapabilityNotSupported, InvalidModelConfig


def fake(models_path: Path = Path("."), **fields) -> FakeBackend:
    backend = FakeBackend(ModelConfig.model_validate({"name": "f", "backend": "fake", **fields}), models_path)
    backend.load()
    return backend


def test_completions_are_deterministic_across_instances():
    first = fake().complete("Hello there", max_tokens=200)
    second = fake().complete("Hello there", max_tokens=200)

    assert first == second
    assert first.text and first.finish_reason == "stop"
    assert first.prompt_tokens == len("Hello there".encode())
    assert first.completion_tokens == len(first.text.encode())


def test_seed_and_prompt_change_the_completion():
    backend = fake()
    base = backend.complete("prompt", max_tokens=500, seed=1).text

    assert backend.complete("prompt", max_tokens=500, seed=2).text != base
    assert backend.complete("prompt!", max_tokens=500, seed=1).text != base


def test_max_tokens_cuts_with_finish_reason_length():
    result = fake().complete("a long answer please", max_tokens=5)

    assert result.completion_tokens == 5 and len(result.text) == 5
    assert result.finish_reason == "length"


def test_stop_sequences_cut_the_text():
    backend = fake()
    full = backend.complete("stop me", max_tokens=500).text
    word = full.split()[1]

    result = backend.complete("stop me", max_tokens=500, stop=["zzz-never", " " + word])

    assert result.text == full[: full.index(" " + word)]
    assert result.finish_reason == "stop"


def test_chat_is_a_completion_over_the_messages():
    backend = fake()
    messages = [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hi"}]

    assert backend.chat(messages, max_tokens=300) == backend.complete("system: be brief\nuser: hi", max_tokens=300)


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
    assert fake(options=["memory_mb:3"]).memory_estimate() == 3 * 1024 * 1024

    (tmp_path / "weights").mkdir()
    (tmp_path / "weights" / "a.bin").write_bytes(b"x" * 100)
    (tmp_path / "weights" / "b.bin").write_bytes(b"x" * 50)
    assert fake(tmp_path, parameters={"model": "weights"}).memory_estimate() == 150
    assert fake(tmp_path, parameters={"model": "missing"}).memory_estimate() == 0


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
        lambda b: b.complete("x"),
        lambda b: b.chat([{"role": "user", "content": "x"}]),
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
