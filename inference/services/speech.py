"""Text-to-speech as a service: a SPEAK lease per request, audio streamed as it is synthesized.

``speak`` yields the backend's chunks (one per sentence for piper) as they come off the model's
thread, so a route can send the first sentence while the next is still being made; ``synthesize``
gathers them into one chunk. Requests are checked before a model is leased, so bad input never
loads a model.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from inference.capabilities import Capability
from inference.errors import InvalidRequest
from inference.media import AudioChunk, SpeechRequest, check_speech_request

class SpeechService:
    def __init__(self, scheduler: Any) -> None:
        self.scheduler = scheduler

    async def speak(self, model: str, request: SpeechRequest) -> AsyncIterator[AudioChunk]:
        """The audio for ``request``, chunk by chunk as the model makes it.

        Errors the backend finds before synthesizing (unknown speaker or voice file) come from the
        first step of the iteration. Text with nothing speakable in it is an InvalidRequest.
        """
        check_speech_request(request)
        async with self.scheduler.lease(model, Capability.SPEAK) as lease:
            backend = lease.backend
            produced = False
            async for chunk in lease.stream(lambda cancel: backend.speak(request, cancel)):
                if chunk.pcm:
                    produced = True
                    yield chunk
            if not produced:
                raise InvalidRequest("input has nothing the voice can speak", param="input")

    async def synthesize(self, model: str, request: SpeechRequest) -> AudioChunk:
        """The whole audio for ``request`` as one chunk."""
        parts: list[bytes] = []
        rate = 0
        chunks = self.speak(model, request)
        try:
            async for chunk in chunks:
                parts.append(chunk.pcm)
                rate = chunk.sample_rate
        finally:
            await chunks.aclose()  # type: ignore[attr-defined]
        return AudioChunk(pcm=b"".join(parts), sample_rate=rate)
