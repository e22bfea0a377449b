"""Installing and removing models in the models path, the way LocalAI's gallery does it.

An `InstallPlan` is made at request time from a gallery entry, a model definition URL, a model
config URL or a plain file URL, with every name and file name checked then (so traversal is a 400).
`Installer.install` runs in a worker thread: it reads the definition when there is one, checks
everything it adds, downloads each file, writes LocalAI's `._gallery_<name>.yaml` record and then,
last and atomically, `<name>.yaml` (the config merged with the overrides, `name` set), so the model
appears only when all of it is in place. `remove` deletes the config and the files it lists that no
other model uses.
"""

from __future__ import annotations

import copy
import logging
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from appliance.gallery.errors import InvalidDefinition, ModelNotInstalled, UnsafeName
from appliance.gallery.fetch import CancelToken, Fetcher, normalize_sha256, require_integrity
from appliance.gallery.index import FileEntry, GalleryModel, load_yaml, parse_files
from appliance.gallery.paths import (
    GALLERY_FILE_PREFIX,
    check_filename,
    config_path,
    gallery_file_path,
    install_name,
    is_inside,
    resolve_inside,
)
from appliance.gallery.uris import parse_uri
from inference.catalog.config import ModelConfig, parse_config_file
from inference.errors import InferenceError

logger = logging.getLogger(__name__)

FileProgress = Callable[[str, int, int | None, int, int], None]  # (file, done, total, index, count)


@dataclass(frozen=True)
class InstallPlan:
    """What one install will do. `definition_url` / `config_url` are read when the job runs."""

    element: str  # what the job reports as gallery_element_name
    name: str | None  # the model name; None: taken from the config the job reads
    config: Mapping[str, Any] = field(default_factory=dict)
    overrides: Mapping[str, Any] = field(default_factory=dict)
    files: tuple[FileEntry, ...] = ()
    definition_url: str | None = None  # LocalAI's `url:`: a model definition (config_file, files, …)
    config_url: str | None = None  # LocalAI's `config_url`: a model config YAML (download_files)
    description: str = ""
    license: str = ""
    urls: tuple[str, ...] = ()
    icon: str = ""


def merge(base: Mapping[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    """`over` merged into a copy of `base`: mappings merge key by key, anything else is replaced."""
    merged = copy.deepcopy(dict(base))
    for key, value in over.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def config_mapping(value: Any, *, what: str) -> dict[str, Any]:
    """A `config_file`: a mapping, or YAML text holding one (LocalAI's definitions carry text)."""
    if value in (None, ""):
        return {}
    if isinstance(value, str):
        value = load_yaml(value, what=f"{what} config_file")
        if value is None:
            return {}
    if not isinstance(value, Mapping):
        raise InvalidDefinition(f"{what}: config_file must be a mapping of config fields")
    return dict(value)


def check_files(models_path: Path, files: Sequence[FileEntry], *, field: str = "files") -> tuple[FileEntry, ...]:
    """Each file's name stays inside the models path and its source is one the downloader takes."""
    checked = []
    for index, item in enumerate(files):
        where = f"{field}[{index}]"
        resolve_inside(models_path, item.filename, field=f"{where}.filename")
        source = parse_uri(item.uri)
        digest = normalize_sha256(item.sha256, field=f"{where}.sha256")
        require_integrity(source, digest, field=f"{where}.uri")
        checked.append(FileEntry(check_filename(item.filename), item.uri, digest))
    return tuple(checked)


def plan_for_entry(
    models_path: Path,
    entry: GalleryModel,
    *,
    name: str | None = None,
    overrides: Mapping[str, Any] | None = None,
    files: Sequence[FileEntry] = (),
) -> InstallPlan:
    """LocalAI's InstallModelFromGallery: the entry's config (or its `url:` definition), the request's
    name, its overrides merged over the entry's, its files before the entry's."""
    if not entry.url and entry.config_file in (None, ""):
        raise InvalidDefinition(f"gallery model {entry.id} has neither 'url' nor 'config_file'")
    plan = InstallPlan(
        element=entry.id,
        name=install_name(name or entry.name, field="name"),
        config=config_mapping(entry.config_file, what=entry.id) if not entry.url else {},
        overrides=merge(entry.overrides, overrides or {}),
        files=check_files(models_path, [*files, *entry.files]),
        definition_url=entry.url or None,
        description=entry.description,
        license=entry.license,
        urls=entry.urls,
        icon=entry.icon,
    )
    if plan.definition_url:
        parse_uri(plan.definition_url)
    return plan


def plan_for_definition(
    models_path: Path, url: str, *, name: str | None, overrides: Mapping[str, Any] | None, files: Sequence[FileEntry]
) -> InstallPlan:
    """LocalAI's `{"url": …}`: a model definition YAML (config_file, files, …) at that URL."""
    return _plan_for_url(models_path, url, name, overrides, files, definition_url=url)


def plan_for_config(
    models_path: Path, url: str, *, name: str | None, overrides: Mapping[str, Any] | None, files: Sequence[FileEntry]
) -> InstallPlan:
    """LocalAI's `{"config_url": …}`: a model config YAML whose `download_files` come along."""
    return _plan_for_url(models_path, url, name, overrides, files, config_url=url)


def _plan_for_url(
    models_path: Path,
    url: str,
    name: str | None,
    overrides: Mapping[str, Any] | None,
    files: Sequence[FileEntry],
    **source: str,
) -> InstallPlan:
    parse_uri(url)
    return InstallPlan(
        element=url,
        name=install_name(name, field="name") if name else None,
        overrides=dict(overrides or {}),
        files=check_files(models_path, files),
        **source,
    )


def plan_for_file(models_path: Path, url: str, *, name: str | None = None, sha256: str | None = None) -> InstallPlan:
    """`appliance models install URL` of a model file (a .gguf…): the file lands in the models path
    under its own name (a `.yaml` is read as a model config instead, as LocalAI's startup does)."""
    source = parse_uri(url)
    filename = source.filename
    if filename.lower().endswith((".yaml", ".yml")):
        return plan_for_config(models_path, url, name=name, overrides=None, files=())
    check_filename(filename, field="url")
    files = check_files(models_path, [FileEntry(filename, url, sha256)], field="url")
    if name is None:
        return InstallPlan(element=url, name=None, files=files)
    return InstallPlan(
        element=url,
        name=install_name(name),
        config={"parameters": {"model": filename}},
        files=files,
    )


class Installer:
    """Carries out plans in one models path. Blocking: run it in a worker thread."""

    def __init__(self, models_path: Path, fetcher: Fetcher) -> None:
        self.models_path = Path(models_path)
        self.fetcher = fetcher

    def install(self, plan: InstallPlan, progress: FileProgress, cancel: CancelToken) -> str:
        """Download and write everything; returns the installed model's name (or file name)."""
        plan = self._resolve(plan, cancel)
        config = merge(plan.config, plan.overrides)
        if config and plan.name is not None:
            config["name"] = plan.name
            self._validate(config, plan)  # before any download: a bad config must not cost gigabytes
        files = list(plan.files)
        for index, item in enumerate(files):
            cancel.check()
            target = resolve_inside(self.models_path, item.filename, field=f"files[{index}].filename")

            def report(done: int, total: int | None, _file: str = item.filename, _i: int = index) -> None:
                progress(_file, done, total, _i, len(files))

            report(0, None)
            self.fetcher.download(parse_uri(item.uri), target, sha256=item.sha256, progress=report, cancel=cancel)
        cancel.check()
        if plan.name is None:  # a bare model file: it is offered as a loose file under its own name
            return files[0].filename if files else ""
        self._write(gallery_file_path(self.models_path, plan.name), self._record(plan, config))
        if config:
            self._write(config_path(self.models_path, plan.name), yaml.safe_dump(config, sort_keys=False, allow_unicode=True))
        logger.info("event=model_installed model=%s element=%s files=%d", plan.name, plan.element, len(files))
        return plan.name

    def _resolve(self, plan: InstallPlan, cancel: CancelToken) -> InstallPlan:
        """Read the definition or config the plan points at and fold it in, checking what it adds."""
        if plan.definition_url:
            what = f"model definition {plan.definition_url}"
            document = load_yaml(self.fetcher.fetch_document(parse_uri(plan.definition_url), cancel), what=what)
            if not isinstance(document, Mapping):
                raise InvalidDefinition(f"{what} must be a YAML mapping (name, config_file, files, …)")
            added = check_files(self.models_path, parse_files(document.get("files"), what=what), field="files")
            name = plan.name or install_name(str(document.get("name") or ""), field="name")
            self._templates(document.get("prompt_templates"), what)
            return replace(
                plan,
                name=name,
                config=config_mapping(document.get("config_file"), what=what),
                files=(*added, *plan.files),  # LocalAI: the definition's files, then the request's
                description=plan.description or str(document.get("description") or ""),
                license=plan.license or str(document.get("license") or ""),
                urls=(*plan.urls, *(str(u) for u in _as_list(document.get("urls")))),
            )
        if plan.config_url:
            what = f"model config {plan.config_url}"
            document = load_yaml(self.fetcher.fetch_document(parse_uri(plan.config_url), cancel), what=what)
            if isinstance(document, list) and len(document) == 1:
                document = document[0]
            if not isinstance(document, Mapping):
                raise InvalidDefinition(f"{what} must hold one model config (a YAML mapping)")
            config = dict(document)
            name = plan.name or install_name(str(config.get("name") or ""), field="name")
            downloads = parse_files(config.get("download_files"), what=what)
            added = check_files(self.models_path, downloads, field="download_files")
            return replace(plan, name=name, config=config, files=(*added, *plan.files))
        return plan

    def _templates(self, templates: Any, what: str) -> None:
        """LocalAI's `prompt_templates: [{name, content}]`, written as `<name>.tmpl`."""
        if not templates:
            return
        if not isinstance(templates, list):
            raise InvalidDefinition(f"{what}: prompt_templates must be a list of {{name, content}}")
        for index, item in enumerate(templates):
            if not isinstance(item, Mapping) or not item.get("name"):
                raise InvalidDefinition(f"{what}: prompt_templates[{index}] needs a name")
            target = resolve_inside(self.models_path, f"{item['name']}.tmpl", field=f"prompt_templates[{index}].name")
            target.parent.mkdir(parents=True, exist_ok=True)
            self._write(target, str(item.get("content") or ""))

    def _validate(self, config: dict[str, Any], plan: InstallPlan) -> None:
        """The merged config must be one the catalog accepts (names inside the models path, types right)."""
        try:
            ModelConfig.model_validate(config)
        except InferenceError as exc:
            raise InvalidDefinition(f"the config of {plan.element} is unsafe or invalid: {exc.message}") from None
        except ValidationError as exc:
            first = exc.errors()[0] if exc.errors() else {}
            where = ".".join(str(p) for p in first.get("loc", ())) or "config"
            raise InvalidDefinition(f"the config of {plan.element} is invalid at {where}: {first.get('msg', exc)}") from None

    def _record(self, plan: InstallPlan, config: Mapping[str, Any]) -> str:
        record = {
            "name": plan.name,
            "description": plan.description,
            "license": plan.license,
            "urls": list(plan.urls),
            "icon": plan.icon,
            "config_file": yaml.safe_dump(dict(config), sort_keys=False, allow_unicode=True) if config else "",
            "files": [f.as_dict() for f in plan.files],
        }
        return yaml.safe_dump(record, sort_keys=False, allow_unicode=True)

    @staticmethod
    def _write(path: Path, text: str) -> None:
        tmp = path.with_name(f".{path.name}.tmp")
        with open(tmp, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)

    # ------------------------------------------------------------------ removal

    def installed(self, name: str) -> bool:
        """LocalAI's test: `<name>.yaml` is in the models path."""
        try:
            return config_path(self.models_path, name).is_file()
        except UnsafeName:
            return False

    def remove(self, name: str) -> list[str]:
        """Delete `<name>.yaml`, its gallery record, and the files they list that no other model
        uses; returns what was removed, relative to the models path."""
        name = install_name(name, field="name")
        root = Path(os.path.realpath(self.models_path))
        config = root / f"{name}.yaml"
        if not config.is_file():
            config = root / f"{name}.yml"
        if not config.is_file():
            raise ModelNotInstalled(
                f"model {name!r} has no config {name}.yaml in the models path; nothing to remove", param="name"
            )
        mine = self._files_of(root, name, config)
        others: set[Path] = set()
        for other in sorted(root.iterdir()):
            if other.suffix in (".yaml", ".yml") and other != config and not other.name.startswith(".") and other.is_file():
                others |= self._files_of(root, other.stem, other)
        removed = []
        for path in sorted(mine - others):
            if path.is_file() and is_inside(root, path):
                path.unlink()
                removed.append(path.relative_to(root).as_posix())
        (root / f"{GALLERY_FILE_PREFIX}{name}.yaml").unlink(missing_ok=True)
        config.unlink()
        removed.append(config.name)
        logger.info("event=model_removed model=%s files=%d", name, len(removed))
        return removed

    def _files_of(self, root: Path, name: str, config: Path) -> set[Path]:
        """Files a model owns: what its configs reference, and what its gallery record lists."""
        relatives: list[str] = []
        for item in parse_config_file(config).configs:
            relatives += [value for value in item.referenced_files() if "://" not in value]
        record = root / f"{GALLERY_FILE_PREFIX}{name}.yaml"
        try:
            document = yaml.safe_load(record.read_text(encoding="utf-8")) if record.is_file() else None
        except (OSError, yaml.YAMLError):
            document = None
        if isinstance(document, Mapping):
            try:
                relatives += [item.filename for item in parse_files(document.get("files"), what=str(record))]
            except InvalidDefinition:
                pass
        found: set[Path] = set()
        for relative in relatives:
            try:
                found.add(resolve_inside(root, relative))
            except UnsafeName:
                continue
        return found


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]
