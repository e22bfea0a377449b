"""SpeechService over the real scheduler with a scripted speaking backend: chunks reach the caller
as they are synthesized, in order; bad input is refused before any model loads."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from inference.backends.base import Backend
from inference.backends.registry import BackendRegistry
from inference.capabilities import Capability
from inference.catalog.catalog import Catalog, CatalogEntry
from inference.errors import InvalidRequest
from inference.media import AudioChunk, SpeechRequest
from inference.scheduling.memory import FixedMemoryProbe
from inference.scheduling.scheduler import ModelScheduler
from inference.services.speech import SpeechService
from support import write

GIB = 1024**3


class ScriptedSpeaker(Backend):
    """Speaks one chunk per '.'-separated sentence; after each it waits for the test's go-ahead."""

    name = "scripted"
    capabilities = frozenset({Capability.SPEAK})

    def __init__(self, *args: object) -> None:
        super().__init__(*args)  # type: ignore[arg-type]
        self.made: list[int] = []
        self.proceed = threading.Semaphore(0)

    def load(self) -> None:
        pass

    def unload(self) -> None:
        pass

    def speak(self, request: SpeechRequest, cancel: threading.Event | None = None) -> Iterator[AudioChunk]:
        sentences = [s for s in request.text.split(".") if s.strip()]
        for index, _ in enumerate(sentences):
            self.made.append(index)
            yield AudioChunk(pcm=bytes([index, 0]) * 4, sample_rate=16000)
            if not self.proceed.acquire(timeout=5):
                raise AssertionError("the consumer never asked for the next chunk")


@pytest.fixture
def service(models_path: Path) -> tuple[SpeechService, list[ScriptedSpeaker]]:
    write(models_path / "voice.yaml", "name: voice\nbackend: fake\nknown_usecases: [tts]\n")
    made: list[ScriptedSpeaker] = []

    def factory(entry: CatalogEntry) -> Backend:
        made.append(ScriptedSpeaker(entry.config, models_path))
        return made[-1]

    scheduler = ModelScheduler(
        Catalog(models_path), BackendRegistry(), models_path, memory=FixedMemoryProbe(ram=64 * GIB), factory=factory
    )
    return SpeechService(scheduler), made


def test_chunks_arrive_in_order_while_later_ones_are_still_being_made(
    service: tuple[SpeechService, list[ScriptedSpeaker]],
) -> None:
    speech, made = service

    async def scenario() -> list[tuple[int, list[int]]]:
        seen: list[tuple[int, list[int]]] = []
        async for chunk in speech.speak("voice", SpeechRequest(text="One. Two. Three.")):
            backend = made[0]
            seen.append((chunk.pcm[0], list(backend.made)))  # what had been made when this arrived
            backend.proceed.release()
        await speech.scheduler.close()
        return seen

    seen = asyncio.run(scenario())
    assert [index for index, _ in seen] == [0, 1, 2]
    # Sentence N reached the caller before sentence N+1 was synthesized: nothing is buffered.
    assert [made_then for _, made_then in seen] == [[0], [0, 1], [0, 1, 2]]


def test_synthesize_joins_the_chunks(service: tuple[SpeechService, list[ScriptedSpeaker]]) -> None:
    speech, made = service

    async def scenario() -> AudioChunk:
        task = asyncio.ensure_future(speech.synthesize("voice", SpeechRequest(text="One. Two.")))
        while not task.done():
            if made:
                made[0].proceed.release()
            await asyncio.sleep(0.001)
        await speech.scheduler.close()
        return task.result()

    audio = asyncio.run(scenario())
    assert audio.sample_rate == 16000
    assert audio.pcm == bytes([0, 0]) * 4 + bytes([1, 0]) * 4


@pytest.mark.parametrize(
    ("request_", "param"),
    [
        (SpeechRequest(text=""), "input"),
        (SpeechRequest(text="  \n"), "input"),
        (SpeechRequest(text="hi", speed=0.1), "speed"),
        (SpeechRequest(text="hi", speed=4.5), "speed"),
        (SpeechRequest(text="hi", speed=float("nan")), "speed"),
    ],
)
def test_bad_input_is_refused_before_a_model_loads(
    service: tuple[SpeechService, list[ScriptedSpeaker]], request_: SpeechRequest, param: str
) -> None:
    speech, made = service

    async def scenario() -> None:
        try:
            async for _ in speech.speak("voice", request_):
                pass
        finally:
            await speech.scheduler.close()

    with pytest.raises(InvalidRequest) as caught:
        asyncio.run(scenario())
    assert caught.value.param == param
    assert made == []


def test_text_with_nothing_to_speak_is_invalid(service: tuple[SpeechService, list[ScriptedSpeaker]]) -> None:
    speech, _ = service

    async def scenario() -> None:
        try:
            await speech.synthesize("voice", SpeechRequest(text="..."))
        finally:
            await speech.scheduler.close()

    with pytest.raises(InvalidRequest, match="nothing the voice can speak"):
        asyncio.run(scenario())
