"""The objects one running server owns, built once by `create_app` and reached by routes.

Routes get them through `services(request)`; nothing lives in module globals, so two apps built
with different settings in one process (as the tests do) never share state.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from fastapi import Request

from appliance.config import Settings
from appliance.stores_access import StoreAccess
from inference.catalog import Catalog
from inference.embeddings import EmbeddingService
from inference.images import ImageService
from inference.metrics import Metrics
from inference.registry import BackendRegistry
from inference.scheduler import ModelScheduler
from inference.sound import SoundService
from inference.speech import SpeechService
from inference.textgen import TextService
from inference.transcription import TranscriptionService


@dataclass
class Readiness:
    """Start-up progress as /readyz reports it: ready once start-up and preloads are done."""

    ready: bool = False
    pending: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Services:
    settings: Settings
    api_keys: tuple[str, ...]
    catalog: Catalog
    registry: BackendRegistry
    scheduler: ModelScheduler
    text: TextService
    speech: SpeechService
    embeddings: EmbeddingService
    transcription: TranscriptionService
    images: ImageService
    sound: SoundService
    stores: StoreAccess
    metrics: Metrics
    readiness: Readiness
    started_at: float


def services(request: Request) -> Services:
    return request.app.state.services
