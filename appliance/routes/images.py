"""POST /v1/images/generations (OpenAI, with LocalAI's extras) and GET /generated-images/{name}.

A ``url`` response points at the file route (absolute, from the request's own base URL); the files
live under the data path and expire after ``--generated-max-age``. The file route sits behind the
API-key check like every route, and serves only names the image store itself wrote.
"""

from __future__ import annotations

import asyncio
import base64
import time

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from appliance.errors import MODEL_ERRORS, NotFound, error_responses
from appliance.openapi import media
from appliance.protocol.images import ImageGenerationRequest, ImageGenerationResponse, ImageItem
from appliance.services import Services, services

router = APIRouter(tags=["images"])
files_router = APIRouter(tags=["images"])


@router.post(
    "/images/generations",
    response_model=ImageGenerationResponse,
    response_model_exclude_none=True,
    responses=error_responses(*MODEL_ERRORS),
)
async def generate_images(
    body: ImageGenerationRequest, request: Request, svc: Services = Depends(services)
) -> ImageGenerationResponse:
    model = body.model or svc.images.default_model()
    result = await svc.images.generate(model, body.to_image_request())
    if body.response_format == "b64_json":
        items = [ImageItem(b64_json=base64.b64encode(png).decode("ascii")) for png in result.png]
    else:
        names = await svc.images.save(result)
        items = [ImageItem(url=str(request.url_for("generated_image", name=name))) for name in names]
    return ImageGenerationResponse(created=int(time.time()), data=items)


@files_router.get(
    "/generated-images/{name}",
    name="generated_image",
    response_class=Response,
    responses=error_responses(404) | {200: media("image/png", description="A generated image")},
)
async def generated_image(name: str, svc: Services = Depends(services)) -> Response:
    data = await asyncio.to_thread(svc.images.files.read, name)
    if data is None:
        raise NotFound(f"no generated image {name!r}: it never existed or has expired", param="name")
    return Response(data, media_type="image/png")
