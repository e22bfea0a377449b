"""POST /v1/audio/transcriptions and /v1/audio/translations (OpenAI multipart; LocalAI's `translate`).

The upload is spooled under the data path and removed when the request ends, whatever the outcome
(see appliance.payloads.uploads); the body is answered in the asked ``response_format``.
"""

from __future__ import annotations

import orjson
from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from appliance.errors import MODEL_ERRORS, BadRequest, error_responses
from appliance.openapi import form_body
from appliance.payloads.uploads import receive_upload, upload_folder
from appliance.protocol.transcriptions import MEDIA_TYPES, TranscriptionForm, to_srt, to_vtt, verbose_json
from appliance.services import Services, services
from inference.media import Transcript

router = APIRouter(tags=["audio"])

_FORM = form_body(TranscriptionForm, files=["file"])
_RESPONSES = error_responses(*MODEL_ERRORS) | {
    200: {
        "description": "The transcript in the asked response_format: json and verbose_json, text, srt or vtt",
        "content": {
            "application/json": {"schema": {"type": "object", "required": ["text"]}},
            **{
                kind.split(";")[0]: {"schema": {"type": "string"}}
                for kind in sorted(set(MEDIA_TYPES.values()))
                if not kind.startswith("application/json")
            },
        },
    }
}


@router.post("/audio/transcriptions", response_class=Response, responses=_RESPONSES, openapi_extra=_FORM)
async def transcriptions(request: Request, svc: Services = Depends(services)) -> Response:
    return await _transcribe(request, svc, translate=False)


@router.post("/audio/translations", response_class=Response, responses=_RESPONSES, openapi_extra=_FORM)
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
