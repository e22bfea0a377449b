"""The inference library's exception tree.

Every problem the inference layer knows how to name is one of these classes. They carry a stable
machine-readable ``code`` and, where it helps the caller, the offending ``param``. The HTTP layer
maps classes to status codes in one table (appliance/errors.py); nothing here knows about HTTP.
"""

from __future__ import annotations


class InferenceError(Exception):
    """Base of every error raised by the inference library."""

    code: str = "inference_error"

    def __init__(self, message: str, *, param: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.param = param


class ModelNotFound(InferenceError):
    """A request named a model that no config or loose file provides."""

    code = "model_not_found"

    def __init__(self, name: str) -> None:
        super().__init__(
            f"model {name!r} not found; call GET /v1/models for the models this server offers",
            param="model",
        )
        self.name = name


class InvalidModelConfig(InferenceError):
    """A model config is malformed or unsafe (bad YAML, wrong types, path traversal)."""

    code = "invalid_model_config"


class UnsafePath(InvalidModelConfig):
    """A path in a config or a model name is absolute or escapes the models path."""

    code = "unsafe_path"


class TemplateError(InvalidModelConfig):
    """A prompt template (LocalAI's Go text/template) cannot be parsed or rendered; the message names
    the model, the template field, and the line, column and text of the offending action."""

    code = "invalid_template"


class BackendNotFound(InferenceError):
    """A config names a backend that is not registered under that name or any alias."""

    code = "backend_not_found"


class BackendUnavailable(InferenceError):
    """A backend's optional dependency is not installed; the message names the pip extra."""

    code = "backend_unavailable"

    def __init__(self, backend: str, missing: str, extra: str) -> None:
        super().__init__(
            f"backend {backend!r} needs the Python package {missing!r}, which is not installed; "
            f"install it with: pip install 'appliance[{extra}]'",
            param="backend",
        )
        self.backend = backend
        self.missing = missing
        self.extra = extra


class CapabilityNotSupported(InferenceError):
    """The model's backend cannot do what the request asks (e.g. embeddings from a TTS voice)."""

    code = "capability_not_supported"


class ModelLoadFailed(InferenceError):
    """Loading a model raised; the cause is chained and logged, the message stays readable."""

    code = "model_load_failed"

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message, param="model")
        self.retry_after = retry_after


class ContextLengthExceeded(InferenceError):
    """The prompt plus the tokens asked for do not fit the model's context window."""

    code = "context_length_exceeded"

    def __init__(self, *, prompt_tokens: int, max_tokens: int | None, context_size: int, param: str = "messages") -> None:
        asked = f" + {max_tokens} requested tokens" if max_tokens else ""
        super().__init__(
            f"this model's context window is {context_size} tokens, but the prompt is {prompt_tokens} tokens"
            f"{asked}; shorten the prompt or lower max_tokens",
            param=param,
        )
        self.prompt_tokens = prompt_tokens
        self.max_tokens = max_tokens
        self.context_size = context_size


class Overloaded(InferenceError):
    """The wait queue is full; the caller should retry after `retry_after` seconds."""

    code = "rate_limit_exceeded"

    def __init__(self, message: str, *, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class WaitTimeout(InferenceError):
    """A request waited its bounded time for a model and gave up; retry after `retry_after`."""

    code = "queue_timeout"

    def __init__(self, message: str, *, retry_after: float) -> None:
        super().__init__(message, param="model")
        self.retry_after = retry_after


class InsufficientMemory(InferenceError):
    """A model does not fit its device even after evicting every idle model; names the numbers."""

    code = "insufficient_memory"

    def __init__(self, message: str, *, needed: int, available: int, device: str) -> None:
        super().__init__(message, param="model")
        self.needed = needed
        self.available = available
        self.device = device


class BusyTimeout(InferenceError):
    """A request ran past the busy watchdog's limit; it was cancelled and its model recycled."""

    code = "busy_timeout"


class InvalidRequest(InferenceError):
    """The request asks for something this model cannot do as asked (a bad grammar, an unknown tool)."""

    code = "invalid_request"
