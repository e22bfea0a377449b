"""LocalAI's ElevenLabs-style sound-generation body: ``{text, model_id, duration_seconds, prompt_influence,
do_sample}``. ``model`` is accepted for ``model_id`` and ``seed`` is an extension; LocalAI's music fields
(``lyrics``, ``bpm``, ...) are accepted and ignored: a diffusers audio pipeline takes only a text."""

from __future__ import annotations

import logging

from pydantic import AliasChoices, ConfigDict, Field, model_validator

from appliance.protocol.base import NOT_BLANK, JsonInt, ModelName, RequestBody
from inference.media import SoundRequest
from inference.services.sound import MAX_SOUND_SECONDS, MIN_SOUND_SECONDS

logger = logging.getLogger(__name__)


class SoundGenerationRequest(RequestBody):
    model_config = ConfigDict(extra="allow", populate_by_name=True)

    # SoundService.check's rules, for the schema (its messages are the ones clients see).
    text: str = Field(json_schema_extra={"pattern": NOT_BLANK}, description="What to make (not just white space)")
    model_id: ModelName | None = Field(None, validation_alias=AliasChoices("model_id", "model"))
    duration_seconds: float | None = Field(
        None, allow_inf_nan=False, json_schema_extra={"minimum": MIN_SOUND_SECONDS, "maximum": MAX_SOUND_SECONDS}
    )
    prompt_influence: float | None = Field(None, allow_inf_nan=False, json_schema_extra={"minimum": 0, "maximum": 1})
    do_sample: bool | None = None
    seed: JsonInt | None = None

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
