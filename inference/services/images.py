"""Image generation as a service: request checks, one lease per call, PNGs kept for URL responses.

Checks happen before any model is touched: a size must be ``WxH`` in multiples of 8 and at most
``ImageLimits.max_pixels``; ``n`` at most ``max_n``; the prompt not empty. The backend call runs on
the model's worker thread as a one-item stream, so the lease's cancel event (a vanished client, the
busy watchdog) reaches the pipeline's step callback. Generated files live in ``GeneratedFiles``.
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass
from typing import Any

from inference.capabilities import Capability
from inference.catalog.usecases import Usecase
from inference.errors import CapabilityNotSupported, InvalidRequest
from inference.media import GeneratedImages, ImageRequest
from inference.services.generated_files import GeneratedFiles

_SIZE = re.compile(r"\s*([0-9]{1,6})\s*[xX×]\s*([0-9]{1,6})\s*")
MAX_STEPS = 500  # denoising steps one request may ask for
# Image-to-image runs int(steps x strength) steps, at least one: a weaker strength would need more
# than MAX_STEPS steps (and 1/strength overflows for the tiniest floats).
MIN_STRENGTH = 1 / MAX_STEPS


@dataclass(frozen=True)
class ImageLimits:
    max_width: int = 1024
    max_height: int = 1024
    max_n: int = 4

    @property
    def max_pixels(self) -> int:
        return self.max_width * self.max_height


def parse_size(text: str | None, *, param: str = "size") -> tuple[int, int] | None:
    """``(width, height)`` from ``"WxH"``; None for no size or ``"auto"`` (the model's native size)."""
    if text is None or not text.strip() or text.strip().lower() == "auto":
        return None
    match = _SIZE.fullmatch(text)
    if match is None:
        raise InvalidRequest(f"size {text!r} must look like WIDTHxHEIGHT, e.g. '512x512'", param=param)
    return int(match.group(1)), int(match.group(2))


def split_prompt(prompt: str) -> tuple[str, str | None]:
    """LocalAI's ``positive|negative`` prompt: the text before the first ``|`` and the one after it."""
    parts = prompt.split("|")
    negative = parts[1].strip() if len(parts) > 1 else None
    return parts[0].strip(), negative or None


class ImageService:
    def __init__(self, scheduler: Any, files: GeneratedFiles, limits: ImageLimits = ImageLimits()) -> None:
        self.scheduler = scheduler
        self.files = files
        self.limits = limits

    def check(self, request: ImageRequest) -> None:
        """InvalidRequest (400) naming the field for anything the limits or the pipelines refuse."""
        limits = self.limits
        if not request.prompt.strip():
            raise InvalidRequest("prompt must not be empty", param="prompt")
        if not 1 <= request.n <= limits.max_n:
            raise InvalidRequest(f"n must be between 1 and {limits.max_n}, got {request.n}", param="n")
        if (request.width is None) != (request.height is None):
            raise InvalidRequest("give both width and height, or neither", param="size")
        if request.width is not None and request.height is not None:
            width, height = request.width, request.height
            if width < 8 or height < 8 or width % 8 or height % 8:
                raise InvalidRequest(
                    f"size {width}x{height}: width and height must be multiples of 8 (at least 8)", param="size"
                )
            if width * height > limits.max_pixels:
                raise InvalidRequest(
                    f"size {width}x{height} is larger than this server allows "
                    f"({limits.max_width}x{limits.max_height} = {limits.max_pixels} pixels)",
                    param="size",
                )
        if request.steps is not None and not 1 <= request.steps <= MAX_STEPS:
            raise InvalidRequest(f"step must be between 1 and {MAX_STEPS}, got {request.steps}", param="step")
        if request.strength is not None and not MIN_STRENGTH <= request.strength <= 1:
            raise InvalidRequest(f"strength must be in [{MIN_STRENGTH:g}, 1], got {request.strength}", param="strength")
        if request.cfg_scale is not None and not 0 <= request.cfg_scale <= 100:
            raise InvalidRequest(f"cfg_scale must be between 0 and 100, got {request.cfg_scale}", param="cfg_scale")
        if request.source is not None and not request.source:
            raise InvalidRequest("the source image is empty", param="file")

    def default_model(self) -> str:
        """The model for a request that names none: the only image model, if there is exactly one."""
        return only_model(self.scheduler.catalog, Usecase.IMAGE, "image")

    async def generate(self, model: str, request: ImageRequest) -> GeneratedImages:
        self.check(request)
        async with self.scheduler.lease(model, Capability.IMAGE) as lease:
            backend = lease.backend
            return await lease.run_cancellable(lambda cancel: backend.generate_images(request, cancel))

    async def save(self, images: GeneratedImages) -> list[str]:
        """Keep the PNGs for URL responses; returns their file names."""
        return await asyncio.to_thread(self.files.save, images.png)


def only_model(catalog: Any, usecase: Usecase, what: str) -> str:
    """The one catalog model serving ``usecase``; a 400 naming the problem when there are 0 or several."""
    candidates = sorted(entry.name for entry in catalog.list() if usecase in entry.usecases)
    if len(candidates) == 1:
        return candidates[0]
    if not candidates:
        raise CapabilityNotSupported(f"no {what} model is configured; name one with 'model'", param="model")
    raise InvalidRequest(
        f"name the model: this server offers {len(candidates)} {what} models ({', '.join(candidates)})",
        param="model",
    )
