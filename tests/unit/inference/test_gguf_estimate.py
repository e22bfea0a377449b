"""Memory estimates and load plans from GGUF headers, with LocalAI config fields; no model is loaded."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import gguf
import numpy as np
import pytest

from fixtures.gguf_models import write_chat_gguf
from inference.backends.llama_cpp import LlamaCppBackend
from inference.backends.llama_params import (
    DEFAULT_CONTEXT,
    default_threads,
    estimate_memory,
    kv_cache_bytes,
    plan_load,
    shard_bytes,
)
from inference.catalog.config import ModelConfig
from inference.catalog.gguf import read_gguf_info
from inference.errors import InvalidModelConfig


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("estimates")
    write_chat_gguf(root / "chat.gguf")
    write_chat_gguf(root / "long.gguf", context_length=32768)
    return root


def backend(root: Path, model: str = "chat.gguf", **config: Any) -> LlamaCppBackend:
    return LlamaCppBackend(ModelConfig(name="m", parameters={"model": model}, **config), root)


def config(**fields: Any) -> ModelConfig:
    return ModelConfig(name="m", parameters={"model": "chat.gguf", **fields.pop("parameters", {})}, **fields)


def test_kv_cache_is_layers_times_positions_times_kv_width(root: Path) -> None:
    info = read_gguf_info(root / "chat.gguf")
    # 2 layers x 1000 positions x 2 KV heads x (16 K + 16 V) x 2 bytes (f16)
    assert kv_cache_bytes(info, 1000) == 2 * 1000 * 2 * (16 + 16) * 2
    assert kv_cache_bytes(info, 1000, "q8_0", "q8_0") < kv_cache_bytes(info, 1000)


def test_estimate_covers_weights_and_kv_cache_in_ram(root: Path) -> None:
    info = read_gguf_info(root / "chat.gguf")
    estimate = backend(root).memory_estimate()
    assert estimate.vram == 0
    assert estimate.ram > info.tensor_data_size + kv_cache_bytes(info, 512)


def test_estimate_grows_with_context_size(root: Path) -> None:
    rams = [backend(root, context_size=size).memory_estimate().ram for size in (256, 1024, 8192)]
    assert rams == sorted(rams) and len(set(rams)) == 3


def test_context_defaults_to_the_trained_length_capped(root: Path) -> None:
    assert backend(root).context_size() == 512
    assert backend(root, "long.gguf").context_size() == DEFAULT_CONTEXT
    assert backend(root, "long.gguf", context_size=16384).context_size() == 16384


def test_gpu_layers_move_weights_and_kv_cache_to_vram(root: Path) -> None:
    cpu = backend(root).memory_estimate()
    half = backend(root, gpu_layers=1).memory_estimate()  # 1 of 2 layers
    full = [backend(root, gpu_layers=n).memory_estimate() for n in (2, 99, -1)]
    assert 0 < half.vram and half.ram < cpu.ram
    assert all(e.ram == 0 and e.vram == cpu.total for e in full)
    assert half.total == cpu.total
    kept = backend(root, gpu_layers=99, no_kv_offloading=True).memory_estimate()
    assert kept.ram > 0 and kept.total == cpu.total


def test_flash_attention_and_quantized_cache_shrink_the_estimate(root: Path) -> None:
    base = backend(root, context_size=4096).memory_estimate().ram
    assert backend(root, context_size=4096, flash_attention=True).memory_estimate().ram < base
    assert backend(root, context_size=4096, cache_type_k="q8_0", cache_type_v="q4_0").memory_estimate().ram < base


def test_estimating_a_missing_file_names_it(root: Path) -> None:
    with pytest.raises(InvalidModelConfig, match="absent.gguf.*does not exist"):
        backend(root, "absent.gguf").memory_estimate()
    with pytest.raises(InvalidModelConfig, match="parameters.model"):
        LlamaCppBackend(ModelConfig(name="m"), root).memory_estimate()


def test_plan_maps_localai_fields(root: Path) -> None:
    info = read_gguf_info(root / "chat.gguf")
    cfg = config(
        context_size=2048, threads=3, gpu_layers=10, main_gpu="1", tensor_split="0.6,0.4", mmap=False,
        mmlock=True, flash_attention="on", no_kv_offloading=True, embeddings=True, cache_type_k="q8_0",
        lora_adapter="adapter.gguf", lora_scale=0.5,
        parameters={"batch": 256, "rope_freq_base": 20000.0, "rope_freq_scale": 0.5},
    )
    kwargs = plan_load(cfg, root, info).llama_kwargs()
    assert {k: kwargs[k] for k in ("n_ctx", "n_batch", "n_ubatch", "n_threads", "n_threads_batch")} == {
        "n_ctx": 2048, "n_batch": 256, "n_ubatch": 256, "n_threads": 3, "n_threads_batch": 3,
    }
    assert (kwargs["n_gpu_layers"], kwargs["main_gpu"], kwargs["tensor_split"]) == (10, 1, [0.6, 0.4])
    assert (kwargs["use_mmap"], kwargs["use_mlock"], kwargs["flash_attn"], kwargs["offload_kqv"]) == (
        False, True, True, False,
    )
    assert (kwargs["rope_freq_base"], kwargs["rope_freq_scale"]) == (20000.0, 0.5)
    assert kwargs["embedding"] is True and kwargs["pooling_type"] == 1  # the file sets no pooling
    assert kwargs["type_k"] == gguf.GGMLQuantizationType.Q8_0 and "type_v" not in kwargs
    assert (kwargs["lora_path"], kwargs["lora_scale"]) == (str(root / "adapter.gguf"), 0.5)
    assert kwargs["verbose"] is False


def test_plan_defaults(root: Path) -> None:
    kwargs = plan_load(config(), root, read_gguf_info(root / "chat.gguf")).llama_kwargs()
    assert (kwargs["n_ctx"], kwargs["n_batch"], kwargs["n_gpu_layers"]) == (512, 512, 0)
    assert kwargs["n_threads"] == default_threads()
    assert kwargs["use_mmap"] is True and kwargs["use_mlock"] is False and kwargs["flash_attn"] is False
    assert "pooling_type" not in kwargs and kwargs["embedding"] is False


def test_default_threads_is_within_the_cpus_we_may_use() -> None:
    assert 1 <= default_threads() <= len(os.sched_getaffinity(0))


@pytest.mark.parametrize(
    ("fields", "param"),
    [
        ({"main_gpu": "gpu0"}, "main_gpu"),
        ({"tensor_split": "a,b"}, "tensor_split"),
        ({"flash_attention": "sometimes"}, "flash_attention"),
        ({"cache_type_k": "q3"}, "cache_type_k"),
        ({"context_size": 0}, "context_size"),
        ({"parameters": {"batch": 0}}, "parameters.batch"),
    ],
)
def test_bad_config_values_are_invalid_model_config(root: Path, fields: dict[str, Any], param: str) -> None:
    with pytest.raises(InvalidModelConfig) as raised:
        plan_load(config(**fields), root, read_gguf_info(root / "chat.gguf"))
    assert raised.value.param == param


def test_split_models_count_their_other_shards(tmp_path: Path) -> None:
    first = tmp_path / "big-00001-of-00002.gguf"
    writer = gguf.GGUFWriter(str(first), "llama")
    writer.add_uint16("split.count", 2)
    writer.add_block_count(1)
    writer.add_tensor("x", np.zeros(16, dtype=np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    (tmp_path / "big-00002-of-00002.gguf").write_bytes(bytes(5000))
    info = read_gguf_info(first)
    assert shard_bytes(info) == 5000
    plan = plan_load(ModelConfig(name="m", parameters={"model": first.name}), tmp_path, info)
    assert estimate_memory(info, plan).ram >= 64 + 5000
