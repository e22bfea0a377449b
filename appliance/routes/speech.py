"""Text-to-speech: OpenAI ``/v1/audio/speech``, LocalAI ``/tts``, ElevenLabs ``/v1/text-to-speech``.

Whole responses are one exactly sized file; streamed ones (``stream_format: audio``, ``/tts`` with
``stream``, ElevenLabs' ``/stream``) send each sentence as soon as it is synthesized, WAV behind a
header of unknown length. ``stream_format: sse`` sends OpenAI's ``speech.audio.delta`` events
(base64 audio) and a ``speech.audio.done``. Audio is at the voice's own sample rate (OpenAI's
``pcm`` is 24 kHz; ours is the voice's): every response says it in ``X-Sample-Rate``.
"""

from __future__ import annotations

import asyncio
import base64
import logging
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response, StreamingResponse

from appliance.errors import MODEL_ERRORS, BadRequest, domain_status, error_body, error_responses
from appliance.openapi import SSE, SSE_EVENT, media
from appliance.payloads.audio_encoding import FORMATS, AudioEncoder, AudioFormat, audio_format, encode
from appliance.protocol.speech import (
    OUTPUT_FORMAT_PATTERN,
    ElevenLabsTTSBody,
    LocalAITTSBody,
    SpeechBody,
    parse_output_format,
    usage,
)
from appliance.services import Services, services
from appliance.streaming import cancel_on_disconnect, encode_event
from inference.errors import InferenceError
from inference.media import AudioChunk, SpeechRequest

logger = logging.getLogger(__name__)

router = APIRouter(tags=["audio"])  # OpenAI's: mounted with and without /v1
extra_router = APIRouter(tags=["audio"])  # LocalAI's and ElevenLabs' own paths

# ElevenLabs' codec_samplerate[_bitrate]; checked in `_elevenlabs`, whose message lists the codecs.
_OUTPUT_FORMAT = Query(None, json_schema_extra={"pattern": OUTPUT_FORMAT_PATTERN}, description="e.g. mp3_44100_128")
_AUDIO_TYPES = sorted({fmt.media_type for fmt in FORMATS.values()})
_AUDIO = media(*_AUDIO_TYPES, description="The audio in the asked format (X-Sample-Rate gives its rate)")
_SPEECH_RESPONSES = error_responses(*MODEL_ERRORS) | {200: _AUDIO}
_OPENAI_SPEECH_RESPONSES = error_responses(*MODEL_ERRORS) | {
    200: {
        "description": _AUDIO["description"] + "; with stream_format sse, speech.audio.delta events then "
        "speech.audio.done",
        "content": {**_AUDIO["content"], SSE: {"schema": dict(SSE_EVENT)}},
    }
}


@router.post("/audio/speech", response_class=Response, responses=_OPENAI_SPEECH_RESPONSES)
async def openai_speech(body: SpeechBody, request: Request, svc: Services = Depends(services)) -> Response:
    fmt = audio_format(body.response_format)
    model = _tts_model(svc, body.model, param="model")
    streaming, sse = body.stream_format is not None, body.stream_format == "sse"
    return await _respond(svc, request, model, body.to_speech(), fmt, stream=streaming, sse=sse)


@extra_router.post("/tts", response_class=Response, responses=_SPEECH_RESPONSES)
async def localai_tts(body: LocalAITTSBody, request: Request, svc: Services = Depends(services)) -> Response:
    fmt = audio_format(body.response_format)
    model = _tts_model(svc, body.model, param="model")
    if body.backend:
        _check_backend(svc, model, body.backend)
    return await _respond(svc, request, model, body.to_speech(), fmt, stream=body.stream)


@extra_router.post("/v1/text-to-speech/{voice_id}", response_class=Response, responses=_SPEECH_RESPONSES)
async def elevenlabs_tts(
    voice_id: str,
    body: ElevenLabsTTSBody,
    request: Request,
    output_format: str | None = _OUTPUT_FORMAT,
    svc: Services = Depends(services),
) -> Response:
    return await _elevenlabs(svc, request, voice_id, body, output_format, stream=False)


@extra_router.post(
    "/v1/text-to-speech/{voice_id}/stream", response_class=Response, responses=_SPEECH_RESPONSES
)
async def elevenlabs_tts_stream(
    voice_id: str,
    body: ElevenLabsTTSBody,
    request: Request,
    output_format: str | None = _OUTPUT_FORMAT,
    svc: Services = Depends(services),
) -> Response:
    return await _elevenlabs(svc, request, voice_id, body, output_format, stream=True)


async def _elevenlabs(
    svc: Services, request: Request, voice_id: str, body: ElevenLabsTTSBody, output_format: str | None, *, stream: bool
) -> Response:
    """``voice_id`` naming a TTS model picks that model (and its default voice); otherwise
    ``model_id`` (or the server's only TTS model) is the model and ``voice_id`` its voice/speaker."""
    fmt, rate, bit_rate = audio_format("wav"), None, None
    if output_format:
        try:
            name, rate, bit_rate = parse_output_format(output_format)
        except ValueError as exc:
            raise BadRequest(str(exc), param="output_format") from exc
        fmt = audio_format(name, param="output_format")
    if _is_tts_model(svc, voice_id):
        model, voice = voice_id, None
    else:
        model, voice = _tts_model(svc, body.model_id, param="model_id"), voice_id
    options = {"output_rate": rate, "bit_rate": bit_rate}
    return await _respond(svc, request, model, body.to_speech(voice), fmt, stream=stream, options=options)


# -- responses ------------------------------------------------------------------------------------


async def _respond(
    svc: Services,
    request: Request,
    model: str,
    speech: SpeechRequest,
    fmt: AudioFormat,
    *,
    stream: bool,
    sse: bool = False,
    options: dict[str, Any] | None = None,
) -> Response:
    options = {key: value for key, value in (options or {}).items() if value}
    if stream:
        # The first chunk is awaited here, so bad input is an HTTP error and its rate is known.
        chunks = svc.speech.speak(model, speech)
        try:
            first = await anext(chunks)
            encoder = AudioEncoder(fmt, first.sample_rate, streaming=True, **options)
        except BaseException:
            await chunks.aclose()  # type: ignore[attr-defined]
            raise
        headers = {"X-Sample-Rate": str(encoder.sample_rate), "Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
        if sse:
            return StreamingResponse(
                _sse_body(first, chunks, encoder, speech.text), media_type="text/event-stream", headers=headers
            )
        return StreamingResponse(_audio_body(first, chunks, encoder), media_type=fmt.media_type, headers=headers)
    audio = await cancel_on_disconnect(request, svc.speech.synthesize(model, speech))
    data, rate = await asyncio.to_thread(encode, fmt, audio.pcm, audio.sample_rate, **options)
    return Response(data, media_type=fmt.media_type, headers={"X-Sample-Rate": str(rate)})


async def _encoded(first: AudioChunk, chunks: AsyncIterator[AudioChunk], encoder: AudioEncoder) -> AsyncIterator[bytes]:
    """The stream's audio through ``encoder``; closes ``chunks`` however it ends."""
    # WAV and PCM cost nothing to write; codecs and resampling run off the event loop.
    offload = encoder.fmt.codec is not None or encoder.sample_rate != encoder.input_rate
    try:
        chunk: AudioChunk | None = first
        while chunk is not None:
            data = await asyncio.to_thread(encoder.write, chunk.pcm) if offload else encoder.write(chunk.pcm)
            if data:
                yield data
            chunk = await anext(chunks, None)
        tail = await asyncio.to_thread(encoder.close) if offload else encoder.close()
        if tail:
            yield tail
    finally:
        await chunks.aclose()  # type: ignore[attr-defined]


async def _audio_body(first: AudioChunk, chunks: AsyncIterator[AudioChunk], encoder: AudioEncoder) -> AsyncIterator[bytes]:
    """Encoded audio as it comes. A failure mid-stream cannot be reported in-band: it is logged
    and the response is cut off (no clean end), so the client sees an incomplete transfer."""
    try:
        async for data in _encoded(first, chunks, encoder):
            yield data
    except InferenceError as exc:
        logger.warning("event=speech_stream_failed code=%s", exc.code)
        raise


async def _sse_body(
    first: AudioChunk, chunks: AsyncIterator[AudioChunk], encoder: AudioEncoder, text: str
) -> AsyncIterator[bytes]:
    """OpenAI's speech events: ``speech.audio.delta`` per encoded piece, then ``speech.audio.done``;
    an error after the start is one event in the error envelope."""
    try:
        async for data in _encoded(first, chunks, encoder):
            yield _delta(data)
        yield encode_event({"type": "speech.audio.done", "usage": usage(text)})
    except InferenceError as exc:
        status, type_ = domain_status(exc)
        logger.warning("event=speech_stream_failed code=%s status=%d", exc.code, status)
        message = exc.message if status != 500 else "internal error"
        yield encode_event(error_body(message, type_, exc.param, exc.code))
    except Exception:
        logger.exception("event=speech_stream_failed")
        yield encode_event(error_body("internal error", "server_error", None, "internal_error"))


def _delta(data: bytes) -> bytes:
    return encode_event({"type": "speech.audio.delta", "audio": base64.b64encode(data).decode("ascii")})


# -- model resolution -----------------------------------------------------------------------------


def _is_tts_model(svc: Services, name: str) -> bool:
    if name not in svc.catalog:
        return False
    return "tts" in svc.catalog.get(name).usecases


def _tts_model(svc: Services, name: str | None, *, param: str) -> str:
    """``name``, or the server's only text-to-speech model when none is named."""
    if name:
        return name
    candidates = [entry.name for entry in svc.catalog.list() if "tts" in entry.usecases]
    if len(candidates) != 1:
        raise BadRequest(
            f"name the model: '{param}' is required when this server offers "
            f"{'no' if not candidates else len(candidates)} text-to-speech models",
            param=param,
        )
    return candidates[0]


def _check_backend(svc: Services, model: str, backend: str) -> None:
    """LocalAI's ``backend`` field: it must be the model's own (a config cannot be re-targeted)."""
    wanted = svc.registry.canonical(backend)
    actual = svc.catalog.get(model).backend
    if actual is not None and svc.registry.canonical(actual) != wanted:
        raise BadRequest(
            f"model {model!r} uses backend {actual!r}, not {backend!r}; leave 'backend' out or name its own",
            param="backend",
        )
