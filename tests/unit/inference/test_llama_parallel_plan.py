"""Parallel slots for llama.cpp models: how many, from which settings, and what they cost in memory.

Pure: no model is loaded. The engine itself is tested in tests/integration/test_llama_parallel.py.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from fixtures.gguf_models import write_chat_gguf
from inference.backends.llama_params import (
    CONTEXT_PADDING,
    DEFAULT_PARALLEL_SLOTS,
    estimate_memory,
    kv_cache_bytes,
    parallel_slots,
    plan_load,
)
from inference.catalog.config import ModelConfig, ModelDefaults
from inference.catalog.gguf import read_gguf_info
from inference.errors import InvalidModelConfig


def config(**fields: Any) -> ModelConfig:
    return ModelConfig(name="m", parameters={"model": "chat.gguf"}, **fields)


@pytest.mark.parametrize(
    ("fields", "slots"),
    [
        ({}, 1),  # off by default
        ({"options": ["parallel:8"]}, 1),  # LocalAI's slot count alone does not switch it on
        ({"parallel_requests": True}, DEFAULT_PARALLEL_SLOTS),
        ({"parallel_requests": True, "options": ["parallel:2"]}, 2),
        ({"parallel_requests": True, "options": ["n_parallel:6"]}, 6),
        ({"parallel_requests": True, "options": ["gpu", "parallel: 3 "]}, 3),
        ({"parallel_requests": True, "options": ["parallel:1"]}, 1),  # explicit: one at a time
        ({"parallel_requests": True, "embeddings": True}, 1),  # embedding models decode alone
    ],
)
def test_parallel_slots(fields: dict[str, Any], slots: int) -> None:
    assert parallel_slots(config(**fields)) == slots


@pytest.mark.parametrize("value", ["many", "0", "-2", "257", ""])
def test_a_bad_slot_count_is_a_config_error(value: str) -> None:
    with pytest.raises(InvalidModelConfig, match="parallel") as raised:
        parallel_slots(config(parallel_requests=True, options=[f"parallel:{value}"]))
    assert raised.value.param == "options"


def test_the_server_setting_fills_models_that_do_not_choose() -> None:
    on = ModelDefaults(parallel_requests=True)
    assert config().with_defaults(on).parallel_requests is True
    assert config(parallel_requests=False).with_defaults(on).parallel_requests is False
    assert config(parallel_requests=True).with_defaults(ModelDefaults()).parallel_requests is True
    assert config().with_defaults(ModelDefaults()).parallel_requests is False


def test_memory_covers_a_full_kv_cache_for_every_slot(tmp_path: Path) -> None:
    info = read_gguf_info(write_chat_gguf(tmp_path / "chat.gguf"))
    serial = plan_load(config(context_size=300), tmp_path, info)
    parallel = plan_load(config(context_size=300, parallel_requests=True, options=["parallel:3"]), tmp_path, info)
    assert (serial.n_seq, parallel.n_seq) == (1, 3)
    assert parallel.cache_positions == serial.cache_positions == 2 * CONTEXT_PADDING  # 300, padded
    extra = estimate_memory(info, parallel).ram - estimate_memory(info, serial).ram
    assert extra == kv_cache_bytes(info, 2 * parallel.cache_positions)  # two more slots' worth


def test_a_parallel_llama_gets_the_smallest_context_of_its_own(tmp_path: Path) -> None:
    """Its ``Llama`` only provides weights and vocabulary: the batch engine builds the real context."""
    info = read_gguf_info(write_chat_gguf(tmp_path / "chat.gguf"))
    kwargs = plan_load(config(context_size=400, parallel_requests=True), tmp_path, info).llama_kwargs()
    assert kwargs["n_ctx"] == CONTEXT_PADDING and kwargs["n_batch"] < 64
    assert plan_load(config(context_size=400), tmp_path, info).llama_kwargs()["n_ctx"] == 400
