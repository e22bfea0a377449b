"""PiperBackend: text-to-speech (SPEAK) with piper voices, one audio chunk per sentence.

A voice is ``X.onnx`` beside ``X.onnx.json`` under the models path: the model's own voice is
``parameters.model`` (or ``tts.voice`` when no model file is set). A request's ``voice`` picks, in
this order: a speaker of a multi-speaker voice (by name from ``speaker_id_map``, or by id); another
voice file under the models path (LocalAI's ``voice``: ``other.onnx`` or ``other``, never absolute
or with ``..``); OpenAI's stock voice names (``alloy``, ...) mean "the default". Any other name is
ignored by a single-speaker voice and refused (400, listing the speakers) by a multi-speaker one.
piper, onnxruntime and espeak-ng (bundled in the piper wheel) are imported by ``load``.
"""

from __future__ import annotations

import json
import logging
import threading
from collections import OrderedDict
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from inference.backends.base import Backend, MemoryEstimate
from inference.capabilities import Capability
from inference.catalog.config import wants_gpu
from inference.catalog.paths import unsafe_reason
from inference.errors import InvalidModelConfig, InvalidRequest
from inference.media import AudioChunk, SpeechRequest, check_speech_request

if TYPE_CHECKING:
    from inference.catalog.config import ModelConfig

logger = logging.getLogger(__name__)

MAX_EXTRA_VOICES = 4  # other voice files a request named, kept loaded beside the model's own
# OpenAI's built-in voice names: clients must send one, so they mean "the voice's default speaker".
OPENAI_VOICES: frozenset[str] = frozenset(
    {"alloy", "ash", "ballad", "coral", "echo", "fable", "onyx", "nova", "sage", "shimmer", "verse", "marin", "cedar"}
)


class PiperBackend(Backend):
    """Piper voices on onnxruntime: CPU, or CUDA when the config asks (``cuda: true``) and the
    installed onnxruntime has the CUDA provider. ``threads`` sets onnxruntime's intra-op threads.

    The memory estimate is the model voice's files; voices a request names are small (tens of MB)
    and at most ``MAX_EXTRA_VOICES`` of them stay loaded, dropped least recently used first.
    """

    name: ClassVar[str] = "piper"
    capabilities: ClassVar[frozenset[Capability]] = frozenset({Capability.SPEAK})
    requires: ClassVar[tuple[str, ...]] = ("piper",)
    extra: ClassVar[str] = "tts"

    def __init__(self, config: ModelConfig, models_path: Path) -> None:
        super().__init__(config, models_path)
        self._voice: Any = None
        self._extra: OrderedDict[Path, Any] = OrderedDict()
        self._lock = threading.Lock()

    # -- files and memory ---------------------------------------------------------------------

    def model_path(self) -> Path | None:
        model = self.config.parameters.model or self.config.tts.voice
        return self.models_path / model if model else None

    def memory_estimate(self) -> MemoryEstimate:
        path = self.model_path()
        if path is None:
            return MemoryEstimate(ram=0)
        onnx, config = _file_size(path), _file_size(_config_path(path))
        if wants_gpu(self.config):
            return MemoryEstimate(ram=config, vram=onnx)
        return MemoryEstimate(ram=onnx + config)

    # -- lifecycle ----------------------------------------------------------------------------

    def load(self) -> None:
        path = self.model_path()
        if path is None:
            raise InvalidModelConfig(
                f"model {self.config.name!r}: set parameters.model (or tts.voice) to a piper voice file "
                "(X.onnx beside X.onnx.json) under the models path",
                param="parameters.model",
            )
        self._voice = self._open(path)
        logger.info(
            "event=piper_voice_loaded model=%s sample_rate=%d speakers=%d",
            self.config.name,
            self._voice.config.sample_rate,
            self._voice.config.num_speakers,
        )

    def unload(self) -> None:
        with self._lock:
            self._voice = None
            self._extra.clear()

    # -- synthesis ----------------------------------------------------------------------------

    def speak(self, request: SpeechRequest, cancel: threading.Event | None = None) -> Iterator[AudioChunk]:
        """Validate now (raising InvalidRequest), then synthesize lazily, one chunk per sentence."""
        from piper.config import SynthesisConfig

        check_speech_request(request)
        speed = 1.0 if request.speed is None else float(request.speed)
        voice, speaker_id = self.resolve(request)
        syn_config = SynthesisConfig(speaker_id=speaker_id, length_scale=voice.config.length_scale / speed)
        return self._synthesize(voice, request.text.strip(), syn_config, cancel)

    def resolve(self, request: SpeechRequest) -> tuple[Any, int | None]:
        """The loaded voice and speaker id (None: the voice's default) ``request`` asks for."""
        voice = self._loaded()
        value = (request.voice or "").strip() or self._default_voice_value()
        speaker: int | None = None
        if value:
            speaker = _speaker_id(voice, value)
            if speaker is None:
                other = self._voice_file(value)
                if other is not None:
                    voice = self._extra_voice(other)
                elif value.lower() in OPENAI_VOICES or voice.config.num_speakers <= 1:
                    logger.debug("event=voice_ignored model=%s voice=%s", self.config.name, value)
                else:
                    raise InvalidRequest(
                        f"voice {value!r} is neither a speaker of model {self.config.name!r} "
                        f"({_speaker_list(voice)}) nor a piper voice file under the models path",
                        param="voice",
                    )
        if request.speaker is not None and str(request.speaker).strip():
            speaker = _speaker_id(voice, str(request.speaker).strip())
            if speaker is None:
                raise InvalidRequest(
                    f"speaker {request.speaker!r} is not a speaker of this voice ({_speaker_list(voice)})",
                    param="speaker",
                )
        if voice.config.num_speakers <= 1:
            speaker = None
        return voice, speaker

    # -- helpers ------------------------------------------------------------------------------

    def _synthesize(self, voice: Any, text: str, syn_config: Any, cancel: threading.Event | None) -> Iterator[AudioChunk]:
        text = text.replace("\x00", " ")  # espeak takes C strings: a NUL would end (or break) the text
        for chunk in voice.synthesize(text, syn_config=syn_config):
            if cancel is not None and cancel.is_set():
                return
            yield AudioChunk(pcm=chunk.audio_int16_bytes, sample_rate=int(chunk.sample_rate))

    def _loaded(self) -> Any:
        if self._voice is None:
            raise RuntimeError(f"piper model {self.config.name!r} is not loaded")
        return self._voice

    def _default_voice_value(self) -> str:
        """``tts.voice`` beside a ``parameters.model``: the voice value requests without one get."""
        voice = self.config.tts.voice
        return voice if voice and self.config.parameters.model and voice != self.config.parameters.model else ""

    def _voice_file(self, value: str) -> Path | None:
        """The voice file under the models path that ``value`` names, or None when none does.

        A value that can only be meant as a path (absolute, ``..``, ends in ``.onnx``, has a
        slash) and does not resolve to a voice file is refused with a 400.
        """
        reason = unsafe_reason(value)
        if reason is not None:
            raise InvalidRequest(f"voice {value!r} {reason}; name a voice file under the models path", param="voice")
        names = [value] if value.lower().endswith(".onnx") else [value + ".onnx", value]
        for name in names:
            path = self.models_path / name
            if _is_file(path) and _is_file(_config_path(path)):
                return path
        if value.lower().endswith(".onnx") or "/" in value or "\\" in value:
            raise InvalidRequest(
                f"voice file {value!r} not found: it needs {value if value.lower().endswith('.onnx') else value + '.onnx'}"
                " and its .onnx.json under the models path",
                param="voice",
            )
        return None

    def _extra_voice(self, path: Path) -> Any:
        own = self.model_path()
        if own is not None and path.resolve() == own.resolve():
            return self._loaded()
        with self._lock:
            voice = self._extra.get(path)
            if voice is not None:
                self._extra.move_to_end(path)
                return voice
        try:
            voice = self._open(path)
        except InvalidModelConfig as exc:
            raise InvalidRequest(f"voice {path.name!r}: {exc.message}", param="voice") from exc
        except Exception as exc:  # onnxruntime refused the file
            logger.warning("event=piper_voice_unloadable model=%s voice=%s error=%s", self.config.name, path.name, exc)
            raise InvalidRequest(f"voice file {path.name!r} could not be loaded as a piper voice", param="voice") from exc
        with self._lock:
            self._extra[path] = voice
            while len(self._extra) > MAX_EXTRA_VOICES:
                dropped, _ = self._extra.popitem(last=False)
                logger.info("event=piper_voice_dropped model=%s voice=%s", self.config.name, dropped.name)
        return voice

    def _open(self, path: Path) -> Any:
        """A ``PiperVoice`` for ``path`` with this config's threads and device."""
        import onnxruntime
        from piper import PiperVoice
        from piper.config import PiperConfig

        config_path = _config_path(path)
        if not path.is_file():
            raise InvalidModelConfig(f"piper voice file {path.name!r} not found under the models path")
        if not config_path.is_file():
            raise InvalidModelConfig(f"piper voice {path.name!r} has no {config_path.name!r} beside it")
        try:
            voice_config = PiperConfig.from_dict(json.loads(config_path.read_text(encoding="utf-8")))
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise InvalidModelConfig(f"piper voice config {config_path.name!r} is not valid: {exc!r}") from exc
        options = onnxruntime.SessionOptions()
        if self.config.threads:
            options.intra_op_num_threads = int(self.config.threads)
        providers: list[Any] = ["CPUExecutionProvider"]
        if wants_gpu(self.config):
            if "CUDAExecutionProvider" in onnxruntime.get_available_providers():
                providers.insert(0, ("CUDAExecutionProvider", {"cudnn_conv_algo_search": "HEURISTIC"}))
            else:
                logger.warning("event=piper_cuda_unavailable model=%s fallback=cpu", self.config.name)
        session = onnxruntime.InferenceSession(str(path), sess_options=options, providers=providers)
        return PiperVoice(session=session, config=voice_config)


def _config_path(path: Path) -> Path:
    return path.with_name(path.name + ".json")


def _is_file(path: Path) -> bool:
    """``path.is_file()``, False also for names the OS refuses (too long, bad characters)."""
    try:
        return path.is_file()
    except (OSError, ValueError):
        return False


def _file_size(path: Path) -> int:
    try:
        return path.stat().st_size if path.is_file() else 0
    except OSError:
        return 0


def _speaker_id(voice: Any, value: str) -> int | None:
    """The id of speaker ``value`` (a name, case-insensitive, or a number) of ``voice``, or None."""
    config = voice.config
    names = config.speaker_id_map or {}
    if value in names:
        return int(names[value])
    folded = {name.lower(): sid for name, sid in names.items()}
    if value.lower() in folded:
        return int(folded[value.lower()])
    if value.isdigit():
        number = int(value)
        if number < max(config.num_speakers, 1):
            return number
    return None


def _speaker_list(voice: Any) -> str:
    config = voice.config
    if config.num_speakers <= 1:
        return "it has a single speaker"
    names = config.speaker_id_map or {}
    named = ", ".join(f"{name!r}={sid}" for name, sid in sorted(names.items(), key=lambda item: item[1]))
    return f"speakers: {named or 'none named'}; or an id from 0 to {config.num_speakers - 1}"
