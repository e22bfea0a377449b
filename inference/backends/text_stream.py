"""Token bytes to streamed text that never splits a UTF-8 character nor shows any part of a stop string.

Bytes of an unfinished character wait for the rest; text that could begin a stop string waits until
it completes the stop (which is dropped and ends generation) or no longer can.
"""

from __future__ import annotations

import codecs
from collections.abc import Sequence


class StopTextStream:
    """Incremental UTF-8 decoding with stop-string hold-back. ``stopped`` turns True on a stop, and
    ``matched`` is the stop string that was met."""

    __slots__ = ("_decode", "_decoder", "_held", "_stops", "matched", "stopped")

    def __init__(self, stop: Sequence[str] = ()) -> None:
        # Invalid bytes (a lone continuation byte from a byte-fallback token) become U+FFFD rather
        # than stalling the stream; an unfinished but valid sequence waits for its next byte.
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._decode = self._decoder.decode
        self._stops = tuple(dict.fromkeys(s for s in stop if s))
        self._held = ""
        self.stopped = False
        self.matched: str | None = None

    def push(self, piece: bytes) -> str:
        """The text that may be shown after ``piece``; "" when it is all held back."""
        text = self._decode(piece)
        if not self._stops or not text:
            return text
        buffer = self._held + text
        cut = -1
        for stop in self._stops:
            at = buffer.find(stop)
            if at >= 0 and (cut < 0 or at < cut):
                cut, self.matched = at, stop
        if cut >= 0:
            self._held = ""
            self.stopped = True
            return buffer[:cut]
        keep = self._partial_stop_suffix(buffer)
        if keep:
            self._held = buffer[-keep:]
            return buffer[:-keep]
        self._held = ""
        return buffer

    def finish(self) -> str:
        """What is still held when generation ends without a stop; an unfinished character is dropped."""
        if self.stopped:
            return ""
        self._decoder.reset()
        held, self._held = self._held, ""
        return held

    def _partial_stop_suffix(self, buffer: str) -> int:
        """Length of the longest end of ``buffer`` that begins some stop string."""
        best = 0
        for stop in self._stops:
            for size in range(min(len(stop) - 1, len(buffer)), best, -1):
                if buffer.endswith(stop[:size]):
                    best = size
                    break
        return best
