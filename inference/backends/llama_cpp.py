"""LlamaCppBackend: GGUF models through llama-cpp-python for chat, completion, tokenize and embeddings.

Generation runs its own token loop (native sampler chain, cached token pieces, incremental UTF-8 and
stop hold-back) rather than ``create_completion``, whose per-token cost grows with the output. With
parallel requests on, a `BatchEngine` decodes up to ``parallel:N`` requests together instead.
``llama_cpp`` is imported by ``load``, never by importing this module.
"""

from __future__ import annotations

import gc
import logging
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from inference.backends.base import Backend, MemoryEstimate
from inference.backends.llama_batch import BatchEngine
from inference.backends.llama_chat import ChatTemplate
from inference.backends.llama_params import LlamaLoadPlan, estimate_memory, parallel_slots, plan_load
from inference.backends.llama_sampling import DEFAULT_PENALTY_LAST_N, SamplerChain, build_sampler
from inference.backends.text_stream import StopTextStream
from inference.capabilities import Capability
from inference.catalog.gguf import GGUFInfo, read_gguf_info
from inference.errors import BackendUnavailable, ContextLengthExceeded, InvalidModelConfig, InvalidRequest
from inference.generation import ChatPrompt, Finished, GenerationEvent, SamplingParams, TextDelta

if TYPE_CHECKING:
    from inference.catalog.config import ModelConfig

logger = logging.getLogger(__name__)

_EOG = object()  # the cached "piece" of an end-of-generation token
# llama-cpp-python silences a model load by pointing the process's fds 1 and 2 at /dev/null and back.
# Two loads overlapping in different threads can restore the wrong fd and leave stderr silenced for
# good, so llama.cpp loads take turns. It guards a process-wide side effect, not model calls.
_LOAD_LOCK = threading.Lock()
ENGINE_STOP_TIMEOUT = 30.0  # seconds an unload waits for the batch engine's current decode


class LlamaCppBackend(Backend):
    """A GGUF model in llama.cpp. EMBED is served only when the config sets ``embeddings: true``.

    With parallel requests on (`parallel_slots` > 1) it serves that many generations at once
    through its `BatchEngine`, whose thread is then the only one that decodes with the model.
    """

    name: ClassVar[str] = "llama-cpp"
    capabilities: ClassVar[frozenset[Capability]] = frozenset(
        {Capability.CHAT, Capability.COMPLETE, Capability.TOKENIZE, Capability.EMBED}
    )
    requires: ClassVar[tuple[str, ...]] = ("llama_cpp",)
    extra: ClassVar[str] = "chat"

    def __init__(self, config: ModelConfig, models_path: Path) -> None:
        super().__init__(config, models_path)
        self._llm: Any = None
        self._vocab: Any = None
        self._add_bos = False
        self._info: GGUFInfo | None = None
        self._plan: LlamaLoadPlan | None = None
        self._chat: ChatTemplate | None = None
        self._pieces: dict[int, Any] = {}
        self._engine: BatchEngine | None = None
        slots = parallel_slots(config)
        if slots > 1:
            self.max_concurrency = slots
            self.concurrent_streams = True

    def supports(self, capability: Capability | str) -> bool:
        if capability == Capability.EMBED and not self.config.embeddings:
            return False
        return super().supports(capability)

    # Lifecycle

    def load(self) -> None:
        if self._llm is not None:
            return
        path = self._model_file()
        plan = self._load_plan()
        try:
            import llama_cpp
        except ImportError as exc:
            raise BackendUnavailable(self.name, "llama_cpp", self.extra) from exc
        started = time.monotonic()
        with _LOAD_LOCK:
            self._llm = llama_cpp.Llama(str(path), **plan.llama_kwargs())
        self._vocab = llama_cpp.llama_model_get_vocab(self._llm.model)
        self._add_bos = bool(llama_cpp.llama_vocab_get_add_bos(self._vocab))
        if plan.n_seq > 1:
            self._start_engine(plan)
        logger.debug(
            "event=llama_loaded model=%s n_ctx=%d slots=%d threads=%d gpu_layers=%d embedding=%s seconds=%.3f",
            self.config.name,
            plan.n_ctx,
            plan.n_seq,
            plan.n_threads,
            plan.n_gpu_layers,
            plan.embedding,
            time.monotonic() - started,
        )

    def _start_engine(self, plan: LlamaLoadPlan) -> None:
        llm = self._llm
        # The Llama's own context (the smallest llama.cpp makes) goes unused: free it before the
        # engine allocates its own. llama-cpp-python 0.3.x keeps it in ``_ctx``; closing is idempotent.
        own = getattr(llm, "_ctx", None)
        if own is not None:
            own.close()
        try:
            self._engine = BatchEngine(llm, plan, name=self.config.name, piece_of=self._engine_piece)
        except BaseException:
            self.unload()
            raise

    def unload(self) -> None:
        engine, self._engine = self._engine, None
        llm, self._llm = self._llm, None
        if engine is not None and not engine.close(ENGINE_STOP_TIMEOUT):
            # Freeing the weights (or the vocabulary it reads) under a running decode would crash the
            # process: leave them to the engine, which holds on to them until its thread ends.
            logger.error("event=llama_engine_stuck model=%s timeout_s=%g", self.config.name, ENGINE_STOP_TIMEOUT)
            return
        self._vocab = self._chat = None
        self._pieces = {}
        if llm is not None:
            llm.close()
            del llm
            gc.collect()
            logger.debug("event=llama_unloaded model=%s", self.config.name)

    def memory_estimate(self) -> MemoryEstimate:
        """Weights + KV cache for the planned context + compute buffers, from the GGUF header only."""
        return estimate_memory(self._header(), self._load_plan())

    def context_size(self) -> int:
        """The configured context (llama.cpp may round its cache up to 256 tokens; we keep to this),
        for each request alike whether requests run one at a time or in parallel."""
        n_ctx = self._load_plan().n_ctx
        if self._engine is not None:
            return min(n_ctx, self._engine.n_ctx_seq)
        return min(n_ctx, int(self._llm.n_ctx())) if self._llm is not None else n_ctx

    # Tokens

    def tokenize(self, text: str) -> list[int]:
        """The tokens of ``text`` as a prompt sees them: special-token text (``<|im_end|>``) parsed
        into control tokens, no BOS/EOS added."""
        return list(self._loaded().tokenize(text.encode("utf-8"), add_bos=False, special=True))

    def detokenize(self, tokens: Sequence[int]) -> str:
        """Text of ``tokens`` (control tokens rendered as their text); inverts `tokenize`."""
        import ctypes

        import llama_cpp

        ids = self._checked_tokens(tokens)
        vocab = self._vocab
        array = (llama_cpp.llama_token * max(1, len(ids)))(*ids)
        size = max(64, 8 * len(ids))
        for _ in range(2):
            buffer = ctypes.create_string_buffer(size)
            written = llama_cpp.llama_detokenize(vocab, array, len(ids), buffer, size, False, True)
            if written >= 0:
                return buffer.raw[:written].decode("utf-8", errors="replace")
            size = -written
        raise RuntimeError("llama_detokenize kept asking for a larger buffer")

    # Chat

    def apply_chat_template(
        self, messages: Sequence[Mapping[str, Any]], *, tools: Sequence[Mapping[str, Any]] | None = None
    ) -> ChatPrompt:
        """The model's own Jinja template (``tokenizer.chat_template``), or ChatML when it has none."""
        if self._chat is None:
            self._chat = ChatTemplate(self._loaded(), self._header().chat_template, model_name=self.config.name)
        return self._chat.render(messages, tools)

    # Generation

    def generate(
        self, prompt: str, params: SamplingParams, cancel: threading.Event | None = None
    ) -> Iterator[GenerationEvent]:
        """Check the prompt and parameters now (raising before any token), then stream the reply."""
        llm = self._loaded()
        tokens = self._prompt_tokens(llm, prompt)
        n_ctx = self.context_size()
        if len(tokens) >= n_ctx or (params.max_tokens is not None and len(tokens) + params.max_tokens > n_ctx):
            raise ContextLengthExceeded(prompt_tokens=len(tokens), max_tokens=params.max_tokens, context_size=n_ctx)
        limit = n_ctx - len(tokens) if params.max_tokens is None else params.max_tokens
        sampler = build_sampler(llm, params, penalty_last_n=self._penalty_window(n_ctx))
        if self._engine is not None:
            return self._engine.generate(tokens, limit, sampler, params.stop, cancel)
        return self._stream(llm, tokens, limit, sampler, StopTextStream(params.stop), cancel)

    def _stream(
        self,
        llm: Any,
        tokens: list[int],
        limit: int,
        sampler: SamplerChain,
        text: StopTextStream,
        cancel: threading.Event | None,
    ) -> Iterator[GenerationEvent]:
        try:
            started = time.perf_counter()
            reused = self._eval_prompt(llm, tokens)
            ctx, sample, piece_of, push, evaluate = llm.ctx, sampler.sample, self._piece, text.push, llm.eval
            produced = pending = 0
            finish_reason = "length"
            while produced < limit:
                if cancel is not None and cancel.is_set():
                    finish_reason = "stop"
                    break
                token = sample(ctx)
                piece = piece_of(token)
                if piece is _EOG:
                    finish_reason = "stop"
                    break
                produced += 1
                pending += 1
                delta = push(piece)
                if delta:
                    yield TextDelta(delta, pending)
                    pending = 0
                if text.stopped:
                    finish_reason = "stop"
                    break
                if produced < limit:
                    if self._llm is not llm:  # unloaded while we were suspended: its context is freed
                        raise RuntimeError(f"model {self.config.name!r} was unloaded during generation")
                    evaluate((token,))
            tail = text.finish()
            if tail:
                yield TextDelta(tail, pending)
            logger.debug(
                "event=llama_generated model=%s prompt_tokens=%d reused_tokens=%d completion_tokens=%d "
                "finish_reason=%s seconds=%.3f",
                self.config.name,
                len(tokens),
                reused,
                produced,
                finish_reason,
                time.perf_counter() - started,
            )
            yield Finished(finish_reason, len(tokens), produced, text.matched)
        finally:
            sampler.close()

    def _eval_prompt(self, llm: Any, tokens: list[int]) -> int:
        """Decode the prompt, reusing the KV cache for the prefix it shares with the last call;
        returns how many tokens were reused."""
        import llama_cpp
        import numpy as np

        keep = 0
        if llm.n_tokens:
            cached = llm.input_ids[: min(llm.n_tokens, len(tokens))]
            same = cached == np.asarray(tokens[: len(cached)], dtype=cached.dtype)
            keep = len(cached) if same.all() else int(same.argmin())
            keep = min(keep, len(tokens) - 1)  # the last prompt token is decoded again for its logits
        memory = llama_cpp.llama_get_memory(llm.ctx)
        if keep > 0 and memory is not None and llama_cpp.llama_memory_seq_rm(memory, 0, keep, -1):
            llm.n_tokens = keep
        else:
            llm.reset()
            keep = 0
        llm.eval(tokens[keep:])
        return keep

    def _prompt_tokens(self, llm: Any, prompt: str) -> list[int]:
        """Special-token text becomes control tokens; BOS is added when the model wants one and the
        prompt (e.g. a template that writes ``{{ bos_token }}``) does not already start with it."""
        tokens = list(llm.tokenize(prompt.encode("utf-8"), add_bos=False, special=True))
        bos = llm.token_bos()
        if bos >= 0 and (not tokens or (self._add_bos and tokens[0] != bos)):
            tokens.insert(0, bos)
        if not tokens:
            raise InvalidRequest("the prompt is empty and this model has no BOS token to start from", param="prompt")
        return tokens

    def _piece(self, token: int) -> Any:
        """The bytes token ``token`` prints as (control tokens print nothing), or `_EOG`; cached."""
        piece = self._pieces.get(token)
        if piece is None:
            import ctypes

            import llama_cpp

            vocab = self._vocab
            if llama_cpp.llama_vocab_is_eog(vocab, token):
                piece = _EOG
            else:
                buffer = ctypes.create_string_buffer(64)
                size = llama_cpp.llama_token_to_piece(vocab, token, buffer, 64, 0, False)
                if size < 0:
                    buffer = ctypes.create_string_buffer(-size)
                    size = llama_cpp.llama_token_to_piece(vocab, token, buffer, -size, 0, False)
                piece = buffer.raw[:size]
            self._pieces[token] = piece
        return piece

    def _engine_piece(self, token: int) -> bytes | None:
        piece = self._piece(token)
        return None if piece is _EOG else piece

    # Embeddings

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        """One L2-normalised, pooled vector per text (mean pooling unless the file sets another)."""
        if not self.config.embeddings:
            raise self._unsupported(Capability.EMBED)
        llm = self._loaded()
        if not texts:
            return []
        if any(not text for text in texts):
            raise InvalidRequest("embedding input must not contain empty strings", param="input")
        vectors = llm.embed(list(texts), normalize=True, truncate=True)
        return [[float(value) for value in vector] for vector in vectors]

    def embedding_dimensions(self) -> int:
        if not self.config.embeddings:
            raise self._unsupported(Capability.EMBED)
        return int(self._loaded().n_embd())

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        """Tokens per input as `embed` reads them (BOS included), before truncation."""
        llm = self._loaded()
        return [len(llm.tokenize(text.encode("utf-8"), add_bos=True, special=False)) for text in texts]

    def max_input_tokens(self) -> int | None:
        """llama-cpp-python's `embed` truncates each input to one batch (and the context)."""
        if not self.config.embeddings:
            return None
        llm = self._loaded()
        return min(int(llm.n_batch), int(llm.n_ctx()))

    # Helpers

    def _loaded(self) -> Any:
        if self._llm is None:
            raise RuntimeError(f"model {self.config.name!r} is not loaded")
        return self._llm

    def _model_file(self) -> Path:
        path = self.model_path()
        if path is None:
            raise InvalidModelConfig(
                f"model {self.config.name!r} names no model file; set parameters.model", param="parameters.model"
            )
        return path

    def _header(self) -> GGUFInfo:
        if self._info is None:
            self._info = read_gguf_info(self._model_file())
        return self._info

    def _load_plan(self) -> LlamaLoadPlan:
        if self._plan is None:
            self._plan = plan_load(self.config, self.models_path, self._header())
        return self._plan

    def _penalty_window(self, n_ctx: int) -> int:
        """``parameters.repeat_last_n``: unset is llama-cpp-python's 64, -1 the whole context, 0 off."""
        last_n = self.config.parameters.repeat_last_n
        if last_n is None:
            return DEFAULT_PENALTY_LAST_N
        return n_ctx if last_n < 0 else last_n

    def _checked_tokens(self, tokens: Sequence[int]) -> list[int]:
        n_vocab = int(self._loaded().n_vocab())
        ids = [int(token) for token in tokens]
        bad = next((token for token in ids if not 0 <= token < n_vocab), None)
        if bad is not None:
            raise InvalidRequest(f"token {bad} is outside this model's vocabulary (0..{n_vocab - 1})", param="tokens")
        return ids
