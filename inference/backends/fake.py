"""FakeBackend: deterministic output with no dependencies, for API, loader and scheduler tests.

Tokens are UTF-8 bytes. Completions are words picked by hashing the prompt and seed; embeddings are
unit vectors hashed from the text; rerank scores are query-word overlap. Behaviour is tuned with
``options`` in the model config: ``dimensions:N`` (default 16), ``memory_mb:N`` and ``vram_mb:N``
(the memory estimate), ``load_delay_ms:N`` (a slow load), ``token_delay_ms:N`` (slow generation),
``max_input_tokens:N`` (embedding inputs truncated to N bytes)
and ``fail_load:true`` (a load that raises). The context window is ``context_size`` (default 2048).
"""

from __future__ import annotations

import hashlib
import math
import re
import struct
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from inference.backends.base import Backend, MemoryEstimate
from inference.capabilities import Capability
from inference.errors import ContextLengthExceeded, InvalidModelConfig, InvalidRequest
from inference.generation import ChatPrompt, Finished, GenerationEvent, SamplingParams, TextDelta

if TYPE_CHECKING:
    from inference.catalog.config import ModelConfig

_VOCABULARY = (
    "alpha bravo charlie delta echo foxtrot golf hotel india juliet kilo lima mike november "
    "oscar papa quebec romeo sierra tango uniform victor whiskey xray yankee zulu"
).split()
_WORD = re.compile(r"\w+")
DEFAULT_CONTEXT = 2048


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
        self.token_delay_ms = _int_option(options, "token_delay_ms", 0, config.name)
        self.vram_mb = _int_option(options, "vram_mb", 0, config.name)
        self.max_input = _int_option(options, "max_input_tokens", 0, config.name)
        self.embed_calls: list[int] = []  # batch sizes seen, so batching tests can count backend calls
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

    def memory_estimate(self) -> MemoryEstimate:
        vram = self.vram_mb * 1024 * 1024
        if self.memory_mb >= 0:
            return MemoryEstimate(ram=self.memory_mb * 1024 * 1024, vram=vram)
        return MemoryEstimate(ram=super().memory_estimate().ram, vram=vram)

    def tokenize(self, text: str) -> list[int]:
        return list(text.encode("utf-8"))

    def detokenize(self, tokens: Sequence[int]) -> str:
        bad = next((token for token in tokens if not 0 <= token < 256), None)
        if bad is not None:  # as the llama.cpp backend answers an id outside its vocabulary
            raise InvalidRequest(f"token {bad} is outside this model's vocabulary (0..255)", param="tokens")
        return bytes(tokens).decode("utf-8", errors="replace")

    def context_size(self) -> int:
        return self.config.context_size or DEFAULT_CONTEXT

    def apply_chat_template(
        self, messages: Sequence[Mapping[str, Any]], *, tools: Sequence[Mapping[str, Any]] | None = None
    ) -> ChatPrompt:
        lines = [f"{m.get('role', 'user')}: {_text_of(m.get('content'))}" for m in messages]
        if tools:
            lines.insert(0, "tools: " + ", ".join(str(t.get("function", {}).get("name")) for t in tools))
        return ChatPrompt(text="\n".join(lines) + "\nassistant:", stop=("\nuser:",))

    def generate(
        self, prompt: str, params: SamplingParams, cancel: threading.Event | None = None
    ) -> Iterator[GenerationEvent]:
        """Words hashed from the prompt and seed, one `TextDelta` per word; a token is a UTF-8 byte."""
        self._require_loaded()
        prompt_tokens = len(prompt.encode("utf-8"))
        room = self.context_size() - prompt_tokens
        if room <= 0 or (params.max_tokens is not None and params.max_tokens > room):
            raise ContextLengthExceeded(
                prompt_tokens=prompt_tokens, max_tokens=params.max_tokens, context_size=self.context_size()
            )
        limit = room if params.max_tokens is None else params.max_tokens
        text, finish_reason = self._generate(prompt, params.seed), "stop"
        encoded = text.encode("utf-8")
        if len(encoded) > limit:
            text, finish_reason = encoded[:limit].decode("utf-8", "ignore"), "length"
        cut, matched = min(((text.find(s), s) for s in params.stop if s and s in text), default=(-1, None))
        if cut >= 0:
            text, finish_reason = text[:cut], "stop"
        produced = 0
        for piece in re.findall(r"\S+\s*|\s+", text):
            if cancel is not None and cancel.is_set():
                break
            tokens = len(piece.encode("utf-8"))
            if self.token_delay_ms:
                time.sleep(self.token_delay_ms * tokens / 1000)
            produced += tokens
            yield TextDelta(piece, tokens)
        yield Finished(finish_reason, prompt_tokens, produced, matched)

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        self._require_loaded()
        self.embed_calls.append(len(texts))
        limit = self.max_input_tokens()
        if limit is not None:
            texts = [text.encode("utf-8")[:limit].decode("utf-8", "ignore") for text in texts]
        return [self._vector(text) for text in texts]

    def embedding_dimensions(self) -> int:
        return self.dimensions

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        return [len(text.encode("utf-8")) for text in texts]

    def max_input_tokens(self) -> int | None:
        return self.max_input or None

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


def _text_of(content: Any) -> str:
    """A message's text: a plain string, or the text parts of an OpenAI content-parts list."""
    if isinstance(content, list):
        return "".join(part.get("text", "") for part in content if isinstance(part, dict))
    return "" if content is None else str(content)
