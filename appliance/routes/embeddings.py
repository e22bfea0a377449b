"""POST /v1/embeddings (OpenAI) and POST /v1/rerank (Jina/Cohere, TEI's body too)."""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import APIRouter, Depends
from fastapi.responses import Response

from appliance.errors import MODEL_ERRORS, BadRequest, error_response, error_responses
from appliance.protocol.embeddings import (
    EmbeddingList,
    EmbeddingRequest,
    RerankDocument,
    RerankRequest,
    RerankResponse,
    RerankResult,
    RerankUsage,
    TeiRank,
    encode_vector,
)
from appliance.services import Services, services

router = APIRouter(tags=["embeddings"])


@router.post(
    "/embeddings", response_class=Response, responses=error_responses(*MODEL_ERRORS) | {200: {"model": EmbeddingList}}
)
async def embeddings(body: EmbeddingRequest, svc: Services = Depends(services)) -> Response:
    texts = body.texts()
    if texts is not None:
        result = await svc.embeddings.embed(body.model, texts, dimensions=body.dimensions)
    else:
        result = await svc.embeddings.embed_tokens(body.model, body.token_lists(), dimensions=body.dimensions)
    payload = {
        "object": "list",
        "data": [
            {"object": "embedding", "index": i, "embedding": encode_vector(vector, body.encoding_format)}
            for i, vector in enumerate(result.vectors)
        ],
        "model": body.model,
        "usage": {"prompt_tokens": result.prompt_tokens, "total_tokens": result.prompt_tokens},
    }
    # orjson: hundreds of floats per vector make the stdlib encoder a measurable share of a request.
    return Response(orjson.dumps(payload), media_type="application/json")


@router.post(
    "/rerank",
    response_model=None,
    responses=error_responses(*MODEL_ERRORS, 422)
    | {200: {"model": RerankResponse | list[TeiRank], "description": "Jina/Cohere's answer (TEI's list for TEI)"}},
)
async def rerank(
    body: RerankRequest, svc: Services = Depends(services)
) -> Response | RerankResponse | list[dict[str, Any]]:
    if body.top_n is not None and body.top_n < 1:
        return error_response(
            422, "top_n must be at least 1 (leave it out for every document)", "invalid_request_error",
            param="top_n", code="invalid_request",
        )
    model = body.model or _only_reranker(svc)
    documents = body.document_texts()
    result = await svc.embeddings.rerank(model, body.query, documents)
    ranked = sorted(range(len(documents)), key=lambda i: result.scores[i], reverse=True)
    if body.top_n is not None:
        ranked = ranked[: body.top_n]
    if body.is_tei:
        return [
            TeiRank(index=i, score=result.scores[i], text=documents[i] if body.return_text else None).model_dump(
                exclude_none=True
            )
            for i in ranked
        ]
    return RerankResponse(
        model=model,
        usage=RerankUsage(prompt_tokens=result.prompt_tokens, total_tokens=result.prompt_tokens),
        results=[
            RerankResult(
                index=i,
                relevance_score=result.scores[i],
                document=RerankDocument(text=documents[i]) if body.return_documents else None,
            )
            for i in ranked
        ],
    )


def _only_reranker(svc: Services) -> str:
    """TEI clients name no model: use the one rerank model, if there is exactly one."""
    candidates = [e.name for e in svc.catalog.list() if "rerank" in e.usecases]
    if len(candidates) != 1:
        raise BadRequest(
            "name the model: 'model' is required when this server offers "
            f"{'no' if not candidates else len(candidates)} rerank models",
            param="model",
        )
    return candidates[0]

