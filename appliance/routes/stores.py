"""LocalAI's vector-store API (`/stores/set|get|find|delete`) and ours (`/stores`, create, drop,
export, import).

Bodies match LocalAI byte for byte: set and delete answer 200 with an empty body; get and find
answer parallel arrays. Errors are 4xx in the envelope instead of LocalAI's 500. The registry
opens on first use (it loads faiss), in a worker thread like every store call.
"""

from __future__ import annotations

import asyncio
from dataclasses import asdict
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response, StreamingResponse

from appliance.errors import STORE_ERRORS, BadRequest, error_responses
from appliance.openapi import BINARY, media
from appliance.protocol.body import JsonBody as Body_
from appliance.protocol.stores import (
    CreateRequest,
    DropRequest,
    ExportRequest,
    FindRequest,
    FindResponse,
    GetRequest,
    GetResponse,
    KeysRequest,
    SetRequest,
    StoreInfoOut,
    StoreList,
    visible_store_name,
)
from appliance.services import Services, services
from appliance.storage.transfer import export_response, import_upload
from appliance.streaming import json_bytes

router = APIRouter(prefix="/stores", tags=["stores"])


# /stores bodies carry thousands of floats: parsed by pydantic-core from bytes, answered by orjson.
_SET_BODY = Body_(SetRequest)
_KEYS_BODY = Body_(KeysRequest)
_GET_BODY = Body_(GetRequest)
_FIND_BODY = Body_(FindRequest)
_ERRORS = error_responses(*STORE_ERRORS)
_EMPTY = {200: {"description": "Done; the body is empty, as LocalAI's"}}
_IMPORT_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/gzip": {"schema": dict(BINARY)},
            "application/octet-stream": {"schema": dict(BINARY)},
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["file"],
                    "properties": {"file": dict(BINARY)},
                    "additionalProperties": False,
                }
            },
        },
    }
}


@router.post(
    "/set", response_class=Response, responses=_ERRORS | _EMPTY, openapi_extra=_SET_BODY.openapi
)
async def set_keys(body: SetRequest = Depends(_SET_BODY.parse), svc: Services = Depends(services)) -> Response:
    store = await svc.stores.get(body.store)
    await asyncio.to_thread(store.set, body.keys, body.values, body.metadata, model=body.model)
    return Response(status_code=200)


@router.post(
    "/delete", response_class=Response, responses=_ERRORS | _EMPTY, openapi_extra=_KEYS_BODY.openapi
)
async def delete_keys(body: KeysRequest = Depends(_KEYS_BODY.parse), svc: Services = Depends(services)) -> Response:
    store = await svc.stores.get(body.store)
    await asyncio.to_thread(store.delete, body.keys)
    return Response(status_code=200)


@router.post(
    "/get",
    response_class=Response,
    responses=_ERRORS | {200: {"model": GetResponse}},
    openapi_extra=_GET_BODY.openapi,
)
async def get_keys(body: GetRequest = Depends(_GET_BODY.parse), svc: Services = Depends(services)) -> Response:
    store = await svc.stores.get(body.store)
    found = await asyncio.to_thread(store.get, body.keys)
    return _json(_with_metadata({"keys": found.keys, "values": found.values}, found.metadata))


@router.post(
    "/find",
    response_class=Response,
    responses=_ERRORS | {200: {"model": FindResponse}},
    openapi_extra=_FIND_BODY.openapi,
)
async def find(body: FindRequest = Depends(_FIND_BODY.parse), svc: Services = Depends(services)) -> Response:
    store = await svc.stores.get(body.store)
    found = await asyncio.to_thread(store.find, body.key, body.topk, model=body.model)
    payload = {"keys": found.keys, "values": found.values, "similarities": found.similarities}
    return _json(_with_metadata(payload, found.metadata))


@router.get("", response_model=None, responses=_ERRORS | {200: {"model": StoreList}})
async def list_stores(svc: Services = Depends(services)) -> dict[str, Any]:
    registry = await svc.stores.registry()
    infos = await asyncio.to_thread(registry.list)
    return {"stores": [asdict(info) for info in infos]}


@router.post("/create", response_model=None, responses=_ERRORS | {200: {"model": StoreInfoOut}})
async def create(body: CreateRequest, svc: Services = Depends(services)) -> dict[str, Any]:
    registry = await svc.stores.registry()
    info = await asyncio.to_thread(
        registry.create,
        body.name,
        index_kind=body.index,
        metric=body.metric,
        index_options=body.index_options,
        embedding_model=body.embedding_model,
        embedding_dimension=body.embedding_dimension,
    )
    return asdict(info)


@router.post("/drop", response_class=Response, responses=_ERRORS | _EMPTY)
async def drop(body: DropRequest, svc: Services = Depends(services)) -> Response:
    registry = await svc.stores.registry()
    await asyncio.to_thread(registry.drop, body.name)
    return Response(status_code=200)


@router.post(
    "/export",
    response_class=StreamingResponse,
    responses=_ERRORS | {200: media("application/gzip", description="The store as a gzip JSON Lines backup file")},
)
async def export(body: ExportRequest | None = None, svc: Services = Depends(services)) -> StreamingResponse:
    """The store as a gzip JSON Lines backup file (format in `stores.transfer`), streamed."""
    registry = await svc.stores.registry()
    return await export_response(registry, body.store if body is not None else None)


@router.post(
    "/import",
    response_model=None,
    responses=_ERRORS | {200: {"model": StoreInfoOut}},
    openapi_extra=_IMPORT_BODY,
)
async def import_(
    request: Request, store: str | None = None, replace: bool = False, svc: Services = Depends(services)
) -> dict[str, Any]:
    """Load a backup file from the raw body (or a multipart `file`) into `store`, default its own name."""
    if store is not None:
        try:
            visible_store_name(store)
        except ValueError as exc:
            raise BadRequest(str(exc), param="store") from None
    registry = await svc.stores.registry()
    info = await import_upload(request, registry, name=store, replace=replace)
    return asdict(info)


def _json(payload: dict[str, Any]) -> Response:
    return Response(json_bytes(payload), media_type="application/json")


def _with_metadata(payload: dict[str, Any], metadata: list[Any]) -> dict[str, Any]:
    """LocalAI's bodies carry no metadata; ours adds it only when some value has any."""
    if any(m is not None for m in metadata):
        payload["metadata"] = metadata
    return payload
