"""The OpenAPI document as this server really answers: FastAPI's schema plus what the outer layers add.

Routes declare their own error statuses (`responses=error_responses(...)` from appliance.errors).
This module adds, on every route, the statuses the layers in front of the routes answer: 413 from
the body limit, 500 from the error boundary and, when API keys are set, 401 from the key check
(with the key schemes as `security`). FastAPI's automatic 422 is replaced by the 400 that the
validation handler really sends; the Messages routes keep their own (Anthropic's) error shape.
A create (a POST answering an object with an `id`) links to the routes of the object it made.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from fastapi import FastAPI, routing
from fastapi.openapi.utils import get_openapi
from fastapi.routing import APIRoute
from pydantic import BaseModel
from starlette.routing import BaseRoute

from appliance.errors import ERROR_DESCRIPTIONS, ErrorEnvelope
from appliance.payloads.uploads import MAX_FIELDS
from appliance.security import PublicRoutes

REF_PREFIX = "#/components/schemas/"
DOOR_STATUSES = (413, 500)  # every route: the body limit and the last-resort error boundary
KEY_SCHEMES: Mapping[str, dict[str, Any]] = {
    "bearer": {"type": "http", "scheme": "bearer", "description": "Authorization: Bearer <key>"},
    "x-api-key": {"type": "apiKey", "in": "header", "name": "x-api-key"},
    "xi-api-key": {"type": "apiKey", "in": "header", "name": "xi-api-key"},
}
_FASTAPI_VALIDATION = ("HTTPValidationError", "ValidationError")
BINARY: Mapping[str, Any] = {"type": "string", "format": "binary"}
SSE = "text/event-stream"
# One server-sent event as clients (and schemathesis) read it: an optional name and its data.
SSE_EVENT: Mapping[str, Any] = {
    "type": "object",
    "required": ["data"],
    "properties": {"event": {"type": "string"}, "data": {"type": "string"}, "id": {"type": "string"}},
}


def form_body(model: type[BaseModel], *, files: Sequence[str], list_suffix: str = "[]") -> dict[str, Any]:
    """`openapi_extra` for a multipart body read by hand: `model`'s fields as form fields (a form has
    no null, so optional fields are just left out; list fields named `name[]` as the OpenAI SDK sends
    them) and `files` as required binary parts."""
    generated = model.model_json_schema()
    properties: dict[str, Any] = {name: {**BINARY, "minLength": 1} for name in files}  # empty files are refused
    for name, field in generated["properties"].items():
        field = {key: value for key, value in field.items() if key != "title"}
        branches = [b for b in field.pop("anyOf", []) if b.get("type") != "null"]
        if len(branches) == 1:
            field.update(branches[0])
        elif branches:
            field["anyOf"] = branches
        properties[name + list_suffix if field.get("type") == "array" else name] = field
    schema = {
        "type": "object",
        "required": [*files, *generated.get("required", [])],
        "properties": properties,
        "additionalProperties": generated.get("additionalProperties", True),
        "maxProperties": MAX_FIELDS + len(files),  # appliance.payloads.uploads reads at most this many
    }
    if "description" in generated:
        schema["description"] = generated["description"]
    return {"requestBody": {"required": True, "content": {"multipart/form-data": {"schema": schema}}}}


def media(*media_types: str, description: str, schema: Mapping[str, Any] = BINARY) -> dict[str, Any]:
    """A `responses=` entry whose body is one of these media types (audio, images, files, text)."""
    return {"description": description, "content": {kind: {"schema": dict(schema)} for kind in media_types}}


def event_stream(description: str) -> dict[str, Any]:
    """A `responses=` entry for a stream of server-sent events (beside the route's JSON answer, if any)."""
    return {"description": description, "content": {SSE: {"schema": dict(SSE_EVENT)}}}


def install_openapi(app: FastAPI, public: PublicRoutes, *, keys_required: bool) -> None:
    """Serve `contract_schema` at /openapi.json, built once on first request."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = contract_schema(app, public, keys_required=keys_required)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def contract_schema(app: FastAPI, public: PublicRoutes, *, keys_required: bool) -> dict[str, Any]:
    schema = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
    components = schema.setdefault("components", {})
    schemas = components.setdefault("schemas", {})
    _add_model(schemas, ErrorEnvelope)
    if keys_required:
        components["securitySchemes"] = dict(KEY_SCHEMES)
    for route in api_routes(app.routes):
        if not route.include_in_schema:
            continue
        for method in sorted(route.methods):
            operation = schema["paths"].get(route.path_format, {}).get(method.lower())
            if operation is None:
                continue
            guarded = keys_required and not public.allows(method, route.path_format)
            _complete(operation, route, guarded)
    _link_creations(schema)
    used = repr(schema["paths"])
    for name in _FASTAPI_VALIDATION:
        if REF_PREFIX + name not in used:
            schemas.pop(name, None)
    return schema


def api_routes(routes: Sequence[BaseRoute]) -> Iterator[Any]:
    """Every API route with its full path and settings. Newer FastAPI keeps an included router as
    one entry and resolves its routes as contexts (`iter_route_contexts`); older FastAPI copies them."""
    contexts = getattr(routing, "iter_route_contexts", None)
    for route in contexts(routes) if contexts is not None else routes:
        if isinstance(getattr(route, "original_route", route), APIRoute):
            yield route


def _complete(operation: dict[str, Any], route: Any, guarded: bool) -> None:
    responses: dict[str, Any] = operation.setdefault("responses", {})
    content = _error_content(responses)
    declared = {str(status) for status in route.responses}

    def add(status: int) -> None:
        responses.setdefault(str(status), {"description": ERROR_DESCRIPTIONS[status], "content": content})

    if "422" in responses and "422" not in declared:
        del responses["422"]  # FastAPI's guess: our validation handler answers 400
        add(400)
    for status in DOOR_STATUSES:
        add(status)
    if guarded:
        add(401)
        operation["security"] = [{name: []} for name in KEY_SCHEMES]
    operation["responses"] = dict(sorted(responses.items()))


def _link_creations(schema: dict[str, Any]) -> None:
    """OpenAPI links from `POST <path>` answering an object with an `id` to every operation under
    `<path>/{param}`: `param` is the new object's id, the other path parameters the request's own."""
    paths: dict[str, Any] = schema["paths"]
    components = schema["components"]["schemas"]
    for path, methods in paths.items():
        created = methods.get("post", {}).get("responses", {}).get("200")
        if created is None or "id" not in _answered_properties(created, components):
            continue
        for target, operations in paths.items():
            if not target.startswith(path + "/{"):
                continue
            param = target[len(path) + 2 :].split("}", 1)[0]
            known = {param, *(name.split("}", 1)[0] for name in path.split("{")[1:])}
            for method, operation in operations.items():
                names = [p["name"] for p in operation.get("parameters", []) if p.get("in") == "path"]
                if not set(names) <= known:
                    continue  # a deeper object (a file of the new store): no link can name it
                values = {n: "$response.body#/id" if n == param else f"$request.path.{n}" for n in names}
                link = {"operationId": operation["operationId"], "parameters": values}
                created.setdefault("links", {})[operation["operationId"]] = link


def _answered_properties(response: Mapping[str, Any], components: Mapping[str, Any]) -> set[str]:
    schema = response.get("content", {}).get("application/json", {}).get("schema", {})
    ref = schema.get("$ref", "")
    if ref.startswith(REF_PREFIX):
        schema = components.get(ref[len(REF_PREFIX) :], {})
    return set(schema.get("required", ()))


def _error_content(responses: Mapping[str, Any]) -> dict[str, Any]:
    """The shape of the route's own 4xx answers when it declares any (the Messages API's is
    Anthropic's), else the envelope."""
    for status, response in responses.items():
        if status != "422" and status.startswith("4") and "content" in response:
            return response["content"]
    return {"application/json": {"schema": {"$ref": REF_PREFIX + ErrorEnvelope.__name__}}}


def _add_model(schemas: dict[str, Any], model: type[BaseModel]) -> None:
    """A pydantic model and the models it refers to, as components (if not there already)."""
    generated = model.model_json_schema(ref_template=REF_PREFIX + "{model}")
    for name, definition in generated.pop("$defs", {}).items():
        schemas.setdefault(name, definition)
    schemas.setdefault(model.__name__, generated)
