"""FasterWhisperBackend: speech-to-text (and translation to English) with faster-whisper / CTranslate2.

``parameters.model`` names a CTranslate2 whisper folder under the models path (``model.bin`` and
``tokenizer.json``; faster-whisper would otherwise fetch a tokenizer from the hub). Audio is decoded
in this process by PyAV, which faster-whisper brings: no shell, no ffmpeg command line, and the
uploaded file's own name is never used. faster_whisper is imported by ``load``, never by importing
this module.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from inference.backends.base import Backend, MemoryEstimate
from inference.capabilities import Capability
from inference.catalog.config import wants_gpu
from inference.errors import BackendUnavailable, InvalidModelConfig, InvalidRequest
from inference.media import Segment, Transcript, TranscriptionRequest, Word

if TYPE_CHECKING:
    from inference.catalog.config import ModelConfig

logger = logging.getLogger(__name__)

MIB = 1024 * 1024
ALLOWANCE = 96 * MIB  # mel features of a 30 s window, decoder state, the decoded audio of a clip
COMPUTE_TYPES = frozenset(
    {"default", "auto", "int8", "int8_float32", "int8_float16", "int8_bfloat16", "int16", "float16", "bfloat16"}
    | {"float32"}
)
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


@dataclass(frozen=True)
class WhisperOptions:
    """Decoding knobs from the config's ``options: ["key:value", ...]`` (faster-whisper's names).

    ``beam_size`` and ``best_of`` (5 each, faster-whisper's defaults); ``vad_filter`` (false: skip
    the silence with the bundled Silero VAD before decoding; a request's ``vad_filter`` field wins);
    ``condition_on_previous_text`` (true); ``max_new_tokens`` (none: up to the model's limit per
    window); ``without_timestamps`` (false; true is faster, one segment per 30 s window).
    """

    beam_size: int = 5
    best_of: int = 5
    vad_filter: bool = False
    condition_on_previous_text: bool = True
    max_new_tokens: int | None = None
    without_timestamps: bool = False

    @classmethod
    def from_config(cls, config: ModelConfig) -> WhisperOptions:
        values: dict[str, Any] = {}
        for option in config.options:
            key, sep, raw = option.partition(":")
            key = key.strip().lower()
            if key not in cls.__dataclass_fields__:
                continue  # other backends' options are no error here
            if not sep:
                raise _bad_option(config, option, "expected key:value")
            text = raw.strip().lower()
            if key in ("vad_filter", "condition_on_previous_text", "without_timestamps"):
                if text not in _TRUE | _FALSE:
                    raise _bad_option(config, option, "expected true or false")
                values[key] = text in _TRUE
            else:
                if not text.isdigit() or int(text) < 1:
                    raise _bad_option(config, option, "expected a positive integer")
                values[key] = int(text)
        return cls(**values)


class FasterWhisperBackend(Backend):
    """One whisper model on CPU, or on CUDA when the config asks for a GPU and CTranslate2 sees one.

    ``compute_type`` comes from the config (int8 on CPU and float16 on CUDA by default);
    ``threads`` sets CTranslate2's CPU threads; ``parameters.language``, ``parameters.translate``
    and ``parameters.temperature`` are defaults for requests that leave them out.
    """

    name: ClassVar[str] = "faster-whisper"
    capabilities: ClassVar[frozenset[Capability]] = frozenset({Capability.TRANSCRIBE})
    requires: ClassVar[tuple[str, ...]] = ("faster_whisper",)
    extra: ClassVar[str] = "stt"

    def __init__(self, config: ModelConfig, models_path: Path) -> None:
        super().__init__(config, models_path)
        self.options = WhisperOptions.from_config(config)
        compute_type = (config.compute_type or "").strip().lower()
        if compute_type and compute_type not in COMPUTE_TYPES:
            raise InvalidModelConfig(
                f"model {config.name!r}: compute_type {config.compute_type!r} is not one of "
                f"{', '.join(sorted(COMPUTE_TYPES))}",
                param="compute_type",
            )
        self._compute_type = compute_type or None
        self._model: Any = None
        self._languages: frozenset[str] = frozenset()
        self.device = "cpu"
        self.compute_type = self._compute_type or "int8"  # what load chose, once loaded

    def folder(self) -> Path:
        """The model folder; InvalidModelConfig when it is not set or holds no CTranslate2 whisper model."""
        path = self.model_path()
        label = f"model {self.config.name!r}"
        if path is None:
            raise InvalidModelConfig(
                f"{label}: parameters.model is not set; name a CTranslate2 whisper folder under {self.models_path}",
                param="parameters.model",
            )
        if not (path / "model.bin").is_file():
            raise InvalidModelConfig(
                f"{label}: {path} is not a CTranslate2 whisper folder (no model.bin); convert a model with "
                "ct2-transformers-converter --copy_files tokenizer.json preprocessor_config.json",
                param="parameters.model",
            )
        if not (path / "tokenizer.json").is_file():
            raise InvalidModelConfig(
                f"{label}: {path} has no tokenizer.json; copy it next to model.bin (the converter's "
                "--copy_files tokenizer.json does this)",
                param="parameters.model",
            )
        return path

    def memory_estimate(self) -> MemoryEstimate:
        """The folder's size on disk plus 96 MiB, in VRAM when the config asks for a GPU."""
        need = super().memory_estimate().ram + ALLOWANCE
        if wants_gpu(self.config):
            return MemoryEstimate(ram=ALLOWANCE, vram=need)
        return MemoryEstimate(ram=need)

    def load(self) -> None:
        if self._model is not None:
            return
        folder = self.folder()
        try:
            import ctranslate2
            from faster_whisper import WhisperModel
            from faster_whisper.tokenizer import _LANGUAGE_CODES
        except ImportError as exc:
            missing = (exc.name or "faster_whisper").partition(".")[0]
            raise BackendUnavailable(self.name, missing, self.extra) from exc
        cuda = wants_gpu(self.config) and ctranslate2.get_cuda_device_count() > 0
        self.device = "cuda" if cuda else "cpu"
        compute_type = self.compute_type = self._compute_type or ("float16" if cuda else "int8")
        main_gpu = (self.config.main_gpu or "").strip()
        started = time.monotonic()
        self._model = WhisperModel(
            str(folder),
            device=self.device,
            device_index=int(main_gpu) if cuda and main_gpu.isdigit() else 0,
            compute_type=compute_type,
            cpu_threads=self.config.threads or 0,
            local_files_only=True,
        )
        self._languages = frozenset(_LANGUAGE_CODES)
        logger.info(
            "event=whisper_loaded model=%s device=%s compute_type=%s multilingual=%s seconds=%.3f",
            self.config.name,
            self.device,
            compute_type,
            self._model.model.is_multilingual,
            time.monotonic() - started,
        )

    def unload(self) -> None:
        self._model = None

    def transcribe(self, request: TranscriptionRequest) -> Transcript:
        model = self._model
        if model is None:
            raise RuntimeError("transcribe called before load")
        params = self.config.parameters
        language = self._language(request.language or params.language)
        temperature = request.temperature if request.temperature is not None else params.temperature
        translate = request.translate or bool(params.translate)
        vad_filter = request.vad_filter if request.vad_filter is not None else self.options.vad_filter
        audio = _decode(request.audio_path, model.feature_extractor.sampling_rate)
        kwargs: dict[str, Any] = {
            "language": language,
            "task": "translate" if translate else "transcribe",
            "initial_prompt": request.prompt or None,
            "word_timestamps": request.word_timestamps,
            "vad_filter": vad_filter,
            "beam_size": self.options.beam_size,
            "best_of": self.options.best_of,
            "condition_on_previous_text": self.options.condition_on_previous_text,
            "max_new_tokens": self.options.max_new_tokens,
            "without_timestamps": self.options.without_timestamps,
        }
        if temperature is not None:
            kwargs["temperature"] = temperature
        started = time.monotonic()
        pieces, info = model.transcribe(audio, **kwargs)
        segments = [_segment(index, piece) for index, piece in enumerate(pieces)]
        logger.debug(
            "event=transcribed model=%s seconds=%.3f audio_s=%.2f segments=%d",
            self.config.name,
            time.monotonic() - started,
            info.duration,
            len(segments),
        )
        return Transcript(
            text="".join(segment.text for segment in segments).strip(),
            language=info.language,
            duration=float(info.duration),
            segments=segments,
        )

    def _language(self, value: str | None) -> str | None:
        """An ISO-639-1 code faster-whisper knows ('en', 'en-US' -> 'en'), None for auto-detection."""
        if not value or not value.strip() or value.strip().lower() == "auto":
            return None
        code = value.strip().lower().replace("_", "-")
        if code not in self._languages:
            code = code.partition("-")[0]
        if code not in self._languages:
            raise InvalidRequest(
                f"language {value!r} is not supported; use an ISO-639-1 code such as 'en' or 'de', "
                "or leave it out to detect the language",
                param="language",
            )
        return code


def _decode(path: Path, sampling_rate: int) -> Any:
    """The file's audio as mono float32 at ``sampling_rate``, decoded by PyAV in this process.

    faster-whisper's own ``decode_audio`` ends with a full ``gc.collect()`` to free its resampler
    early; in a server holding torch and other models that pass costs 50-200 ms per request, so we
    decode here and leave the resampler to the collector's own schedule. Frames PyAV cannot decode
    are skipped as faster-whisper skips them. Messages name the problem, never the file's path.
    """
    import av
    import numpy as np

    resampler = av.audio.resampler.AudioResampler(format="s16", layout="mono", rate=sampling_rate)
    pieces: list[Any] = []
    try:
        with av.open(str(path), mode="r", metadata_errors="ignore") as container:
            if not container.streams.audio:
                raise InvalidRequest("the file is not a decodable audio file: it holds no audio stream", param="file")
            for frame in _decoded_frames(container, av):
                for out in resampler.resample(frame):
                    pieces.append(out.to_ndarray().reshape(-1))
            for out in resampler.resample(None):  # flush what the resampler still holds
                pieces.append(out.to_ndarray().reshape(-1))
    except av.error.FFmpegError as exc:
        reason = (exc.strerror or type(exc).__name__).rstrip(".")
        raise InvalidRequest(f"the file is not a decodable audio file: {reason}", param="file") from None
    samples = np.concatenate(pieces) if pieces else np.empty(0, dtype=np.int16)
    if samples.size == 0:
        raise InvalidRequest("the file holds no audio samples", param="file")
    return samples.astype(np.float32) / 32768.0


def _decoded_frames(container: Any, av: Any) -> Iterator[Any]:
    """The first audio stream's frames; a frame FFmpeg rejects mid-stream is skipped, not fatal."""
    frames = container.decode(audio=0)
    while True:
        try:
            frame = next(frames)
        except StopIteration:
            return
        except av.error.InvalidDataError:
            continue
        yield frame


def _segment(index: int, piece: Any) -> Segment:
    words = None
    if piece.words is not None:
        words = [Word(float(w.start), float(w.end), w.word, float(w.probability)) for w in piece.words]
    return Segment(
        id=index,
        seek=int(piece.seek),
        start=float(piece.start),
        end=float(piece.end),
        text=piece.text,
        tokens=[int(token) for token in piece.tokens],
        temperature=float(piece.temperature or 0.0),
        avg_logprob=float(piece.avg_logprob),
        compression_ratio=float(piece.compression_ratio),
        no_speech_prob=float(piece.no_speech_prob),
        words=words,
    )


def _bad_option(config: ModelConfig, option: str, why: str) -> InvalidModelConfig:
    return InvalidModelConfig(f"model {config.name!r}: option {option!r}: {why}", param="options")


