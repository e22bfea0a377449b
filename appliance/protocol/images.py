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

from appliance.protocol.base import SPACE, JsonInt, ModelName, RequestBody
from inference.errors import InvalidRequest
from inference.media import ImageRequest
from inference.services.images import MAX_STEPS, MIN_STRENGTH, parse_size, split_prompt

logger = logging.getLogger(__name__)

# The checks of ImageService.check, for the schema (the service's messages are the friendlier ones;
# the size's multiples of 8 and the server's --image-max-size and --image-max-n it cannot state).
_S = f"[{SPACE}]*"  # white space as Python strips it
_PROMPT = {"pattern": f"^[^|]*[^|{SPACE}]"}  # something to draw before LocalAI's `|negative` part
_SIZE = {"pattern": f"^{_S}([0-9]{{1,6}}{_S}[xX×]{_S}[0-9]{{1,6}}|[aA][uU][tT][oO])?{_S}$"}
_B64 = f"[A-Za-z0-9+/]{_S}"
_BLOCKS = f"({_B64}{_B64}{_B64}{_B64})*({_B64}{_B64}{_B64}{_B64}|{_B64}{_B64}={_S}=|{_B64}{_B64}{_B64}=)"
_BASE64 = f"^$|^{_S}(data:[^,]*;base64,)?{_S}{_BLOCKS}{_S}$"
_IMAGE = {"pattern": _BASE64, "description": "An image as base64 or a data: URL (never a URL to fetch); empty: none"}


class ImageGenerationRequest(RequestBody):
    model_config = ConfigDict(extra="allow", populate_by_name=True)

    prompt: str = Field(json_schema_extra=_PROMPT)
    model: ModelName | None = None
    n: JsonInt | None = Field(None, json_schema_extra={"minimum": 1}, description="At most --image-max-n")
    size: str | None = Field(None, json_schema_extra=_SIZE, description="WIDTHxHEIGHT in multiples of 8, or auto")
    response_format: Literal["url", "b64_json"] | None = None
    negative_prompt: str | None = None
    seed: JsonInt | None = None
    step: JsonInt | None = Field(
        None,
        validation_alias=AliasChoices("step", "num_inference_steps", "steps"),
        json_schema_extra={"minimum": 1, "maximum": MAX_STEPS},
    )
    cfg_scale: float | None = Field(
        None,
        validation_alias=AliasChoices("cfg_scale", "guidance_scale"),
        json_schema_extra={"minimum": 0, "maximum": 100},
    )
    strength: float | None = Field(None, json_schema_extra={"minimum": MIN_STRENGTH, "maximum": 1})
    file: str | None = Field(None, json_schema_extra=_IMAGE)
    src: str | None = Field(None, json_schema_extra=_IMAGE)
    files: list[str] | None = Field(None, json_schema_extra={"items": _IMAGE})
    ref_images: list[str] | None = Field(None, json_schema_extra={"items": _IMAGE})
    mode: JsonInt | None = None  # LocalAI's; the source image alone selects image-to-image here

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
        sources = self._sources()
        decoded = [decode_image(value, param) for param, value in sources]  # every one given must be an image
        return ImageRequest(
            prompt=positive,
            width=width,
            height=height,
            negative_prompt=self.negative_prompt or split_negative,
            n=self.n if self.n is not None else 1,
            seed=self.seed,
            steps=self.step,
            cfg_scale=self.cfg_scale,
            source=decoded[0] if decoded else None,
            strength=self.strength,
        )

    def _sources(self) -> list[tuple[str, str]]:
        """(param, value) of every source image given, in the order of preference: `file`, `src`,
        then the items of `files` and `ref_images` (the first one is used)."""
        sources = [(param, value) for param, value in (("file", self.file), ("src", self.src)) if value]
        for param, values in (("files", self.files), ("ref_images", self.ref_images)):
            sources += [(f"{param}[{n}]", value) for n, value in enumerate(values or ()) if value]
        return sources


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
