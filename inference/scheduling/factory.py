"""Backend factories: a catalog entry in, an unloaded backend object out.

The default resolves the backend class through the registry: the config's explicit ``backend:``
wins, else the backend detected from the model's files; a model with neither gets one readable
error listing what detection tried. Tests inject their own factory.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

from inference.backends.base import Backend
from inference.backends.registry import BackendRegistry
from inference.catalog.catalog import CatalogEntry
from inference.catalog.discovery import DETECTION_ORDER
from inference.errors import BackendNotFound


class BackendFactory(Protocol):
    """Builds the backend for an entry; cheap, does not load. Runs on the model's worker thread."""

    def __call__(self, entry: CatalogEntry) -> Backend: ...


class RegistryBackendFactory:
    """Backends from the registry, constructed with the entry's config and the models path."""

    def __init__(self, registry: BackendRegistry, models_path: Path) -> None:
        self.registry = registry
        self.models_path = Path(models_path)

    def backend_name(self, entry: CatalogEntry) -> str:
        """The canonical backend name for ``entry``; BackendNotFound names what was tried."""
        if entry.backend is None:
            raise BackendNotFound(
                f"model {entry.name!r} names no backend and none was recognised from its files "
                f"(tried: {', '.join(DETECTION_ORDER)}); set 'backend:' in its config",
                param="backend",
            )
        return self.registry.canonical(entry.backend)

    def backend_class(self, entry: CatalogEntry) -> type[Backend]:
        """The class, imported on first use; BackendUnavailable names a missing pip extra."""
        return self.registry.backend_class(self.backend_name(entry))

    def __call__(self, entry: CatalogEntry) -> Backend:
        return self.backend_class(entry)(entry.config, self.models_path)
