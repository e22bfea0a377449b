"""POST /v1/sound-generation (LocalAI's ElevenLabs-style route): a text description in, a WAV file out."""

from __future__ import annotations

from fastapi import APIRouter, Depends
from fastapi.responses import Response

from appliance.errors import MODEL_ERRORS, error_responses
from appliance.openapi import media
from appliance.protocol.sound import SoundGenerationRequest
from appliance.services import Services, services
from inference.media import wav_bytes

router = APIRouter(tags=["audio"])


@router.post(
    "/sound-generation",
    response_class=Response,
    responses=error_responses(*MODEL_ERRORS) | {200: media("audio/wav", description="The generated sound as WAV")},
)
async def sound_generation(body: SoundGenerationRequest, svc: Services = Depends(services)) -> Response:
    model = body.model_id or svc.sound.default_model()
    clip = await svc.sound.generate(model, body.to_sound_request())
    return Response(wav_bytes(clip.pcm, clip.sample_rate), media_type="audio/wav")
