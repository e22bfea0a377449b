"""DiffusersBackend: images (text-to-image, image-to-image) and sound from one diffusers pipeline folder.

What a model does follows from its pipeline: an audio pipeline (AudioLDM and kin, see
``inference.catalog.usecases.AUDIO_PIPELINES``) serves SOUND, anything else IMAGE. Before loading that is
read from ``diffusers.pipeline_type`` or the folder's ``model_index.json``; once loaded, from the
pipeline itself. torch and diffusers are imported by ``load``, never by importing this module.
"""

from __future__ import annotations

import gc
import inspect
import io
import json
import logging
import math
import secrets
import sys
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, ClassVar

from inference.backends.base import Backend, MemoryEstimate
from inference.backends.st_location import weights_size
from inference.capabilities import Capability
from inference.catalog.config import wants_gpu
from inference.catalog.usecases import Usecase, is_audio_pipeline
from inference.errors import BackendUnavailable, InvalidModelConfig, InvalidRequest
from inference.media import AudioChunk, GeneratedImages, ImageRequest, SoundRequest

if TYPE_CHECKING:
    from inference.catalog.config import ModelConfig

logger = logging.getLogger(__name__)

MIB = 1024 * 1024
WEIGHTS_FACTOR = 1.2  # weights in memory plus what torch adds around them
ALLOWANCE = 256 * MIB  # activations of one denoising step at a moderate size, the module objects
DEFAULT_IMAGE_STEPS = 15  # LocalAI's, when neither the request nor the config's `step` says
DEFAULT_SOUND_STEPS = 10  # AudioLDM's own default
MAX_SOURCE_PIXELS = 4096 * 4096  # a source image is decoded whole before it is resized
DEFAULT_STRENGTH = 0.8  # image-to-image: how far the source may be changed (diffusers' default)
SOUND_GUIDANCE_DEFAULT = 2.5  # AudioLDM's default guidance scale
# ElevenLabs' prompt_influence (0..1, default 0.3) as a guidance scale: 1 + 5 x influence, so 0 turns
# classifier-free guidance off, the default 0.3 gives AudioLDM's own 2.5 and 1 gives 6.
SOUND_GUIDANCE_PER_INFLUENCE = 5.0

# LocalAI's scheduler names (backend/python/diffusers/backend.py, after animatediff-cli and the
# A1111 names) -> diffusers scheduler class and config overrides. A ``k_`` prefix adds Karras sigmas.
SCHEDULERS: Mapping[str, tuple[str, Mapping[str, Any]]] = MappingProxyType(
    {
        "ddim": ("DDIMScheduler", {}),
        "pndm": ("PNDMScheduler", {"skip_prk_steps": True}),  # as Stable Diffusion ships it
        "heun": ("HeunDiscreteScheduler", {}),
        "unipc": ("UniPCMultistepScheduler", {}),
        "euler": ("EulerDiscreteScheduler", {}),
        "euler_a": ("EulerAncestralDiscreteScheduler", {}),
        "lms": ("LMSDiscreteScheduler", {}),
        "dpm_2": ("KDPM2DiscreteScheduler", {}),
        "dpm_2_a": ("KDPM2AncestralDiscreteScheduler", {}),
        "dpmpp_2m": ("DPMSolverMultistepScheduler", {"algorithm_type": "dpmsolver++", "solver_order": 2}),
        "dpmpp_sde": ("DPMSolverSinglestepScheduler", {}),
        "dpmpp_2m_sde": ("DPMSolverMultistepScheduler", {"algorithm_type": "sde-dpmsolver++"}),
    }
)
KARRAS = frozenset({"lms", "dpm_2", "dpm_2_a", "dpmpp_2m", "dpmpp_sde", "dpmpp_2m_sde"})
SCHEDULER_NAMES: tuple[str, ...] = tuple(
    name for base in SCHEDULERS for name in (base, f"k_{base}") if name == base or base in KARRAS
)


class GenerationCancelled(Exception):
    """Raised inside a pipeline's step callback once the request's cancel event is set."""


def scheduler_spec(name: str) -> tuple[str, dict[str, Any]]:
    """The diffusers class name and config overrides for a LocalAI scheduler name.

    Raises InvalidModelConfig (a 400) naming the accepted names for anything else.
    """
    key = name.strip().lower()
    base = key.removeprefix("k_")
    if key not in SCHEDULER_NAMES:
        raise InvalidModelConfig(
            f"diffusers.scheduler_type {name!r} is not known; use one of: {', '.join(SCHEDULER_NAMES)}",
            param="diffusers.scheduler_type",
        )
    class_name, overrides = SCHEDULERS[base]
    config = dict(overrides)
    if key != base:
        config["use_karras_sigmas"] = True
    return class_name, config


def build_scheduler(name: str, base_config: Mapping[str, Any]) -> Any:
    """A diffusers scheduler for LocalAI's ``name``, from a pipeline's scheduler config."""
    import diffusers

    class_name, overrides = scheduler_spec(name)
    return getattr(diffusers, class_name).from_config(dict(base_config), **overrides)


def pipeline_class_name(folder: Path) -> str | None:
    """``_class_name`` from a diffusers folder's ``model_index.json``, or None."""
    try:
        index = json.loads((folder / "model_index.json").read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError):
        return None
    name = index.get("_class_name") if isinstance(index, dict) else None
    return name if isinstance(name, str) else None


class DiffusersBackend(Backend):
    """A diffusers pipeline folder on CPU, or on CUDA when the config asks for a GPU and one exists.

    Config: ``diffusers.pipeline_type`` (a diffusers pipeline class name; default: the folder's own),
    ``diffusers.scheduler_type`` (LocalAI's names, see ``SCHEDULERS``), ``diffusers.clip_skip`` (or
    ``parameters.clip_skip``), ``step`` and ``cfg_scale`` (defaults for requests), ``f16`` (float16
    weights, on a GPU only), ``cuda``/``diffusers.cuda`` (use the GPU), ``parameters.negative_prompt``
    and ``parameters.seed`` (request defaults). Image-to-image reuses the loaded components.
    """

    name: ClassVar[str] = "diffusers"
    capabilities: ClassVar[frozenset[Capability]] = frozenset({Capability.IMAGE, Capability.SOUND})
    requires: ClassVar[tuple[str, ...]] = ("diffusers", "torch")
    extra: ClassVar[str] = "image"

    def __init__(self, config: ModelConfig, models_path: Path) -> None:
        super().__init__(config, models_path)
        self._pipe: Any = None
        self._img2img: Any = None
        self._device = "cpu"
        self._dtype: Any = None
        self._audio: bool | None = None

    # What this instance is

    def is_audio(self) -> bool:
        """Whether the pipeline makes sound: the loaded pipeline, else the config, else the folder."""
        if self._audio is None:
            pipeline_type = self.config.diffusers.pipeline_type
            if not pipeline_type:
                folder = self.model_path()
                pipeline_type = pipeline_class_name(folder) if folder is not None else None
            if pipeline_type:
                self._audio = is_audio_pipeline(pipeline_type)
            else:
                usecases = self.config.usecases
                self._audio = Usecase.SOUND in usecases and Usecase.IMAGE not in usecases
        return self._audio

    def supports(self, capability: Capability | str) -> bool:
        if capability == Capability.IMAGE:
            return not self.is_audio()
        if capability == Capability.SOUND:
            return self.is_audio()
        return super().supports(capability)

    def memory_estimate(self) -> MemoryEstimate:
        """Weights on disk x 1.2 + 256 MiB (half the weights with f16 on a GPU), in VRAM on a GPU."""
        folder = self.model_path()
        weights = weights_size(folder) if folder is not None and folder.is_dir() else 0
        if wants_gpu(self.config):
            if self.config.f16:
                weights //= 2
            return MemoryEstimate(ram=ALLOWANCE // 4, vram=int(weights * WEIGHTS_FACTOR) + ALLOWANCE)
        return MemoryEstimate(ram=int(weights * WEIGHTS_FACTOR) + ALLOWANCE)

    # Lifecycle

    def load(self) -> None:
        if self._pipe is not None:
            return
        scheduler_type = self.config.diffusers.scheduler_type
        if scheduler_type:
            scheduler_spec(scheduler_type)  # an unknown name fails before anything heavy loads
        folder = self._folder()
        try:
            import diffusers
            import torch
        except ImportError as exc:
            missing = (exc.name or "diffusers").partition(".")[0]
            raise BackendUnavailable(self.name, missing, self.extra) from exc
        diffusers.utils.logging.disable_progress_bar()
        if self.config.threads:
            torch.set_num_threads(self.config.threads)
        self._device = self._choose_device(torch)
        self._dtype = torch.float16 if self.config.f16 and self._device.startswith("cuda") else None
        started = time.monotonic()
        pipeline_class = self._pipeline_class(diffusers)
        kwargs: dict[str, Any] = {"local_files_only": True}
        if self._dtype is not None:
            kwargs["torch_dtype"] = self._dtype
        pipe = pipeline_class.from_pretrained(str(folder), **kwargs)
        if scheduler_type:
            pipe.scheduler = build_scheduler(scheduler_type, pipe.scheduler.config)
        pipe = pipe.to(self._device)
        pipe.set_progress_bar_config(disable=True)
        _restore_text_model_attribute(pipe)
        self._pipe = pipe
        self._audio = _is_audio_pipeline(pipe)
        logger.debug(
            "event=diffusers_loaded model=%s pipeline=%s scheduler=%s device=%s dtype=%s seconds=%.3f",
            self.config.name,
            type(pipe).__name__,
            type(pipe.scheduler).__name__,
            self._device,
            "float16" if self._dtype is not None else "float32",
            time.monotonic() - started,
        )

    def unload(self) -> None:
        pipe, self._pipe, self._img2img = self._pipe, None, None
        if pipe is None:
            return
        del pipe
        gc.collect()
        torch: Any = sys.modules.get("torch")
        if torch is not None and self._device.startswith("cuda") and torch.cuda.is_available():
            torch.cuda.empty_cache()
        logger.debug("event=diffusers_unloaded model=%s device=%s", self.config.name, self._device)

    def _folder(self) -> Path:
        folder = self.model_path()
        if folder is None or not (folder / "model_index.json").is_file():
            where = f"{self.config.parameters.model!r}" if self.config.parameters.model else "nothing"
            raise InvalidModelConfig(
                f"model {self.config.name!r}: parameters.model names {where}, which is not a diffusers "
                "pipeline folder (a folder with model_index.json) under the models path",
                param="parameters.model",
            )
        return folder

    def _pipeline_class(self, diffusers: Any) -> Any:
        name = self.config.diffusers.pipeline_type
        if not name:
            return diffusers.DiffusionPipeline  # the folder's own class, from model_index.json
        cls = getattr(diffusers, name.strip(), None)
        if not (isinstance(cls, type) and issubclass(cls, diffusers.DiffusionPipeline)):
            raise InvalidModelConfig(
                f"model {self.config.name!r}: diffusers.pipeline_type {name!r} is not a diffusers "
                "pipeline class (e.g. StableDiffusionPipeline, StableDiffusionXLPipeline, AudioLDMPipeline)",
                param="diffusers.pipeline_type",
            )
        return cls

    def _choose_device(self, torch: Any) -> str:
        if not wants_gpu(self.config) or not torch.cuda.is_available():
            return "cpu"
        main_gpu = (self.config.main_gpu or "").strip()
        index = int(main_gpu) if main_gpu.isdigit() else 0
        return f"cuda:{index if index < torch.cuda.device_count() else 0}"

    # Images

    def generate_images(self, request: ImageRequest, cancel: threading.Event | None = None) -> GeneratedImages:
        pipe = self._loaded(Capability.IMAGE)
        import torch

        seed = _seed(request.seed, self.config.parameters.seed)
        steps = request.steps or self.config.step or DEFAULT_IMAGE_STEPS
        kwargs: dict[str, Any] = {
            "prompt": request.prompt,
            "num_images_per_prompt": request.n,
            "generator": torch.Generator(device="cpu").manual_seed(seed),
        }
        negative = request.negative_prompt or self.config.parameters.negative_prompt
        if negative:
            kwargs["negative_prompt"] = negative
        cfg_scale = request.cfg_scale if request.cfg_scale is not None else self.config.cfg_scale
        if cfg_scale is not None:
            kwargs["guidance_scale"] = cfg_scale
        if request.source is not None:
            pipe = self._image_to_image()
            strength = request.strength if request.strength is not None else DEFAULT_STRENGTH
            kwargs["strength"] = strength
            # One prompt (and source) per image: diffusers deprecates one image for n prompts.
            kwargs["image"] = [self._source_image(request)] * request.n
            kwargs["prompt"] = [request.prompt] * request.n
            kwargs["num_images_per_prompt"] = 1
            if "negative_prompt" in kwargs:
                kwargs["negative_prompt"] = [kwargs["negative_prompt"]] * request.n
            # diffusers runs int(steps x strength) steps and refuses zero.
            steps = max(steps, math.ceil(1 / strength))
        else:
            if _needs_image(pipe):
                raise InvalidRequest(
                    f"model {self.config.name!r} ({type(pipe).__name__}) needs a source image: send it as 'file'",
                    param="file",
                )
            if request.width is not None and request.height is not None:
                kwargs["width"], kwargs["height"] = request.width, request.height
        kwargs["num_inference_steps"] = steps
        clip_skip = self.config.diffusers.clip_skip or self.config.parameters.clip_skip
        accepted = _call_parameters(pipe)
        if clip_skip and "clip_skip" in accepted:
            kwargs["clip_skip"] = clip_skip
        if cancel is not None and "callback_on_step_end" in accepted:
            kwargs["callback_on_step_end"] = _step_end_checker(cancel)
        kwargs = {key: value for key, value in kwargs.items() if key in accepted}
        output = _call(pipe, kwargs)
        pngs = []
        for image in output.images:
            buffer = io.BytesIO()
            image.save(buffer, format="PNG")
            pngs.append(buffer.getvalue())
        return GeneratedImages(png=pngs, seed=seed)

    def _image_to_image(self) -> Any:
        """The image-to-image pipeline over the loaded components (built once, no second load)."""
        if _needs_image(self._pipe):
            return self._pipe
        if self._img2img is None:
            from diffusers import AutoPipelineForImage2Image

            try:
                pipe = AutoPipelineForImage2Image.from_pipe(self._pipe)
            except (ValueError, KeyError, TypeError) as exc:
                raise InvalidRequest(
                    f"model {self.config.name!r} ({type(self._pipe).__name__}) cannot do image-to-image: {exc}",
                    param="file",
                ) from None
            pipe.set_progress_bar_config(disable=True)
            self._img2img = pipe
        return self._img2img

    def _source_image(self, request: ImageRequest) -> Any:
        """The source as RGB at the requested size (else the model's native size), multiples of 8."""
        from PIL import Image, UnidentifiedImageError

        try:
            with Image.open(io.BytesIO(request.source or b"")) as opened:
                width, height = opened.size
                if width * height > MAX_SOURCE_PIXELS:
                    raise InvalidRequest(
                        f"the source image is {width}x{height}; at most {MAX_SOURCE_PIXELS} pixels are accepted",
                        param="file",
                    )
                image = opened.convert("RGB")
        except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError) as exc:
            raise InvalidRequest(f"the source image cannot be read as an image: {exc}", param="file") from None
        if request.width is not None and request.height is not None:
            size = (request.width, request.height)
        else:
            native = self._native_size()
            size = (native, native)
        return image.resize(size) if image.size != size else image

    def _native_size(self) -> int:
        pipe = self._pipe
        sample = getattr(getattr(pipe, "unet", None), "config", None)
        sample_size = getattr(sample, "sample_size", None) if sample is not None else None
        factor = getattr(pipe, "vae_scale_factor", 8)
        if isinstance(sample_size, int | float) and sample_size > 0:
            return max(8, int(sample_size * factor) // 8 * 8)
        return 512

    # Sound

    def generate_sound(self, request: SoundRequest, cancel: threading.Event | None = None) -> AudioChunk:
        pipe = self._loaded(Capability.SOUND)
        import numpy as np
        import torch

        seed = request.seed
        if seed is None and request.do_sample is False:
            seed = 0  # no sampling asked for: the same clip for the same text every time
        seed = _seed(seed, self.config.parameters.seed)
        accepted = _call_parameters(pipe)
        kwargs: dict[str, Any] = {
            "prompt": request.text,
            "num_inference_steps": self.config.step or DEFAULT_SOUND_STEPS,
            "generator": torch.Generator(device="cpu").manual_seed(seed),
            "output_type": "np",
        }
        if request.prompt_influence is not None:
            kwargs["guidance_scale"] = 1.0 + SOUND_GUIDANCE_PER_INFLUENCE * request.prompt_influence
        elif self.config.cfg_scale is not None:
            kwargs["guidance_scale"] = self.config.cfg_scale
        if self.config.parameters.negative_prompt:
            kwargs["negative_prompt"] = self.config.parameters.negative_prompt
        if request.duration_seconds is not None:
            key = "audio_length_in_s" if "audio_length_in_s" in accepted else "audio_end_in_s"
            kwargs[key] = request.duration_seconds
        if cancel is not None:
            if "callback_on_step_end" in accepted:
                kwargs["callback_on_step_end"] = _step_end_checker(cancel)
            elif "callback" in accepted:
                kwargs["callback"] = _step_checker(cancel)
                kwargs["callback_steps"] = 1
        kwargs = {key: value for key, value in kwargs.items() if key in accepted}
        output = _call(pipe, kwargs)
        audio = np.asarray(output.audios, dtype=np.float32)
        while audio.ndim > 2:  # (batch, channels, samples): the first clip
            audio = audio[0]
        if audio.ndim == 2:  # (batch, samples) or (channels, samples): one mono clip
            audio = audio[0] if audio.shape[0] != 2 else audio.mean(axis=0)
        pcm = (np.clip(audio, -1.0, 1.0) * 32767.0).astype("<i2").tobytes()
        return AudioChunk(pcm=pcm, sample_rate=_sample_rate(pipe))

    def _loaded(self, capability: Capability) -> Any:
        if not self.supports(capability):
            raise self._unsupported(capability)
        if self._pipe is None:
            raise RuntimeError(f"model {self.config.name!r} is not loaded")
        return self._pipe


def _is_audio_pipeline(pipe: Any) -> bool:
    return is_audio_pipeline(type(pipe).__name__) or hasattr(pipe, "vocoder")


def _needs_image(pipe: Any) -> bool:
    """An image-to-image (or inpainting) pipeline: its call requires a source image."""
    name = type(pipe).__name__
    return "Img2Img" in name or "Inpaint" in name


def _restore_text_model_attribute(pipe: Any) -> None:
    """Let diffusers' ``clip_skip`` path work with transformers v5's CLIP text model.

    diffusers reads ``text_encoder.text_model.final_layer_norm``; transformers v5 flattened
    ``CLIPTextModel`` so ``final_layer_norm`` sits on the model itself. The alias goes into the
    instance ``__dict__`` (not ``_modules``), so weights, ``.to()`` and saving are unaffected.
    """
    encoder = getattr(pipe, "text_encoder", None)
    if encoder is None or hasattr(encoder, "text_model"):
        return
    if hasattr(encoder, "final_layer_norm"):
        object.__setattr__(encoder, "text_model", encoder)


def _call_parameters(pipe: Any) -> frozenset[str]:
    return frozenset(inspect.signature(type(pipe).__call__).parameters)


def _call(pipe: Any, kwargs: dict[str, Any]) -> Any:
    """Run the pipeline; its own input checks (ValueError) are the request's fault, so a 400."""
    import torch

    try:
        with torch.inference_mode():
            return pipe(**kwargs)
    except ValueError as exc:
        raise InvalidRequest(f"the pipeline refused the request: {exc}") from None


def _seed(requested: int | None, configured: int | None) -> int:
    seed = requested if requested is not None else configured
    if seed is None or seed < 0:
        return secrets.randbelow(2**31)
    return seed % 2**63


def _step_end_checker(cancel: threading.Event) -> Any:
    def check(pipe: Any, step: int, timestep: Any, callback_kwargs: dict[str, Any]) -> dict[str, Any]:
        if cancel.is_set():
            raise GenerationCancelled(f"cancelled after step {step + 1}")
        return callback_kwargs

    return check


def _step_checker(cancel: threading.Event) -> Any:
    def check(step: int, timestep: Any, latents: Any) -> None:
        if cancel.is_set():
            raise GenerationCancelled(f"cancelled after step {step + 1}")

    return check


def _sample_rate(pipe: Any) -> int:
    for component in ("vocoder", "vae"):
        config = getattr(getattr(pipe, component, None), "config", None)
        for key in ("sampling_rate", "sample_rate"):
            value = getattr(config, key, None) if config is not None else None
            if isinstance(value, int) and value > 0:
                return value
        value = getattr(getattr(pipe, component, None), "sampling_rate", None)
        if isinstance(value, int) and value > 0:
            return value
    return 16000
