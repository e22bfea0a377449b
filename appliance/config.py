"""Settings: the one pydantic-settings class every part of the server is configured from.

Each setting is read from a command-line flag, then `APPLIANCE_<NAME>`, then LocalAI's environment
names (`LOCALAI_<NAME>` and the bare LocalAI name), then its default. The CLI builds its flags from
the same table (`SETTING_FLAGS`), so `--help`, the README and the code cannot drift apart.
"""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import AliasChoices, Field, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from appliance.config_values import (
    parse_address,
    parse_duration,
    parse_galleries,
    parse_image_size,
    parse_size,
    split_list,
)

ENV_PREFIX = "APPLIANCE_"


def _env(name: str, *localai: str) -> AliasChoices:
    """Environment names for a setting: ours first, then LocalAI's in its own order."""
    return AliasChoices(ENV_PREFIX + name, *localai)


# Extra flag spellings beyond the canonical `--field-name` (LocalAI's aliases and short flags).
SETTING_FLAGS: dict[str, tuple[str, ...]] = {
    "config_file": ("--models-config-file",),
    "threads": ("-t",),
    "api_keys": ("--api-key",),
    "disable_web_ui": ("--disable-webui",),
    "preload_models": ("--load-to-memory",),
}

class Settings(BaseSettings):
    """Everything that configures one server. A setting's name is its env var without the prefix."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        populate_by_name=True,
        extra="forbid",
        case_sensitive=False,
        frozen=True,
    )

    models_path: Path = Field(
        Path("./models"),
        description="Folder with model files and LocalAI-style YAML model configs",
        validation_alias=_env("MODELS_PATH", "LOCALAI_MODELS_PATH", "MODELS_PATH"),
    )
    config_file: Path | None = Field(
        None,
        description="A YAML file holding one model config or a list of them",
        validation_alias=_env("CONFIG_FILE", "LOCALAI_MODELS_CONFIG_FILE", "CONFIG_FILE"),
    )
    data_path: Path = Field(
        Path("./data"),
        description="Where vector stores and generated files live",
        validation_alias=_env("DATA_PATH"),
    )
    address: str = Field(
        "127.0.0.1:8080",
        description="host:port to listen on (':8080' means every interface)",
        validation_alias=_env("ADDRESS", "LOCALAI_ADDRESS", "ADDRESS"),
    )
    threads: int | None = Field(
        None,
        ge=1,
        description="Threads per model (default: the backend's choice)",
        validation_alias=_env("THREADS", "LOCALAI_THREADS", "THREADS"),
    )
    context_size: int | None = Field(
        None,
        ge=1,
        description="Default context size for models whose config sets none",
        validation_alias=_env("CONTEXT_SIZE", "LOCALAI_CONTEXT_SIZE", "CONTEXT_SIZE"),
    )
    f16: bool = Field(
        False,
        description="Use float16 where a backend supports it (GPU)",
        validation_alias=_env("F16", "LOCALAI_F16", "F16"),
    )
    api_keys: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="API keys, comma-separated; when set, every route but health and the UI shell needs one",
        validation_alias=_env("API_KEYS", "LOCALAI_API_KEY", "LOCALAI_API_KEYS", "API_KEY"),
    )
    api_keys_file: Path | None = Field(
        None,
        description="File of API keys: one per line ('#' comments) or a JSON list",
        validation_alias=_env("API_KEYS_FILE"),
    )
    cors: bool = Field(
        False,
        description="Send CORS headers (only for --cors-allow-origins)",
        validation_alias=_env("CORS", "LOCALAI_CORS", "CORS"),
    )
    cors_allow_origins: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Origins allowed by CORS, comma-separated ('*' for any)",
        validation_alias=_env("CORS_ALLOW_ORIGINS", "LOCALAI_CORS_ALLOW_ORIGINS", "CORS_ALLOW_ORIGINS"),
    )
    upload_limit: int = Field(
        15,
        ge=1,
        description="Largest request body in MB; bigger ones get 413",
        validation_alias=_env("UPLOAD_LIMIT", "LOCALAI_UPLOAD_LIMIT", "UPLOAD_LIMIT"),
    )
    disable_web_ui: bool = Field(
        False,
        description="Serve the API only, without the web UI",
        validation_alias=_env("DISABLE_WEB_UI", "LOCALAI_DISABLE_WEBUI", "DISABLE_WEBUI"),
    )
    parallel_requests: bool = Field(
        False,
        description=(
            "Decode several requests to one llama.cpp model together (4 slots per model, or the "
            "config's options: ['parallel:N']; each slot holds a full context_size of KV cache)"
        ),
        validation_alias=_env("PARALLEL_REQUESTS", "LOCALAI_PARALLEL_REQUESTS", "PARALLEL_REQUESTS"),
    )
    single_active_backend: bool = Field(
        False,
        description="Keep one model loaded at a time (same as --max-active-backends 1)",
        validation_alias=_env("SINGLE_ACTIVE_BACKEND", "LOCALAI_SINGLE_ACTIVE_BACKEND", "SINGLE_ACTIVE_BACKEND"),
    )
    max_active_backends: int = Field(
        0,
        ge=0,
        description="Most models loaded at once, least recently used evicted beyond it (0 = no limit)",
        validation_alias=_env("MAX_ACTIVE_BACKENDS", "LOCALAI_MAX_ACTIVE_BACKENDS", "MAX_ACTIVE_BACKENDS"),
    )
    enable_watchdog_idle: bool = Field(
        False,
        description="Unload models idle longer than --watchdog-idle-timeout",
        validation_alias=_env("ENABLE_WATCHDOG_IDLE", "LOCALAI_WATCHDOG_IDLE", "WATCHDOG_IDLE"),
    )
    watchdog_idle_timeout: float = Field(
        900.0,
        description="Idle time before a model is unloaded (seconds, or '15m')",
        validation_alias=_env("WATCHDOG_IDLE_TIMEOUT", "LOCALAI_WATCHDOG_IDLE_TIMEOUT", "WATCHDOG_IDLE_TIMEOUT"),
    )
    enable_watchdog_busy: bool = Field(
        False,
        description="Cancel requests running longer than --watchdog-busy-timeout and recycle the model",
        validation_alias=_env("ENABLE_WATCHDOG_BUSY", "LOCALAI_WATCHDOG_BUSY", "WATCHDOG_BUSY"),
    )
    watchdog_busy_timeout: float = Field(
        300.0,
        description="Longest a request may run when the busy watchdog is on (seconds, or '5m')",
        validation_alias=_env("WATCHDOG_BUSY_TIMEOUT", "LOCALAI_WATCHDOG_BUSY_TIMEOUT", "WATCHDOG_BUSY_TIMEOUT"),
    )
    max_queued_requests: int = Field(
        64,
        ge=0,
        description="Requests that may wait for a busy or loading model; beyond it they get 429",
        validation_alias=_env("MAX_QUEUED_REQUESTS"),
    )
    queue_timeout: float = Field(
        120.0,
        description="Longest a request waits for a model before a 503 (seconds, or '2m')",
        validation_alias=_env("QUEUE_TIMEOUT"),
    )
    memory_budget: int | None = Field(
        None,
        description="RAM for loaded models, e.g. '12GiB' or '800MB' (default: 75% of physical RAM)",
        validation_alias=_env("MEMORY_BUDGET"),
    )
    batch_max_size: int = Field(
        32,
        ge=1,
        description="Most inputs one embedding or rerank backend call takes from concurrent requests",
        validation_alias=_env("BATCH_MAX_SIZE"),
    )
    batch_max_wait_ms: float = Field(
        20.0,
        ge=0,
        description="Longest a batch waits for more requests while they keep arriving (ms); a quiet quarter of it ends the wait",
        validation_alias=_env("BATCH_MAX_WAIT_MS"),
    )
    batch_max_tokens: int = Field(
        16384,
        ge=1,
        description="Most estimated tokens in one embedding or rerank backend call",
        validation_alias=_env("BATCH_MAX_TOKENS"),
    )
    disable_batching: bool = Field(
        False,
        description="Send every embedding and rerank request to the model on its own",
        validation_alias=_env("DISABLE_BATCHING"),
    )
    truncate_inputs: bool = Field(
        True,
        description="Truncate embedding inputs longer than the model reads (off: refuse them with 400)",
        validation_alias=_env("TRUNCATE_INPUTS"),
    )
    file_upload_limit: int = Field(
        512,
        ge=1,
        description="Largest file in MB that POST /v1/files takes (other bodies keep --upload-limit)",
        validation_alias=_env("FILE_UPLOAD_LIMIT"),
    )
    default_embedding_model: str = Field(
        "all-minilm-l6-v2",
        min_length=1,
        description="Embedding model of a vector store (documents) created without embedding_model",
        validation_alias=_env("DEFAULT_EMBEDDING_MODEL"),
    )
    retrieval_min_similarity: float = Field(
        0.25,
        ge=-1.0,
        le=1.0,
        description=(
            "Relevance floor of document search: a chunk whose cosine to the query is below it is kept only "
            "when it holds every query word"
        ),
        validation_alias=_env("RETRIEVAL_MIN_SIMILARITY"),
    )
    ingest_workers: int = Field(
        2, ge=1, le=16, description="Document ingest jobs run at once", validation_alias=_env("INGEST_WORKERS")
    )
    extraction_timeout: float = Field(
        300.0,
        gt=0,
        description="Longest one document's text extraction may take before it fails (seconds, or '5m')",
        validation_alias=_env("EXTRACTION_TIMEOUT"),
    )
    extraction_memory_mb: int = Field(
        2048,
        ge=256,
        description="Memory limit in MB of the child process that extracts a document's text",
        validation_alias=_env("EXTRACTION_MEMORY_MB"),
    )
    document_max_pages: int = Field(
        5000,
        ge=1,
        description="Most pages a PDF may have; a longer one fails with too_many_pages",
        validation_alias=_env("DOCUMENT_MAX_PAGES"),
    )
    image_max_size: str = Field(
        "1024x1024",
        description="Largest image a request may ask for, as WIDTHxHEIGHT: any shape with at most that many pixels",
        validation_alias=_env("IMAGE_MAX_SIZE"),
    )
    image_max_n: int = Field(
        4,
        ge=1,
        description="Most images one images/generations request may ask for (n)",
        validation_alias=_env("IMAGE_MAX_N"),
    )
    generated_max_age: float = Field(
        3600.0,
        description="How long generated images stay downloadable by URL before they are deleted (seconds, or '1h')",
        validation_alias=_env("GENERATED_MAX_AGE"),
    )
    builtin_models: bool = Field(
        True,
        description="Offer the models that ship inside installed packages (all-minilm-l6-v2, smollm2-135m-instruct)",
        validation_alias=_env("BUILTIN_MODELS"),
    )
    preload_models: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Models to load at start, comma-separated; /readyz answers 503 until they are loaded",
        validation_alias=_env(
            "PRELOAD_MODELS", "LOCALAI_PRELOAD_MODELS", "PRELOAD_MODELS", "LOCALAI_LOAD_TO_MEMORY", "LOAD_TO_MEMORY"
        ),
    )
    galleries: Annotated[list[dict[str, str]], NoDecode] = Field(
        default_factory=list,
        description=(
            'Model galleries as LocalAI\'s JSON list [{"name": "...", "url": ".../index.yaml"}]; '
            "GET /models/available lists their models"
        ),
        validation_alias=_env("GALLERIES", "LOCALAI_GALLERIES", "GALLERIES"),
    )
    allow_private_downloads: bool = Field(
        False,
        description="Let downloads reach private, loopback and link-local addresses (LAN mirrors, tests)",
        validation_alias=_env("ALLOW_PRIVATE_DOWNLOADS"),
    )
    max_download_size: int = Field(
        64 * 1024**3,
        description="Largest model file a download may write, e.g. '64GiB' or '800MB'; a bigger one fails",
        validation_alias=_env("MAX_DOWNLOAD_SIZE"),
    )
    log_level: Literal["debug", "info", "warning", "error"] = Field(
        "info",
        description="Logging level: debug, info, warning or error",
        validation_alias=_env("LOG_LEVEL", "LOCALAI_LOG_LEVEL", "LOG_LEVEL"),
    )

    @field_validator("api_keys", "cors_allow_origins", "preload_models", mode="before")
    @classmethod
    def _lists(cls, value: Any) -> list[str]:
        return split_list(value)

    @field_validator("galleries", mode="before")
    @classmethod
    def _galleries(cls, value: Any) -> list[dict[str, str]]:
        return parse_galleries(value)

    @field_validator("max_download_size", mode="before")
    @classmethod
    def _max_download_size(cls, value: Any) -> int:
        return parse_size(value)

    @field_validator("memory_budget", mode="before")
    @classmethod
    def _memory(cls, value: Any) -> int | None:
        return None if value in (None, "") else parse_size(value)

    @field_validator(
        "watchdog_idle_timeout", "watchdog_busy_timeout", "queue_timeout", "extraction_timeout", mode="before"
    )
    @classmethod
    def _durations(cls, value: Any) -> float:
        return parse_duration(value)

    @field_validator("generated_max_age", mode="before")
    @classmethod
    def _generated_max_age(cls, value: Any) -> float:
        return parse_duration(value)

    @field_validator("image_max_size")
    @classmethod
    def _image_max_size(cls, value: str) -> str:
        return "x".join(str(side) for side in parse_image_size(value))

    @field_validator("log_level", mode="before")
    @classmethod
    def _log_level(cls, value: Any) -> Any:
        # LocalAI spells these "warn" and "trace"; map them onto Python's levels.
        if isinstance(value, str):
            value = value.strip().lower()
            return {"warn": "warning", "trace": "debug"}.get(value, value)
        return value

    @field_validator("address")
    @classmethod
    def _address(cls, value: str) -> str:
        parse_address(value)
        return value

    @model_validator(mode="after")
    def _single_active(self) -> Settings:
        if self.single_active_backend and self.max_active_backends != 1:
            object.__setattr__(self, "max_active_backends", 1)
        return self

    # Derived values: computed, never stored, so they cannot go stale.

    @property
    def host(self) -> str:
        return parse_address(self.address)[0]

    @property
    def port(self) -> int:
        return parse_address(self.address)[1]

    @property
    def upload_limit_bytes(self) -> int:
        return self.upload_limit * 1024 * 1024

    @property
    def binds_loopback_only(self) -> bool:
        host = self.host
        if host == "localhost":
            return True
        try:
            return ipaddress.ip_address(host).is_loopback
        except ValueError:
            return False  # a hostname may resolve anywhere


def env_names(field: str) -> list[str]:
    """Every environment variable name that sets `field`, ours first."""
    alias = Settings.model_fields[field].validation_alias
    assert isinstance(alias, AliasChoices)
    return [str(choice) for choice in alias.choices]


def flag_names(field: str) -> list[str]:
    """Every command-line flag that sets `field`, canonical first."""
    return ["--" + field.replace("_", "-"), *SETTING_FLAGS.get(field, ())]
