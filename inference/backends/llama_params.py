"""What a llama.cpp model loads with (LocalAI config fields mapped onto ``Llama`` arguments) and what
it costs (weights + KV cache + compute buffers, from the GGUF header). Pure: nothing here imports
llama_cpp or loads a model, so the scheduler can plan before anything is in memory.
"""

from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from inference.backends.base import MemoryEstimate
from inference.catalog.gguf import GGUFInfo
from inference.errors import InvalidModelConfig

if TYPE_CHECKING:
    from inference.catalog.config import ModelConfig

logger = logging.getLogger(__name__)

# The context used when the config sets none: the model's trained length, capped here, because
# trained lengths of 128k would reserve gigabytes of KV cache nobody asked for.
DEFAULT_CONTEXT = 4096
DEFAULT_BATCH = 512
MAX_UBATCH = 512
COMPUTE_OVERHEAD = 16 * 1024 * 1024
CONTEXT_PADDING = 256  # llama.cpp rounds the KV cache up to a multiple of this many positions
DEFAULT_PARALLEL_SLOTS = 4  # sequences decoded together when parallel requests are on
MAX_PARALLEL_SLOTS = 256  # llama.cpp's LLAMA_MAX_SEQ
_THROWAWAY_BATCH = 8  # the unused context of a parallel model's ``Llama``
_CPU_MAX = Path("/sys/fs/cgroup/cpu.max")
_SHARD = re.compile(r"^(?P<stem>.+)-(?P<index>\d{5})-of-(?P<count>\d{5})\.gguf$")

# KV cache element types LocalAI's cache_type_k/v accept: name -> (ggml type id, bytes per element).
KV_CACHE_TYPES: dict[str, tuple[int, float]] = {
    "f32": (0, 4.0), "f16": (1, 2.0), "bf16": (30, 2.0), "q8_0": (8, 34 / 32), "q4_0": (2, 18 / 32),
    "q4_1": (3, 20 / 32), "iq4_nl": (20, 18 / 32), "q5_0": (6, 22 / 32), "q5_1": (7, 24 / 32),
}
LLAMA_POOLING_TYPE_MEAN = 1  # llama_cpp.LLAMA_POOLING_TYPE_MEAN, without importing llama_cpp
_TRUE = {"1", "true", "on", "yes", "enabled"}
_FALSE = {"0", "false", "off", "no", "disabled", "auto", ""}


@dataclass(frozen=True)
class LlamaLoadPlan:
    """Arguments for ``llama_cpp.Llama`` derived from a model config and its GGUF header."""

    n_ctx: int
    n_batch: int
    n_threads: int
    n_threads_batch: int
    n_gpu_layers: int  # -1 = every layer
    n_seq: int = 1  # parallel slots: sequences decoded together, each with its own n_ctx of KV cache
    main_gpu: int = 0
    tensor_split: tuple[float, ...] | None = None
    use_mmap: bool = True
    use_mlock: bool = False
    flash_attn: bool = False
    offload_kqv: bool = True
    rope_freq_base: float = 0.0  # 0 = from the model
    rope_freq_scale: float = 0.0
    embedding: bool = False
    pooling_mean: bool = False  # embeddings from a file that sets no pooling: mean-pool
    cache_type_k: str = "f16"
    cache_type_v: str = "f16"
    numa: bool = False
    lora_path: str | None = None
    lora_base: str | None = None
    lora_scale: float = 1.0

    @property
    def n_ubatch(self) -> int:
        return min(self.n_batch, MAX_UBATCH)

    @property
    def cache_positions(self) -> int:
        """KV cache cells for one sequence: ``n_ctx`` rounded up the way llama.cpp rounds it."""
        return -(-self.n_ctx // CONTEXT_PADDING) * CONTEXT_PADDING

    def offloaded_layers(self, block_count: int) -> int:
        if self.n_gpu_layers < 0:
            return block_count
        return min(self.n_gpu_layers, block_count)

    def llama_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for ``Llama(model_path, **kwargs)`` (llama-cpp-python 0.3.x).

        With parallel slots the ``Llama`` only provides the weights and the vocabulary: its own
        context is the smallest llama.cpp makes, and the batch engine builds the real one.
        """
        parallel = self.n_seq > 1
        kwargs: dict[str, Any] = {
            "n_ctx": CONTEXT_PADDING if parallel else self.n_ctx,
            "n_batch": _THROWAWAY_BATCH if parallel else self.n_batch,
            "n_ubatch": _THROWAWAY_BATCH if parallel else self.n_ubatch,
            "n_threads": self.n_threads,
            "n_threads_batch": self.n_threads_batch,
            "n_gpu_layers": self.n_gpu_layers,
            "main_gpu": self.main_gpu,
            "tensor_split": list(self.tensor_split) if self.tensor_split else None,
            "use_mmap": self.use_mmap,
            "use_mlock": self.use_mlock,
            "flash_attn": self.flash_attn,
            "offload_kqv": self.offload_kqv,
            "rope_freq_base": self.rope_freq_base,
            "rope_freq_scale": self.rope_freq_scale,
            "embedding": self.embedding,
            "numa": self.numa,
            "verbose": False,
        }
        if self.pooling_mean:
            kwargs["pooling_type"] = LLAMA_POOLING_TYPE_MEAN
        if self.cache_type_k != "f16":
            kwargs["type_k"] = KV_CACHE_TYPES[self.cache_type_k][0]
        if self.cache_type_v != "f16":
            kwargs["type_v"] = KV_CACHE_TYPES[self.cache_type_v][0]
        if self.lora_path:
            kwargs.update(lora_path=self.lora_path, lora_base=self.lora_base, lora_scale=self.lora_scale)
        return kwargs


def plan_load(config: ModelConfig, models_path: Path, info: GGUFInfo) -> LlamaLoadPlan:
    """Map LocalAI's model config onto llama.cpp's parameters; bad values are `InvalidModelConfig`."""
    name = config.name
    if config.context_size is not None and config.context_size < 1:
        raise InvalidModelConfig(f"model {name!r}: context_size must be at least 1", param="context_size")
    batch = config.parameters.batch
    if batch is not None and batch < 1:
        raise InvalidModelConfig(f"model {name!r}: parameters.batch must be at least 1", param="parameters.batch")
    threads = config.threads if config.threads and config.threads > 0 else default_threads()
    gpu_layers = config.gpu_layers or 0
    if config.low_vram:
        logger.debug("event=llama_option_ignored model=%s option=low_vram", name)
    pooling = info.pooling_type
    return LlamaLoadPlan(
        n_ctx=planned_context(config, info),
        n_batch=batch or DEFAULT_BATCH,
        n_threads=threads,
        n_threads_batch=threads if config.threads and config.threads > 0 else max(threads, _cpu_count()),
        n_gpu_layers=-1 if gpu_layers < 0 else gpu_layers,
        n_seq=parallel_slots(config),
        main_gpu=_main_gpu(config),
        tensor_split=_tensor_split(config),
        use_mmap=config.mmap if config.mmap is not None else True,
        use_mlock=bool(config.mmlock),
        flash_attn=_flash_attention(config),
        offload_kqv=not config.no_kv_offloading,
        rope_freq_base=config.parameters.rope_freq_base or 0.0,
        rope_freq_scale=config.parameters.rope_freq_scale or 0.0,
        embedding=bool(config.embeddings),
        pooling_mean=bool(config.embeddings) and (pooling is None or pooling == 0),
        cache_type_k=_cache_type(config, "cache_type_k", config.cache_type_k),
        cache_type_v=_cache_type(config, "cache_type_v", config.cache_type_v),
        numa=bool(config.numa),
        lora_path=str(models_path / config.lora_adapter) if config.lora_adapter else None,
        lora_base=str(models_path / config.lora_base) if config.lora_base else None,
        lora_scale=config.lora_scale if config.lora_scale is not None else 1.0,
    )


def planned_context(config: ModelConfig, info: GGUFInfo) -> int:
    """``context_size`` from the config, else the model's trained length capped at `DEFAULT_CONTEXT`."""
    if config.context_size:
        return config.context_size
    return min(info.context_length or DEFAULT_CONTEXT, DEFAULT_CONTEXT)


def parallel_slots(config: ModelConfig) -> int:
    """Sequences one loaded model decodes together: 1 unless parallel requests are on for it
    (``--parallel-requests``, or ``parallel_requests: true`` in its YAML); then LocalAI's
    ``options: ["parallel:N"]`` (or ``n_parallel:N``), else `DEFAULT_PARALLEL_SLOTS`. An explicit
    ``parallel:1`` keeps one request at a time. Embedding models always decode one at a time."""
    if not config.parallel_requests or config.embeddings:
        return 1
    value: str | None = None
    for option in config.options:
        name, _, text = option.partition(":")
        if name.strip() in ("parallel", "n_parallel"):
            value = text.strip()
    if value is None:
        return DEFAULT_PARALLEL_SLOTS
    try:
        slots = int(value)
    except ValueError:
        slots = 0
    if not 1 <= slots <= MAX_PARALLEL_SLOTS:
        raise InvalidModelConfig(
            f"model {config.name!r}: option parallel:{value} must be a whole number from 1 to {MAX_PARALLEL_SLOTS}",
            param="options",
        )
    return slots


def estimate_memory(info: GGUFInfo, plan: LlamaLoadPlan) -> MemoryEstimate:
    """RAM and VRAM once loaded: weights, the KV cache for ``plan.n_ctx`` in each of ``plan.n_seq``
    slots, and compute buffers.

    Offloaded layers (``gpu_layers``) move their share of weights and KV cache to VRAM, with the
    compute buffers; the rest stays in RAM. An approximation meant for admission, not accounting.
    """
    weights = info.tensor_data_size + shard_bytes(info)
    kv = kv_cache_bytes(info, plan.cache_positions * plan.n_seq, plan.cache_type_k, plan.cache_type_v)
    compute = compute_buffer_bytes(info, plan)
    layers = info.block_count or 0
    offloaded = plan.offloaded_layers(layers)
    if offloaded <= 0 or layers <= 0:
        return MemoryEstimate(ram=weights + kv + compute)
    share = offloaded / layers
    weights_gpu = int(weights * share)
    kv_gpu = int(kv * share) if plan.offload_kqv else 0
    return MemoryEstimate(ram=weights - weights_gpu + kv - kv_gpu, vram=weights_gpu + kv_gpu + compute)


def kv_cache_bytes(info: GGUFInfo, n_ctx: int, type_k: str = "f16", type_v: str = "f16") -> int:
    """K and V for every layer and position: n_layer x n_ctx x n_head_kv x head_dim x element size."""
    layers, heads_kv = info.block_count, info.head_count_kv
    key, value = info.key_length, info.value_length
    if not layers or not heads_kv or not key or not value:
        return 0
    per_position = heads_kv * (key * KV_CACHE_TYPES[type_k][1] + value * KV_CACHE_TYPES[type_v][1])
    return int(layers * n_ctx * per_position)


def compute_buffer_bytes(info: GGUFInfo, plan: LlamaLoadPlan) -> int:
    """Scratch for one micro-batch: activations, logits and (without flash attention) the KQ scores."""
    embd = info.embedding_length or 0
    ff = info.feed_forward_length or 4 * embd
    vocab = info.vocab_size or 0
    ubatch = plan.n_ubatch
    total = 4 * ubatch * (vocab + 4 * embd + 2 * ff)
    if not plan.flash_attn:
        total += 4 * ubatch * plan.n_ctx * (info.head_count or 1)
    return total + COMPUTE_OVERHEAD


def shard_bytes(info: GGUFInfo) -> int:
    """Size of the other files of a split model (``name-00001-of-00003.gguf``); 0 for one file."""
    count = info.metadata.get("split.count")
    match = _SHARD.match(info.path.name)
    if not isinstance(count, int) or count < 2 or match is None:
        return 0
    total = 0
    for index in range(1, count + 1):
        if index == int(match["index"]):
            continue
        sibling = info.path.with_name(f"{match['stem']}-{index:05d}-of-{count:05d}.gguf")
        try:
            total += sibling.stat().st_size
        except OSError:
            logger.debug("event=gguf_shard_missing path=%s", sibling)
    return total


def default_threads() -> int:
    """Physical cores this process may use: llama.cpp decodes fastest with one thread per core."""
    cpus = _allowed_cpus()
    cores: set[tuple[str, str]] = set()
    try:
        for block in Path("/proc/cpuinfo").read_text().split("\n\n"):
            fields = {k.strip(): v.strip() for k, _, v in (line.partition(":") for line in block.splitlines())}
            if "processor" in fields and int(fields["processor"]) in cpus:
                cores.add((fields.get("physical id", "0"), fields.get("core id", fields["processor"])))
    except (OSError, ValueError):
        cores = set()
    count = len(cores) or len(cpus)
    quota = _cgroup_cpus()
    return max(1, min(count, quota) if quota else count)


def _cpu_count() -> int:
    quota = _cgroup_cpus()
    count = len(_allowed_cpus())
    return max(1, min(count, quota) if quota else count)


def _allowed_cpus() -> set[int]:
    try:
        return set(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return set(range(os.cpu_count() or 1))


def _cgroup_cpus() -> int:
    """The container's CPU quota (cgroup v2 ``cpu.max``) rounded up; 0 when unlimited or unknown."""
    try:
        quota, _, period = _CPU_MAX.read_text().strip().partition(" ")
        if quota == "max":
            return 0
        return max(1, -(-int(quota) // int(period or "100000")))
    except (OSError, ValueError):
        return 0


def _main_gpu(config: ModelConfig) -> int:
    if not config.main_gpu:
        return 0
    try:
        return int(config.main_gpu)
    except ValueError:
        raise InvalidModelConfig(
            f"model {config.name!r}: main_gpu must be a device index, got {config.main_gpu!r}", param="main_gpu"
        ) from None


def _tensor_split(config: ModelConfig) -> tuple[float, ...] | None:
    if not config.tensor_split:
        return None
    try:
        parts = tuple(float(part) for part in config.tensor_split.split(",") if part.strip())
    except ValueError:
        raise InvalidModelConfig(
            f"model {config.name!r}: tensor_split must be comma-separated numbers, got {config.tensor_split!r}",
            param="tensor_split",
        ) from None
    return parts or None


def _flash_attention(config: ModelConfig) -> bool:
    value = config.flash_attention
    if value is None or isinstance(value, bool):
        return bool(value)
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise InvalidModelConfig(
        f"model {config.name!r}: flash_attention must be true, false, on, off or auto, got {value!r}",
        param="flash_attention",
    )


def _cache_type(config: ModelConfig, field: str, value: str | None) -> str:
    if not value:
        return "f16"
    name = value.strip().lower()
    if name not in KV_CACHE_TYPES:
        raise InvalidModelConfig(
            f"model {config.name!r}: {field} {value!r} is not one of {', '.join(KV_CACHE_TYPES)}", param=field
        )
    return name
