"""SentenceTransformersBackend: embeddings from bi-encoders, rerank scores from cross-encoders.

A ``SentenceTransformer`` (EMBED, TOKENIZE), or a ``CrossEncoder`` (RERANK, TOKENIZE) when the config
sets ``reranking: true`` or the folder holds one; ``st_location`` finds the weights. torch and
sentence_transformers are imported by ``load``, never by importing this module.
"""

from __future__ import annotations

import gc
import logging
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from inference.backends.base import Backend, MemoryEstimate
from inference.backends.st_location import ModelLocation, is_cross_encoder_folder, locate_model, weights_size
from inference.capabilities import Capability
from inference.catalog.config import wants_gpu
from inference.errors import BackendUnavailable, InferenceError, InvalidModelConfig, InvalidRequest

if TYPE_CHECKING:
    from inference.catalog.config import ModelConfig

logger = logging.getLogger(__name__)

MIB = 1024 * 1024
WEIGHTS_FACTOR = 1.2  # weights in memory plus what torch and the module objects add around them
ALLOWANCE = 64 * MIB  # tokenizer, activations of a batch, the interpreter objects
HUB_GUESS = 512 * MIB  # a hub model's weights before it is downloaded (its size is not known offline)


class SentenceTransformersBackend(Backend):
    """A sentence-transformers model on CPU, or on CUDA when the config asks for a GPU and one exists.

    Device: ``cuda:{main_gpu or 0}`` when ``torch.cuda.is_available()`` and the config asks for a GPU
    the way the scheduler's placement reads it (``cuda: true`` or ``gpu_layers`` > 0), else CPU, so
    the memory estimate lands where the model does. ``f16`` halves the weights on a GPU only (CPU
    half precision is slow and lossy). ``threads`` calls ``torch.set_num_threads``, which is
    process-wide: the last model loaded with ``threads`` set decides for every torch model.
    """

    name: ClassVar[str] = "sentencetransformers"
    capabilities: ClassVar[frozenset[Capability]] = frozenset(
        {Capability.EMBED, Capability.RERANK, Capability.TOKENIZE}
    )
    requires: ClassVar[tuple[str, ...]] = ("sentence_transformers", "torch")
    extra: ClassVar[str] = "embed"
    # encode/predict on one model from one thread at a time; the batcher merges requests instead.
    max_concurrency: ClassVar[int] = 1

    def __init__(self, config: ModelConfig, models_path: Path) -> None:
        super().__init__(config, models_path)
        self._model: Any = None
        self._device = "cpu"
        self._location: ModelLocation | None = None
        self._cross_encoder: bool | None = None
        self._dimensions: int | None = None

    # What this instance is

    def location(self) -> ModelLocation:
        """Where the weights are; raises InvalidModelConfig/BackendUnavailable naming what is missing."""
        if self._location is None:
            self._location = locate_model(self.config, self.models_path)
        return self._location

    def model_path(self) -> Path | None:
        try:
            return self.location().folder
        except InferenceError:
            return None

    def is_cross_encoder(self) -> bool:
        """``reranking`` when the config sets it, else whether the folder holds a cross-encoder."""
        if self._cross_encoder is None:
            if self.config.reranking is not None:
                self._cross_encoder = bool(self.config.reranking)
            else:
                folder = self.model_path()
                self._cross_encoder = folder is not None and is_cross_encoder_folder(folder)
        return self._cross_encoder

    def supports(self, capability: Capability | str) -> bool:
        if capability == Capability.EMBED:
            return not self.is_cross_encoder()
        if capability == Capability.RERANK:
            return self.is_cross_encoder()
        return super().supports(capability)

    def memory_estimate(self) -> MemoryEstimate:
        """Weights on disk x 1.2 + 64 MiB, in VRAM when the config asks for a GPU (see the class)."""
        folder = self.location().folder
        weights = weights_size(folder) if folder is not None else HUB_GUESS
        need = int(weights * WEIGHTS_FACTOR) + ALLOWANCE
        if wants_gpu(self.config):
            return MemoryEstimate(ram=ALLOWANCE, vram=need)
        return MemoryEstimate(ram=need)

    # Lifecycle

    def load(self) -> None:
        if self._model is not None:
            return
        location = self.location()
        cross_encoder = self.is_cross_encoder()
        try:
            import torch
            import transformers
            from sentence_transformers import CrossEncoder, SentenceTransformer
        except ImportError as exc:
            missing = (exc.name or "sentence_transformers").partition(".")[0]
            raise BackendUnavailable(self.name, missing, self.extra) from exc
        transformers.logging.disable_progress_bar()  # no "Loading weights" bars in a server's log
        if self.config.threads:
            torch.set_num_threads(self.config.threads)
        self._device = self._choose_device(torch)
        started = time.monotonic()
        model_class = CrossEncoder if cross_encoder else SentenceTransformer
        model = model_class(
            location.source,
            device=self._device,
            trust_remote_code=bool(self.config.trust_remote_code),
            local_files_only=location.folder is not None,
        )
        if self.config.f16 and self._device.startswith("cuda"):
            model.half()
        model.eval()
        if cross_encoder and model.num_labels != 1:
            raise InvalidModelConfig(
                f"model {self.config.name!r}: the cross-encoder at {location.source} has "
                f"{model.num_labels} output labels; rerank needs a model with a single relevance score",
                param="parameters.model",
            )
        self._model = model
        logger.debug(
            "event=st_loaded model=%s kind=%s source=%s device=%s cross_encoder=%s seconds=%.3f",
            self.config.name,
            location.kind,
            location.source,
            self._device,
            cross_encoder,
            time.monotonic() - started,
        )

    def unload(self) -> None:
        model, self._model = self._model, None
        if model is None:
            return
        del model
        gc.collect()
        torch: Any = sys.modules.get("torch")
        if torch is not None and self._device.startswith("cuda") and torch.cuda.is_available():
            torch.cuda.empty_cache()
        logger.debug("event=st_unloaded model=%s device=%s", self.config.name, self._device)

    def _choose_device(self, torch: Any) -> str:
        if not wants_gpu(self.config) or not torch.cuda.is_available():
            return "cpu"
        main_gpu = (self.config.main_gpu or "").strip()
        index = int(main_gpu) if main_gpu.isdigit() else 0
        return f"cuda:{index if index < torch.cuda.device_count() else 0}"

    # Embeddings (bi-encoders)

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        """``SentenceTransformer.encode`` in one batch: the model's own pipeline, normalisation included
        when the model has a Normalize module (all-MiniLM-L6-v2 does); too-long texts are truncated."""
        model = self._loaded(Capability.EMBED)
        if not texts:
            return []
        vectors = model.encode(
            list(texts), batch_size=len(texts), convert_to_numpy=True, show_progress_bar=False
        )
        return vectors.tolist()

    def embedding_dimensions(self) -> int:
        if self._dimensions is None:
            model = self._loaded(Capability.EMBED)
            dimensions = model.get_embedding_dimension()
            self._dimensions = int(dimensions) if dimensions else len(self.embed(["dimensions"])[0])
        return self._dimensions

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        """Tokens per text with special tokens (and the model's default prompt, which ``encode`` adds),
        before truncation to `max_input_tokens`."""
        model = self._loaded(None)
        prompt = ""
        default_prompt = getattr(model, "default_prompt_name", None)
        if default_prompt:
            prompt = (getattr(model, "prompts", None) or {}).get(default_prompt) or ""
        return [len(ids) for ids in self._token_ids([prompt + text for text in texts], special=True)]

    def max_input_tokens(self) -> int | None:
        if self._model is None:
            return None
        length = self._model.max_seq_length
        return int(length) if length else None

    # Rerank (cross-encoders)

    def rerank(self, query: str, documents: Sequence[str]) -> list[float]:
        """``CrossEncoder.predict`` with the model's own activation: sigmoid of the logit for a
        single-label model unless its config names another (then e.g. raw logits). Higher = better."""
        model = self._loaded(Capability.RERANK)
        if not documents:
            return []
        scores = model.predict(
            [(query, document) for document in documents],
            batch_size=len(documents),
            show_progress_bar=False,
            convert_to_numpy=True,
        )
        return [float(score) for score in scores.reshape(-1)]

    # Tokens

    def tokenize(self, text: str) -> list[int]:
        """The text's token ids without special tokens ([CLS]/[SEP]), as `detokenize` takes them."""
        return self._token_ids([text], special=False)[0]

    def detokenize(self, tokens: Sequence[int]) -> str:
        tokenizer = self._loaded(None).tokenizer
        size = len(tokenizer)
        for token in tokens:
            if not isinstance(token, int) or not 0 <= token < size:
                raise InvalidRequest(
                    f"token {token!r} is not in the vocabulary of model {self.config.name!r} "
                    f"(ids 0 to {size - 1})",
                    param="tokens",
                )
        return str(tokenizer.decode(list(tokens), skip_special_tokens=False))

    def _token_ids(self, texts: list[str], *, special: bool) -> list[list[int]]:
        tokenizer = self._loaded(None).tokenizer
        if not texts:
            return []
        if hasattr(tokenizer, "encode_batch"):  # a bare `tokenizers.Tokenizer` (static embeddings)
            return [list(e.ids) for e in tokenizer.encode_batch(texts, add_special_tokens=special)]
        encoded = tokenizer(texts, add_special_tokens=special, truncation=False, verbose=False)
        return [list(ids) for ids in encoded["input_ids"]]

    def _loaded(self, capability: Capability | None) -> Any:
        if capability is not None and not self.supports(capability):
            raise self._unsupported(capability)
        if self._model is None:
            raise RuntimeError(f"model {self.config.name!r} is not loaded")
        return self._model
