"""POST /v1/tokenize and /v1/detokenize (LocalAI): a model's own tokenizer over HTTP."""

from __future__ import annotations

from fastapi import APIRouter, Depends

from appliance.errors import MODEL_ERRORS, error_responses
from appliance.protocol.tokenize import DetokenizeRequest, DetokenizeResponse, TokenizeRequest, TokenizeResponse
from appliance.services import Services, services

router = APIRouter(tags=["tokenize"])


@router.post("/tokenize", response_model=TokenizeResponse, responses=error_responses(*MODEL_ERRORS))
async def tokenize(body: TokenizeRequest, svc: Services = Depends(services)) -> TokenizeResponse:
    return TokenizeResponse(tokens=await svc.text.tokenize(body.model, body.content))


@router.post("/detokenize", response_model=DetokenizeResponse, responses=error_responses(*MODEL_ERRORS))
async def detokenize(body: DetokenizeRequest, svc: Services = Depends(services)) -> DetokenizeResponse:
    return DetokenizeResponse(content=await svc.text.detokenize(body.model, body.tokens))
