"""ModelLoader: one shared load per model, failures not cached, unload and close."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

import pytest

from inference.backends.fake import FakeBackend
from inference.catalog import Catalog
from inference.errors import BackendNotFound, ModelLoadFailed, ModelNotFound
from inference.loader import ModelLoader
from inference.registry import BackendRegistry


@pytest.fixture
def load_calls(monkeypatch) -> list[str]:
    """Names of the models FakeBackend.load ran for, in order."""
    calls: list[str] = []
    original = FakeBackend.load

    def counting_load(self: FakeBackend) -> None:
        calls.append(self.config.name)
        original(self)

    monkeypatch.setattr(FakeBackend, "load", counting_load)
    return calls


def make_loader(models_path: Path, write_yaml, configs: list[dict], clock=lambda: 1234.5) -> ModelLoader:
    write_yaml("models.yaml", configs)
    return ModelLoader(Catalog(models_path), BackendRegistry(), models_path, clock=clock)


def test_concurrent_loads_of_one_model_share_one_load(models_path, write_yaml, load_calls):
    loader = make_loader(
        models_path, write_yaml, [{"name": "slow", "backend": "fake", "options": ["load_delay_ms:100"]}]
    )

    async def scenario():
        return await asyncio.gather(*(loader.load("slow") for _ in range(5)))

    results = asyncio.run(scenario())

    assert load_calls == ["slow"]
    assert len({id(r) for r in results}) == 1
    assert asyncio.run(loader.load("slow")) is results[0], "a loaded model is not loaded again"
    assert load_calls == ["slow"]


def test_loaded_reports_backend_usecases_clock_and_memory(models_path, write_yaml, load_calls):
    loader = make_loader(
        models_path, write_yaml, [{"name": "m", "backend": "fake", "options": ["memory_mb:7"]}], clock=lambda: 99.0
    )

    info = asyncio.run(loader.load("m"))

    assert loader.loaded() == [info]
    assert (info.name, info.backend, info.loaded_at, info.memory_bytes) == ("m", "fake", 99.0, 7 * 1024 * 1024)
    assert "embeddings" in info.usecases and "embed" in info.capabilities
    assert isinstance(loader.get_loaded("m"), FakeBackend)
    assert loader.get_loaded("m").embed(["x"])


def test_a_failed_load_raises_model_load_failed_and_is_retried_later(models_path, write_yaml, load_calls, caplog):
    loader = make_loader(models_path, write_yaml, [{"name": "bad", "backend": "fake", "options": ["fail_load:true"]}])

    with pytest.raises(ModelLoadFailed) as first:
        asyncio.run(loader.load("bad"))
    with pytest.raises(ModelLoadFailed):
        asyncio.run(loader.load("bad"))

    assert isinstance(first.value.__cause__, RuntimeError)
    assert "bad" in str(first.value) and "configured to fail" in str(first.value)
    assert load_calls == ["bad", "bad"], "the failure was not cached; the second call tried again"
    assert loader.loaded() == [] and loader.get_loaded("bad") is None
    assert any(r.exc_info for r in caplog.records if "model_load_failed" in r.getMessage())


def test_all_waiters_of_a_failing_load_get_the_error(models_path, write_yaml, load_calls):
    loader = make_loader(
        models_path,
        write_yaml,
        [{"name": "bad", "backend": "fake", "options": ["fail_load:true", "load_delay_ms:50"]}],
    )

    async def scenario():
        return await asyncio.gather(*(loader.load("bad") for _ in range(3)), return_exceptions=True)

    results = asyncio.run(scenario())

    assert all(isinstance(r, ModelLoadFailed) for r in results)
    assert load_calls == ["bad"]


def test_different_models_load_concurrently(models_path, write_yaml, monkeypatch):
    # Each load waits for the other to start; serialised loads would break the barrier.
    barrier = threading.Barrier(2, timeout=5)
    monkeypatch.setattr(FakeBackend, "load", lambda self: barrier.wait())
    loader = make_loader(models_path, write_yaml, [{"name": "a", "backend": "fake"}, {"name": "b", "backend": "fake"}])

    async def scenario():
        return await asyncio.gather(loader.load("a"), loader.load("b"))

    a, b = asyncio.run(scenario())

    assert {a.name, b.name} == {"a", "b"}


def test_a_cancelled_waiter_does_not_cancel_the_shared_load(models_path, write_yaml, load_calls):
    loader = make_loader(
        models_path, write_yaml, [{"name": "slow", "backend": "fake", "options": ["load_delay_ms:100"]}]
    )

    async def scenario():
        impatient = asyncio.ensure_future(loader.load("slow"))
        patient = asyncio.ensure_future(loader.load("slow"))
        await asyncio.sleep(0.01)
        impatient.cancel()
        return await patient

    info = asyncio.run(scenario())

    assert info.name == "slow" and load_calls == ["slow"]


def test_unload_and_close(models_path, write_yaml, load_calls):
    (models_path / "loose.gguf").write_bytes(b"GGUF")
    loader = make_loader(models_path, write_yaml, [{"name": "a", "backend": "fake"}, {"name": "b", "backend": "fake"}])

    async def scenario():
        await loader.load("a")
        await loader.load("b")
        backend_a = loader.get_loaded("a")
        assert await loader.unload("a") is True
        assert backend_a.loaded is False
        assert await loader.unload("a") is False
        assert [m.name for m in loader.loaded()] == ["b"]
        backend_b = loader.get_loaded("b")
        await loader.close()
        return backend_b

    backend_b = asyncio.run(scenario())

    assert loader.loaded() == [] and backend_b.loaded is False


def test_a_loose_file_loads_under_its_full_name_when_asked_by_stem(models_path, write_yaml, monkeypatch):
    (models_path / "voice.onnx").write_bytes(b"onnx")
    (models_path / "voice.onnx.json").write_text("{}")
    registry = BackendRegistry()
    monkeypatch.setattr(registry, "backend_class", lambda name: FakeBackend)
    loader = ModelLoader(Catalog(models_path), registry, models_path)

    info = asyncio.run(loader.load("voice"))

    assert (info.name, info.backend) == ("voice.onnx", "piper")
    assert loader.get_loaded("voice") is loader.get_loaded("voice.onnx") is not None


def test_unknown_model_and_undetectable_backend_are_typed_errors(models_path, write_yaml):
    loader = make_loader(models_path, write_yaml, [{"name": "mystery", "parameters": {"model": "mystery.bin"}}])

    with pytest.raises(ModelNotFound):
        asyncio.run(loader.load("nope"))
    with pytest.raises(BackendNotFound, match="gguf file"):
        asyncio.run(loader.load("mystery"))
