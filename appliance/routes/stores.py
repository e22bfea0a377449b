"""LocalAI's vector-store API (`/stores/set|get|find|delete`) and ours (`/stores`, create, drop).

Bodies match LocalAI byte for byte: set and delete answer 200 with an empty body; get and find
answer parallel arrays. Errors are 4xx in the envelope instead of LocalAI's 500. The registry
opens on first use (it loads faiss), in a worker thread like every store call.
"""

from __future__ import annotations

import asyncio
from dataclasses import asdict
from typing import Any

from fastapi import APIRouter, Depends
from fastapi.responses import Response

from appliance.protocol.stores import CreateRequest, DropRequest, FindRequest, KeysRequest, SetRequest
from appliance.services import Services, services

router = APIRouter(prefix="/stores", tags=["stores"])


@router.post("/set")
async def set_keys(body: SetRequest, svc: Services = Depends(services)) -> Response:
    store = await svc.stores.get(body.store)
    await asyncio.to_thread(store.set, body.keys, body.values, body.metadata, model=body.model)
    return Response(status_code=200)


@router.post("/delete")
async def delete_keys(body: KeysRequest, svc: Services = Depends(services)) -> Response:
    store = await svc.stores.get(body.store)
    await asyncio.to_thread(store.delete, body.keys)
    return Response(status_code=200)


@router.post("/get")
async def get_keys(body: KeysRequest, svc: Services = Depends(services)) -> dict[str, Any]:
    store = await svc.stores.get(body.store)
    found = await asyncio.to_thread(store.get, body.keys)
    return _with_metadata({"keys": found.keys, "values": found.values}, found.metadata)


@router.post("/find")
async def find(body: FindRequest, svc: Services = Depends(services)) -> dict[str, Any]:
    store = await svc.stores.get(body.store)
    found = await asyncio.to_thread(store.find, body.key, body.topk, model=body.model)
    payload = {"keys": found.keys, "values": found.values, "similarities": found.similarities}
    return _with_metadata(payload, found.metadata)


@router.get("")
async def list_stores(svc: Services = Depends(services)) -> dict[str, Any]:
    registry = await svc.stores.registry()
    infos = await asyncio.to_thread(registry.list)
    return {"stores": [asdict(info) for info in infos]}


@router.post("/create")
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


@router.post("/drop")
async def drop(body: DropRequest, svc: Services = Depends(services)) -> Response:
    registry = await svc.stores.registry()
    await asyncio.to_thread(registry.drop, body.name)
    return Response(status_code=200)


def _with_metadata(payload: dict[str, Any], metadata: list[Any]) -> dict[str, Any]:
    """LocalAI's bodies carry no metadata; ours adds it only when some value has any."""
    if any(m is not None for m in metadata):
        payload["metadata"] = metadata
    return payload
