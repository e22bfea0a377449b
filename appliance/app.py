"""`create_app(settings)`: builds every object one server owns and wires routes, middleware, UI.

Start-up is quick by design: the catalog is a directory scan and no model runtime is imported.
Preloads run after the server starts answering, and /readyz says 503 until they are done.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator

from fastapi import FastAPI
from starlette.middleware import Middleware

import webui
from appliance import __version__
from appliance.anthropic_errors import AnthropicErrorMiddleware
from appliance.config import Settings
from appliance.config_values import parse_image_size
from appliance.errors import ApplianceError, install_error_handlers
from appliance.gallery.service import ModelGallery
from appliance.middleware import RequestContextMiddleware
from appliance.openapi import install_openapi
from appliance.routes import backend, chat, completions, embeddings, models, stores, system, tokenize
from appliance.routes import files, images, sound, vector_stores
from appliance.routes import responses
from appliance.routes import speech
from appliance.routes import messages
from appliance.routes import audio_transcriptions
from appliance.routes import gallery
from appliance.security import (
    ApiKeyMiddleware,
    BodyLimitMiddleware,
    PublicRoutes,
    cors_middleware,
    load_api_keys,
    warn_if_exposed,
)
from appliance.services import Readiness, Services
from appliance.storage.access import StoreAccess
from appliance.knowledge.service import Knowledge, KnowledgeSettings
from appliance.responses.service import Responses, planner_of
from appliance.knowledge.extraction import ExtractionLimits
from inference.backends.registry import BackendRegistry
from inference.catalog.builtin_models import installed_builtin_models
from inference.catalog.catalog import Catalog
from inference.catalog.config import ModelDefaults
from inference.errors import InferenceError
from inference.scheduling.scheduler import ModelScheduler, SchedulerConfig
from inference.services.batching import BatchConfig
from inference.services.embeddings import EmbeddingService
from inference.services.generated_files import GeneratedFiles
from inference.services.images import ImageLimits, ImageService
from inference.services.metrics import Metrics
from inference.services.sound import SoundService
from inference.services.speech import SpeechService
from inference.services.textgen import TextService
from inference.services.transcription import TranscriptionService

logger = logging.getLogger(__name__)

HEALTH_PATHS = frozenset({"/healthz", "/readyz"})
FILE_UPLOAD_PATHS = ("/v1/files", "/files")  # documents may be larger than other bodies


def scheduler_config(settings: Settings) -> SchedulerConfig:
    busy = settings.watchdog_busy_timeout if settings.enable_watchdog_busy else None
    idle = settings.watchdog_idle_timeout if settings.enable_watchdog_idle else None
    checks = [t for t in (busy, idle) if t is not None]
    return SchedulerConfig(
        max_active=settings.max_active_backends,
        ram_budget=settings.memory_budget,
        idle_timeout=idle,
        busy_timeout=busy,
        max_waiting=settings.max_queued_requests,
        wait_timeout=settings.queue_timeout,
        # A watchdog checks often enough to act within a quarter of its timeout.
        watchdog_interval=min([1.0, *(t / 4 for t in checks)]),
    )


def image_limits(settings: Settings) -> ImageLimits:
    width, height = parse_image_size(settings.image_max_size)
    return ImageLimits(max_width=width, max_height=height, max_n=settings.image_max_n)


def knowledge_settings(settings: Settings) -> KnowledgeSettings:
    return KnowledgeSettings(
        data_path=settings.data_path,
        default_embedding_model=settings.default_embedding_model,
        min_similarity=settings.retrieval_min_similarity,
        ingest_workers=settings.ingest_workers,
        extraction=ExtractionLimits(
            timeout_s=settings.extraction_timeout,
            memory_mb=settings.extraction_memory_mb,
            max_pages=settings.document_max_pages,
            max_bytes=settings.file_upload_limit * 1024 * 1024,
        ),
    )


def build_services(settings: Settings, registry: BackendRegistry | None = None) -> Services:
    defaults = ModelDefaults(
        context_size=settings.context_size,
        threads=settings.threads,
        f16=settings.f16,
        parallel_requests=settings.parallel_requests,
    )
    config_files = [settings.config_file] if settings.config_file is not None else []
    builtins = installed_builtin_models() if settings.builtin_models else ()
    catalog = Catalog(settings.models_path, config_files, defaults, builtins=builtins)
    registry = registry if registry is not None else BackendRegistry()
    scheduler = ModelScheduler(catalog, registry, settings.models_path, scheduler_config(settings))
    metrics = Metrics()
    metrics.watch_scheduler(scheduler.stats)
    embeddings = EmbeddingService(
        scheduler,
        BatchConfig(
            max_batch_size=settings.batch_max_size,
            max_wait_ms=settings.batch_max_wait_ms,
            max_batch_tokens=settings.batch_max_tokens,
            enabled=not settings.disable_batching,
        ),
        truncate=settings.truncate_inputs,
    )
    text = TextService(scheduler, catalog, settings.models_path, metrics=metrics)
    knowledge = Knowledge(knowledge_settings(settings), scheduler, embeddings)
    return Services(
        settings=settings,
        api_keys=load_api_keys(settings),
        catalog=catalog,
        registry=registry,
        scheduler=scheduler,
        text=text,
        speech=SpeechService(scheduler),
        embeddings=embeddings,
        transcription=TranscriptionService(scheduler),
        metrics=metrics,
        images=ImageService(
            scheduler,
            GeneratedFiles(settings.data_path / "generated" / "images", settings.generated_max_age),
            image_limits(settings),
        ),
        sound=SoundService(scheduler),
        stores=StoreAccess(settings.data_path),
        knowledge=knowledge,
        responses=Responses(settings.data_path, text, planner_of(knowledge, text)),
        readiness=Readiness(pending=list(settings.preload_models)),
        started_at=time.time(),
        gallery=ModelGallery.from_settings(settings, on_change=catalog.refresh),
    )


def create_app(settings: Settings | None = None, *, registry: BackendRegistry | None = None) -> FastAPI:
    settings = settings if settings is not None else Settings()
    svc = build_services(settings, registry)

    public = PublicRoutes(paths=HEALTH_PATHS)
    if not settings.disable_web_ui:
        public = PublicRoutes(paths=HEALTH_PATHS, get_paths=webui.SHELL_PATHS, get_prefixes=webui.SHELL_PREFIXES)
    middleware = [Middleware(AnthropicErrorMiddleware), Middleware(RequestContextMiddleware, metrics=svc.metrics)]
    cors = cors_middleware(settings)
    if cors is not None:
        middleware.append(cors)
    middleware += [
        Middleware(ApiKeyMiddleware, keys=svc.api_keys, public=public),
        Middleware(
            BodyLimitMiddleware,
            limit_bytes=settings.upload_limit_bytes,
            path_limits={path: settings.file_upload_limit * 1024 * 1024 for path in FILE_UPLOAD_PATHS},
        ),
    ]

    app = FastAPI(
        title="appliance",
        version=__version__,
        lifespan=_lifespan,
        middleware=middleware,
        docs_url=None,  # Swagger UI pulls its assets from a CDN; the spec stays at /openapi.json
        redoc_url=None,
    )
    app.state.services = svc
    install_error_handlers(app)

    app.include_router(system.router)
    app.include_router(backend.router)
    app.include_router(stores.router)
    app.include_router(images.files_router)  # GET /generated-images/{name}, as LocalAI serves them
    app.include_router(speech.extra_router)  # LocalAI /tts, ElevenLabs /v1/text-to-speech
    app.include_router(gallery.router)  # before the model routes: /models/{id:path} would take /models/jobs
    # Every OpenAI route answers with and without the /v1 prefix, as LocalAI's do.
    for prefix in ("/v1", ""):
        for family in (models, chat, completions, embeddings, tokenize, audio_transcriptions, speech):
            app.include_router(family.router, prefix=prefix)
        for family in (images, sound, files, vector_stores, messages, responses):
            app.include_router(family.router, prefix=prefix)
    install_openapi(app, public, keys_required=bool(svc.api_keys))
    if not settings.disable_web_ui:
        webui.mount(app)
    return app


@contextlib.asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    svc: Services = app.state.services
    warn_if_exposed(svc.settings, svc.api_keys)
    logger.info(
        "event=startup version=%s models=%d models_path=%s", __version__, len(svc.catalog.list()), svc.settings.models_path
    )
    await svc.scheduler.start()
    preload = asyncio.create_task(_preload(svc), name="preload")
    janitor = asyncio.create_task(svc.images.files.keep_clean(), name="generated-files-cleanup")
    knowledge = asyncio.create_task(svc.knowledge.start(), name="knowledge-start")
    try:
        yield
    finally:
        preload.cancel()
        janitor.cancel()
        knowledge.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await knowledge
        with contextlib.suppress(asyncio.CancelledError):
            await preload
        with contextlib.suppress(asyncio.CancelledError):
            await janitor
        await svc.gallery.close()
        await svc.knowledge.close()
        await svc.responses.close()
        await svc.embeddings.close()
        await svc.stores.close()
        await svc.scheduler.close()
        logger.info("event=shutdown")


async def _preload(svc: Services) -> None:
    state = svc.readiness
    for name in list(state.pending):
        try:
            # A gallery id or URL is installed first (readiness waits for it); a plain name just loads.
            model = await svc.gallery.prepare_preload(name, svc.catalog.__contains__)
            await svc.scheduler.load(model)
            logger.info("event=preloaded model=%s", model)
        except (InferenceError, ApplianceError) as exc:
            state.failed[name] = exc.message
            logger.error("event=preload_failed model=%s reason=%s", name, exc.message)
        finally:
            state.pending.remove(name)
    state.ready = True
    logger.info("event=ready")
