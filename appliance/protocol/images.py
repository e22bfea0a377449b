"""OpenAI's images/generations body with LocalAI's extras, and the response.

Beyond OpenAI: ``negative_prompt`` (or LocalAI's ``positive|negative`` prompt), ``seed``, ``step``
(also ``num_inference_steps``), ``cfg_scale``, ``strength``, and a source image for image-to-image
as ``file`` or ``src`` (or the first of ``files``/``ref_images``): base64 or a ``data:`` URL.
OpenAI's ``quality``, ``style``, ``user``... and LocalAI's ``mode`` are accepted and ignored.
"""

from __future__ import annotations

import base64
import binascii
import logging
from typing import Literal

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, model_validator

from inference.errors import InvalidRequest
from inference.media import ImageRequest
from inference.services.images import parse_size, split_prompt

logger = logging.getLogger(__name__)


class ImageGenerationRequest(BaseModel):
    model_config = ConfigDict(extra="allow", populate_by_name=True)

    prompt: str
    model: str | None = Field(None, min_length=1)
    n: int | None = None
    size: str | None = None
    response_format: Literal["url", "b64_json"] | None = None
    negative_prompt: str | None = None
    seed: int | None = None
    step: int | None = Field(None, validation_alias=AliasChoices("step", "num_inference_steps", "steps"))
    cfg_scale: float | None = Field(None, validation_alias=AliasChoices("cfg_scale", "guidance_scale"))
    strength: float | None = None
    file: str | None = None
    src: str | None = None
    files: list[str] | None = None
    ref_images: list[str] | None = None
    mode: int | None = None  # LocalAI's; the source image alone selects image-to-image here

    @model_validator(mode="after")
    def _log_unknown(self) -> ImageGenerationRequest:
        if self.model_extra:
            logger.debug("event=unknown_request_fields fields=%s", sorted(self.model_extra))
        return self

    def to_image_request(self) -> ImageRequest:
        """The request for the image service; InvalidRequest (400) for a bad size or source image."""
        positive, split_negative = split_prompt(self.prompt)
        size = parse_size(self.size)
        width, height = size if size is not None else (None, None)
        source, param = self._source()
        return ImageRequest(
            prompt=positive,
            width=width,
            height=height,
            negative_prompt=self.negative_prompt or split_negative,
            n=self.n if self.n is not None else 1,
            seed=self.seed,
            steps=self.step,
            cfg_scale=self.cfg_scale,
            source=decode_image(source, param) if source is not None else None,
            strength=self.strength,
        )

    def _source(self) -> tuple[str | None, str]:
        for param, value in (("file", self.file), ("src", self.src)):
            if value:
                return value, param
        for param, values in (("files", self.files), ("ref_images", self.ref_images)):
            if values:
                return values[0], f"{param}[0]"
        return None, "file"


def decode_image(text: str, param: str) -> bytes:
    """Bytes of a base64 image or ``data:image/...;base64,`` URL; URLs are refused (nothing is fetched)."""
    value = text.strip()
    if value.startswith(("http://", "https://")):
        raise InvalidRequest(
            f"{param}: this server does not download images; send the image itself as base64", param=param
        )
    if value.startswith("data:"):
        header, comma, value = value.partition(",")
        if not comma or not header.endswith(";base64"):
            raise InvalidRequest(f"{param}: a data URL must be base64 ('data:image/png;base64,...')", param=param)
    try:
        data = base64.b64decode("".join(value.split()), validate=True)
    except (binascii.Error, ValueError):
        raise InvalidRequest(f"{param} is not valid base64", param=param) from None
    if not data:
        raise InvalidRequest(f"{param} is empty", param=param)
    return data


class ImageItem(BaseModel):
    url: str | None = None
    b64_json: str | None = None


class ImageGenerationResponse(BaseModel):
    created: int
    data: list[ImageItem]
