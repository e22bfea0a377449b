"""The objects one running server owns, built once by `create_app` and reached by routes.

Routes get them through `services(request)`; nothing lives in module globals, so two apps built
with different settings in one process (as the tests do) never share state.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from fastapi import Request

from appliance.config import Settings
from appliance.gallery.service import ModelGallery
from appliance.knowledge.service import Knowledge
from appliance.responses.service import Responses
from appliance.storage.access import StoreAccess
from inference.backends.registry import BackendRegistry
from inference.catalog.catalog import Catalog
from inference.scheduling.scheduler import ModelScheduler
from inference.services.embeddings import EmbeddingService
from inference.services.images import ImageService
from inference.services.metrics import Metrics
from inference.services.sound import SoundService
from inference.services.speech import SpeechService
from inference.services.textgen import TextService
from inference.services.transcription import TranscriptionService


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
    knowledge: Knowledge
    responses: Responses
    metrics: Metrics
    readiness: Readiness
    started_at: float
    gallery: ModelGallery


def services(request: Request) -> Services:
    return request.app.state.services
