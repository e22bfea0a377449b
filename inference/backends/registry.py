"""The backend registry: backend names and aliases mapped to lazily imported classes.

Each backend is a ``BackendSpec`` (``inference.catalog.known_backends``, with the built-in table): a
canonical name (LocalAI's where one exists), its aliases, a ``"module:Class"`` target, the modules it
needs and the pip extra that installs them. Listing and checking never import a backend or its
dependencies; ``backend_class`` imports on first use.
"""

from __future__ import annotations

import importlib
import importlib.util
import logging
import os
import sys
import threading
from collections.abc import Iterable

from inference.backends.base import Backend
from inference.catalog.known_backends import DEFAULT_BACKENDS, BackendSpec
from inference.errors import BackendNotFound, BackendUnavailable

logger = logging.getLogger(__name__)

# Read by runtime libraries when they are imported; set (unless the user set them) before a backend
# module is. onnxruntime (piper voices, faster-whisper's VAD) otherwise starts its telemetry: a session
# file left in TMPDIR, an SQLite database kept open under ~/.cache/Microsoft, events sent out.
RUNTIME_ENVIRONMENT = {"ORT_DISABLE_TELEMETRY": "1"}


class BackendRegistry:
    """Backend specs by canonical name and alias. Built by the app; thread-safe."""

    def __init__(self, specs: Iterable[BackendSpec] = DEFAULT_BACKENDS) -> None:
        self._lock = threading.Lock()
        self._specs: dict[str, BackendSpec] = {}
        self._aliases: dict[str, str] = {}
        for spec in specs:
            self.register(spec)

    def register(self, spec: BackendSpec) -> None:
        """Add or replace a backend. An alias already claimed by another backend is an error."""
        keys = [spec.name.lower(), *(alias.lower() for alias in spec.aliases)]
        with self._lock:
            for key in keys:
                owner = self._aliases.get(key)
                if owner is not None and owner != spec.name:
                    raise ValueError(f"backend name {key!r} is already registered for {owner!r}")
            previous = self._specs.get(spec.name)
            if previous is not None:
                for alias in previous.aliases:
                    self._aliases.pop(alias.lower(), None)
            self._specs[spec.name] = spec
            for key in keys:
                self._aliases[key] = spec.name
        logger.debug("event=backend_registered backend=%s target=%s", spec.name, spec.target)

    def names(self) -> list[str]:
        """Canonical backend names, sorted."""
        with self._lock:
            return sorted(self._specs)

    def canonical(self, name: str) -> str:
        """The canonical name for ``name`` or one of its aliases (case-insensitive)."""
        with self._lock:
            found = self._aliases.get(name.strip().lower())
        if found is None:
            raise BackendNotFound(
                f"backend {name!r} is not known; known backends: {', '.join(self.names())}",
                param="backend",
            )
        return found

    def spec(self, name: str) -> BackendSpec:
        canonical = self.canonical(name)
        with self._lock:
            return self._specs[canonical]

    def check_available(self, name: str) -> None:
        """Raise BackendUnavailable naming the first missing package and the extra; imports nothing."""
        spec = self.spec(name)
        for module in spec.requires:
            if not _module_installed(module):
                raise BackendUnavailable(spec.name, module, spec.extra or "all")

    def backend_class(self, name: str) -> type[Backend]:
        """Import and return the backend class, after checking its dependencies are installed."""
        self.check_available(name)
        spec = self.spec(name)
        module_name, _, attr = spec.target.partition(":")
        for variable, value in RUNTIME_ENVIRONMENT.items():
            os.environ.setdefault(variable, value)
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            missing = exc.name or ""
            if missing and (module_name == missing or module_name.startswith(missing + ".")):
                raise BackendNotFound(
                    f"backend {spec.name!r} is registered but its module {module_name!r} "
                    "is not part of this installation",
                    param="backend",
                ) from exc
            package = missing.partition(".")[0] or module_name
            raise BackendUnavailable(spec.name, package, spec.extra or "all") from exc
        cls = getattr(module, attr, None)
        if not (isinstance(cls, type) and issubclass(cls, Backend)):
            raise BackendNotFound(
                f"backend {spec.name!r}: {spec.target!r} is not a Backend class", param="backend"
            )
        return cls


def _module_installed(module: str) -> bool:
    """Whether ``module``'s top-level package can be imported, without importing it."""
    top = module.partition(".")[0]
    if top in sys.modules:
        return True
    try:
        return importlib.util.find_spec(top) is not None
    except (ImportError, ValueError):
        return False
