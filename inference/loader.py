"""ModelLoader: turns a catalog name into a loaded backend, once, however many callers ask.

The backend is the config's explicit ``backend:``, else the one detected from its files. Loading
runs in a worker thread; concurrent ``load`` calls for one model share one load (one task per
model), while different models load concurrently. A failed load raises ``ModelLoadFailed`` chained
to the cause and is not remembered, so the next call retries. Memory budgets come later.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from inference.backends.base import Backend, Capability
from inference.catalog import Catalog, CatalogEntry
from inference.discovery import DETECTION_ORDER
from inference.errors import BackendNotFound, ModelLoadFailed, ModelNotFound
from inference.registry import BackendRegistry

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class LoadedModel:
    """A loaded model, as reported by ``ModelLoader.loaded``."""

    name: str
    backend: str
    usecases: frozenset[str]
    capabilities: frozenset[Capability]
    loaded_at: float
    memory_bytes: int


class ModelLoader:
    """Loads and unloads models named in a catalog. Use from one event loop."""

    def __init__(
        self,
        catalog: Catalog,
        registry: BackendRegistry,
        models_path: Path,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.catalog = catalog
        self.registry = registry
        self.models_path = Path(models_path)
        self._clock = clock
        self._loaded: dict[str, tuple[LoadedModel, Backend]] = {}
        self._loading: dict[str, asyncio.Task[LoadedModel]] = {}

    async def load(self, name: str) -> LoadedModel:
        """Load ``name`` (or return it if loaded); waits for a load already under way."""
        entry = self.catalog.get(name)
        loaded = self._loaded.get(entry.name)
        if loaded is not None:
            return loaded[0]
        task = self._loading.get(entry.name)
        if task is None:
            task = asyncio.get_running_loop().create_task(self._load(entry), name=f"load:{entry.name}")
            task.add_done_callback(_consume_exception)
            self._loading[entry.name] = task
        # A caller that gives up must not cancel the load other callers are waiting for.
        return await asyncio.shield(task)

    async def unload(self, name: str) -> bool:
        """Unload ``name``; returns whether it was loaded. Waits for a load under way first."""
        key = self._key(name)
        task = self._loading.get(key)
        if task is not None:
            await asyncio.wait([task])
        loaded = self._loaded.pop(key, None)
        if loaded is None:
            return False
        info, backend = loaded
        try:
            await asyncio.to_thread(backend.unload)
        except Exception:
            logger.exception("event=model_unload_failed model=%s backend=%s", info.name, info.backend)
        logger.info("event=model_unloaded model=%s backend=%s", info.name, info.backend)
        return True

    def loaded(self) -> list[LoadedModel]:
        """Loaded models, sorted by name."""
        return [self._loaded[name][0] for name in sorted(self._loaded)]

    def get_loaded(self, name: str) -> Backend | None:
        """The loaded backend for ``name``, or None when it is not loaded."""
        loaded = self._loaded.get(self._key(name))
        return loaded[1] if loaded is not None else None

    async def close(self) -> None:
        """Wait for loads under way, then unload everything."""
        if self._loading:
            await asyncio.wait(list(self._loading.values()))
        for name in list(self._loaded):
            await self.unload(name)

    def _key(self, name: str) -> str:
        """The catalog name for ``name``; a model gone from the catalog is still known by its name."""
        try:
            return self.catalog.get(name).name
        except ModelNotFound:
            return name

    async def _load(self, entry: CatalogEntry) -> LoadedModel:
        try:
            backend_name = self._backend_name(entry)
            cls = self.registry.backend_class(backend_name)
            logger.info("event=model_loading model=%s backend=%s", entry.name, backend_name)
            started = time.monotonic()
            try:
                backend = cls(entry.config, self.models_path)
                memory = (await asyncio.to_thread(backend.memory_estimate)).total
                await asyncio.to_thread(backend.load)
            except Exception as exc:
                logger.exception("event=model_load_failed model=%s backend=%s", entry.name, backend_name)
                raise ModelLoadFailed(
                    f"model {entry.name!r} failed to load with backend {backend_name!r}: {exc}"
                ) from exc
            info = LoadedModel(
                name=entry.name,
                backend=backend_name,
                usecases=entry.usecases,
                capabilities=cls.capabilities,
                loaded_at=self._clock(),
                memory_bytes=memory,
            )
            self._loaded[entry.name] = (info, backend)
            logger.info(
                "event=model_loaded model=%s backend=%s memory_bytes=%d seconds=%.3f",
                entry.name,
                backend_name,
                memory,
                time.monotonic() - started,
            )
            return info
        finally:
            self._loading.pop(entry.name, None)

    def _backend_name(self, entry: CatalogEntry) -> str:
        if entry.backend is None:
            raise BackendNotFound(
                f"model {entry.name!r} names no backend and none was recognised from its files "
                f"(tried: {', '.join(DETECTION_ORDER)}); set 'backend:' in its config",
                param="backend",
            )
        return self.registry.canonical(entry.backend)


def _consume_exception(task: asyncio.Task[LoadedModel]) -> None:
    """Mark a failed load's exception as seen, so it is not reported again when nobody waits."""
    if not task.cancelled():
        task.exception()
