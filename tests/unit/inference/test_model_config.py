"""ModelConfig and load_config_file: LocalAI YAML in, checked and defaulted configs out."""

from __future__ import annotations

import pytest
import yaml

from inference.catalog.config import ModelConfig, ModelDefaults, load_config_file, parse_config_file
from inference.errors import InvalidModelConfig, UnsafePath

LOCALAI_YAML = """
name: gpt-4
backend: llama-cpp
description: A chat model
parameters:
  model: phi-2.Q4_K_M.gguf
  temperature: 0.2
  top_k: 40
  seed: -1
  mirostat_extra: 3
context_size: 4096
f16: true
gpu_layers: 35
main_gpu: 0
tensor_split: [0.5, 0.5]
mmap: true
mlock: false
flash_attention: "on"
stopwords: "<|im_end|>"
cutstrings: ["a", "b"]
roles:
  user: "User:"
template:
  chat: chatml
  chat_message: "{{.RoleName}}: {{.Content}}"
  use_tokenizer_template: false
function:
  disable_no_action: true
diffusers:
  pipeline_type: StableDiffusionPipeline
  cuda: true
tts:
  voice: en-us-amy-low.onnx
download_files:
  - filename: phi-2.Q4_K_M.gguf
    uri: huggingface://TheBloke/phi-2-GGUF/phi-2.Q4_K_M.gguf
    sha256: abc
options: ["use_jinja:true"]
pinned: true
some_future_field: 1
another_unknown: {nested: true}
"""


def test_one_config_file_parses_localai_fields(write_yaml):
    path = write_yaml("gpt-4.yaml", LOCALAI_YAML)

    (config,) = load_config_file(path)

    assert config.name == "gpt-4"
    assert config.backend == "llama-cpp"
    assert config.parameters.model == "phi-2.Q4_K_M.gguf"
    assert config.parameters.temperature == 0.2
    assert config.parameters.seed == -1
    assert config.context_size == 4096
    assert config.f16 is True
    assert config.gpu_layers == 35
    assert config.main_gpu == "0"
    assert config.tensor_split == "0.5,0.5"
    assert config.mmlock is False
    assert config.flash_attention == "on"
    assert config.stopwords == ["<|im_end|>"]
    assert config.roles == {"user": "User:"}
    assert config.template.chat_message == "{{.RoleName}}: {{.Content}}"
    assert config.function == {"disable_no_action": True}
    assert config.diffusers.pipeline_type == "StableDiffusionPipeline"
    assert config.tts.voice == "en-us-amy-low.onnx"
    assert config.download_files[0].uri.startswith("huggingface://")
    assert config.options == ["use_jinja:true"]
    assert config.pinned is True


def test_unknown_fields_are_kept_and_listed(write_yaml):
    (config,) = load_config_file(write_yaml("m.yaml", LOCALAI_YAML))

    assert config.unknown_fields() == ["some_future_field", "another_unknown"]
    assert config.model_extra["another_unknown"] == {"nested": True}
    assert config.parameters.model_extra == {"mirostat_extra": 3}


def test_yaml_booleans_are_read_as_localai_reads_them(write_yaml):
    # Go's yaml.v3 (YAML 1.2) reads only true/false as booleans; `no` is Norwegian, not False.
    path = write_yaml("m.yaml", "name: m\nf16: true\nmmap: yes\nstopwords: [on, off]\nparameters:\n  language: no\n")

    (config,) = load_config_file(path)

    assert config.f16 is True and config.mmap is True
    assert config.stopwords == ["on", "off"]
    assert config.parameters.language == "no"
    assert yaml.safe_load("x: no") == {"x": False}, "the shared SafeLoader is left alone"


def test_a_file_may_hold_a_list_of_configs(write_yaml):
    path = write_yaml("many.yaml", [{"name": "a", "backend": "fake"}, {"name": "b", "parameters": {"model": "b.gguf"}}])

    configs = load_config_file(path)

    assert [c.name for c in configs] == ["a", "b"]
    assert configs[1].parameters.model == "b.gguf"


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("name: [unclosed\n", "invalid YAML"),
        ("", "holds no model config"),
        ("- name: ok\n- just a string\n", "item 2: expected a mapping"),
        ("backend: fake\n", "missing required field 'name'"),
        ("name: m\ncontext_size: huge\n", "field 'context_size'"),
        ("name: m\nparameters:\n  temperature: hot\n", "field 'parameters.temperature'"),
        ("name: m\ndownload_files:\n  - filename: x.bin\n", "field 'download_files[0].uri'"),
        ("42\n", "expected a mapping"),
    ],
)
def test_bad_files_raise_invalid_model_config_naming_file_and_field(write_yaml, content, expected):
    path = write_yaml("bad.yaml", content)

    with pytest.raises(InvalidModelConfig) as info:
        load_config_file(path)

    assert str(path) in str(info.value)
    assert expected in str(info.value)


def test_parse_config_file_keeps_the_good_items_of_a_list(write_yaml):
    path = write_yaml("mixed.yaml", [{"name": "good"}, {"name": "bad", "threads": "many"}, {"backend": "x"}])

    result = parse_config_file(path)

    assert [c.name for c in result.configs] == ["good"]
    assert len(result.errors) == 2
    assert "'bad'" in result.errors[0].message and "threads" in result.errors[0].message


GUARDED = [
    ("parameters.model", {"parameters": {"model": "{v}"}}),
    ("mmproj", {"mmproj": "{v}"}),
    ("tts.voice", {"tts": {"voice": "{v}"}}),
    ("download_files[0].filename", {"download_files": [{"filename": "{v}", "uri": "https://x/y"}]}),
    ("draft_model", {"draft_model": "{v}"}),
    ("name", {"name": "{v}"}),
]


def _fill(template, value):
    if isinstance(template, dict):
        return {k: _fill(v, value) for k, v in template.items()}
    if isinstance(template, list):
        return [_fill(v, value) for v in template]
    return value if template == "{v}" else template


@pytest.mark.parametrize(("field", "template"), GUARDED, ids=[g[0] for g in GUARDED])
@pytest.mark.parametrize("value", ["/etc/passwd", "../outside.gguf", "sub/../../x", "..\\win.gguf", "a\x00b"])
def test_unsafe_paths_are_rejected_naming_the_field(write_yaml, field, template, value):
    data = {"name": "m", **_fill(template, value)}

    with pytest.raises(UnsafePath) as info:
        ModelConfig.model_validate(data)
    assert field in str(info.value)

    path = write_yaml("unsafe.yaml", data)
    with pytest.raises(UnsafePath) as from_file:
        load_config_file(path)
    assert field in str(from_file.value) and str(path) in str(from_file.value)


@pytest.mark.parametrize("backend", ["../llama", "/usr/bin/llama", "sub/llama", "llama cpp", "..", "a\x00"])
def test_backend_must_be_a_plain_name(backend):
    with pytest.raises(UnsafePath, match="backend"):
        ModelConfig.model_validate({"name": "m", "backend": backend})


@pytest.mark.parametrize("backend", ["llama.cpp", "llama-cpp", "sentence_transformers", "faster-whisper"])
def test_plain_backend_names_are_accepted(backend):
    assert ModelConfig.model_validate({"name": "m", "backend": backend}).backend == backend


def test_relative_paths_and_urls_are_accepted():
    config = ModelConfig.model_validate(
        {"name": "m", "parameters": {"model": "sub/dir/model..v2.gguf"}, "mmproj": "https://host/a/mmproj.gguf"}
    )
    assert config.parameters.model == "sub/dir/model..v2.gguf"


def test_defaults_fill_unset_fields():
    config = ModelConfig.model_validate({"name": "m"})

    defaulted = config.with_defaults(ModelDefaults(context_size=2048, threads=6, f16=True))

    assert (defaulted.context_size, defaulted.threads, defaulted.f16) == (2048, 6, True)
    assert config.context_size is None, "with_defaults returns a copy"


def test_defaults_never_override_what_the_yaml_set():
    config = ModelConfig.model_validate({"name": "m", "context_size": 512, "threads": 1, "f16": False})

    defaulted = config.with_defaults(ModelDefaults(context_size=2048, threads=6, f16=True))

    assert (defaulted.context_size, defaulted.threads, defaulted.f16) == (512, 1, False)


def test_defaults_keep_unknown_fields():
    config = ModelConfig.model_validate({"name": "m", "future": 1})
    assert config.with_defaults(ModelDefaults(threads=2)).unknown_fields() == ["future"]


def test_configs_are_immutable():
    config = ModelConfig.model_validate({"name": "m"})
    with pytest.raises(Exception, match="frozen"):
        config.name = "other"
