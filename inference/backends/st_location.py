"""Where a sentence-transformers model's weights are, and how large they are; reads no weights.

``parameters.model`` is tried as, in order: ``builtin://<name>`` (a packaged model); a folder under
the models path; a hub id whose weights a built-in package carries (LocalAI's examples say
``all-MiniLM-L6-v2``); a Hugging Face Hub id ``org/name``, only while HF_HUB_OFFLINE and
TRANSFORMERS_OFFLINE are unset. Anything else is an error that names the folder and the value.
"""

from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from inference.catalog.builtin_models import builtin_for_hub_id, builtin_reference, resolve_builtin
from inference.catalog.discovery import detect
from inference.errors import InvalidModelConfig

if TYPE_CHECKING:
    from inference.catalog.config import ModelConfig

logger = logging.getLogger(__name__)

_HUB_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*/[A-Za-z0-9][A-Za-z0-9_.-]*$")
_OFFLINE_VARIABLES = ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")
_TRUE = {"1", "true", "yes", "on"}
# Folders of other runtimes' exports in hub repos (all-MiniLM-L6-v2 ships several): not loaded.
_EXPORT_FOLDERS = {"onnx", "openvino", "coreml", "tflite", "tf", "flax"}
_WEIGHT_SUFFIXES = (".bin", ".pt", ".pth")

LocationKind = Literal["builtin", "folder", "hub"]


@dataclass(frozen=True)
class ModelLocation:
    """``source`` is what sentence-transformers is given: a local folder's path, or a hub id."""

    source: str
    folder: Path | None
    kind: LocationKind


def locate_model(config: ModelConfig, models_path: Path) -> ModelLocation:
    """Resolve ``config.parameters.model`` (see the module docstring); never touches the network."""
    value = config.parameters.model
    label = f"model {config.name!r}"
    if not value:
        raise InvalidModelConfig(
            f"{label}: parameters.model is not set; name a sentence-transformers folder under {models_path}",
            param="parameters.model",
        )
    if builtin_reference(value) is not None:
        folder = resolve_builtin(value)
        return ModelLocation(str(folder), folder, "builtin")
    folder = models_path / value
    if folder.is_dir():
        return ModelLocation(str(folder), folder, "folder")
    builtin = builtin_for_hub_id(value, backend="sentencetransformers")
    packaged = builtin.location() if builtin is not None else None
    if builtin is not None and packaged is not None:
        logger.info(
            "event=st_builtin_weights model=%s hub_id=%s builtin=%s", config.name, value, builtin.name
        )
        return ModelLocation(str(packaged), packaged, "builtin")
    if "://" not in value and _HUB_ID.match(value):
        offline = hub_offline()
        if offline is None:
            return ModelLocation(value, None, "hub")
        raise InvalidModelConfig(
            f"{label}: parameters.model {value!r} is not a folder under the models path ({folder}), "
            f"and {offline} is set, so it is not fetched from the Hugging Face Hub; put the model "
            "folder there, or unset it to allow the download",
            param="parameters.model",
        )
    raise InvalidModelConfig(
        f"{label}: parameters.model {value!r} is not a sentence-transformers folder: {folder} does not "
        "exist (a Hugging Face Hub id looks like 'org/name')",
        param="parameters.model",
    )


def hub_offline() -> str | None:
    """The variable that forbids hub downloads (HF_HUB_OFFLINE, TRANSFORMERS_OFFLINE), or None."""
    for name in _OFFLINE_VARIABLES:
        if os.environ.get(name, "").strip().lower() in _TRUE:
            return name
    return None


def is_cross_encoder_folder(folder: Path) -> bool:
    """Whether ``folder`` holds a cross-encoder (``inference.catalog.discovery``'s reading of it)."""
    detection = detect(folder)
    return detection is not None and detection.reranking


def weights_size(folder: Path) -> int:
    """Bytes of the weight files that load: per folder the ``*.safetensors``, else ``*.bin``/``*.pt``.

    Module subfolders (``2_Dense/``) count; other runtimes' exports (``onnx/``, ``openvino/``) and
    hidden folders do not, nor does a ``pytorch_model.bin`` beside a ``model.safetensors``.
    """
    total = 0
    for root, dirs, files in os.walk(folder):
        dirs[:] = [d for d in dirs if not d.startswith(".") and d.lower() not in _EXPORT_FOLDERS]
        safetensors = [name for name in files if name.endswith(".safetensors")]
        chosen = safetensors or [name for name in files if name.endswith(_WEIGHT_SUFFIXES)]
        for name in chosen:
            try:
                total += (Path(root) / name).stat().st_size
            except OSError as exc:
                logger.debug("event=weights_size_failed path=%s error=%s", Path(root) / name, exc)
    return total
