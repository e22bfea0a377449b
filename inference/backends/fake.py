"""FakeBackend: deterministic output with no dependencies, for API, loader and scheduler tests.

Tokens are UTF-8 bytes. Completions are words picked by hashing the prompt and seed; embeddings are
unit vectors hashed from the text; rerank scores are query-word overlap. Behaviour is tuned with
``options`` in the model config: ``dimensions:N`` (default 16), ``memory_mb:N`` (the memory
estimate), ``load_delay_ms:N`` (a slow load) and ``fail_load:true`` (a load that raises).
"""

from __future__ import annotations

import hashlib
import math
import re
import struct
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

from inference.backends.base import Backend, Capability, Completion
from inference.errors import InvalidModelConfig

if TYPE_CHECKING:
    from inference.config import ModelConfig

_VOCABULARY = (
    "alpha bravo charlie delta echo foxtrot golf hotel india juliet kilo lima mike november "
    "oscar papa quebec romeo sierra tango uniform victor whiskey xray yankee zulu"
).split()
_WORD = re.compile(r"\w+")


class FakeBackend(Backend):
    """A model that answers instantly and identically for identical input."""

    name: ClassVar[str] = "fake"
    capabilities: ClassVar[frozenset[Capability]] = frozenset(
        {Capability.CHAT, Capability.COMPLETE, Capability.EMBED, Capability.RERANK, Capability.TOKENIZE}
    )

    def __init__(self, config: ModelConfig, models_path: Path) -> None:
        super().__init__(config, models_path)
        options = _parse_options(config)
        self.dimensions = _int_option(options, "dimensions", 16, config.name)
        self.memory_mb = _int_option(options, "memory_mb", -1, config.name)
        self.load_delay_ms = _int_option(options, "load_delay_ms", 0, config.name)
        self.fail_load = options.get("fail_load", "false").lower() in ("1", "true", "yes", "on")
        if self.dimensions < 1:
            raise InvalidModelConfig(f"model {config.name!r}: option dimensions must be at least 1")
        self.loaded = False

    def load(self) -> None:
        if self.load_delay_ms:
            time.sleep(self.load_delay_ms / 1000)
        if self.fail_load:
            raise RuntimeError(f"fake model {self.config.name!r} is configured to fail loading")
        self.loaded = True

    def unload(self) -> None:
        self.loaded = False

    def memory_estimate(self) -> int:
        if self.memory_mb >= 0:
            return self.memory_mb * 1024 * 1024
        return super().memory_estimate()

    def tokenize(self, text: str) -> list[int]:
        return list(text.encode("utf-8"))

    def detokenize(self, tokens: Sequence[int]) -> str:
        return bytes(tokens).decode("utf-8", errors="replace")

    def complete(
        self, prompt: str, *, max_tokens: int = 16, stop: Sequence[str] = (), seed: int | None = None
    ) -> Completion:
        self._require_loaded()
        natural = self._generate(prompt, seed)
        text, finish_reason = natural, "stop"
        encoded = text.encode("utf-8")
        if len(encoded) > max_tokens:
            text, finish_reason = encoded[: max(max_tokens, 0)].decode("utf-8", "ignore"), "length"
        cut = min((text.find(s) for s in stop if s and s in text), default=-1)
        if cut >= 0:
            text, finish_reason = text[:cut], "stop"
        return Completion(
            text=text,
            prompt_tokens=len(self.tokenize(prompt)),
            completion_tokens=len(self.tokenize(text)),
            finish_reason=finish_reason,
        )

    def chat(
        self,
        messages: Sequence[Mapping[str, str]],
        *,
        max_tokens: int = 16,
        stop: Sequence[str] = (),
        seed: int | None = None,
    ) -> Completion:
        prompt = "\n".join(f"{m.get('role', 'user')}: {m.get('content', '')}" for m in messages)
        return self.complete(prompt, max_tokens=max_tokens, stop=stop, seed=seed)

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        self._require_loaded()
        return [self._vector(text) for text in texts]

    def rerank(self, query: str, documents: Sequence[str]) -> list[float]:
        self._require_loaded()
        wanted = set(_WORD.findall(query.lower()))
        if not wanted:
            return [0.0 for _ in documents]
        return [len(wanted & set(_WORD.findall(doc.lower()))) / len(wanted) for doc in documents]

    def _generate(self, prompt: str, seed: int | None) -> str:
        """4 to 40 words, each chosen by hashing the seed, the prompt and the word's position."""
        base = f"{seed}\x00{prompt}".encode()
        count = 4 + hashlib.sha256(base).digest()[0] % 37
        return " ".join(
            _VOCABULARY[hashlib.sha256(base + i.to_bytes(4, "little")).digest()[0] % len(_VOCABULARY)]
            for i in range(count)
        )

    def _vector(self, text: str) -> list[float]:
        values: list[float] = []
        counter = 0
        while len(values) < self.dimensions:
            block = hashlib.sha256(f"{counter}\x00{text}".encode()).digest()
            values += [(x / 0xFFFFFFFF) * 2 - 1 for x in struct.unpack("<8I", block)]
            counter += 1
        values = values[: self.dimensions]
        norm = math.sqrt(sum(v * v for v in values)) or 1.0
        return [v / norm for v in values]

    def _require_loaded(self) -> None:
        if not self.loaded:
            raise RuntimeError(f"fake model {self.config.name!r} is not loaded")


def _parse_options(config: ModelConfig) -> dict[str, str]:
    options = {}
    for option in config.options:
        key, _, value = option.partition(":")
        options[key.strip().lower()] = value.strip()
    return options


def _int_option(options: Mapping[str, str], key: str, default: int, model: str) -> int:
    if key not in options:
        return default
    try:
        return int(options[key])
    except ValueError:
        raise InvalidModelConfig(
            f"model {model!r}: option {key}:{options[key]!r} must be an integer", param="options"
        ) from None
