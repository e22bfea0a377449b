"""The HTTP error model: one exception tree, one status table, one envelope, one set of handlers.

Every error body on every route is `{"error": {"message", "type", "param", "code"}}`, the shape the
OpenAI API uses. Domain errors from `inference/` and `stores/` are mapped here and nowhere else;
anything unexpected becomes a 500 "internal error" whose traceback is logged, never sent.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping, Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi import routing as fastapi_routing
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from inference import errors as inf
from stores import errors as st

logger = logging.getLogger(__name__)


class ApplianceError(Exception):
    """Base of the errors the HTTP layer raises itself; subclasses fix status, type and code."""

    status: int = 500
    type: str = "server_error"
    code: str = "internal_error"

    def __init__(
        self,
        message: str,
        *,
        param: str | None = None,
        code: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        if code is not None:
            self.code = code
        self.headers = dict(headers or {})


class BadRequest(ApplianceError):
    status, type, code = 400, "invalid_request_error", "invalid_request"


class Unauthorized(ApplianceError):
    status, type, code = 401, "authentication_error", "invalid_api_key"

    def __init__(self, message: str) -> None:
        super().__init__(message, headers={"WWW-Authenticate": "Bearer"})


class NotFound(ApplianceError):
    status, type, code = 404, "invalid_request_error", "not_found"


class PayloadTooLarge(ApplianceError):
    status, type, code = 413, "invalid_request_error", "payload_too_large"


class ServiceUnavailable(ApplianceError):
    status, type, code = 503, "server_error", "service_unavailable"


# Domain error -> (HTTP status, OpenAI error type). The most specific class listed wins.
DOMAIN_STATUS: Mapping[type[inf.InferenceError], tuple[int, str]] = {
    inf.ModelNotFound: (404, "invalid_request_error"),
    inf.ContextLengthExceeded: (400, "invalid_request_error"),
    inf.InvalidRequest: (400, "invalid_request_error"),
    inf.Overloaded: (429, "server_error"),
    inf.WaitTimeout: (503, "server_error"),
    inf.InsufficientMemory: (503, "server_error"),
    inf.BusyTimeout: (504, "server_error"),
    inf.UnsafePath: (400, "invalid_request_error"),
    inf.InvalidModelConfig: (400, "invalid_request_error"),
    inf.BackendNotFound: (400, "invalid_request_error"),
    inf.CapabilityNotSupported: (400, "invalid_request_error"),
    inf.BackendUnavailable: (503, "server_error"),
    inf.ModelLoadFailed: (503, "server_error"),
    inf.InferenceError: (500, "server_error"),
}

# Store error -> (HTTP status, OpenAI error type); the most specific class listed wins.
STORE_STATUS: Mapping[type[st.StoreError], tuple[int, str]] = {
    st.DimensionMismatch: (400, "invalid_request_error"),
    st.InvalidInput: (400, "invalid_request_error"),
    st.StoreNotFound: (404, "invalid_request_error"),
    st.StoreExists: (409, "invalid_request_error"),
    st.ModelMismatch: (409, "invalid_request_error"),
    st.DataPathLocked: (503, "server_error"),
    st.StoreClosed: (503, "server_error"),
    st.SchemaTooNew: (503, "server_error"),
    st.SchemaMismatch: (503, "server_error"),
    st.StoreError: (500, "server_error"),
}

_STATUS_CODES: Mapping[int, str] = {
    400: "invalid_request",
    401: "invalid_api_key",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    413: "payload_too_large",
    415: "unsupported_media_type",
    429: "rate_limit_exceeded",
    503: "service_unavailable",
}


class ErrorDetail(BaseModel):
    """What went wrong (`message`), its kind (`type`), the field to fix (`param`) and a stable `code`."""

    model_config = ConfigDict(extra="forbid")

    message: str = Field(min_length=1)
    type: str = Field(min_length=1)
    param: str | None
    code: str | None


class ErrorEnvelope(BaseModel):
    """The one error body, `{"error": {"message", "type", "param", "code"}}`, as a schema component."""

    model_config = ConfigDict(extra="forbid")

    error: ErrorDetail


# What each error status means on this server, for the OpenAPI document.
ERROR_DESCRIPTIONS: Mapping[int, str] = {
    400: "The request is malformed or asks for what this server cannot do; `param` names the field to fix",
    401: "API keys are set and the request carries none, or a wrong one",
    404: "The model, object or file named does not exist",
    409: "The request conflicts with the current state (an existing name, a different embedding model, a job "
    "already running)",
    413: "The request body is larger than the upload limit",
    422: "A value is out of range (rerank's `top_n`)",
    429: "Too many requests are waiting for the model or the queue; retry after `Retry-After` seconds",
    500: "An internal error (a bug): the traceback is in the server log, never in the response",
    503: "Not available now: the model failed to load or does not fit in memory, its library is not installed, "
    "the wait for it timed out, or the server is starting or its data is locked",
    504: "The model worked longer than the busy timeout and was stopped",
}

# Statuses of the families of work a route does, for `error_responses` (413, 500 and 401 come from
# the layers in front of every route; appliance.openapi adds them): running a model, using a store.
MODEL_ERRORS = (400, 404, 429, 503, 504)
STORE_ERRORS = (400, 404, 409, 503)


def error_responses(*statuses: int, model: type[BaseModel] = ErrorEnvelope) -> dict[int | str, dict[str, Any]]:
    """FastAPI's `responses=` for these error statuses, each with the error envelope as its schema."""
    return {status: {"model": model, "description": ERROR_DESCRIPTIONS[status]} for status in sorted(set(statuses))}


def error_body(message: str, type_: str, param: str | None = None, code: str | None = None) -> dict[str, Any]:
    """The one error envelope."""
    return {"error": {"message": message, "type": type_, "param": param, "code": code}}


def error_response(
    status: int,
    message: str,
    type_: str,
    *,
    param: str | None = None,
    code: str | None = None,
    headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    return JSONResponse(error_body(message, type_, param, code), status_code=status, headers=dict(headers or {}))


def internal_error_response() -> JSONResponse:
    return error_response(500, "internal error", "server_error", code="internal_error")


def domain_status(exc: inf.InferenceError) -> tuple[int, str]:
    for cls in type(exc).__mro__:
        if cls in DOMAIN_STATUS:
            return DOMAIN_STATUS[cls]
    return 500, "server_error"


def _appliance_error(_: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApplianceError)
    return error_response(
        exc.status, exc.message, exc.type, param=exc.param, code=exc.code, headers=exc.headers
    )


def _domain_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, inf.InferenceError)
    status, type_ = domain_status(exc)
    if status == 500:
        logger.error("event=domain_error path=%s", request.url.path, exc_info=exc)
        return internal_error_response()
    headers = {}
    retry_after = getattr(exc, "retry_after", None)
    if retry_after is not None:
        headers["Retry-After"] = str(max(1, round(retry_after)))
    return error_response(status, exc.message, type_, param=exc.param, code=exc.code, headers=headers)


def http_error_response(exc: StarletteHTTPException) -> JSONResponse:
    """The envelope for Starlette's own errors (unknown route, wrong method, body too large)."""
    status = exc.status_code
    if status == 404 and exc.detail == "Not Found":
        message = "no such route; see the README for the API this server offers"
    elif status == 405:
        message = "method not allowed on this route"
    else:
        message = str(exc.detail)
    type_ = "server_error" if status >= 500 else "invalid_request_error"
    return error_response(
        status, message, type_, code=_STATUS_CODES.get(status, f"http_{status}"), headers=exc.headers
    )


def _store_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, st.StoreError)
    status, type_ = next((STORE_STATUS[c] for c in type(exc).__mro__ if c in STORE_STATUS), (500, "server_error"))
    if status == 500:
        logger.error("event=store_error path=%s", request.url.path, exc_info=exc)
        return internal_error_response()
    return error_response(status, exc.message, type_, param=exc.param, code=exc.code)


def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    response = http_error_response(exc)
    if exc.status_code == 405:
        response.headers["Allow"] = allowed_methods(request)
    return response


def allowed_methods(request: Request) -> str:
    """Every method some route at this path answers: Starlette's own 405 names only the first
    route's, but GET and DELETE of one path are two routes here."""
    path = request.scope.get("path", "")
    routes = request.app.router.routes
    contexts = getattr(fastapi_routing, "iter_route_contexts", None)  # newer FastAPI: included routers
    methods: set[str] = set()
    for route in contexts(routes) if contexts is not None else routes:
        regex, route_methods = getattr(route, "path_regex", None), getattr(route, "methods", None)
        if regex is not None and route_methods and regex.match(path):
            methods |= set(route_methods)
    return ", ".join(sorted(methods))


_UNION_TAG = re.compile(r"^(str|int|float|bool|bytes|none|list\[.*\]|dict\[.*\]|literal\[.*\]|function-.*|[A-Z]\w*)$")


def _field(loc: Sequence[Any]) -> str | None:
    """A dotted field path, without the location kind and pydantic's union-branch tags."""
    parts = [str(p) for p in loc]
    if parts and parts[0] in ("body", "query", "path", "header", "cookie"):
        parts = parts[1:]  # the location, not a field (a body field may be called `query`)
    return ".".join(p for p in parts if not _UNION_TAG.match(p)) or None


def describe_validation_errors(errors: Sequence[Mapping[str, Any]]) -> tuple[str, str | None]:
    """One readable message naming every bad field, and the first field as `param`."""
    by_field: dict[str | None, list[str]] = {}
    for err in errors:
        field = _field(err.get("loc", ()))
        if err.get("type") == "json_invalid":
            ctx = err.get("ctx") or {}
            by_field.setdefault(None, []).append(f"request body is not valid JSON ({ctx.get('error', 'parse error')})")
        elif err.get("type") == "missing":
            by_field.setdefault(field, []).append(
                f"missing required field '{field}'" if field else "missing request body"
            )
        else:
            message = str(err.get("msg")).removeprefix("Value error, ")
            by_field.setdefault(field, []).append(f"field '{field}': {message}" if field else message)
    parts = []
    for field, messages in by_field.items():
        if len(messages) > 1 and field is not None and all(m.startswith(f"field '{field}'") for m in messages):
            # Several union branches failed on one field: say so once.
            parts.append(f"field '{field}' has none of the accepted types ({messages[0].split(': ', 1)[1]}, ...)")
        else:
            parts.extend(messages)
    first = next((field for field in by_field if field is not None), None)
    return "; ".join(parts) or "invalid request", first


def _validation_error(_: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    message, param = describe_validation_errors(exc.errors())
    return error_response(400, message, "invalid_request_error", param=param, code="invalid_request")


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(ApplianceError, _appliance_error)
    app.add_exception_handler(inf.InferenceError, _domain_error)
    app.add_exception_handler(st.StoreError, _store_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
