"""The OpenAI model list: every configured model and every loose model file in the models path."""

from __future__ import annotations

import asyncio
import os

from fastapi import APIRouter, Depends, Path
from starlette.convertors import PathConvertor, register_url_convertor

from appliance.errors import error_responses
from appliance.protocol.base import MODEL_NAME_PATTERN
from appliance.protocol.models import ModelCard, ModelList
from appliance.services import Services, services
from inference.catalog.catalog import CatalogEntry

router = APIRouter(tags=["models"])


class ModelIdConvertor(PathConvertor):
    """A model id (it may hold "/"), except the gallery's paths under /models (`jobs/…`, `delete/…`):
    a GET there is not a model lookup, so its 405 names only the methods those routes answer."""

    regex = r"(?!jobs/|delete/).+"


register_url_convertor("model_id", ModelIdConvertor())


def _card(entry: CatalogEntry, default_created: int) -> ModelCard:
    created = default_created
    if entry.path is not None:
        try:
            created = int(os.stat(entry.path).st_mtime)
        except OSError:
            pass
    return ModelCard(id=entry.name, created=created, backend=entry.backend, usecases=sorted(entry.usecases))


@router.get("/models", response_model=ModelList)
async def list_models(svc: Services = Depends(services)) -> ModelList:
    await asyncio.to_thread(svc.catalog.refresh_if_changed)
    created = int(svc.started_at)
    return ModelList(data=[_card(entry, created) for entry in svc.catalog.list()])


@router.get("/models/{model_id:model_id}", response_model=ModelCard, responses=error_responses(400, 404))
async def retrieve_model(
    model_id: str = Path(json_schema_extra={"pattern": MODEL_NAME_PATTERN}), svc: Services = Depends(services)
) -> ModelCard:
    """OpenAI's retrieve; an unknown name is a 404 that points at the list."""
    await asyncio.to_thread(svc.catalog.refresh_if_changed)
    return _card(svc.catalog.get(model_id), int(svc.started_at))
