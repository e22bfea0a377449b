"""ModelConfig: LocalAI's YAML model config, parsed, checked for unsafe paths, and defaulted.

A YAML file holds one config (a mapping) or a list of them. Unknown fields are kept (LocalAI adds
fields faster than anyone can follow) and reported by ``unknown_fields``; wrong types and unsafe
paths are ``InvalidModelConfig`` / ``UnsafePath`` errors that name the file and the field.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import yaml
from pydantic import (
    AliasChoices,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    model_validator,
)

from inference.catalog.paths import ensure_backend_name, ensure_relative
from inference.catalog.usecases import Usecase, infer_usecases, parse_usecases
from inference.errors import InvalidModelConfig, UnsafePath

logger = logging.getLogger(__name__)

MAX_CONFIG_BYTES = 4 * 1024 * 1024
_BOOL_TAG = "tag:yaml.org,2002:bool"


class _ConfigYamlLoader(yaml.SafeLoader):
    """SafeLoader reading booleans as YAML 1.2 does (Go's yaml.v3, which LocalAI uses): only
    true/false. Plain YAML 1.1 would turn ``language: no`` or ``stopwords: [on]`` into booleans."""


_ConfigYamlLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != _BOOL_TAG]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_ConfigYamlLoader.add_implicit_resolver(
    _BOOL_TAG, re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)


def _as_list(value: Any) -> Any:
    """LocalAI YAMLs sometimes give one string where a list is expected."""
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    return value


def _as_csv(value: Any) -> Any:
    """``tensor_split`` is a comma-separated string in LocalAI; accept a YAML list too."""
    if isinstance(value, list | tuple):
        return ",".join(str(item) for item in value)
    return value


StrList = Annotated[list[str], BeforeValidator(_as_list)]

_LENIENT = ConfigDict(extra="allow", frozen=True, coerce_numbers_to_str=True)


class Parameters(BaseModel):
    """``parameters:``: the model file and default sampling parameters (LocalAI PredictionOptions)."""

    model_config = _LENIENT

    model: str | None = None
    temperature: float | None = None
    top_p: float | None = None
    top_k: int | None = None
    min_p: float | None = None
    max_tokens: int | None = None
    seed: int | None = None
    repeat_penalty: float | None = None
    repeat_last_n: int | None = None
    presence_penalty: float | None = None
    frequency_penalty: float | None = None
    typical_p: float | None = None
    tfz: float | None = None
    n: int | None = None
    n_keep: int | None = None
    echo: bool | None = None
    batch: int | None = None
    ignore_eos: bool | None = None
    logit_bias: dict[str, float] | None = None
    language: str | None = None
    translate: bool | None = None
    negative_prompt: str | None = None
    negative_prompt_scale: float | None = None
    rope_freq_base: float | None = None
    rope_freq_scale: float | None = None
    clip_skip: int | None = None
    tokenizer: str | None = None


class TemplateConfig(BaseModel):
    """``template:``: LocalAI Go-template strings, or the model's own tokenizer template."""

    model_config = _LENIENT

    chat: str | None = None
    chat_message: str | None = None
    completion: str | None = None
    edit: str | None = None
    function: str | None = None
    use_tokenizer_template: bool = False
    join_chat_messages_by_character: str | None = None
    multimodal: str | None = None
    reply_prefix: str | None = None


class DiffusersConfig(BaseModel):
    """``diffusers:``: pipeline and scheduler selection for the diffusers backend."""

    model_config = _LENIENT

    pipeline_type: str | None = None
    scheduler_type: str | None = None
    cuda: bool = False
    enable_parameters: str | None = None
    img2img: bool = False
    clip_skip: int | None = None
    clip_model: str | None = None
    clip_subfolder: str | None = None
    control_net: str | None = None


class TTSConfig(BaseModel):
    """``tts:``: the voice (a file under the models path for piper) and a reference audio path."""

    model_config = _LENIENT

    voice: str | None = None
    audio_path: str | None = None


class DownloadFile(BaseModel):
    """One entry of ``download_files:``."""

    model_config = _LENIENT

    filename: str
    uri: str
    sha256: str | None = None


@dataclass(frozen=True)
class ModelDefaults:
    """Server defaults (``--context-size``, ``--threads``, ``--f16``, ``--parallel-requests``) for
    fields a YAML leaves unset."""

    context_size: int | None = None
    threads: int | None = None
    f16: bool = False
    parallel_requests: bool = False


class ModelConfig(BaseModel):
    """One model's config, as LocalAI's YAML spells it. Immutable; unknown top-level keys are kept."""

    model_config = _LENIENT

    name: str
    backend: str | None = None
    description: str | None = None
    usage: str | None = None
    parameters: Parameters = Field(default_factory=Parameters)

    context_size: int | None = None
    threads: int | None = None
    f16: bool | None = None
    debug: bool | None = None
    gpu_layers: int | None = None
    main_gpu: str | None = None
    tensor_split: Annotated[str | None, BeforeValidator(_as_csv)] = None
    mmap: bool | None = None
    mmlock: bool | None = Field(default=None, validation_alias=AliasChoices("mmlock", "mlock"))
    low_vram: bool | None = None
    numa: bool | None = None
    flash_attention: bool | str | None = None
    no_kv_offloading: bool | None = None
    cache_type_k: str | None = None
    cache_type_v: str | None = None
    rope_scaling: str | None = None
    rms_norm_eps: float | None = None
    ngqa: int | None = None
    yarn_ext_factor: float | None = None
    yarn_attn_factor: float | None = None
    yarn_beta_fast: float | None = None
    yarn_beta_slow: float | None = None
    mirostat: int | None = None
    mirostat_eta: float | None = None
    mirostat_tau: float | None = None
    type: str | None = None
    quantization: str | None = None
    load_format: str | None = None
    dtype: str | None = None
    trust_remote_code: bool | None = None
    compute_type: str | None = None
    cuda: bool | None = None
    mmproj: str | None = None
    draft_model: str | None = None
    n_draft: int | None = None
    lora_adapter: str | None = None
    lora_base: str | None = None
    lora_scale: float | None = None
    lora_adapters: StrList = Field(default_factory=list)
    lora_scales: list[float] = Field(default_factory=list)
    no_mulmatq: bool | None = None
    prompt_cache_path: str | None = None
    prompt_cache_all: bool | None = None
    prompt_cache_ro: bool | None = None

    embeddings: bool | None = None
    reranking: bool | None = None
    known_usecases: StrList = Field(default_factory=list)

    template: TemplateConfig = Field(default_factory=TemplateConfig)
    system_prompt: str | None = None
    roles: dict[str, str] = Field(default_factory=dict)
    stopwords: StrList = Field(default_factory=list)
    cutstrings: StrList = Field(default_factory=list)
    extract_regex: StrList = Field(default_factory=list)
    trimspace: StrList = Field(default_factory=list)
    trimsuffix: StrList = Field(default_factory=list)
    grammar: str | None = None
    function: dict[str, Any] = Field(default_factory=dict)

    diffusers: DiffusersConfig = Field(default_factory=DiffusersConfig)
    step: int | None = None
    cfg_scale: float | None = None
    tts: TTSConfig = Field(default_factory=TTSConfig)

    download_files: list[DownloadFile] = Field(default_factory=list)
    pinned: bool = False
    disabled: bool = False
    # Ours, not LocalAI's: serve several requests at once (llama.cpp: `parallel:N` slots in
    # `options`, 4 by default). Unset means the server's --parallel-requests.
    parallel_requests: bool | None = None
    options: StrList = Field(default_factory=list)
    overrides: StrList = Field(default_factory=list)

    @model_validator(mode="after")
    def _check_paths(self) -> ModelConfig:
        if not self.name.strip():
            raise ValueError("name must not be empty")
        ensure_relative(self.name, field="name")
        if self.backend is not None:
            ensure_backend_name(self.backend)
        for field, value in self._path_fields():
            if value:
                ensure_relative(value, field=field)
        return self

    def _path_fields(self) -> list[tuple[str, str | None]]:
        """Every field that names a file under the models path (all are checked for safety)."""
        fields: list[tuple[str, str | None]] = [
            ("parameters.model", self.parameters.model),
            ("mmproj", self.mmproj),
            ("draft_model", self.draft_model),
            ("lora_adapter", self.lora_adapter),
            ("lora_base", self.lora_base),
            ("prompt_cache_path", self.prompt_cache_path),
            ("tts.voice", self.tts.voice),
            ("tts.audio_path", self.tts.audio_path),
        ]
        fields += [(f"lora_adapters[{i}]", v) for i, v in enumerate(self.lora_adapters)]
        fields += [
            (f"download_files[{i}].filename", f.filename) for i, f in enumerate(self.download_files)
        ]
        return fields

    def referenced_files(self) -> list[str]:
        """Relative paths this config points at under the models path (model, mmproj, downloads...)."""
        return [value for _field, value in self._path_fields() if value]

    def unknown_fields(self) -> list[str]:
        """Top-level keys the YAML set that are not declared fields (kept, never fatal)."""
        return list(self.model_extra or {})

    @property
    def usecases(self) -> frozenset[Usecase]:
        """``known_usecases`` when given, else inferred from the backend and its flags."""
        if self.known_usecases:
            return parse_usecases(self.known_usecases)
        return infer_usecases(
            self.backend,
            embeddings=bool(self.embeddings),
            reranking=bool(self.reranking),
            pipeline_type=self.diffusers.pipeline_type,
        )

    def with_defaults(self, defaults: ModelDefaults) -> ModelConfig:
        """A copy with the server defaults filled into fields the YAML left unset."""
        update: dict[str, Any] = {}
        if self.context_size is None and defaults.context_size is not None:
            update["context_size"] = defaults.context_size
        if self.threads is None and defaults.threads is not None:
            update["threads"] = defaults.threads
        if self.f16 is None:
            update["f16"] = defaults.f16
        if self.parallel_requests is None:
            update["parallel_requests"] = defaults.parallel_requests
        return self.model_copy(update=update) if update else self


def wants_gpu(config: ModelConfig) -> bool:
    """Whether the config asks for a GPU: ``gpu_layers`` > 0, ``cuda: true`` or ``diffusers.cuda``."""
    return (config.gpu_layers or 0) > 0 or bool(config.cuda) or config.diffusers.cuda


@dataclass(frozen=True)
class ConfigFileResult:
    """What one YAML file yielded: the valid configs and, per bad item, the reason it was skipped."""

    configs: tuple[ModelConfig, ...]
    errors: tuple[InvalidModelConfig, ...]


def parse_config_file(path: Path) -> ConfigFileResult:
    """Read a YAML file of one config or a list; a bad item is an error, the others still load."""
    try:
        size = path.stat().st_size
        if size > MAX_CONFIG_BYTES:
            raise InvalidModelConfig(f"{path}: {size} bytes is too large for a model config")
        text = path.read_text(encoding="utf-8")
        document = yaml.load(text, Loader=_ConfigYamlLoader)  # noqa: S506 - a SafeLoader subclass
    except InvalidModelConfig as exc:
        return ConfigFileResult((), (exc,))
    except (OSError, UnicodeDecodeError) as exc:
        return ConfigFileResult((), (InvalidModelConfig(f"{path}: cannot read: {exc}"),))
    except yaml.YAMLError as exc:
        return ConfigFileResult((), (InvalidModelConfig(f"{path}: invalid YAML: {_one_line(exc)}"),))

    if document is None:
        return ConfigFileResult((), (InvalidModelConfig(f"{path}: the file holds no model config"),))
    items: Sequence[Any] = document if isinstance(document, list) else [document]
    configs: list[ModelConfig] = []
    errors: list[InvalidModelConfig] = []
    for index, item in enumerate(items):
        where = f"{path}: item {index + 1}" if isinstance(document, list) else str(path)
        try:
            configs.append(_config_from_item(item, where))
        except InvalidModelConfig as exc:
            errors.append(exc)
    return ConfigFileResult(tuple(configs), tuple(errors))


def load_config_file(path: Path) -> list[ModelConfig]:
    """The configs in a YAML file; raises InvalidModelConfig (naming the file) on any problem."""
    result = parse_config_file(path)
    if result.errors:
        raise result.errors[0]
    return list(result.configs)


def _config_from_item(item: Any, where: str) -> ModelConfig:
    if not isinstance(item, dict):
        kind = type(item).__name__
        raise InvalidModelConfig(f"{where}: expected a mapping of config fields, got {kind}")
    if "name" not in item or item["name"] in (None, ""):
        raise InvalidModelConfig(f"{where}: missing required field 'name'", param="name")
    if not all(isinstance(key, str) for key in item):
        bad = next(key for key in item if not isinstance(key, str))
        raise InvalidModelConfig(f"{where}: field names must be strings, got {bad!r}")
    label = f"{where}: model {item['name']!r}"
    try:
        return ModelConfig.model_validate(item)
    except UnsafePath as exc:
        raise UnsafePath(f"{label}: {exc.message}", param=exc.param) from None
    except ValidationError as exc:
        raise InvalidModelConfig(f"{label}: {_describe(exc)}", param=_first_field(exc)) from None


def _field_path(loc: tuple[int | str, ...]) -> str:
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def _first_field(exc: ValidationError) -> str | None:
    errors = exc.errors()
    return _field_path(errors[0]["loc"]) if errors and errors[0]["loc"] else None


def _describe(exc: ValidationError) -> str:
    parts = []
    for error in exc.errors()[:5]:
        field = _field_path(error["loc"]) or "config"
        value = repr(error.get("input"))
        value = value if len(value) <= 60 else value[:57] + "..."
        parts.append(f"field {field!r}: {error['msg']} (got {value})")
    more = len(exc.errors()) - 5
    return "; ".join(parts) + (f"; and {more} more" if more > 0 else "")


def _one_line(exc: Exception) -> str:
    return " ".join(str(exc).split())
