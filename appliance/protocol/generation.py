"""Sampling fields shared by chat, completions and edits, and their one conversion to SamplingParams.

Request values win over the model config's `parameters`, which win over LocalAI's defaults.
LocalAI's extra names (`repeat_penalty`, `top_k`, `min_p`, `typical_p`, `grammar`) are accepted.
Unknown fields are tolerated (clients send many) and logged at DEBUG.
"""

from __future__ import annotations

import logging
import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from appliance.protocol.base import JsonInt, ModelName, NonNegativeInt, RequestBody
from inference.catalog.config import ModelConfig
from inference.generation import (
    DEFAULT_TEMPERATURE,
    DEFAULT_TOP_K,
    DEFAULT_TOP_P,
    ResponseFormat,
    SamplingParams,
)

logger = logging.getLogger(__name__)

MAX_STOP = 16
TOKEN_ID = re.compile(r"-?[0-9]+")


class JsonSchemaFormat(RequestBody):
    name: str | None = None
    schema_: dict[str, Any] | None = Field(None, alias="schema")
    strict: bool | None = None
    description: str | None = None


class ResponseFormatField(RequestBody):
    # The rule `_schema_present` checks, for the schema: json_schema comes with a JSON schema.
    model_config = ConfigDict(
        json_schema_extra={
            "if": {"properties": {"type": {"const": "json_schema"}}},
            "then": {
                "required": ["json_schema"],
                "properties": {
                    "json_schema": {
                        "type": "object",
                        "required": ["schema"],
                        "properties": {"schema": {"type": "object"}},
                    }
                },
            },
        }
    )

    type: Literal["text", "json_object", "json_schema"]
    json_schema: JsonSchemaFormat | None = None

    @model_validator(mode="after")
    def _schema_present(self) -> ResponseFormatField:
        if self.type == "json_schema" and (self.json_schema is None or self.json_schema.schema_ is None):
            raise ValueError("response_format of type json_schema needs json_schema.schema")
        return self


class StreamOptions(RequestBody):
    include_usage: bool = False


class SamplingFields(RequestBody):
    """Fields every text-generation request shares."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)

    model: ModelName
    temperature: float | None = Field(None, ge=0, le=2)
    top_p: float | None = Field(None, gt=0, le=1)
    top_k: NonNegativeInt | None = None
    min_p: float | None = Field(None, ge=0, le=1)
    typical_p: float | None = Field(None, gt=0, le=1)
    seed: JsonInt | None = None
    stop: str | list[str] | None = Field(
        None,
        json_schema_extra={
            "anyOf": [
                {"type": "string"},
                {"type": "array", "items": {"type": "string"}, "maxItems": MAX_STOP},
                {"type": "null"},
            ]
        },
    )
    presence_penalty: float | None = Field(None, ge=-2, le=2)
    frequency_penalty: float | None = Field(None, ge=-2, le=2)
    repeat_penalty: float | None = Field(None, gt=0)
    logit_bias: dict[str, float] | None = Field(
        None,
        description="Token id -> bias in [-100, 100]",
        json_schema_extra={
            "anyOf": [
                {
                    "type": "object",
                    "propertyNames": {"pattern": f"^{TOKEN_ID.pattern}$"},
                    "additionalProperties": {"type": "number", "minimum": -100, "maximum": 100},
                },
                {"type": "null"},
            ]
        },
    )
    n: JsonInt = Field(1, description="Only 1: send several requests for more", json_schema_extra={"const": 1})
    grammar: str | None = None
    response_format: ResponseFormatField | None = None
    user: str | None = None

    @field_validator("stop")
    @classmethod
    def _stop(cls, value: str | list[str] | None) -> list[str] | None:
        if value is None:
            return None
        items = [value] if isinstance(value, str) else value
        if len(items) > MAX_STOP:
            raise ValueError(f"at most {MAX_STOP} stop sequences")
        return [s for s in items if s]

    @field_validator("logit_bias")
    @classmethod
    def _logit_bias(cls, value: dict[str, float] | None) -> dict[str, float] | None:
        for token, bias in (value or {}).items():
            if not TOKEN_ID.fullmatch(token):
                raise ValueError(f"logit_bias keys are token ids, got {token!r}")
            if not -100 <= bias <= 100:
                raise ValueError(f"logit_bias values lie in [-100, 100], got {bias}")
        return value

    @field_validator("n")
    @classmethod
    def _n(cls, value: int) -> int:
        if value != 1:
            raise ValueError("only n=1 is supported; send several requests for several choices")
        return value

    @model_validator(mode="after")
    def _log_unknown(self) -> SamplingFields:
        if self.model_extra:
            logger.debug("event=unknown_request_fields fields=%s", sorted(self.model_extra))
        return self

    def requested_max_tokens(self) -> int | None:
        return getattr(self, "max_tokens", None)

    def to_sampling(self, config: ModelConfig) -> SamplingParams:
        """The one protocol -> backend conversion: request, then model config, then defaults."""
        defaults = config.parameters
        max_tokens = self.requested_max_tokens()
        if max_tokens is None:
            max_tokens = defaults.max_tokens

        def pick(name: str, fallback: Any) -> Any:
            value = getattr(self, name)
            if value is None:
                value = getattr(defaults, name, None)
            return fallback if value is None else value

        response_format = None
        if self.response_format is not None and self.response_format.type != "text":
            schema = self.response_format.json_schema.schema_ if self.response_format.json_schema else None
            response_format = ResponseFormat(self.response_format.type, schema)
        seed = self.seed if self.seed is not None else (defaults.seed if defaults.seed not in (None, -1) else None)
        return SamplingParams(
            max_tokens=max_tokens,
            temperature=pick("temperature", DEFAULT_TEMPERATURE),
            top_p=pick("top_p", DEFAULT_TOP_P),
            top_k=pick("top_k", DEFAULT_TOP_K),
            min_p=pick("min_p", 0.0),
            typical_p=pick("typical_p", 1.0),
            seed=seed,
            stop=tuple(self.stop or ()),
            presence_penalty=pick("presence_penalty", 0.0),
            frequency_penalty=pick("frequency_penalty", 0.0),
            repeat_penalty=pick("repeat_penalty", 1.1),
            logit_bias={int(k): v for k, v in (self.logit_bias or {}).items()},
            grammar=self.grammar or config.grammar or None,
            response_format=response_format,
        )


class Usage(BaseModel):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int

    @classmethod
    def of(cls, prompt_tokens: int, completion_tokens: int) -> Usage:
        return cls(prompt_tokens=prompt_tokens, completion_tokens=completion_tokens, total_tokens=prompt_tokens + completion_tokens)


class TimingsOut(BaseModel):
    prompt_ms: float
    predicted_ms: float
    predicted_per_second: float | None
