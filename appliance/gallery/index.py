"""Galleries and their `index.yaml`: LocalAI's list of installable models, read leniently and cached.

An entry holds `name`, `description`, `license`, `urls`, `icon`, `tags`, `files: [{filename, uri,
sha256}]`, and either `config_file` (the model's YAML config as a mapping) or `url` (a model
definition YAML elsewhere, LocalAI's "base config"), plus `overrides` merged over the config. The
last index fetched from each gallery is kept under the data path, so listings work offline; a copy
in memory is reused for a few minutes. Ids are LocalAI's: `gallery@name`, or a bare `name`.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from appliance.gallery.errors import (
    GalleryExists,
    GalleryModelNotFound,
    GalleryNotFound,
    GalleryUnavailable,
    InvalidDefinition,
    InvalidSource,
)
from appliance.gallery.fetch import CancelToken, Fetcher
from appliance.gallery.uris import looks_like_uri, parse_uri, resolve_relative
from inference.catalog.config import _ConfigYamlLoader  # YAML 1.2 booleans, as LocalAI (Go yaml.v3) reads them

logger = logging.getLogger(__name__)

MEMORY_TTL_S = 300.0
MAX_ENTRIES = 100_000


@dataclass(frozen=True)
class Gallery:
    """One configured gallery: LocalAI's `{"name", "url"}`."""

    name: str
    url: str

    def as_dict(self) -> dict[str, str]:
        return {"name": self.name, "url": self.url}


@dataclass(frozen=True)
class FileEntry:
    """One `files:` item: where a file goes in the models path, where it comes from, its digest."""

    filename: str
    uri: str
    sha256: str | None = None

    def as_dict(self) -> dict[str, str]:
        return {"filename": self.filename, "uri": self.uri, "sha256": self.sha256 or ""}


@dataclass(frozen=True)
class GalleryModel:
    """One installable model as an index lists it."""

    name: str
    gallery: Gallery
    url: str = ""
    description: str = ""
    license: str = ""
    urls: tuple[str, ...] = ()
    icon: str = ""
    tags: tuple[str, ...] = ()
    files: tuple[FileEntry, ...] = ()
    size: str = ""
    config_file: Mapping[str, Any] | str | None = None
    overrides: Mapping[str, Any] = field(default_factory=dict)

    @property
    def id(self) -> str:
        return f"{self.gallery.name}@{self.name}"

    def metadata(self, *, installed: bool) -> dict[str, Any]:
        """LocalAI's `Metadata` JSON (empty fields left out, as Go's omitempty does), plus `id`."""
        body: dict[str, Any] = {"id": self.id, "name": self.name}
        for key, value in (
            ("url", self.url),
            ("description", self.description),
            ("license", self.license),
            ("urls", list(self.urls)),
            ("icon", self.icon),
            ("tags", list(self.tags)),
            ("files", [f.as_dict() for f in self.files]),
            ("size", self.size),
        ):
            if value:
                body[key] = value
        body["gallery"] = self.gallery.as_dict()
        body["installed"] = installed
        return body


def load_yaml(data: bytes | str, *, what: str) -> Any:
    try:
        return yaml.load(data, Loader=_ConfigYamlLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as exc:
        raise InvalidDefinition(f"{what} is not valid YAML: {' '.join(str(exc).split())[:300]}") from None


def parse_files(items: Any, *, what: str) -> tuple[FileEntry, ...]:
    """`files:` items; each needs a `filename` and a `uri` (LocalAI also spells the digest `sha`)."""
    if items in (None, ""):
        return ()
    if not isinstance(items, list):
        raise InvalidDefinition(f"{what}: 'files' must be a list of {{filename, uri, sha256}}")
    found = []
    for index, item in enumerate(items):
        if not isinstance(item, dict) or not item.get("filename") or not item.get("uri"):
            raise InvalidDefinition(f"{what}: files[{index}] needs a 'filename' and a 'uri'")
        digest = item.get("sha256") or item.get("sha") or None
        found.append(FileEntry(str(item["filename"]), str(item["uri"]), str(digest) if digest else None))
    return tuple(found)


def parse_index(data: bytes, gallery: Gallery) -> list[GalleryModel]:
    """Entries of an `index.yaml`; a malformed entry is skipped with a warning, never fatal."""
    document = load_yaml(data, what=f"gallery {gallery.name!r} index")
    if document is None:
        return []
    if not isinstance(document, list):
        raise InvalidDefinition(f"gallery {gallery.name!r} index must be a YAML list of models")
    models: list[GalleryModel] = []
    for position, item in enumerate(document[:MAX_ENTRIES]):
        try:
            models.append(_entry(item, gallery))
        except InvalidDefinition as exc:
            logger.warning("event=gallery_entry_skipped gallery=%s index=%d reason=%s", gallery.name, position, exc.message)
    return models


def _entry(item: Any, gallery: Gallery) -> GalleryModel:
    if not isinstance(item, dict) or not isinstance(item.get("name"), str) or not item["name"].strip():
        raise InvalidDefinition("an entry needs a 'name'")
    name = item["name"].strip()
    what = f"gallery model {gallery.name}@{name}"
    url = str(item.get("url") or "").strip()
    if url and not looks_like_uri(url):
        try:
            url = resolve_relative(gallery.url, url)
        except InvalidSource as exc:
            raise InvalidDefinition(f"{what}: {exc.message}") from None
    config = item.get("config_file")
    if config is not None and not isinstance(config, dict | str):
        raise InvalidDefinition(f"{what}: 'config_file' must be a mapping (or YAML text)")
    overrides = item.get("overrides") or {}
    if not isinstance(overrides, dict):
        raise InvalidDefinition(f"{what}: 'overrides' must be a mapping")
    return GalleryModel(
        name=name,
        gallery=gallery,
        url=url,
        description=str(item.get("description") or ""),
        license=str(item.get("license") or ""),
        urls=tuple(str(u) for u in _list(item.get("urls"))),
        icon=str(item.get("icon") or ""),
        tags=tuple(str(t) for t in _list(item.get("tags"))),
        files=parse_files(item.get("files"), what=what),
        size=str(item.get("size") or ""),
        config_file=config,
        overrides=overrides,
    )


def _list(value: Any) -> list[Any]:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def check_gallery(gallery: Gallery) -> None:
    """A gallery name without '@' (it separates gallery and model in ids) and a URL the fetcher takes."""
    if "@" in gallery.name or len(gallery.name) > 100 or any(ord(ch) < 32 for ch in gallery.name):
        raise InvalidSource(f"gallery name {gallery.name!r} must be at most 100 characters, without '@'", param="name")
    parse_uri(gallery.url)


class GalleryIndex:
    """The configured galleries (changeable at run time) and their entries. Thread-safe, blocking."""

    def __init__(
        self,
        galleries: Sequence[Gallery],
        cache_dir: Path,
        fetcher: Fetcher,
        *,
        clock: Callable[[], float] = time.monotonic,
        ttl: float = MEMORY_TTL_S,
    ) -> None:
        self._galleries = list(galleries)
        self.cache_dir = Path(cache_dir)
        self.fetcher = fetcher
        self._clock = clock
        self._ttl = ttl
        self._lock = threading.Lock()
        self._memory: dict[Gallery, tuple[float, list[GalleryModel]]] = {}

    # ------------------------------------------------------------------ the gallery list

    def galleries(self) -> list[Gallery]:
        with self._lock:
            return list(self._galleries)

    def add(self, gallery: Gallery) -> list[Gallery]:
        check_gallery(gallery)
        with self._lock:
            if any(g.name == gallery.name for g in self._galleries):
                raise GalleryExists(f"gallery {gallery.name!r} already exists", param="name")
            self._galleries.append(gallery)
            return list(self._galleries)

    def remove(self, name: str) -> list[Gallery]:
        with self._lock:
            if not any(g.name == name for g in self._galleries):
                raise GalleryNotFound(f"gallery {name!r} is not configured; GET /models/galleries lists them", param="name")
            self._galleries = [g for g in self._galleries if g.name != name]
            return list(self._galleries)

    # ------------------------------------------------------------------ entries

    def models(self, *, fresh: bool = False, cancel: CancelToken | None = None) -> list[GalleryModel]:
        """Every entry of every gallery; a gallery that cannot be read is skipped (and logged), but
        when none can be read at all this raises GalleryUnavailable."""
        found: list[GalleryModel] = []
        problems: list[str] = []
        galleries = self.galleries()
        for gallery in galleries:
            try:
                found.extend(self.entries(gallery, fresh=fresh, cancel=cancel))
            except (GalleryUnavailable, InvalidDefinition) as exc:
                problems.append(exc.message)
        if galleries and problems and len(problems) == len(galleries):
            raise GalleryUnavailable("; ".join(problems))
        return found

    def entries(self, gallery: Gallery, *, fresh: bool = False, cancel: CancelToken | None = None) -> list[GalleryModel]:
        """One gallery's entries: from memory if recent, else fetched, else the last good copy on disk."""
        now = self._clock()
        with self._lock:
            cached = self._memory.get(gallery)
        if cached is not None and not fresh and now - cached[0] < self._ttl:
            return cached[1]
        try:
            data = self.fetcher.fetch_document(parse_uri(gallery.url), cancel)
            models = parse_index(data, gallery)
        except Exception as exc:  # noqa: BLE001 - any failure falls back to the copy on disk
            message = getattr(exc, "message", None) or f"{type(exc).__name__}: {exc}"
            models = self._from_disk(gallery)
            if models is None:
                raise GalleryUnavailable(
                    f"gallery {gallery.name!r} ({gallery.url}) cannot be read and was never cached: {message}"
                ) from None
            logger.warning("event=gallery_offline gallery=%s reason=%s cached_models=%d", gallery.name, message, len(models))
        else:
            self._to_disk(gallery, data)
        with self._lock:
            self._memory[gallery] = (now, models)
        return models

    def find(self, ident: str, cancel: CancelToken | None = None) -> GalleryModel:
        """The entry `ident` names (`gallery@name`, or a bare name matched across galleries, case-insensitively).

        A miss in a cached copy is retried once against freshly fetched indexes."""
        ident = ident.strip()
        # As given first (an entry whose name is unsafe must be found, to be refused by name), then
        # with LocalAI's mapping of "/" to "__".
        wanted = {ident.lower(), ident.replace("/", "__").lower()}
        if "@" in ident:
            gallery_name = ident.split("@", 1)[0]
            if not any(g.name.lower() == gallery_name.lower() for g in self.galleries()):
                raise GalleryNotFound(
                    f"no gallery named {gallery_name!r}; GET /models/galleries lists them", param="id"
                )
        for fresh in (False, True):
            for model in self.models(fresh=fresh, cancel=cancel):
                key = model.id if "@" in ident else model.name
                if key.lower() in wanted:
                    return model
        raise GalleryModelNotFound(
            f"no gallery model {ident!r}; GET /models/available lists the models the galleries offer", param="id"
        )

    # ------------------------------------------------------------------ the copies on disk

    def _cache_file(self, gallery: Gallery) -> Path:
        readable = re.sub(r"[^A-Za-z0-9._-]", "_", gallery.name)[:60] or "gallery"
        digest = hashlib.sha256(f"{gallery.name}\0{gallery.url}".encode()).hexdigest()[:12]
        return self.cache_dir / f"{readable}-{digest}.yaml"

    def _to_disk(self, gallery: Gallery, data: bytes) -> None:
        path = self._cache_file(gallery)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(f".{path.name}.tmp")
            tmp.write_bytes(data)
            os.replace(tmp, path)
        except OSError as exc:
            logger.warning("event=gallery_cache_unwritable gallery=%s reason=%s", gallery.name, exc)

    def _from_disk(self, gallery: Gallery) -> list[GalleryModel] | None:
        path = self._cache_file(gallery)
        try:
            data = path.read_bytes()
        except OSError:
            return None
        try:
            return parse_index(data, gallery)
        except InvalidDefinition:
            return None
