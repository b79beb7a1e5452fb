"""The pipeline service's error answers: service_kit's problem+json handlers, plus what only
this service adds (the run id in the request's log line, plain words for a few validation
messages, and the admin check before a validation error on admin routes)."""

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.responses import Response

from pipeline_service.api.auth import ensure_admin, needs_admin
from pipeline_service.errors import ClientGone, ServiceError
from service_kit.problems import answer, install_problem_handlers, invalid_request

log = logging.getLogger(__name__)

SEND_IMAGE = "send the picture as a multipart/form-data file field named 'image'"
PLAIN_MESSAGES = {
    ("image", "missing"): f"Field required; {SEND_IMAGE}",
    ("image", "value_error"): f"a text value is not a file; {SEND_IMAGE}",
    ("Idempotency-Key", "string_pattern_mismatch"): (
        "use visible ASCII characters only, no spaces (a UUID is a good key)"
    ),
}


async def _service_error(request: Request, error: Exception) -> Response:
    assert isinstance(error, ServiceError)
    if error.run_id is not None:
        request.state.run_id = error.run_id  # for the request's log line
    if error.status >= 500:
        log.warning("%s: %s", type(error).__name__, error.detail, exc_info=error.__cause__)
    return answer(error)


async def _validation_error(request: Request, error: Exception) -> Response:
    assert isinstance(error, RequestValidationError)
    if needs_admin(request.scope.get("route")):
        try:
            await ensure_admin(request)  # who may not change pipelines learns nothing more
        except ServiceError as refused:
            return answer(refused)
    return answer(invalid_request(error, PLAIN_MESSAGES))


# nginx's code for "the client closed the connection": seen only in logs and metrics.
CLIENT_CLOSED_REQUEST = 499


async def _client_gone(_: Request, error: Exception) -> Response:
    assert isinstance(error, ClientGone)
    return Response(status_code=CLIENT_CLOSED_REQUEST)  # nobody reads it


def install_pipeline_problem_handlers(app: FastAPI) -> None:
    install_problem_handlers(app)
    app.add_exception_handler(ServiceError, _service_error)
    app.add_exception_handler(ClientGone, _client_gone)
    app.add_exception_handler(RequestValidationError, _validation_error)
