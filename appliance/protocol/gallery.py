"""LocalAI's gallery bodies: `POST /models/apply` and the gallery list's add and remove."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class GalleryFileBody(BaseModel):
    """One `files` item: where it goes in the models path, where it comes from, its sha256."""

    model_config = ConfigDict(extra="ignore")

    filename: str = Field(min_length=1)
    uri: str = Field(min_length=1)
    sha256: str | None = None


class ApplyRequest(BaseModel):
    """`{"id": "gallery@name"}`, or `{"url": definition.yaml}`, or `{"config_url": config.yaml}`, with
    the optional `name`, `overrides` and `files`. LocalAI's other GalleryModel fields are accepted
    and ignored."""

    model_config = ConfigDict(extra="allow")

    id: str | None = None
    url: str | None = None
    config_url: str | None = None
    name: str | None = None
    overrides: dict[str, Any] | None = None
    files: list[GalleryFileBody] = Field(default_factory=list)


class GalleryBody(BaseModel):
    """LocalAI's `config.Gallery`; removal needs only the name."""

    model_config = ConfigDict(extra="ignore")

    name: str = Field(min_length=1, max_length=100)
    url: str = ""
