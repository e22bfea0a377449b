"""Speech-to-text as a service: one scheduler lease per request, the backend call on the model's thread.

The audio file is the caller's (the HTTP layer spools uploads and removes them); this service only
hands its path to the model. Decoding and transcription both run on the model's worker thread, so
the event loop never waits on them.
"""

from __future__ import annotations

from typing import Any

from inference.capabilities import Capability
from inference.errors import InvalidRequest
from inference.media import Transcript, TranscriptionRequest


class TranscriptionService:
    def __init__(self, scheduler: Any) -> None:
        self.scheduler = scheduler

    async def transcribe(self, model: str, request: TranscriptionRequest) -> Transcript:
        """The transcript (or English translation, with ``request.translate``) of the audio file."""
        if request.temperature is not None and request.temperature < 0:
            raise InvalidRequest("temperature must not be negative", param="temperature")
        async with self.scheduler.lease(model, Capability.TRANSCRIBE) as lease:
            return await lease.run(lease.backend.transcribe, request)
