"""Detection of loose model files and folders, reading only names and small JSON files.

Files, checked in this order: a ``*.gguf`` is ``llama-cpp`` (only the first shard of a split model;
``mmproj`` projectors are skipped); ``X.onnx`` with a sibling ``X.onnx.json`` is a ``piper`` voice.
Folders, checked in this order, the first match wins:
  1. ``modules.json`` or ``config_sentence_transformers.json``: ``sentencetransformers``; embeddings,
     or rerank when that file says ``"model_type": "CrossEncoder"`` (sentence-transformers >= 5
     saves cross-encoders so) or ``config.json`` has a sequence-classification architecture;
  2. ``model_index.json``: ``diffusers``; an audio pipeline ``_class_name`` means sound, else image;
  3. ``model.bin`` with a whisper ``config.json``, a ``tokenizer.json`` or a ``vocabulary.*``:
     ``faster-whisper`` (a CTranslate2 conversion);
  4. ``config.json`` whose ``architectures`` end in ``ForSequenceClassification``: a cross-encoder,
     ``sentencetransformers`` with reranking.
Anything else is not a model. Hidden files, ``.tmpl`` templates and partial downloads are skipped.
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

MAX_JSON_BYTES = 1024 * 1024
SKIPPED_SUFFIXES: tuple[str, ...] = (".tmpl", ".partial", ".tmp", ".part", ".incomplete")
DETECTION_ORDER: tuple[str, ...] = (
    "gguf file",
    "piper voice (X.onnx + X.onnx.json)",
    "sentence-transformers folder",
    "diffusers folder",
    "CTranslate2 whisper folder",
    "cross-encoder folder",
)

_SHARD = re.compile(r"-(\d{5})-of-(\d{5})\.gguf$", re.IGNORECASE)


@dataclass(frozen=True)
class Detection:
    """What a loose file or folder was recognised as, and the config fields that follow from it."""

    backend: str
    reranking: bool = False
    pipeline_type: str | None = None


@dataclass(frozen=True)
class LooseModel:
    """A model file or folder in the models path with no config of its own."""

    name: str
    path: Path
    detection: Detection

    @property
    def stem(self) -> str | None:
        """The name without its ``.gguf``/``.onnx`` extension, also accepted by lookups."""
        for suffix in (".gguf", ".onnx"):
            if self.name.lower().endswith(suffix) and len(self.name) > len(suffix):
                return self.name[: -len(suffix)]
        return None


def is_skipped(name: str) -> bool:
    """Hidden files, templates and partial downloads are never models."""
    return name.startswith(".") or name.lower().endswith(SKIPPED_SUFFIXES)


def detect(path: Path) -> Detection | None:
    """Recognise one file or folder, or None. Reads at most a few small JSON files."""
    try:
        if path.is_dir():
            return _detect_folder(path)
        if path.is_file():
            return _detect_file(path)
    except OSError as exc:
        logger.debug("event=detect_failed path=%s error=%s", path, exc)
    return None


def scan(models_path: Path) -> list[LooseModel]:
    """Every recognised model at the top level of ``models_path``, sorted by name."""
    try:
        children = sorted(models_path.iterdir())
    except OSError as exc:
        logger.warning("event=models_path_unreadable path=%s error=%s", models_path, exc)
        return []
    found = []
    for child in children:
        if is_skipped(child.name):
            continue
        detection = detect(child)
        if detection is not None:
            found.append(LooseModel(name=child.name, path=child, detection=detection))
    return found


def _detect_file(path: Path) -> Detection | None:
    name = path.name.lower()
    if name.endswith(".gguf"):
        shard = _SHARD.search(name)
        if "mmproj" in name or (shard and int(shard.group(1)) != 1):
            return None
        return Detection(backend="llama-cpp")
    if name.endswith(".onnx") and path.with_name(path.name + ".json").is_file():
        return Detection(backend="piper")
    return None


def _detect_folder(path: Path) -> Detection | None:
    config = _read_json(path / "config.json") if (path / "config.json").is_file() else None
    st_config_path = path / "config_sentence_transformers.json"
    if (path / "modules.json").is_file() or st_config_path.is_file():
        st_config = _read_json(st_config_path) if st_config_path.is_file() else None
        cross_encoder = isinstance(st_config, dict) and st_config.get("model_type") == "CrossEncoder"
        reranking = cross_encoder or _is_sequence_classifier(config)
        return Detection(backend="sentencetransformers", reranking=reranking)
    model_index = path / "model_index.json"
    if model_index.is_file():
        index = _read_json(model_index)
        class_name = index.get("_class_name") if isinstance(index, dict) else None
        pipeline_type = class_name if isinstance(class_name, str) else None
        return Detection(backend="diffusers", pipeline_type=pipeline_type)
    if (path / "model.bin").is_file() and (
        _looks_like_whisper(config)
        or (path / "tokenizer.json").is_file()
        or any(path.glob("vocabulary.*"))
    ):
        return Detection(backend="faster-whisper")
    if _is_sequence_classifier(config):
        return Detection(backend="sentencetransformers", reranking=True)
    return None


def _looks_like_whisper(config: Any) -> bool:
    if not isinstance(config, dict):
        return False
    if "alignment_heads" in config or "suppress_ids_begin" in config:
        return True
    architectures = config.get("architectures")
    texts = [config.get("model_type"), config.get("_name_or_path")]
    texts += architectures if isinstance(architectures, list) else []
    return any(isinstance(text, str) and "whisper" in text.lower() for text in texts)


def _is_sequence_classifier(config: Any) -> bool:
    """A Hugging Face config.json of a cross-encoder (a sequence-classification head)."""
    architectures = config.get("architectures") if isinstance(config, dict) else None
    if not isinstance(architectures, list):
        return False
    return any(
        isinstance(arch, str) and arch.endswith("ForSequenceClassification") for arch in architectures
    )


def _read_json(path: Path) -> Any:
    """A small JSON file's content, or None when it is missing, too large or not JSON."""
    try:
        if path.stat().st_size > MAX_JSON_BYTES:
            return None
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        logger.debug("event=json_unreadable path=%s error=%s", path, exc)
        return None
