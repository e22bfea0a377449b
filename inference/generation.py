"""The text-generation contract between the engine and text backends: parameters in, events out.

A backend's `generate` yields `TextDelta`s as tokens are decoded and ends with one `Finished`
carrying the finish reason and token counts. Everything protocol-specific (OpenAI request shapes,
SSE) stays in `appliance`; everything runtime-specific (llama.cpp sampling objects) stays in the
backend. These are plain values so fakes and real backends are interchangeable in tests.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

# LocalAI's defaults when neither the request nor the model config sets a value.
DEFAULT_TEMPERATURE = 0.9
DEFAULT_TOP_P = 0.95
DEFAULT_TOP_K = 40


@dataclass(frozen=True)
class ResponseFormat:
    """Constrained output: any JSON object, or JSON matching `schema`."""

    type: Literal["json_object", "json_schema"]
    schema: Mapping[str, Any] | None = None


@dataclass(frozen=True)
class SamplingParams:
    """How to generate. `max_tokens=None` means up to the end of the context window."""

    max_tokens: int | None = None
    temperature: float = DEFAULT_TEMPERATURE
    top_p: float = DEFAULT_TOP_P
    top_k: int = DEFAULT_TOP_K
    min_p: float = 0.0
    typical_p: float = 1.0
    seed: int | None = None
    stop: tuple[str, ...] = ()
    presence_penalty: float = 0.0
    frequency_penalty: float = 0.0
    repeat_penalty: float = 1.1
    logit_bias: Mapping[int, float] = field(default_factory=dict)
    grammar: str | None = None  # raw GBNF (LocalAI's `grammar`); wins over response_format
    response_format: ResponseFormat | None = None


@dataclass(frozen=True)
class TextDelta:
    """Newly decoded text; `tokens` is how many tokens it spans (0 for text held back then released)."""

    text: str
    tokens: int = 1


@dataclass(frozen=True)
class Finished:
    """The last event of a generation. `finish_reason` is "stop" (EOS or a stop string) or "length";
    `stop_sequence` is the stop string that ended it, when one did."""

    finish_reason: Literal["stop", "length"]
    prompt_tokens: int
    completion_tokens: int
    stop_sequence: str | None = None


GenerationEvent = TextDelta | Finished


@dataclass(frozen=True)
class ChatPrompt:
    """A chat rendered by the model's own template, with the stop strings that template implies."""

    text: str
    stop: tuple[str, ...] = ()
