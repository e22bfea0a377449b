"""Sound generation as a service (LocalAI's ElevenLabs-style ``/v1/sound-generation``).

Checks come first: a text, a duration in [``MIN_SOUND_SECONDS``, ``MAX_SOUND_SECONDS``], a prompt
influence in [0, 1]. The backend call runs on the model's worker thread as a one-item stream, so the
lease's cancel event reaches the pipeline's step callback. The result is one mono 16-bit PCM clip.
"""

from __future__ import annotations

from typing import Any

from inference.capabilities import Capability
from inference.catalog.usecases import Usecase
from inference.errors import InvalidRequest
from inference.media import AudioChunk, SoundRequest
from inference.services.images import only_model

MAX_SOUND_SECONDS = 30.0  # ElevenLabs allows up to 30 s; diffusion cost grows with the length
MIN_SOUND_SECONDS = 0.01  # one frame of AudioLDM's vocoder (160 samples at 16 kHz); pipelines refuse less


class SoundService:
    def __init__(self, scheduler: Any, *, max_seconds: float = MAX_SOUND_SECONDS) -> None:
        self.scheduler = scheduler
        self.max_seconds = max_seconds

    def check(self, request: SoundRequest) -> None:
        if not request.text.strip():
            raise InvalidRequest("text must not be empty", param="text")
        duration = request.duration_seconds
        if duration is not None and not MIN_SOUND_SECONDS <= duration <= self.max_seconds:
            raise InvalidRequest(
                f"duration_seconds must be between {MIN_SOUND_SECONDS:g} and {self.max_seconds:g}, got {duration:g}",
                param="duration_seconds",
            )
        influence = request.prompt_influence
        if influence is not None and not 0 <= influence <= 1:
            raise InvalidRequest(f"prompt_influence must be between 0 and 1, got {influence:g}", param="prompt_influence")

    def default_model(self) -> str:
        """The model for a request that names none: the only sound model, if there is exactly one."""
        return only_model(self.scheduler.catalog, Usecase.SOUND, "sound-generation")

    async def generate(self, model: str, request: SoundRequest) -> AudioChunk:
        self.check(request)
        async with self.scheduler.lease(model, Capability.SOUND) as lease:
            backend = lease.backend
            return await lease.run_cancellable(lambda cancel: backend.generate_sound(request, cancel))
