"""Every error answer is application/problem+json (RFC 9457): type, title, status, detail."""

import logging
import math
from http import HTTPStatus
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException
from starlette.responses import Response

from pipeline_service import errors
from pipeline_service.api.auth import ensure_admin, needs_admin

log = logging.getLogger(__name__)

PROBLEM_BASE = "/problems/"  # a relative URI reference, as RFC 9457 allows
PROBLEM_MEDIA_TYPE = "application/problem+json"

# nginx's code for "the client closed the connection": only ever seen in logs and metrics.
CLIENT_CLOSED_REQUEST = 499
PHRASES = {CLIENT_CLOSED_REQUEST: "Client Closed Request"}

# Domain error -> (HTTP status, problem type slug). The first match in order wins.
STATUS_OF: list[tuple[type[errors.ServiceError], int, str]] = [
    (errors.PipelineNotFound, HTTPStatus.NOT_FOUND, "pipeline-not-found"),
    (errors.PipelineChanged, HTTPStatus.PRECONDITION_FAILED, "pipeline-changed"),
    (errors.RunNotFound, HTTPStatus.NOT_FOUND, "run-not-found"),
    (errors.InvalidPipeline, HTTPStatus.UNPROCESSABLE_ENTITY, "invalid-pipeline"),
    (errors.IdempotencyConflict, HTTPStatus.CONFLICT, "idempotency-key-reused"),
    (errors.UnsupportedImage, HTTPStatus.UNSUPPORTED_MEDIA_TYPE, "unsupported-image"),
    (errors.ImageTooLarge, HTTPStatus.REQUEST_ENTITY_TOO_LARGE, "image-too-large"),
    (errors.ModelCircuitOpen, HTTPStatus.SERVICE_UNAVAILABLE, "model-circuit-open"),
    (errors.ImageDoesNotFit, HTTPStatus.UNPROCESSABLE_ENTITY, "image-does-not-fit"),
    (errors.ModelUnavailable, HTTPStatus.SERVICE_UNAVAILABLE, "model-unavailable"),
    (errors.ModelTimeout, HTTPStatus.GATEWAY_TIMEOUT, "model-timeout"),
    (errors.ModelBadResponse, HTTPStatus.BAD_GATEWAY, "model-bad-response"),
    (errors.DatabaseUnavailable, HTTPStatus.SERVICE_UNAVAILABLE, "database-unavailable"),
    (errors.Overloaded, HTTPStatus.SERVICE_UNAVAILABLE, "overloaded"),
    (errors.ClientGone, CLIENT_CLOSED_REQUEST, "client-gone"),
    (errors.StepFailed, HTTPStatus.INTERNAL_SERVER_ERROR, "step-failed"),
]


def problem(status: int, detail: str, slug: str | None = None, **extra: Any) -> Response:
    phrase = PHRASES.get(status) or HTTPStatus(status).phrase
    body = {
        "type": PROBLEM_BASE + (slug or phrase.lower().replace(" ", "-")),
        "title": phrase,
        "status": status,
        "detail": detail,
        **extra,
    }
    return Response(orjson.dumps(body), status_code=status, media_type=PROBLEM_MEDIA_TYPE)


def _location(loc: tuple[Any, ...]) -> str:
    parts = [str(p) for p in loc if p not in ("body", "query", "form", "path", "header")]
    return ".".join(parts) or "request"


async def _service_error(request: Request, error: Exception) -> Response:
    assert isinstance(error, errors.ServiceError)
    if error.run_id is not None:
        request.state.run_id = error.run_id  # for the request's log line
    status, slug = next(
        ((status, slug) for kind, status, slug in STATUS_OF if isinstance(error, kind)),
        (HTTPStatus.INTERNAL_SERVER_ERROR, "internal-error"),
    )
    extra: dict[str, Any] = {}
    if error.run_id is not None:
        extra["run_id"] = error.run_id
    if isinstance(error, errors.InvalidPipeline):
        extra["errors"] = [p.as_dict() for p in error.problems]
    if isinstance(error, errors.PipelineChanged):
        extra["current_version"] = error.current_version
    if status >= 500 and status != CLIENT_CLOSED_REQUEST:
        log.warning("%s: %s", type(error).__name__, error.detail, exc_info=error.__cause__)
    response = problem(status, error.detail, slug, **extra)
    if error.retry_after_s is not None:
        response.headers["Retry-After"] = str(max(1, math.ceil(error.retry_after_s)))
    return response


# Validation messages that speak Python rather than English, by (field, pydantic error type).
SEND_IMAGE = "send the picture as a multipart/form-data file field named 'image'"
PLAIN_MESSAGES = {
    ("image", "missing"): f"Field required; {SEND_IMAGE}",
    ("image", "value_error"): f"a text value is not a file; {SEND_IMAGE}",
    ("Idempotency-Key", "string_pattern_mismatch"): (
        "use visible ASCII characters only, no spaces (a UUID is a good key)"
    ),
}


def _issue(e: Any) -> dict[str, str]:
    field = _location(tuple(e["loc"]))
    return {"field": field, "message": PLAIN_MESSAGES.get((field, e["type"]), e["msg"])}


async def _validation_error(request: Request, error: Exception) -> Response:
    assert isinstance(error, RequestValidationError)
    if needs_admin(request.scope.get("route")):
        try:
            await ensure_admin(request)  # who may not change pipelines learns nothing more
        except HTTPException as refused:
            return await _http_error(request, refused)
    issues = [_issue(e) for e in error.errors()]
    detail = "; ".join(f"{i['field']}: {i['message']}" for i in issues) + "."
    return problem(422, detail, "invalid-request", errors=issues)


def _http_detail(request: Request, error: HTTPException) -> str:
    where = f"{request.method} {request.url.path}"
    if error.status_code == 404 and error.detail == "Not Found":
        return f"There is no endpoint {where}; the API is listed at /docs."
    if error.status_code == 405:
        allowed = (error.headers or {}).get("allow") or (error.headers or {}).get("Allow", "")
        return f"{where} is not allowed; this path accepts {allowed or 'other methods'}."
    if isinstance(error.detail, str):
        return error.detail
    return HTTPStatus(error.status_code).phrase


async def _http_error(request: Request, error: Exception) -> Response:
    assert isinstance(error, HTTPException)
    response = problem(error.status_code, _http_detail(request, error))
    for name, value in (error.headers or {}).items():
        response.headers[name] = value
    return response


async def _unexpected(_: Request, error: Exception) -> Response:
    log.exception("unhandled error", exc_info=error)
    return problem(500, "Something went wrong on our side; it has been logged.", "internal-error")


def install_problem_handlers(app: FastAPI) -> None:
    app.add_exception_handler(errors.ServiceError, _service_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(HTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected)
