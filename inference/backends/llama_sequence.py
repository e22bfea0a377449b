"""One request inside the llama.cpp batch engine: its tokens, sampler, stop handling and event queue.

The engine thread advances a `BatchSequence` (``accept`` each sampled token, then ``finish`` or
``fail``); the request's own thread reads its events with bounded waits (``events``). The two sides
share only a thread-safe queue and two flags.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Literal

from inference.backends.llama_sampling import SamplerChain
from inference.backends.text_stream import StopTextStream
from inference.generation import Finished, GenerationEvent, TextDelta

POLL = 0.25  # seconds between a waiting reader's checks of its cancel event and of the engine

FinishReason = Literal["stop", "length"]


class BatchSequence:
    """A prompt to continue by at most ``limit`` tokens. Engine-side fields are the engine's alone."""

    def __init__(
        self,
        prompt: list[int],
        limit: int,
        sampler: SamplerChain,
        stop: Sequence[str] = (),
        cancel: threading.Event | None = None,
    ) -> None:
        self.prompt_tokens = len(prompt)
        self.limit = limit
        self.sampler = sampler
        self._text = StopTextStream(stop)
        self._cancel = cancel
        self._abandoned = False  # the reader went away; set on its thread, read by the engine
        self._events: queue.SimpleQueue[GenerationEvent | BaseException] = queue.SimpleQueue()
        # Engine side: the prompt then each sampled token; the first ``n_past`` are in the KV cache.
        self.tokens = list(prompt)
        self.seq_id = -1
        self.n_past = 0
        self.reused = 0  # prompt tokens found already cached
        self.produced = 0
        self._pending = 0  # tokens decoded since the last delta that carried text
        self.started = time.perf_counter()

    # Engine side.

    @property
    def stopped(self) -> bool:
        """The request was cancelled or its reader left: drop it at the next step."""
        return self._abandoned or (self._cancel is not None and self._cancel.is_set())

    @property
    def prefilling(self) -> bool:
        return self.n_past < self.prompt_tokens

    def accept(self, token: int, piece: bytes | None) -> FinishReason | None:
        """Take the sampled ``token`` (``piece`` None: end of generation); the reason to end, or None."""
        if piece is None:
            return "stop"
        self.produced += 1
        self._pending += 1
        delta = self._text.push(piece)
        if delta:
            self._events.put(TextDelta(delta, self._pending))
            self._pending = 0
        if self._text.stopped:
            return "stop"
        if self.produced >= self.limit:
            return "length"
        self.tokens.append(token)
        return None

    def finish(self, reason: FinishReason) -> None:
        tail = self._text.finish()
        if tail:
            self._events.put(TextDelta(tail, self._pending))
        self._events.put(Finished(reason, self.prompt_tokens, self.produced, self._text.matched))

    def fail(self, error: BaseException) -> None:
        self._events.put(error)

    # Reader side: the request's thread.

    def events(self, alive: Callable[[], bool]) -> Iterator[GenerationEvent]:
        """The sequence's events up to its `Finished`; raises what the engine failed it with.

        The engine may run ahead of a slow reader: once the cancel event is set, what it queued is
        dropped and a `Finished` ("stop") counting the tokens read so far ends the stream. Each wait
        is bounded; an engine that stopped without a word raises. Closing the iterator early tells
        the engine to drop the sequence at its next step.
        """
        read = 0
        try:
            while True:
                if self._cancel is not None and self._cancel.is_set():
                    yield Finished("stop", self.prompt_tokens, read)
                    return
                try:
                    item = self._events.get(timeout=POLL)
                except queue.Empty:
                    if alive():
                        continue
                    try:  # the engine may have failed us just before it stopped
                        item = self._events.get_nowait()
                    except queue.Empty:
                        raise RuntimeError("the llama.cpp batch engine stopped during generation") from None
                if isinstance(item, BaseException):
                    raise item
                if isinstance(item, TextDelta):
                    read += item.tokens
                yield item
                if isinstance(item, Finished):
                    return
        finally:
            self._abandoned = True


def common_prefix(a: Sequence[int], b: Sequence[int]) -> int:
    """How many leading tokens ``a`` and ``b`` share."""
    size = min(len(a), len(b))
    for index in range(size):
        if a[index] != b[index]:
            return index
    return size
