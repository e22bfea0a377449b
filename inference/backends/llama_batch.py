"""Continuous batching for llama.cpp: one engine thread decodes every running sequence of a model together.

Decoding on a CPU is bound by memory bandwidth, so one ``llama_decode`` over the next token of N
sequences costs little more than over one. Sequences join and leave between steps; each step holds
the next token of every decoding sequence and a bounded chunk of the prompts still being read. The
engine's thread is the only one that decodes, samples or edits the KV cache of its context, whose
cache is split into one stream per slot (``n_seq_max`` slots, ``kv_unified`` off): every sequence
owns a full context window, so no sequence can crowd out another.
"""

from __future__ import annotations

import ctypes
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

from inference.backends.llama_sampling import SamplerChain
from inference.backends.llama_sequence import BatchSequence, FinishReason, common_prefix
from inference.generation import GenerationEvent

if TYPE_CHECKING:
    from inference.backends.llama_params import LlamaLoadPlan

logger = logging.getLogger(__name__)

# Prompt tokens one step may read while other sequences are decoding. On a CPU a 128-token chunk
# costs about as much as 10-20 decode steps; bigger chunks make the streams already running stutter,
# smaller ones stretch the newcomer's time to first token. Alone, a prompt goes n_batch at a time.
PROMPT_CHUNK_WHILE_DECODING = 128
IDLE_WAIT = 1.0  # seconds an idle engine sleeps between checks that it is still wanted


class BatchEngine:
    """One llama.cpp context with ``plan.n_seq`` slots and the thread that decodes it.

    ``piece_of(token)`` gives the bytes a token prints as, or None for an end-of-generation token;
    it is only called on the engine thread. ``owner`` (the ``Llama`` holding the weights) is kept
    alive for as long as the thread runs, even past a `close` that timed out.
    """

    def __init__(
        self,
        owner: Any,
        plan: LlamaLoadPlan,
        *,
        name: str,
        piece_of: Callable[[int], bytes | None],
    ) -> None:
        import llama_cpp

        self._lc = llama_cpp
        self._owner = owner
        self._name = name
        self._piece_of = piece_of
        ctx = llama_cpp.llama_init_from_model(owner.model, _context_params(llama_cpp, owner, plan))
        if not ctx:
            raise RuntimeError(f"llama.cpp could not create a {plan.n_seq}-slot context for model {name!r}")
        self._ctx = ctx
        self._memory = llama_cpp.llama_get_memory(ctx)
        self.n_seq = int(llama_cpp.llama_n_seq_max(ctx))
        self.n_ctx_seq = int(llama_cpp.llama_n_ctx_seq(ctx))
        self.n_batch = int(llama_cpp.llama_n_batch(ctx))
        self._batch = llama_cpp.llama_batch_init(self.n_batch, 0, 1)
        try:
            _apply_lora(llama_cpp, owner, ctx, plan)
        except BaseException:
            self._free()
            raise
        # Free slots, each with the tokens its KV stream still holds from its last sequence: a new
        # prompt takes the slot sharing its longest prefix and skips re-reading that prefix.
        self._cached: dict[int, list[int]] = {seq_id: [] for seq_id in range(self.n_seq)}
        self._active: list[BatchSequence] = []
        self._inbox: deque[BatchSequence] = deque()
        self._cond = threading.Condition()
        self._closing = False
        self._failed = False
        self._thread = threading.Thread(target=self._run, name=f"llama-batch-{name}", daemon=True)
        self._thread.start()

    # Any thread.

    def generate(
        self,
        prompt: list[int],
        limit: int,
        sampler: SamplerChain,
        stop: Sequence[str] = (),
        cancel: threading.Event | None = None,
    ) -> Iterator[GenerationEvent]:
        """Queue a sequence (its sampler is the engine's from here on) and return its events."""
        sequence = BatchSequence(prompt, limit, sampler, stop, cancel)
        if limit <= 0:  # nothing to decode, as in the one-at-a-time loop
            sampler.close()
            sequence.finish("length")
            return sequence.events(self.alive)
        with self._cond:
            if self._closing:
                sampler.close()
                why = "its batch engine failed (see the log); unload it to recover" if self._failed else "was unloaded"
                raise RuntimeError(f"model {self._name!r} {why}")
            self._inbox.append(sequence)
            self._cond.notify()
        return sequence.events(self.alive)

    def alive(self) -> bool:
        """Whether the thread still runs; when it ends, every sequence it held has been failed."""
        return self._thread.is_alive()

    def close(self, timeout: float) -> bool:
        """Stop the thread; sequences still running fail. False if it did not end within ``timeout``
        (it frees the context itself once its current decode returns)."""
        with self._cond:
            self._closing = True
            self._cond.notify()
        if threading.current_thread() is not self._thread:
            self._thread.join(timeout)
        return not self._thread.is_alive()

    # The engine thread.

    def _run(self) -> None:
        error: BaseException | None = None
        try:
            while self._wait_for_work():
                self._step()
        except BaseException as exc:
            logger.exception("event=llama_batch_failed model=%s", self._name)
            error = exc
            self._failed = True
        finally:
            with self._cond:
                self._closing = True
                doomed = [*self._active, *self._inbox]
                self._active.clear()
                self._inbox.clear()
            for sequence in doomed:
                sequence.fail(error or RuntimeError(f"model {self._name!r} was unloaded during generation"))
                sequence.sampler.close()
            self._free()

    def _wait_for_work(self) -> bool:
        with self._cond:
            while not self._closing and not self._inbox and not self._active:
                self._cond.wait(IDLE_WAIT)
            return not self._closing

    def _step(self) -> None:
        for sequence in [s for s in self._active if s.stopped]:
            self._retire(sequence, "stop")
        self._admit()
        if not self._active:
            return
        rows = self._fill()
        lc = self._lc
        status = lc.llama_decode(self._ctx, self._batch)
        if status != 0:
            tokens = self._batch.n_tokens
            logger.error("event=llama_batch_decode_failed model=%s status=%d tokens=%d", self._name, status, tokens)
            for sequence, _count, _index in rows:
                self._retire(sequence, error=RuntimeError(f"llama_decode failed with status {status}"))
            return
        for sequence, count, index in rows:
            sequence.n_past += count
            if index < 0:
                continue
            token = sequence.sampler.sample(self._ctx, index)
            reason = sequence.accept(token, self._piece_of(token))
            if reason is not None:
                self._retire(sequence, reason)

    def _fill(self) -> list[tuple[BatchSequence, int, int]]:
        """Put this step's tokens in the batch: (sequence, tokens added, logits index or -1) each."""
        batch = self._batch
        token, pos, n_seq_id, seq_ids, logits = batch.token, batch.pos, batch.n_seq_id, batch.seq_id, batch.logits
        rows: list[tuple[BatchSequence, int, int]] = []
        n = 0
        for sequence in self._active:
            if not sequence.prefilling:  # its last sampled token, for the next one's logits
                token[n], pos[n], n_seq_id[n], logits[n] = sequence.tokens[sequence.n_past], sequence.n_past, 1, 1
                seq_ids[n][0] = sequence.seq_id
                rows.append((sequence, 1, n))
                n += 1
        budget = self.n_batch - n
        if n:
            budget = min(budget, PROMPT_CHUNK_WHILE_DECODING)
        for sequence in self._active:  # in joining order: the first to come reads its prompt first
            if budget <= 0:
                break
            if not sequence.prefilling:
                continue
            start, seq_id, tokens = sequence.n_past, sequence.seq_id, sequence.tokens
            take = min(budget, len(tokens) - start)
            for offset in range(take):
                token[n + offset], pos[n + offset], n_seq_id[n + offset] = tokens[start + offset], start + offset, 1
                seq_ids[n + offset][0] = seq_id
                logits[n + offset] = 0
            last = start + take == len(tokens)
            if last:
                logits[n + take - 1] = 1
            rows.append((sequence, take, n + take - 1 if last else -1))
            n += take
            budget -= take
        batch.n_tokens = n
        return rows

    def _admit(self) -> None:
        """Move waiting sequences into free slots, each into the slot caching most of its prompt."""
        with self._cond:
            while self._inbox and (self._cached or self._inbox[0].stopped):
                sequence = self._inbox.popleft()
                if sequence.stopped:
                    sequence.finish("stop")
                    sequence.sampler.close()
                    continue
                seq_id = max(self._cached, key=lambda slot: common_prefix(self._cached[slot], sequence.tokens))
                cached = self._cached.pop(seq_id)
                keep = min(common_prefix(cached, sequence.tokens), sequence.prompt_tokens - 1)
                if keep < len(cached) and not self._lc.llama_memory_seq_rm(self._memory, seq_id, keep, -1):
                    self._lc.llama_memory_seq_rm(self._memory, seq_id, -1, -1)  # a whole sequence always goes
                    keep = 0
                sequence.seq_id, sequence.n_past, sequence.reused = seq_id, keep, keep
                self._active.append(sequence)

    def _retire(
        self, sequence: BatchSequence, reason: FinishReason = "stop", *, error: BaseException | None = None
    ) -> None:
        """End ``sequence``; its slot keeps what its KV stream holds for a later prompt to reuse."""
        self._active.remove(sequence)
        if error is None:
            sequence.finish(reason)
            cached = sequence.tokens[: sequence.n_past]
        else:
            sequence.fail(error)
            self._lc.llama_memory_seq_rm(self._memory, sequence.seq_id, -1, -1)
            cached = []
        sequence.sampler.close()
        with self._cond:
            self._cached[sequence.seq_id] = cached
        logger.debug(
            "event=llama_generated model=%s slot=%d prompt_tokens=%d reused_tokens=%d completion_tokens=%d "
            "finish_reason=%s seconds=%.3f",
            self._name,
            sequence.seq_id,
            sequence.prompt_tokens,
            sequence.reused,
            sequence.produced,
            reason if error is None else "error",
            time.perf_counter() - sequence.started,
        )

    def _free(self) -> None:
        batch, ctx = self._batch, self._ctx
        self._batch = self._ctx = None
        if batch is not None:
            self._lc.llama_batch_free(batch)
        if ctx is not None:
            self._lc.llama_free(ctx)


def _context_params(lc: Any, owner: Any, plan: LlamaLoadPlan) -> Any:
    """The ``Llama``'s own context settings (threads, rope, cache types, flash attention) with a
    window of ``plan.n_ctx`` for each of ``plan.n_seq`` sequences in separate KV streams."""
    params = lc.llama_context_params.from_buffer_copy(owner.context_params)
    params.n_ctx = plan.cache_positions * plan.n_seq
    params.n_batch = max(plan.n_batch, plan.n_seq + 1)  # every decoding sequence and some prompt fit a step
    params.n_ubatch = min(plan.n_ubatch, params.n_batch)
    params.n_seq_max = plan.n_seq
    params.kv_unified = False
    params.embeddings = False
    return params


def _apply_lora(lc: Any, owner: Any, ctx: Any, plan: LlamaLoadPlan) -> None:
    """llama-cpp-python sets a LoRA adapter on its own context only; set it on ours too."""
    adapter = getattr(owner, "_lora_adapter", None)
    if adapter is None:
        return
    adapters = (lc.llama_adapter_lora_p_ctypes * 1)(adapter)
    scales = (ctypes.c_float * 1)(plan.lora_scale)
    if lc.llama_set_adapters_lora(ctx, adapters, 1, scales):
        raise RuntimeError(f"llama.cpp could not apply the LoRA adapter {plan.lora_path!r}")
