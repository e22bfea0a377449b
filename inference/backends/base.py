"""The backend interface every model runtime implements.

A backend wraps one loaded model. It declares what it can do as a set of ``Capability`` values,
the importable modules it needs, and the pip extra that provides them; capability methods it does
not implement raise ``CapabilityNotSupported``. ``load`` is blocking and runs in a worker thread.
Before loading, a backend estimates what it will take (``MemoryEstimate``), which the scheduler
places against its memory budgets.
"""

from __future__ import annotations

import logging
import os
from abc import ABC, abstractmethod
import threading
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from inference.capabilities import Capability
from inference.catalog.builtin_models import builtin_reference, resolve_builtin
from inference.errors import CapabilityNotSupported
from inference.generation import ChatPrompt, GenerationEvent, SamplingParams
from inference.media import (
    AudioChunk,
    GeneratedImages,
    ImageRequest,
    SoundRequest,
    SpeechRequest,
    Transcript,
    TranscriptionRequest,
)

if TYPE_CHECKING:
    from inference.catalog.config import ModelConfig

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class MemoryEstimate:
    """Bytes a model needs in system RAM and in GPU memory (VRAM) once loaded."""

    ram: int
    vram: int = 0

    @property
    def total(self) -> int:
        return self.ram + self.vram


class Backend(ABC):
    """One model in one runtime. Subclasses set the class variables and override what they support."""

    name: ClassVar[str]
    capabilities: ClassVar[frozenset[Capability]] = frozenset()
    requires: ClassVar[tuple[str, ...]] = ()
    extra: ClassVar[str] = ""
    # How many leases may use one loaded instance at once; the scheduler queues the rest. A class
    # default that an instance may change before it loads (llama.cpp's parallel slots).
    max_concurrency: int = 1
    # True when every streaming producer run for this instance (its `generate` iterators) does no
    # model compute itself but waits on the backend's own engine thread: a lease then iterates each
    # on a stream thread of its own (at most `max_concurrency`) rather than one after another on
    # the model's worker thread.
    concurrent_streams: bool = False

    def __init__(self, config: ModelConfig, models_path: Path) -> None:
        self.config = config
        self.models_path = models_path

    @abstractmethod
    def load(self) -> None:
        """Load the model; blocking, called in a worker thread."""

    @abstractmethod
    def unload(self) -> None:
        """Release the model's memory; the object is not used afterwards."""

    def supports(self, capability: Capability | str) -> bool:
        return capability in self.capabilities

    def model_path(self) -> Path | None:
        """The model file or folder named by ``parameters.model``: under the models path, or inside
        the package that carries it for a ``builtin://<name>`` value."""
        model = self.config.parameters.model
        if not model:
            return None
        if builtin_reference(model) is not None:
            return resolve_builtin(model)
        return self.models_path / model

    def memory_estimate(self) -> MemoryEstimate:
        """Memory the model is expected to need, known before loading: its files' size on disk."""
        paths = [self.model_path()]
        if self.config.mmproj:
            paths.append(self.models_path / self.config.mmproj)
        return MemoryEstimate(ram=sum(_size_on_disk(path) for path in paths if path is not None))

    # Text generation (CHAT, COMPLETE). Blocking; the scheduler runs them on the model's own thread.

    def context_size(self) -> int:
        """Tokens the loaded model's context window holds."""
        raise self._unsupported(Capability.COMPLETE)

    def apply_chat_template(
        self, messages: Sequence[Mapping[str, Any]], *, tools: Sequence[Mapping[str, Any]] | None = None
    ) -> ChatPrompt:
        """The conversation rendered by the model's own chat template, ready for the reply."""
        raise self._unsupported(Capability.CHAT)

    def generate(
        self, prompt: str, params: SamplingParams, cancel: threading.Event | None = None
    ) -> Iterator[GenerationEvent]:
        """Yield `TextDelta`s as tokens decode, then one `Finished`. Stops early once `cancel` is set.

        Raises `ContextLengthExceeded` before generating when the prompt plus `params.max_tokens`
        does not fit `context_size()`; stop strings never appear in the yielded text.
        """
        raise self._unsupported(Capability.COMPLETE)

    # Embeddings and rerank (EMBED, RERANK). Blocking; the batcher calls them with whole batches.

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        """One vector per text, in order; texts longer than `max_input_tokens()` are truncated."""
        raise self._unsupported(Capability.EMBED)

    def embedding_dimensions(self) -> int:
        """The length of the vectors `embed` returns (known once loaded)."""
        raise self._unsupported(Capability.EMBED)

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        """How many tokens each text is, with the model's own tokenizer, before any truncation."""
        raise self._unsupported(Capability.EMBED)

    def max_input_tokens(self) -> int | None:
        """The longest input, in tokens, the model reads; longer ones are truncated (None: no limit)."""
        return None

    def rerank(self, query: str, documents: Sequence[str]) -> list[float]:
        """A relevance score per document for `query`, in order (higher is more relevant)."""
        raise self._unsupported(Capability.RERANK)

    def tokenize(self, text: str) -> list[int]:
        raise self._unsupported(Capability.TOKENIZE)

    def detokenize(self, tokens: Sequence[int]) -> str:
        raise self._unsupported(Capability.TOKENIZE)

    # Media (IMAGE, TRANSCRIBE, SPEAK, SOUND). Blocking; run on the model's own thread.

    def generate_images(self, request: ImageRequest, cancel: threading.Event | None = None) -> GeneratedImages:
        """``request.n`` PNG images; stops between denoising steps once ``cancel`` is set."""
        raise self._unsupported(Capability.IMAGE)

    def transcribe(self, request: TranscriptionRequest) -> Transcript:
        """The text of the audio file, with segments (and words when asked)."""
        raise self._unsupported(Capability.TRANSCRIBE)

    def speak(self, request: SpeechRequest, cancel: threading.Event | None = None) -> Iterator[AudioChunk]:
        """The speech for ``request.text``, one chunk per sentence as it is synthesized."""
        raise self._unsupported(Capability.SPEAK)

    def generate_sound(self, request: SoundRequest, cancel: threading.Event | None = None) -> AudioChunk:
        """A sound clip described by ``request.text``."""
        raise self._unsupported(Capability.SOUND)

    def _unsupported(self, capability: Capability) -> CapabilityNotSupported:
        return CapabilityNotSupported(
            f"model {self.config.name!r} (backend {self.name!r}) does not support {capability.value}",
            param="model",
        )


def _size_on_disk(path: Path) -> int:
    """Size of a file, or the total size of the files under a folder; 0 when it does not exist."""
    try:
        if path.is_file():
            return path.stat().st_size
        if not path.is_dir():
            return 0
        total = 0
        for root, _dirs, files in os.walk(path):
            for name in files:
                try:
                    total += (Path(root) / name).stat().st_size
                except OSError:
                    continue
        return total
    except OSError as exc:
        logger.debug("event=size_on_disk_failed path=%s error=%s", path, exc)
        return 0
