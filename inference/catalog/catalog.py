"""The model catalog: every model this server offers, by name, from configs and loose files.

Sources, in priority order (the first to claim a name wins; a WARNING names both): the config files
given explicitly, in the order given; then ``*.yaml``/``*.yml`` at the top level of the models path,
in sorted file-name order; then loose model files and folders (see ``inference.catalog.discovery``) that no
config references; last, the built-in models handed in (``inference.catalog.builtin_models``), each only
while no config or loose file uses its name (a disabled config of that name hides it). A bad file
is skipped with a WARNING and recorded in ``errors``, never fatal.
``refresh`` builds a new snapshot and swaps it in, so readers never see a half-built catalog.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePath
from types import MappingProxyType

from inference.catalog.builtin_models import BuiltinModel
from inference.catalog.config import ModelConfig, ModelDefaults, parse_config_file
from inference.catalog.discovery import Detection, detect, is_skipped, scan
from inference.catalog.paths import ensure_relative, unsafe_reason
from inference.errors import InvalidModelConfig, ModelNotFound, UnsafePath

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class CatalogEntry:
    """One model the server offers. ``config`` has the server defaults applied."""

    name: str
    config: ModelConfig
    source: str
    path: Path | None
    backend: str | None
    usecases: frozenset[str]


@dataclass(frozen=True)
class _Snapshot:
    entries: Mapping[str, CatalogEntry] = field(default_factory=lambda: MappingProxyType({}))
    aliases: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    errors: tuple[str, ...] = ()


class Catalog:
    """Model configs and loose model files under one models path. Thread-safe; built by the app."""

    def __init__(
        self,
        models_path: Path,
        config_files: Sequence[Path] = (),
        defaults: ModelDefaults = ModelDefaults(),
        builtins: Sequence[BuiltinModel] = (),
    ) -> None:
        self.models_path = Path(models_path)
        self.config_files = tuple(Path(p) for p in config_files)
        self.defaults = defaults
        self.builtins = tuple(builtins)
        self._refresh_lock = threading.Lock()
        self._reported_unknown: set[tuple[str, str]] = set()
        self._snapshot = _Snapshot()
        self._scanned: tuple[tuple[str, int, int], ...] | None = None
        self.refresh()

    def refresh(self) -> None:
        """Rescan the config files and the models path; never raises for a bad file."""
        with self._refresh_lock:
            fingerprint = self._fingerprint()  # taken first: a change during the scan shows next time
            snapshot = _Builder(self).build()
            self._snapshot = snapshot
            self._scanned = fingerprint
        logger.info(
            "event=catalog_refreshed models_path=%s models=%d skipped=%d",
            self.models_path,
            len(snapshot.entries),
            len(snapshot.errors),
        )

    def refresh_if_changed(self) -> bool:
        """Rescan when a config file or the top level of the models path changed since the last scan.

        Costs one directory listing and a stat per entry, so callers may do it per request (in a
        worker thread); a model file dropped into the models path then shows up without a restart.
        """
        if self._fingerprint() == self._scanned:
            return False
        self.refresh()
        return True

    def _fingerprint(self) -> tuple[tuple[str, int, int], ...]:
        stamps: list[tuple[str, int, int]] = []
        paths = [*self.config_files, self.models_path]
        try:
            with os.scandir(self.models_path) as children:
                paths += [Path(child.path) for child in children]
        except OSError:
            pass  # a missing models path is fingerprinted as missing below
        for path in paths:
            try:
                info = path.stat()
                stamps.append((str(path), info.st_mtime_ns, info.st_size))
            except OSError:
                stamps.append((str(path), -1, -1))
        return tuple(sorted(stamps))

    def list(self) -> list[CatalogEntry]:
        """Every model, sorted by name."""
        entries = self._snapshot.entries
        return [entries[name] for name in sorted(entries)]

    def get(self, name: str) -> CatalogEntry:
        """The model called ``name`` (or a loose file's name without its extension)."""
        ensure_relative(name, field="model")
        snapshot = self._snapshot
        entry = snapshot.entries.get(name)
        if entry is None and name in snapshot.aliases:
            entry = snapshot.entries[snapshot.aliases[name]]
        if entry is None:
            raise ModelNotFound(name)
        return entry

    def __contains__(self, name: object) -> bool:
        if not isinstance(name, str):
            return False
        try:
            self.get(name)
        except (ModelNotFound, UnsafePath):
            return False
        return True

    def __iter__(self) -> Iterator[CatalogEntry]:
        return iter(self.list())

    def __len__(self) -> int:
        return len(self._snapshot.entries)

    @property
    def errors(self) -> list[str]:
        """What the last refresh skipped and why, for diagnostics."""
        return list(self._snapshot.errors)

    def _report_unknown_fields(self, source: Path, config: ModelConfig) -> None:
        for name in config.unknown_fields():
            key = (str(source), name)
            if key not in self._reported_unknown:
                self._reported_unknown.add(key)
                logger.info(
                    "event=unknown_config_field file=%s field=%s model=%s", source, name, config.name
                )


class _Builder:
    """One refresh: reads every source into fresh dicts that become the next snapshot."""

    def __init__(self, catalog: Catalog) -> None:
        self.catalog = catalog
        self.models_path = catalog.models_path
        self.entries: dict[str, CatalogEntry] = {}
        self.aliases: dict[str, str] = {}
        self.errors: list[str] = []
        self.referenced: set[str] = set()
        self.disabled: set[str] = set()

    def build(self) -> _Snapshot:
        if not self.models_path.is_dir():
            self._skip(f"models path {self.models_path} is not a directory", event="models_path_missing")
        for path in self._config_sources():
            self._add_config_file(path)
        if self.models_path.is_dir():
            for loose in scan(self.models_path):
                if loose.name in self.referenced:
                    continue
                try:
                    config = _default_config(loose.name, loose.detection)
                except InvalidModelConfig as exc:
                    self._skip(exc.message, event="loose_file_skipped", file=loose.path)
                    continue
                if self._add(config, source="file", path=loose.path) and loose.stem:
                    self.aliases.setdefault(loose.stem, loose.name)
        for builtin in self.catalog.builtins:
            self._add_builtin(builtin)
        aliases = {stem: name for stem, name in self.aliases.items() if stem not in self.entries}
        return _Snapshot(MappingProxyType(self.entries), MappingProxyType(aliases), tuple(self.errors))

    def _config_sources(self) -> list[Path]:
        found = list(self.catalog.config_files)
        if self.models_path.is_dir():
            try:
                found += sorted(
                    child
                    for child in self.models_path.iterdir()
                    if child.suffix.lower() in (".yaml", ".yml")
                    and not is_skipped(child.name)
                    and child.is_file()
                )
            except OSError as exc:
                self._skip(f"cannot list {self.models_path}: {exc}", event="models_path_unreadable")
        unique: list[Path] = []
        seen: set[Path] = set()
        for path in found:
            key = path.resolve()
            if key not in seen:
                seen.add(key)
                unique.append(path)
        return unique

    def _add_config_file(self, path: Path) -> None:
        result = parse_config_file(path)
        for error in result.errors:
            self._skip(error.message, event="config_skipped", file=path)
        for config in result.configs:
            self.catalog._report_unknown_fields(path, config)
            self.referenced.update(_top_level_names(config))
            if config.disabled:
                self.disabled.add(config.name)
                logger.info("event=model_disabled file=%s model=%s", path, config.name)
                continue
            if config.backend is None:
                config = self._detect_backend(config)
            self._add(config, source="config", path=path)

    def _detect_backend(self, config: ModelConfig) -> ModelConfig:
        """A config without ``backend:`` gets the one its model file or folder is recognised as."""
        model = config.parameters.model
        if not model or "://" in model or unsafe_reason(model):
            return config
        detection = detect(self.models_path / model)
        return _apply_detection(config, detection) if detection else config

    def _add_builtin(self, builtin: BuiltinModel) -> None:
        """A built-in model, unless a config, loose file or alias already uses its name."""
        name = builtin.name
        if name in self.entries or name in self.aliases or name in self.disabled:
            logger.debug("event=builtin_model_shadowed model=%s", name)
            return
        location = builtin.location()
        if location is not None:
            self._add(builtin.config(), source="builtin", path=location)

    def _add(self, config: ModelConfig, *, source: str, path: Path) -> bool:
        existing = self.entries.get(config.name)
        if existing is not None:
            self._skip(
                f"duplicate model name {config.name!r} in {path}; keeping the one from {existing.path}",
                event="duplicate_model",
                file=path,
            )
            return False
        config = config.with_defaults(self.catalog.defaults)
        self.entries[config.name] = CatalogEntry(
            name=config.name,
            config=config,
            source=source,
            path=path,
            backend=config.backend,
            usecases=frozenset(config.usecases),
        )
        return True

    def _skip(self, reason: str, *, event: str, file: Path | None = None) -> None:
        self.errors.append(reason)
        logger.warning("event=%s file=%s reason=%s", event, file or "-", reason)


def _top_level_names(config: ModelConfig) -> set[str]:
    """The models-path entries (first path component) a config points at."""
    names = set()
    for value in config.referenced_files():
        if "://" in value:
            continue
        parts = [part for part in PurePath(value.replace("\\", "/")).parts if part not in ("", ".")]
        if parts:
            names.add(parts[0])
    return names


def _apply_detection(config: ModelConfig, detection: Detection) -> ModelConfig:
    update: dict[str, object] = {"backend": detection.backend}
    if detection.reranking and config.reranking is None:
        update["reranking"] = True
    if detection.pipeline_type and not config.diffusers.pipeline_type:
        diffusers = config.diffusers.model_copy(update={"pipeline_type": detection.pipeline_type})
        update["diffusers"] = diffusers
    return config.model_copy(update=update)


def _default_config(name: str, detection: Detection) -> ModelConfig:
    """The config a loose model file gets: its name, its file, and what detection found."""
    try:
        config = ModelConfig.model_validate({"name": name, "parameters": {"model": name}})
    except InvalidModelConfig as exc:
        raise InvalidModelConfig(f"loose model file {name!r}: {exc.message}") from exc
    return _apply_detection(config, detection)
