"""FasterWhisperBackend's config reading, without loading a model: options, compute_type, the folder
checks and the memory estimate."""

from __future__ import annotations

import wave
from pathlib import Path

import pytest

from inference.backends.faster_whisper import ALLOWANCE, FasterWhisperBackend, WhisperOptions
from inference.catalog.config import ModelConfig
from inference.errors import InvalidModelConfig


def config(**fields: object) -> ModelConfig:
    return ModelConfig.model_validate({"name": "w", "backend": "whisper", "parameters": {"model": "w"}, **fields})


def test_options_default_to_faster_whispers_own() -> None:
    assert WhisperOptions.from_config(config()) == WhisperOptions()


def test_options_are_read_and_other_backends_options_ignored() -> None:
    options = WhisperOptions.from_config(
        config(options=["beam_size:1", "best_of: 2", "VAD_FILTER:true", "condition_on_previous_text:off",
                        "max_new_tokens:64", "without_timestamps:yes", "parallel:4", "gpu"])  # fmt: skip
    )
    assert options == WhisperOptions(
        beam_size=1, best_of=2, vad_filter=True, condition_on_previous_text=False, max_new_tokens=64,
        without_timestamps=True,
    )  # fmt: skip


@pytest.mark.parametrize("option", ["beam_size:zero", "beam_size:0", "vad_filter:perhaps", "vad_filter"])
def test_bad_options_name_the_option(option: str) -> None:
    with pytest.raises(InvalidModelConfig) as caught:
        WhisperOptions.from_config(config(options=[option]))
    assert option in caught.value.message and caught.value.param == "options"


def test_compute_type_is_checked(tmp_path: Path) -> None:
    with pytest.raises(InvalidModelConfig, match="compute_type") as caught:
        FasterWhisperBackend(config(compute_type="int3"), tmp_path)
    assert caught.value.param == "compute_type"
    FasterWhisperBackend(config(compute_type="INT8_float32"), tmp_path)


def test_folder_must_hold_model_and_tokenizer(tmp_path: Path) -> None:
    backend = FasterWhisperBackend(config(), tmp_path)
    with pytest.raises(InvalidModelConfig, match="no model.bin"):
        backend.folder()
    (tmp_path / "w").mkdir()
    (tmp_path / "w" / "model.bin").write_bytes(bytes(1000))
    with pytest.raises(InvalidModelConfig, match="tokenizer.json"):
        backend.folder()
    (tmp_path / "w" / "tokenizer.json").write_text("{}")
    assert backend.folder() == tmp_path / "w"
    estimate = backend.memory_estimate()
    assert estimate.ram == 1002 + ALLOWANCE and estimate.vram == 0
    on_gpu = FasterWhisperBackend(config(cuda=True), tmp_path).memory_estimate()
    assert on_gpu.vram == 1002 + ALLOWANCE and on_gpu.ram == ALLOWANCE


def test_no_model_named_is_a_config_error(tmp_path: Path) -> None:
    backend = FasterWhisperBackend(ModelConfig(name="w", backend="whisper"), tmp_path)
    with pytest.raises(InvalidModelConfig, match="parameters.model is not set"):
        backend.folder()


@pytest.mark.parametrize("container", ["wav-stereo-22k", "mp3-mono-22k"])
def test_our_decoder_matches_faster_whisper_s_sample_for_sample(tmp_path: Path, container: str) -> None:
    """We decode without faster-whisper's per-request gc.collect(); the samples must not change."""
    av = pytest.importorskip("av")
    np = pytest.importorskip("numpy")
    decode_audio = pytest.importorskip("faster_whisper").decode_audio

    from inference.backends.faster_whisper import _decode

    rate = 22050
    tone = (np.sin(2 * np.pi * 440 * np.arange(rate * 2) / rate) * 12000).astype(np.int16)
    path = tmp_path / ("clip.wav" if container.startswith("wav") else "clip.mp3")
    if container.startswith("wav"):
        with wave.open(str(path), "wb") as out:
            out.setnchannels(2)
            out.setsampwidth(2)
            out.setframerate(rate)
            out.writeframes(np.repeat(tone, 2).tobytes())
    else:
        with av.open(str(path), "w") as out:
            stream = out.add_stream("mp3", rate=rate)
            frame = av.AudioFrame.from_ndarray(tone.reshape(1, -1), format="s16", layout="mono")
            frame.sample_rate = rate
            for packet in [*stream.encode(frame), *stream.encode(None)]:
                out.mux(packet)
    ours, theirs = _decode(path, 16000), decode_audio(str(path), sampling_rate=16000)
    assert ours.dtype == np.float32 and ours.shape == theirs.shape and len(ours) > 16000
    np.testing.assert_array_equal(ours, theirs)
