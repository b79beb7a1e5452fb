"""Every error answer of both services is application/problem+json (RFC 9457): the answer of a
`ProblemError` (service_kit.errors) is read off its class; FastAPI's validation errors,
Starlette's HTTP errors and anything unexpected are answered in the same shape."""

import logging
from collections.abc import Mapping
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException
from starlette.responses import Response

from service_kit.errors import (
    FieldProblem,
    InternalError,
    InvalidRequest,
    ProblemError,
    problem_body,
)

log = logging.getLogger(__name__)

PROBLEM_MEDIA_TYPE = "application/problem+json"
LOCATIONS = ("body", "query", "form", "path", "header")

# Validation messages that speak Python rather than English, by (field, pydantic error type).
Messages = Mapping[tuple[str, str], str]


class Problem(BaseModel):
    """application/problem+json (RFC 9457); `type` names the kind of problem."""

    type: str = Field(description="/problems/<slug>: the same for every problem of its kind.")
    title: str = Field(description="The status's phrase.")
    status: int
    detail: str = Field(description="What went wrong, and what to do about it, for a person.")
    errors: list[FieldProblem] | None = Field(
        None, description="invalid-request: every field that is not valid."
    )


def problem(body: dict[str, Any], headers: Mapping[str, str] | None = None) -> Response:
    return Response(
        orjson.dumps(body),
        status_code=body["status"],
        media_type=PROBLEM_MEDIA_TYPE,
        headers=dict(headers or {}),
    )


def answer(error: ProblemError) -> Response:
    return problem(error.body(), error.header_values())


class RaisedProblem(HTTPException):
    """Carries a ProblemError where only an HTTPException gets through: FastAPI answers any
    other exception raised while it reads a body as a 400."""

    def __init__(self, error: ProblemError) -> None:
        super().__init__(error.status, error.detail)
        self.problem = error


def _field(loc: tuple[Any, ...]) -> str:
    return ".".join(str(p) for p in loc if p not in LOCATIONS) or "request"


def invalid_request(error: RequestValidationError, messages: Messages) -> InvalidRequest:
    """FastAPI's (and pydantic's) validation errors as one InvalidRequest, in plain words."""
    problems = []
    for issue in error.errors():
        field = _field(tuple(issue["loc"]))
        problems.append(FieldProblem(field, messages.get((field, issue["type"]), issue["msg"])))
    return InvalidRequest(problems)


def _http_detail(request: Request, error: HTTPException) -> str:
    where = f"{request.method} {request.url.path}"
    if error.status_code == 404 and error.detail == "Not Found":
        return f"There is no endpoint {where}; the API is listed at /docs."
    if error.status_code == 405:
        allowed = (error.headers or {}).get("allow") or (error.headers or {}).get("Allow", "")
        return f"{where} is not allowed; this path accepts {allowed or 'other methods'}."
    return error.detail if error.detail.endswith(".") else f"{error.detail}."


async def _problem_error(_: Request, error: Exception) -> Response:
    assert isinstance(error, ProblemError)
    return answer(error)


async def _raised_problem(_: Request, error: Exception) -> Response:
    assert isinstance(error, RaisedProblem)
    return answer(error.problem)


async def _http_error(request: Request, error: Exception) -> Response:
    assert isinstance(error, HTTPException)
    return problem(
        problem_body(error.status_code, _http_detail(request, error)), error.headers or {}
    )


async def _unexpected(_: Request, error: Exception) -> Response:
    log.exception("unhandled error", exc_info=error)
    return problem(InternalError().body())


def install_problem_handlers(app: FastAPI, messages: Messages | None = None) -> None:
    """Answer every error as problem+json. `messages` rewords validation messages."""

    async def validation_error(_: Request, error: Exception) -> Response:
        assert isinstance(error, RequestValidationError)
        return answer(invalid_request(error, messages or {}))

    app.add_exception_handler(ProblemError, _problem_error)
    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(RaisedProblem, _raised_problem)
    app.add_exception_handler(HTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected)
