"""What the operator routes answer: health, readiness, version, /system and LocalAI's backend monitor."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from appliance.protocol.base import ModelName, RequestBody


class Health(BaseModel):
    status: Literal["ok"]


class Readiness(BaseModel):
    """200 when ready; 503, with the same body, while starting or preloading."""

    status: Literal["ready", "starting"]
    pending_preloads: list[str]
    failed_preloads: dict[str, str] = Field(description="model -> why its preload failed")


class Version(BaseModel):
    version: str
    name: Literal["appliance"]


class LoadedModel(BaseModel):
    id: str
    backend: str | None
    status: str
    device: str | None
    memory_bytes: int


class SystemInfo(BaseModel):
    backends: list[str]
    loaded_models: list[LoadedModel]


class ModelRequest(RequestBody):
    """LocalAI's body of /backend/load, /backend/shutdown and (as a GET body) /backend/monitor."""

    model: ModelName


class MemoryInfo(BaseModel):
    total: int
    breakdown: dict[str, int]


class BackendState(BaseModel):
    """LocalAI's monitor answer: the model's state, and its memory once it is loaded."""

    model_config = ConfigDict(extra="allow")

    model: str
    state: str = Field(description="UNINITIALIZED, LOADING, READY or BUSY")
    memory_info: MemoryInfo | None


class Unloaded(BaseModel):
    model: str
    unloaded: bool
