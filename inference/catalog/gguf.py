"""Pure-Python GGUF header reader: metadata and tensor layout through a memory map, never tensor data.

Cheap enough to call before every load (the scheduler's memory estimate): big arrays such as the
vocabulary are skipped, keeping their length. A non-GGUF or truncated file is ``InvalidModelConfig``.
"""

from __future__ import annotations

import logging
import mmap
import struct
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from inference.errors import InvalidModelConfig

logger = logging.getLogger(__name__)

GGUF_MAGIC = b"GGUF"
DEFAULT_ALIGNMENT = 32
# Arrays up to this many numbers are kept (per-layer head counts); longer ones keep only their length.
MAX_KEPT_ARRAY = 4096
_MAX_STRING = 64 * 1024 * 1024

# GGUF metadata value types: type id -> struct code (None: string/array, handled apart).
_SCALAR_CODES: Mapping[int, str] = {
    0: "B", 1: "b", 2: "H", 3: "h", 4: "I", 5: "i", 6: "f", 7: "?", 10: "Q", 11: "q", 12: "d",
}
_STRING, _ARRAY = 8, 9

# ggml tensor types: type id -> (elements per block, bytes per block). Same table as gguf-py's
# GGML_QUANT_SIZES; a type missing here makes the data size fall back to the file size.
GGML_BLOCK_SIZES: Mapping[int, tuple[int, int]] = {
    0: (1, 4), 1: (1, 2), 2: (32, 18), 3: (32, 20), 6: (32, 22), 7: (32, 24), 8: (32, 34),
    9: (32, 40), 10: (256, 84), 11: (256, 110), 12: (256, 144), 13: (256, 176), 14: (256, 210),
    15: (256, 292), 16: (256, 66), 17: (256, 74), 18: (256, 98), 19: (256, 50), 20: (32, 18),
    21: (256, 110), 22: (256, 82), 23: (256, 136), 24: (1, 1), 25: (1, 2), 26: (1, 4), 27: (1, 8),
    28: (1, 8), 29: (256, 56), 30: (1, 2), 34: (256, 54), 35: (256, 66), 39: (32, 17),
    40: (64, 36), 41: (128, 18),
}


@dataclass(frozen=True)
class GGUFArray:
    """A metadata array too long (or of strings) to keep: its element type and length only."""

    type: int
    length: int


@dataclass(frozen=True)
class GGUFInfo:
    """What a GGUF header says. Architecture-specific keys are read through ``arch_value``."""

    path: Path
    version: int
    tensor_count: int
    data_offset: int
    tensor_data_size: int
    file_size: int
    metadata: Mapping[str, Any] = field(repr=False)

    @property
    def architecture(self) -> str:
        return str(self.metadata.get("general.architecture", ""))

    @property
    def name(self) -> str | None:
        return _as_str(self.metadata.get("general.name"))

    def arch_value(self, key: str) -> Any:
        """``<architecture>.<key>``, e.g. ``arch_value("context_length")``; None when absent."""
        return self.metadata.get(f"{self.architecture}.{key}")

    @property
    def context_length(self) -> int | None:
        return _as_int(self.arch_value("context_length"))

    @property
    def embedding_length(self) -> int | None:
        return _as_int(self.arch_value("embedding_length"))

    @property
    def block_count(self) -> int | None:
        return _as_int(self.arch_value("block_count"))

    @property
    def feed_forward_length(self) -> int | None:
        return _as_int(self.arch_value("feed_forward_length"))

    @property
    def head_count(self) -> int | None:
        return _as_int(self.arch_value("attention.head_count"))

    @property
    def head_count_kv(self) -> int | None:
        """KV heads (fewer than ``head_count`` with GQA); ``head_count`` when the file omits it."""
        value = _as_int(self.arch_value("attention.head_count_kv"))
        return value if value is not None else self.head_count

    @property
    def key_length(self) -> int | None:
        """Per-head K size; llama.cpp's default ``embedding_length / head_count`` when absent."""
        value = _as_int(self.arch_value("attention.key_length"))
        return value if value is not None else self._default_head_dim()

    @property
    def value_length(self) -> int | None:
        value = _as_int(self.arch_value("attention.value_length"))
        return value if value is not None else self._default_head_dim()

    @property
    def file_type(self) -> int | None:
        return _as_int(self.metadata.get("general.file_type"))

    @property
    def chat_template(self) -> str | None:
        return _as_str(self.metadata.get("tokenizer.chat_template"))

    @property
    def pooling_type(self) -> int | None:
        return _as_int(self.arch_value("pooling_type"))

    @property
    def bos_token_id(self) -> int | None:
        return _as_int(self.metadata.get("tokenizer.ggml.bos_token_id"))

    @property
    def eos_token_id(self) -> int | None:
        return _as_int(self.metadata.get("tokenizer.ggml.eos_token_id"))

    @property
    def vocab_size(self) -> int | None:
        tokens = self.metadata.get("tokenizer.ggml.tokens")
        if isinstance(tokens, GGUFArray):
            return tokens.length
        return _as_int(self.arch_value("vocab_size"))

    def _default_head_dim(self) -> int | None:
        embd, heads = self.embedding_length, self.head_count
        return embd // heads if embd and heads else None


def read_gguf_info(path: Path | str) -> GGUFInfo:
    """Read a GGUF file's header. Raises ``InvalidModelConfig`` naming the file on any problem."""
    path = Path(path)
    try:
        with path.open("rb") as handle:
            size = path.stat().st_size
            if size < 24:
                raise _bad(path, f"{size} bytes is too short for a GGUF header")
            with mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as view:
                return _HeaderParser(view, path, size).parse()
    except FileNotFoundError:
        raise InvalidModelConfig(f"model file {path} does not exist", param="parameters.model") from None
    except IsADirectoryError:
        raise _bad(path, "it is a directory, not a GGUF file") from None
    except (OSError, ValueError) as exc:  # mmap refuses pipes and other special files with ValueError
        raise _bad(path, f"cannot read it: {exc}") from None


class _Truncated(Exception):
    """The header runs past the end of the file."""


class _HeaderParser:
    """Walks the header with struct over a memory map; every read is bounds-checked."""

    def __init__(self, view: mmap.mmap, path: Path, size: int) -> None:
        self.view = view
        self.path = path
        self.size = size
        self.pos = 0
        self.endian = "<"

    def parse(self) -> GGUFInfo:
        if self.view[:4] != GGUF_MAGIC:
            raise _bad(self.path, f"it does not start with the GGUF magic (found {bytes(self.view[:4])!r})")
        self.pos = 4
        try:
            version = self._version()
            tensor_count = self._scalar("Q")
            kv_count = self._scalar("Q")
            if tensor_count > self.size or kv_count > self.size:
                raise _Truncated
            metadata: dict[str, Any] = {}
            for _ in range(kv_count):
                key = self._string()
                metadata[key] = self._value(self._scalar("I"))
            tensor_data_size, data_offset = self._tensor_layout(tensor_count, metadata)
        except _Truncated:
            raise _bad(self.path, f"the header is truncated or corrupt (at byte {self.pos} of {self.size})") from None
        except (struct.error, UnicodeDecodeError) as exc:
            raise _bad(self.path, f"the header is corrupt (at byte {self.pos}): {exc}") from None
        if data_offset + tensor_data_size > self.size:
            raise _bad(
                self.path,
                f"it is truncated: tensor data needs {data_offset + tensor_data_size} bytes, the file has {self.size}",
            )
        return GGUFInfo(
            path=self.path,
            version=version,
            tensor_count=tensor_count,
            data_offset=data_offset,
            tensor_data_size=tensor_data_size,
            file_size=self.size,
            metadata=metadata,
        )

    def _version(self) -> int:
        (version,) = struct.unpack_from("<I", self.view, 4)
        if version > 0xFFFF:
            # A big-endian file: the version reads byte-swapped in little endian.
            self.endian = ">"
            (version,) = struct.unpack_from(">I", self.view, 4)
        if version not in (2, 3):  # llama.cpp itself no longer reads version 1
            raise _bad(self.path, f"GGUF version {version} is not supported (2 and 3 are)")
        self.pos = 8
        return version

    def _scalar(self, code: str) -> Any:
        width = struct.calcsize(code)
        if self.pos + width > self.size:
            raise _Truncated
        (value,) = struct.unpack_from(self.endian + code, self.view, self.pos)
        self.pos += width
        return value

    def _string(self) -> str:
        raw = self._string_bytes()
        return raw.decode("utf-8", errors="replace")

    def _string_bytes(self) -> bytes:
        length = self._scalar("Q")
        if length > _MAX_STRING or self.pos + length > self.size:
            raise _Truncated
        raw = self.view[self.pos : self.pos + length]
        self.pos += length
        return raw

    def _value(self, kind: int) -> Any:
        if kind in _SCALAR_CODES:
            return self._scalar(_SCALAR_CODES[kind])
        if kind == _STRING:
            return self._string()
        if kind == _ARRAY:
            return self._array()
        raise _bad(self.path, f"unknown metadata value type {kind} at byte {self.pos}")

    def _array(self) -> Any:
        kind = self._scalar("I")
        length = self._scalar("Q")
        if kind in _SCALAR_CODES:
            code = _SCALAR_CODES[kind]
            width = struct.calcsize(code)
            end = self.pos + length * width
            if end > self.size:
                raise _Truncated
            if length > MAX_KEPT_ARRAY:
                self.pos = end
                return GGUFArray(kind, length)
            values = struct.unpack_from(f"{self.endian}{length}{code}", self.view, self.pos)
            self.pos = end
            return values
        if kind == _STRING:
            if self.pos + 8 * length > self.size:
                raise _Truncated
            unpack = struct.Struct(self.endian + "Q").unpack_from
            view, pos, size = self.view, self.pos, self.size
            for _ in range(length):
                (item,) = unpack(view, pos)
                pos += 8 + item
                if pos > size:
                    self.pos = size
                    raise _Truncated
            self.pos = pos
            return GGUFArray(kind, length)
        if kind == _ARRAY:
            # Nested arrays do not occur in practice; walk them without keeping anything.
            if self.pos + 12 * length > self.size:
                raise _Truncated
            for _ in range(length):
                self._array()
            return GGUFArray(kind, length)
        raise _bad(self.path, f"unknown array element type {kind} at byte {self.pos}")

    def _tensor_layout(self, count: int, metadata: Mapping[str, Any]) -> tuple[int, int]:
        """(bytes of tensor data, offset where it starts), from the tensor info records."""
        end = 0
        unknown_type = False
        for _ in range(count):
            self._string_bytes()
            n_dims = self._scalar("I")
            if n_dims > 8:
                raise _Truncated
            elements = 1
            for _ in range(n_dims):
                elements *= self._scalar("Q")
            ggml_type = self._scalar("I")
            offset = self._scalar("Q")
            block = GGML_BLOCK_SIZES.get(ggml_type)
            if block is None:
                unknown_type = True
                continue
            end = max(end, offset + elements // block[0] * block[1])
        alignment = _as_int(metadata.get("general.alignment")) or DEFAULT_ALIGNMENT
        data_offset = -(-self.pos // alignment) * alignment
        if unknown_type:
            logger.debug("event=gguf_unknown_tensor_type path=%s", self.path)
            return max(0, self.size - data_offset), data_offset
        return end, data_offset


def _bad(path: Path, why: str) -> InvalidModelConfig:
    return InvalidModelConfig(f"{path} is not a valid GGUF model file: {why}", param="parameters.model")


def _as_int(value: Any) -> int | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return int(value)
    if isinstance(value, tuple) and value and all(isinstance(v, int) for v in value):
        # Per-layer values (e.g. head counts that vary by layer): the largest bounds memory.
        return max(value)
    return None


def _as_str(value: Any) -> str | None:
    return value if isinstance(value, str) else None
