"""Catalog: configs and loose model files under a models path, looked up by name."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from inference.catalog.catalog import Catalog
from inference.catalog.config import ModelDefaults
from inference.errors import ModelNotFound, UnsafePath


def make_folder(root: Path, name: str, files: dict[str, object]) -> Path:
    folder = root / name
    folder.mkdir()
    for filename, content in files.items():
        text = content if isinstance(content, str) else json.dumps(content)
        (folder / filename).write_text(text, encoding="utf-8")
    return folder


LOOSE_KINDS = {
    "tiny.gguf": ("llama-cpp", {"chat", "completion", "edit", "tokenize"}),
    "minilm": ("sentencetransformers", {"embeddings"}),
    "st-config-only": ("sentencetransformers", {"embeddings"}),
    "sd-tiny": ("diffusers", {"image"}),
    "audioldm": ("diffusers", {"sound"}),
    "whisper-tiny": ("faster-whisper", {"transcription"}),
    "whisper-vocab": ("faster-whisper", {"transcription"}),
    "voice.onnx": ("piper", {"tts"}),
    "cross-encoder": ("sentencetransformers", {"rerank"}),
    "st-cross-encoder": ("sentencetransformers", {"rerank"}),
}


def build_loose_models(root: Path) -> None:
    (root / "tiny.gguf").write_bytes(b"GGUF\x03\x00\x00\x00")
    make_folder(root, "minilm", {"modules.json": [{"idx": 0, "type": "sentence_transformers.models.Transformer"}]})
    make_folder(root, "st-config-only", {"config_sentence_transformers.json": {"__version__": {}}})
    make_folder(root, "sd-tiny", {"model_index.json": {"_class_name": "StableDiffusionPipeline"}})
    make_folder(root, "audioldm", {"model_index.json": {"_class_name": "AudioLDMPipeline"}})
    make_folder(root, "whisper-tiny", {"model.bin": "x", "config.json": {"alignment_heads": [[1, 0]], "lang_ids": [1]}})
    make_folder(root, "whisper-vocab", {"model.bin": "x", "vocabulary.txt": "a\nb\n"})
    (root / "voice.onnx").write_bytes(b"onnx")
    (root / "voice.onnx.json").write_text(json.dumps({"audio": {"sample_rate": 22050}}))
    make_folder(root, "cross-encoder", {"config.json": {"architectures": ["BertForSequenceClassification"]}})
    # sentence-transformers >= 5 saves a CrossEncoder with the same markers as a bi-encoder.
    make_folder(
        root,
        "st-cross-encoder",
        {"modules.json": [], "config_sentence_transformers.json": {"model_type": "CrossEncoder"}},
    )


def test_every_loose_model_kind_is_detected(models_path):
    build_loose_models(models_path)

    catalog = Catalog(models_path)

    found = {e.name: (e.backend, set(e.usecases)) for e in catalog.list()}
    assert found == LOOSE_KINDS
    assert all(e.source == "file" for e in catalog.list())
    assert catalog.get("sd-tiny").path == models_path / "sd-tiny"
    assert catalog.get("voice.onnx").config.parameters.model == "voice.onnx"
    assert catalog.get("cross-encoder").config.reranking is True
    assert catalog.errors == []


def test_things_that_are_not_models_are_not_listed(models_path):
    make_folder(models_path, "random-folder", {"config.json": {"architectures": ["LlamaForCausalLM"]}})
    make_folder(models_path, "ct2-without-tokenizer", {"model.bin": "x", "config.json": {"hidden_size": 4}})
    (models_path / "lonely.onnx").write_bytes(b"onnx")
    (models_path / ".hidden.gguf").write_bytes(b"GGUF")
    (models_path / "half.gguf.partial").write_bytes(b"GGUF")
    (models_path / "download.tmp").write_bytes(b"GGUF")
    (models_path / "chat.tmpl").write_text("{{.Input}}")
    (models_path / "README.md").write_text("# models")
    (models_path / "mmproj-model-f16.gguf").write_bytes(b"GGUF")
    (models_path / "big-00001-of-00002.gguf").write_bytes(b"GGUF")
    (models_path / "big-00002-of-00002.gguf").write_bytes(b"GGUF")

    catalog = Catalog(models_path)

    assert [e.name for e in catalog.list()] == ["big-00001-of-00002.gguf"]


def test_loose_files_answer_to_their_stem(models_path):
    build_loose_models(models_path)
    catalog = Catalog(models_path)

    assert catalog.get("tiny").name == "tiny.gguf"
    assert catalog.get("voice").name == "voice.onnx"
    assert "tiny" in catalog and "tiny.gguf" in catalog
    assert "tiny" not in [e.name for e in catalog.list()]


def test_a_real_name_beats_a_stem(models_path, write_yaml):
    (models_path / "phi.gguf").write_bytes(b"GGUF")
    write_yaml("phi.yaml", {"name": "phi", "backend": "fake"})

    catalog = Catalog(models_path)

    assert catalog.get("phi").backend == "fake"
    assert catalog.get("phi.gguf").backend == "llama-cpp"


def test_configs_are_read_from_models_path_and_explicit_files(models_path, write_yaml, tmp_path):
    write_yaml("a.yaml", {"name": "alpha", "backend": "fake"})
    write_yaml("b.yml", [{"name": "beta", "backend": "piper"}, {"name": "gamma", "backend": "whisper"}])
    write_yaml("sub/nested.yaml", {"name": "nested"})
    extra = tmp_path / "extra.yaml"
    extra.write_text("name: delta\nbackend: diffusers\n")

    catalog = Catalog(models_path, config_files=[extra])

    assert [e.name for e in catalog.list()] == ["alpha", "beta", "delta", "gamma"]
    entry = catalog.get("gamma")
    assert (entry.source, entry.path, entry.backend) == ("config", models_path / "b.yml", "whisper")
    assert entry.usecases == {"transcription"}
    assert catalog.get("delta").path == extra


def test_bad_files_are_skipped_and_recorded_while_others_load(models_path, write_yaml, caplog):
    write_yaml("good.yaml", {"name": "good", "backend": "fake"})
    write_yaml("broken.yaml", "name: [unclosed\n")
    write_yaml("wrongtype.yaml", {"name": "typed", "threads": "lots"})
    write_yaml("unsafe.yaml", {"name": "evil", "parameters": {"model": "../../etc/passwd"}})

    with caplog.at_level(logging.WARNING, logger="inference.catalog.catalog"):
        catalog = Catalog(models_path)

    assert [e.name for e in catalog.list()] == ["good"]
    assert len(catalog.errors) == 3
    joined = "\n".join(catalog.errors)
    assert "broken.yaml" in joined and "invalid YAML" in joined
    assert "wrongtype.yaml" in joined and "threads" in joined
    assert "unsafe.yaml" in joined and "parameters.model" in joined
    warned = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("broken.yaml" in message for message in warned)


def test_duplicate_names_first_source_wins_with_a_warning(models_path, write_yaml, tmp_path, caplog):
    write_yaml("a.yaml", {"name": "dup", "backend": "piper"})
    write_yaml("b.yaml", {"name": "dup", "backend": "diffusers"})
    explicit = tmp_path / "explicit.yaml"
    explicit.write_text("name: dup\nbackend: fake\n")

    with caplog.at_level(logging.WARNING, logger="inference.catalog.catalog"):
        with_explicit = Catalog(models_path, config_files=[explicit])
    without_explicit = Catalog(models_path)

    assert with_explicit.get("dup").backend == "fake"
    assert without_explicit.get("dup").backend == "piper"
    message = next(r.getMessage() for r in caplog.records if "duplicate" in r.getMessage())
    assert "explicit.yaml" in message and "a.yaml" in message
    assert any("duplicate model name 'dup'" in error for error in without_explicit.errors)


def test_an_explicit_file_inside_models_path_is_read_once(models_path, write_yaml):
    path = write_yaml("one.yaml", {"name": "one", "backend": "fake"})

    catalog = Catalog(models_path, config_files=[path])

    assert [e.name for e in catalog.list()] == ["one"] and catalog.errors == []


def test_a_model_file_referenced_by_a_config_is_not_listed_again(models_path, write_yaml):
    (models_path / "phi-2.gguf").write_bytes(b"GGUF")
    (models_path / "mmproj.gguf").write_bytes(b"GGUF")
    (models_path / "other.gguf").write_bytes(b"GGUF")
    write_yaml("phi.yaml", {"name": "phi", "parameters": {"model": "phi-2.gguf"}, "mmproj": "mmproj.gguf"})

    catalog = Catalog(models_path)

    assert [e.name for e in catalog.list()] == ["other.gguf", "phi"]
    assert catalog.get("phi").backend == "llama-cpp", "detected from the referenced file"


def test_unknown_fields_are_logged_once_per_file_and_field(models_path, write_yaml, caplog):
    write_yaml("m.yaml", {"name": "m", "backend": "fake", "future_knob": 1})

    with caplog.at_level(logging.INFO, logger="inference.catalog.catalog"):
        catalog = Catalog(models_path)
        catalog.refresh()

    logged = [r for r in caplog.records if "unknown_config_field" in r.getMessage()]
    assert len(logged) == 1
    assert logged[0].levelno == logging.INFO and "field=future_knob" in logged[0].getMessage()
    assert catalog.get("m").config.unknown_fields() == ["future_knob"]


def test_defaults_apply_to_configs_and_loose_files(models_path, write_yaml):
    (models_path / "loose.gguf").write_bytes(b"GGUF")
    write_yaml("set.yaml", {"name": "set", "backend": "fake", "context_size": 512})

    catalog = Catalog(models_path, defaults=ModelDefaults(context_size=8192, threads=3, f16=True))

    assert catalog.get("set").config.context_size == 512
    assert catalog.get("set").config.threads == 3
    assert catalog.get("loose").config.context_size == 8192
    assert catalog.get("loose").config.f16 is True


def test_get_unknown_raises_model_not_found_pointing_at_the_models_list(models_path):
    catalog = Catalog(models_path)

    with pytest.raises(ModelNotFound) as info:
        catalog.get("nope")

    assert "GET /v1/models" in str(info.value)
    assert "nope" not in catalog


@pytest.mark.parametrize("name", ["../secret.gguf", "/etc/passwd", "a/../../b", "x\x00y"])
def test_get_rejects_unsafe_names(models_path, tmp_path, name):
    (tmp_path / "secret.gguf").write_bytes(b"GGUF")
    catalog = Catalog(models_path)

    with pytest.raises(UnsafePath):
        catalog.get(name)
    assert name not in catalog


def test_refresh_swaps_in_a_new_snapshot(models_path, write_yaml):
    catalog = Catalog(models_path)
    before = catalog.list()

    write_yaml("new.yaml", {"name": "new", "backend": "fake"})
    assert "new" not in catalog, "no rescan until refresh()"
    catalog.refresh()

    assert before == [] and [e.name for e in catalog.list()] == ["new"]


def test_missing_models_path_is_recorded_not_fatal(tmp_path):
    catalog = Catalog(tmp_path / "does-not-exist")

    assert catalog.list() == []
    assert "does-not-exist" in catalog.errors[0]


def test_disabled_configs_are_not_offered(models_path, write_yaml):
    (models_path / "off.gguf").write_bytes(b"GGUF")
    write_yaml("off.yaml", {"name": "off", "disabled": True, "parameters": {"model": "off.gguf"}})

    assert Catalog(models_path).list() == []


def test_refresh_if_changed_sees_new_edited_and_removed_files(models_path: Path) -> None:
    catalog = Catalog(models_path)
    assert catalog.refresh_if_changed() is False  # nothing changed since the first scan
    (models_path / "dropped.gguf").write_bytes(b"GGUF" + bytes(28))
    assert catalog.refresh_if_changed() is True
    assert [e.name for e in catalog.list()] == ["dropped.gguf"]
    assert catalog.refresh_if_changed() is False
    config = models_path / "m.yaml"
    config.write_text("name: first\nbackend: fake\n")
    assert catalog.refresh_if_changed() is True
    config.write_text("name: second-name\nbackend: fake\n")  # same file, new content and size
    assert catalog.refresh_if_changed() is True
    assert [e.name for e in catalog.list()] == ["dropped.gguf", "second-name"]
    (models_path / "dropped.gguf").unlink()
    assert catalog.refresh_if_changed() is True
    assert [e.name for e in catalog.list()] == ["second-name"]
