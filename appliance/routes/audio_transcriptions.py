"""POST /v1/audio/transcriptions and /v1/audio/translations (OpenAI multipart; LocalAI's `translate`).

The upload is spooled under the data path and removed when the request ends, whatever the outcome
(see appliance.payloads.uploads); the body is answered in the asked ``response_format``.
"""

from __future__ import annotations

import orjson
from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from appliance.errors import BadRequest
from appliance.payloads.uploads import receive_upload, upload_folder
from appliance.protocol.transcriptions import MEDIA_TYPES, TranscriptionForm, to_srt, to_vtt, verbose_json
from appliance.services import Services, services
from inference.media import Transcript

router = APIRouter(tags=["audio"])

_FORM_SCHEMA = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["file", "model"],
                    "properties": {
                        "file": {"type": "string", "format": "binary"},
                        "model": {"type": "string"},
                        "language": {"type": "string"},
                        "prompt": {"type": "string"},
                        "temperature": {"type": "number", "minimum": 0, "maximum": 1},
                        "response_format": {"type": "string", "enum": list(MEDIA_TYPES)},
                        "timestamp_granularities[]": {
                            "type": "array",
                            "items": {"type": "string", "enum": ["word", "segment"]},
                        },
                        "translate": {"type": "boolean"},
                        "vad_filter": {"type": "boolean"},
                    },
                }
            }
        },
    }
}


@router.post("/audio/transcriptions", response_class=Response, openapi_extra=_FORM_SCHEMA)
async def transcriptions(request: Request, svc: Services = Depends(services)) -> Response:
    return await _transcribe(request, svc, translate=False)


@router.post("/audio/translations", response_class=Response, openapi_extra=_FORM_SCHEMA)
async def translations(request: Request, svc: Services = Depends(services)) -> Response:
    return await _transcribe(request, svc, translate=True)


async def _transcribe(request: Request, svc: Services, *, translate: bool) -> Response:
    async with receive_upload(request, upload_folder(svc.settings.data_path)) as upload:
        if upload.path is None:
            raise BadRequest("missing required field 'file': upload the audio as a multipart file", param="file")
        if upload.size == 0:
            raise BadRequest("the uploaded file is empty", param="file")
        form = TranscriptionForm.from_fields(upload.fields, translate=translate)
        transcript = await svc.transcription.transcribe(form.model, form.to_request(upload.path))
    return _render(form, transcript)


def _render(form: TranscriptionForm, transcript: Transcript) -> Response:
    kind = form.response_format
    if kind == "json":
        content = orjson.dumps({"text": transcript.text})
    elif kind == "verbose_json":
        content = orjson.dumps(verbose_json(form, transcript))
    elif kind == "srt":
        content = to_srt(transcript.segments).encode()
    elif kind == "vtt":
        content = to_vtt(transcript.segments).encode()
    else:
        content = transcript.text.encode()
    return Response(content, media_type=MEDIA_TYPES[kind])
