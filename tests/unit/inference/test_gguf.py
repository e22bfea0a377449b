"""The GGUF header reader: fields of the tiny models, tensor layout, and clear errors on bad files."""

from __future__ import annotations

import json
import struct
import subprocess
import sys
from pathlib import Path

import gguf
import numpy as np
import pytest

from fixtures.gguf_models import (
    CHATML_TEMPLATE,
    LLAMA3_TEMPLATE,
    write_chat_gguf,
    write_embedding_gguf,
    write_llama3_style_gguf,
)
from inference.catalog.gguf import GGML_BLOCK_SIZES, GGUFArray, read_gguf_info
from inference.errors import InvalidModelConfig


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("gguf")
    return {
        "chat": write_chat_gguf(root / "chat.gguf"),
        "q8": write_chat_gguf(root / "q8.gguf", ftype="q8_0"),
        "f32": write_chat_gguf(root / "f32.gguf", ftype="f32"),
        "llama3": write_llama3_style_gguf(root / "llama3.gguf"),
        "embedding": write_embedding_gguf(root / "embedding.gguf"),
    }


def test_reads_the_header_of_a_tiny_chat_model(models: dict[str, Path]) -> None:
    info = read_gguf_info(models["chat"])
    assert info.version == 3
    assert info.architecture == "llama"
    assert info.name == "chat"
    assert (info.context_length, info.embedding_length, info.block_count) == (512, 64, 2)
    assert (info.feed_forward_length, info.head_count, info.head_count_kv) == (128, 4, 2)
    assert (info.key_length, info.value_length) == (16, 16)  # embedding_length / head_count
    assert info.file_type == gguf.LlamaFileType.MOSTLY_F16
    assert info.chat_template == CHATML_TEMPLATE
    assert info.pooling_type is None
    assert (info.bos_token_id, info.eos_token_id) == (1, 4)
    assert info.tensor_count == 3 + 9 * 2
    assert info.file_size == models["chat"].stat().st_size


def test_reads_pooling_and_another_vocabulary(models: dict[str, Path]) -> None:
    assert read_gguf_info(models["embedding"]).pooling_type == gguf.PoolingType.MEAN
    llama3 = read_gguf_info(models["llama3"])
    assert llama3.chat_template == LLAMA3_TEMPLATE
    assert llama3.metadata["tokenizer.ggml.model"] == "gpt2"
    assert llama3.metadata["tokenizer.ggml.add_bos_token"] is True
    assert llama3.bos_token_id is not None and llama3.eos_token_id is not None
    assert llama3.bos_token_id != llama3.eos_token_id


def test_vocabulary_arrays_keep_only_their_length(models: dict[str, Path]) -> None:
    info = read_gguf_info(models["chat"])
    tokens = info.metadata["tokenizer.ggml.tokens"]
    assert isinstance(tokens, GGUFArray) and tokens.length == info.vocab_size
    reader = gguf.GGUFReader(models["chat"])
    assert info.vocab_size == len(reader.fields["tokenizer.ggml.tokens"].data)


@pytest.mark.parametrize("model", ["chat", "q8", "f32", "llama3"])
def test_tensor_layout_matches_gguf_py(models: dict[str, Path], model: str) -> None:
    info = read_gguf_info(models[model])
    reader = gguf.GGUFReader(models[model])
    assert info.data_offset == reader.data_offset
    assert info.tensor_data_size == max(t.data_offset - reader.data_offset + t.n_bytes for t in reader.tensors)
    assert info.tensor_count == len(reader.tensors)


def test_block_sizes_agree_with_gguf_py() -> None:
    for type_id, sizes in GGML_BLOCK_SIZES.items():
        assert gguf.GGML_QUANT_SIZES[gguf.GGMLQuantizationType(type_id)] == sizes


def write_bare_gguf(path: Path, arch: str, endian: gguf.GGUFEndian = gguf.GGUFEndian.LITTLE) -> Path:
    writer = gguf.GGUFWriter(str(path), arch, endianess=endian)
    writer.add_block_count(2)
    writer.add_array("bare.per_layer", [4, 8])
    writer.add_tensor("x", np.zeros(8, dtype=np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


def test_fields_the_file_omits_are_none(tmp_path: Path) -> None:
    info = read_gguf_info(write_bare_gguf(tmp_path / "bare.gguf", "bare"))
    assert info.architecture == "bare" and info.block_count == 2
    assert info.arch_value("per_layer") == (4, 8)  # short numeric arrays are kept
    assert info.context_length is None and info.head_count_kv is None and info.key_length is None
    assert info.chat_template is None and info.vocab_size is None
    assert info.tensor_data_size == 32


def test_reads_big_endian_files(tmp_path: Path) -> None:
    info = read_gguf_info(write_bare_gguf(tmp_path / "big.gguf", "bare", gguf.GGUFEndian.BIG))
    assert (info.architecture, info.block_count, info.arch_value("per_layer")) == ("bare", 2, (4, 8))
    assert info.tensor_data_size == 32


@pytest.mark.parametrize("cut", ["header", "metadata", "tensor_info", "tensor_data", "last_byte"])
def test_a_truncated_file_is_a_clear_error(models: dict[str, Path], tmp_path: Path, cut: str) -> None:
    source = models["chat"]
    info = read_gguf_info(source)
    size = {
        "header": 20,
        "metadata": 400,
        "tensor_info": info.data_offset - 40,
        "tensor_data": info.data_offset + 1000,
        "last_byte": info.file_size - 1,
    }[cut]
    broken = tmp_path / "broken.gguf"
    broken.write_bytes(source.read_bytes()[:size])
    with pytest.raises(InvalidModelConfig, match=r"broken\.gguf.*(truncated|too short)") as raised:
        read_gguf_info(broken)
    assert raised.value.param == "parameters.model"


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b"", "too short"),
        (bytes(range(256)) * 8, "magic"),
        (b"GGUF" + struct.pack("<I", 99) + bytes(64), "version 99"),
        (b"GGUF" + struct.pack("<IQQQ", 3, 0, 1, 2**40) + bytes(64), "truncated or corrupt"),
        (b"GGUF" + struct.pack("<IQQQ", 3, 0, 1, 1) + b"k" + struct.pack("<I", 77) + bytes(8), "type 77"),
    ],
    ids=["empty", "random", "version", "huge_key", "bad_type"],
)
def test_a_file_that_is_not_gguf_is_a_clear_error(tmp_path: Path, content: bytes, reason: str) -> None:
    path = tmp_path / "model.gguf"
    path.write_bytes(content)
    with pytest.raises(InvalidModelConfig, match=reason) as raised:
        read_gguf_info(path)
    assert "model.gguf is not a valid GGUF model file" in raised.value.message


def test_missing_file_and_folder_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(InvalidModelConfig, match="does not exist"):
        read_gguf_info(tmp_path / "absent.gguf")
    with pytest.raises(InvalidModelConfig, match="directory"):
        read_gguf_info(tmp_path)


def test_reading_a_header_imports_neither_numpy_nor_gguf(models: dict[str, Path]) -> None:
    probe = (
        "import json, sys\n"
        "from inference.catalog.gguf import read_gguf_info\n"
        f"info = read_gguf_info({str(models['chat'])!r})\n"
        "print(json.dumps([info.block_count, sorted(m for m in ('numpy', 'gguf', 'llama_cpp') if m in sys.modules)]))\n"
    )
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == [2, []]


def test_fixture_models_are_deterministic(tmp_path: Path) -> None:
    first = write_chat_gguf(tmp_path / "a" / "m.gguf", seed=7).read_bytes()
    assert write_chat_gguf(tmp_path / "b" / "m.gguf", seed=7).read_bytes() == first
    assert write_chat_gguf(tmp_path / "c" / "m.gguf", seed=8).read_bytes() != first
