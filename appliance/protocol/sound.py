"""LocalAI's ElevenLabs-style sound-generation body: ``{text, model_id, duration_seconds, prompt_influence,
do_sample}``. ``model`` is accepted for ``model_id`` and ``seed`` is an extension; LocalAI's music fields
(``lyrics``, ``bpm``, ...) are accepted and ignored: a diffusers audio pipeline takes only a text."""

from __future__ import annotations

import logging

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, model_validator

from inference.media import SoundRequest

logger = logging.getLogger(__name__)


class SoundGenerationRequest(BaseModel):
    model_config = ConfigDict(extra="allow", populate_by_name=True)

    text: str
    model_id: str | None = Field(None, min_length=1, validation_alias=AliasChoices("model_id", "model"))
    duration_seconds: float | None = Field(None, allow_inf_nan=False)
    prompt_influence: float | None = Field(None, allow_inf_nan=False)
    do_sample: bool | None = None
    seed: int | None = None

    @model_validator(mode="after")
    def _log_unknown(self) -> SoundGenerationRequest:
        if self.model_extra:
            logger.debug("event=unknown_request_fields fields=%s", sorted(self.model_extra))
        return self

    def to_sound_request(self) -> SoundRequest:
        return SoundRequest(
            text=self.text,
            duration_seconds=self.duration_seconds,
            prompt_influence=self.prompt_influence,
            do_sample=self.do_sample,
            seed=self.seed,
        )
