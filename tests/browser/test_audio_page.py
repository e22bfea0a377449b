"""The Audio page in a real browser: text is spoken and the clip plays and downloads; an uploaded WAV
and a microphone recording are transcribed; a refused or missing microphone says so; a sound is
generated; an API error shows its message; axe passes. The fake media model (media_backends.py)
drives most journeys; the last one speaks with a real tiny piper voice and transcribes that speech
with a real tiny whisper model, end to end."""

from __future__ import annotations

import importlib.util
import os
import wave
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from harness import CHROMIUM, CHROMIUM_ARGS, RequestGuard, UIServer, assert_accessible, require_browser
from media_backends import RATE, SECONDS_PER_CHAR, media_server

SPOKEN = "Hello there. How are you today?"


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory) -> Iterator[UIServer]:
    require_browser()
    server = media_server(tmp_path_factory.mktemp("audio"))
    yield server
    server.stop()


@pytest.fixture(scope="module")
def mic_browser(playwright_driver: Any) -> Iterator[Any]:
    """Chromium with a fake microphone (a beeping test signal); permission is still the page's to get."""
    browser = playwright_driver.chromium.launch(
        executable_path=CHROMIUM, args=[*CHROMIUM_ARGS, "--use-fake-device-for-media-stream"], headless=True
    )
    yield browser
    browser.close()


@contextmanager
def guarded_page(browser: Any, server: UIServer, *, microphone: bool) -> Iterator[Any]:
    """The Audio page in a fresh context of `browser`, with or without the microphone permission,
    failing on any request to another host or any uncaught page error (as the `open_page` fixture)."""
    context = browser.new_context(viewport={"width": 1280, "height": 800}, service_workers="block")
    guard = RequestGuard(server.host)
    errors: list[str] = []
    try:
        context.set_default_timeout(15_000)
        if microphone:
            context.grant_permissions(["microphone"], origin=server.base)
        context.route("**/*", guard.handle)
        page = context.new_page()
        page.on("pageerror", lambda error: errors.append(str(error)))
        page.goto(server.url("audio"))
        page.get_by_role("heading", level=1, name="Audio").wait_for()
        yield page
    finally:
        context.close()
    guard.check()
    assert not errors, f"uncaught errors in the page: {errors}"


def section(page: Any, name: str) -> Any:
    return page.get_by_role("region", name=name)


def wait_playable(page: Any, audio: Any) -> dict[str, float]:
    """Wait until the <audio> has its metadata, play it (muted: no sound card here) and return
    {duration, played}: how far playback got, which proves the browser decoded the clip."""
    page.wait_for_function("(a) => a.readyState >= 1 && a.duration > 0", arg=audio.element_handle())
    return audio.evaluate(
        """async (a) => {
          a.muted = true;
          await a.play();
          const end = performance.now() + 5000;
          while (a.currentTime === 0 && !a.ended && performance.now() < end) await new Promise((r) => setTimeout(r, 50));
          a.pause();
          return {duration: a.duration, played: a.ended ? a.duration : a.currentTime};
        }"""
    )


def write_wav(path: Path, seconds: float, rate: int = RATE) -> Path:
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(b"\x00\x10" * int(seconds * rate))
    return path


def test_text_is_spoken_played_and_downloaded(open_page: Callable[..., Any], media: UIServer) -> None:
    page = open_page("audio", server=media).page
    assert_accessible(page, "Audio (empty)")
    tts = section(page, "Text to speech")
    tts.get_by_label("Voice model").select_option("speaker")
    tts.get_by_role("textbox", name="Voice").fill("amy")
    tts.get_by_label("Text").fill(SPOKEN)
    tts.get_by_role("button", name="Speak").click()
    audio = tts.locator(".audio-clip audio").first
    audio.wait_for()
    assert audio.get_attribute("src").startswith("blob:")
    state = wait_playable(page, audio)
    expected = sum(len(s) for s in SPOKEN.replace("?", ".").split(".") if s.strip()) * SECONDS_PER_CHAR
    assert abs(state["duration"] - expected) < 0.02, state
    assert state["played"] > 0, state

    with page.expect_download() as info:
        tts.get_by_role("link", name="Download").click()
    assert info.value.suggested_filename.endswith(".wav")
    data = Path(info.value.path()).read_bytes()
    direct = httpx.post(media.base + "/v1/audio/speech", json={"model": "speaker", "input": SPOKEN, "voice": "amy"})
    assert direct.status_code == 200 and data == direct.content  # the very audio the API answers
    assert_accessible(page, "Audio (a spoken clip)")


def test_an_unknown_voice_shows_the_api_message(open_page: Callable[..., Any], media: UIServer) -> None:
    page = open_page("audio", server=media).page
    tts = section(page, "Text to speech")
    tts.get_by_label("Voice model").select_option("speaker")
    tts.get_by_role("textbox", name="Voice").fill("nobody")
    tts.get_by_label("Text").fill("Hi.")
    tts.get_by_role("button", name="Speak").click()
    alert = tts.get_by_role("alert")
    alert.wait_for()
    assert "voice 'nobody' is not one of this model's voices: amy, ben" in alert.inner_text()
    assert tts.locator(".audio-clip").count() == 0
    assert_accessible(page, "Audio (error)")


def test_an_uploaded_wav_is_transcribed(open_page: Callable[..., Any], media: UIServer, tmp_path: Path) -> None:
    page = open_page("audio", server=media).page
    stt = section(page, "Speech to text")
    stt.get_by_label("Model").select_option("listener")
    stt.get_by_label("Audio file").set_input_files(str(write_wav(tmp_path / "greeting.wav", 1.5)))
    stt.get_by_text("greeting.wav").wait_for()
    stt.get_by_role("button", name="Transcribe").click()
    transcript = stt.get_by_test_id("transcript").first
    transcript.wait_for()
    assert transcript.inner_text() == "heard 1.5 seconds of WAV at 16000 Hz"
    assert "greeting.wav" in stt.locator(".transcript-source").first.inner_text()
    assert_accessible(page, "Audio (a transcript)")


def test_a_recording_from_the_microphone_is_transcribed(mic_browser: Any, media: UIServer) -> None:
    with guarded_page(mic_browser, media, microphone=True) as page:
        stt = section(page, "Speech to text")
        stt.get_by_label("Model").select_option("listener")
        stt.get_by_role("button", name="Record from the microphone").click()
        stt.get_by_text("Recording…").wait_for()
        page.wait_for_timeout(1200)
        stt.get_by_role("button", name="Stop recording").click()
        stt.get_by_text("recorded").wait_for()
        stt.get_by_role("button", name="Transcribe").click()
        transcript = stt.get_by_test_id("transcript").first
        transcript.wait_for()
        text = transcript.inner_text()
        assert text.startswith("heard ") and text.endswith(" bytes of WebM audio"), text
        assert int(text.split()[1]) > 1000, text  # a second of Opus, not an empty file


def test_a_refused_or_missing_microphone_is_explained(
    mic_browser: Any, open_page: Callable[..., Any], media: UIServer
) -> None:
    with guarded_page(mic_browser, media, microphone=False) as page:
        stt = section(page, "Speech to text")
        stt.get_by_role("button", name="Record from the microphone").click()
        alert = stt.get_by_role("alert")
        alert.wait_for()
        assert "The microphone was refused" in alert.inner_text()
        assert_accessible(page, "Audio (microphone refused)")
    page = open_page("audio", server=media).page  # the plain test browser has no audio device at all
    stt = section(page, "Speech to text")
    stt.get_by_role("button", name="Record from the microphone").click()
    alert = stt.get_by_role("alert")
    alert.wait_for()
    assert "No microphone was found" in alert.inner_text()
    assert stt.get_by_role("button", name="Record from the microphone").is_enabled()


def test_a_sound_is_generated_and_plays_at_390_px_in_the_dark(open_page: Callable[..., Any], media: UIServer) -> None:
    dark = "localStorage.setItem('appliance.theme', 'dark');"
    page = open_page("audio", server=media, viewport={"width": 390, "height": 844}, init_scripts=(dark,)).page
    sound = section(page, "Sound generation")
    sound.get_by_label("Model").select_option("foley")
    sound.get_by_label("Seconds").fill("2")
    sound.get_by_label("Describe the sound").fill("rain on a tin roof")
    sound.get_by_role("button", name="Generate").click()
    audio = sound.locator(".audio-clip audio").first
    audio.wait_for()
    state = wait_playable(page, audio)
    assert abs(state["duration"] - 2.0) < 0.01 and state["played"] > 0, state
    assert "rain on a tin roof" in sound.locator(".audio-clip-label").first.inner_text()
    with page.expect_download() as info:
        sound.get_by_role("link", name="Download").click()
    assert Path(info.value.path()).read_bytes()[:4] == b"RIFF"
    overflow = page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
    assert overflow <= 0, f"the Audio page scrolls sideways by {overflow}px at 390 px"
    assert_accessible(page, "Audio (dark, 390 px, a sound)")


@pytest.fixture(scope="module")
def real_speech(tmp_path_factory: pytest.TempPathFactory) -> Iterator[UIServer]:
    """An appliance with a tiny real piper voice and a tiny real CTranslate2 whisper model."""
    require_browser()
    for module in ("piper", "torch", "onnx", "faster_whisper", "ctranslate2", "transformers"):
        if importlib.util.find_spec(module) is None:
            message = f"the real-model journey needs {module} (pip install -e '.[tts,stt,test]')"
            if os.environ.get("CI") or os.environ.get("APPLIANCE_REQUIRE_BROWSER"):
                pytest.fail(message + " (CI installs every extra: it must run)", pytrace=False)
            pytest.skip(message)
    from fixtures.piper_models import write_tiny_voice
    from fixtures.whisper_models import write_tiny_whisper

    root = tmp_path_factory.mktemp("real-speech")
    models = root / "models"
    write_tiny_voice(models / "tiny-voice.onnx")
    write_tiny_whisper(models / "tiny-whisper")
    configs = {
        "voice": "name: tiny-voice\nbackend: piper\nparameters:\n  model: tiny-voice.onnx\n",
        "whisper": (
            "name: tiny-whisper\nbackend: faster-whisper\nparameters:\n  model: tiny-whisper\n  temperature: 0\n"
            "options: ['beam_size:1', 'best_of:1', 'condition_on_previous_text:false']\n"
        ),
    }
    server = UIServer(root, configs)
    yield server
    server.stop()


def test_real_models_speak_and_transcribe_end_to_end(open_page: Callable[..., Any], real_speech: UIServer) -> None:
    page = open_page("audio", server=real_speech).page
    tts = section(page, "Text to speech")
    tts.get_by_label("Voice model").select_option("tiny-voice")
    tts.get_by_label("Text").fill("The appliance speaks. Then it listens.")
    tts.get_by_role("button", name="Speak").click()
    audio = tts.locator(".audio-clip audio").first
    audio.wait_for(timeout=60_000)
    state = wait_playable(page, audio)
    assert state["duration"] > 0.1 and state["played"] > 0, state
    with page.expect_download() as info:
        tts.get_by_role("link", name="Download").click()
    speech = Path(info.value.path())
    with wave.open(str(speech), "rb") as clip:
        assert clip.getnframes() / clip.getframerate() == pytest.approx(state["duration"], abs=0.01)

    # The spoken clip goes back in as a file; the page shows what the API says for the same bytes.
    stt = section(page, "Speech to text")
    stt.get_by_label("Model").select_option("tiny-whisper")
    stt.get_by_label("Audio file").set_input_files(
        files=[{"name": "spoken.wav", "mimeType": "audio/wav", "buffer": speech.read_bytes()}]
    )
    stt.get_by_role("button", name="Transcribe").click()
    transcript = stt.get_by_test_id("transcript").first
    transcript.wait_for(timeout=60_000)
    direct = httpx.post(
        real_speech.base + "/v1/audio/transcriptions",
        data={"model": "tiny-whisper", "response_format": "verbose_json"},
        files={"file": ("spoken.wav", speech.read_bytes(), "audio/wav")},
        timeout=60,
    )
    assert direct.status_code == 200, direct.text
    expected = direct.json()["text"].strip()
    assert expected, "a tiny whisper model always yields some text for a sound"
    assert transcript.inner_text() == expected
    assert_accessible(page, "Audio (real models)")
