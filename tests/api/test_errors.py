"""Every error class of the pipeline service is answered as its class declares: status, type,
title, detail (reason, then advice), extension members and headers. A new error class is held
to it as soon as it defines its `example`."""

from http import HTTPStatus

import httpx
import pytest
from fastapi import FastAPI

from pipeline_service import errors
from pipeline_service.api.problems import install_pipeline_problem_handlers
from service_kit.errors import ProblemError, concrete_errors

ERRORS = concrete_errors(errors.ServiceError)


def _raising(error: ProblemError) -> FastAPI:
    app = FastAPI()
    install_pipeline_problem_handlers(app)

    @app.get("/fail")
    async def fail() -> None:
        raise error

    return app


async def _answer(error: ProblemError) -> httpx.Response:
    transport = httpx.ASGITransport(app=_raising(error))
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        return await client.get("/fail")


def test_the_service_has_its_errors() -> None:
    names = {cls.__name__ for cls in ERRORS}
    assert {"PipelineNotFound", "DatabaseUnavailable", "InvalidPipeline", "NotReady"} <= names
    assert not names & {"ServiceError", "ClientInputError", "ModelServiceError"}


@pytest.mark.parametrize("cls", ERRORS, ids=lambda cls: cls.__name__)
async def test_an_error_is_answered_as_its_class_declares(cls: type[ProblemError]) -> None:
    error = cls.example()
    response = await _answer(error)
    assert response.status_code == cls.status
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body == error.body()
    assert body["type"] == f"/problems/{cls.slug}"
    assert body["title"] == HTTPStatus(cls.status).phrase
    assert body["status"] == cls.status
    assert body["detail"] == error.detail
    assert error.detail.startswith(error.reason) and error.detail.endswith(".")
    if error.advice:
        assert error.detail == f"{error.reason}; {error.advice}."
    assert set(body) - {"type", "title", "status", "detail"} <= set(cls.members)
    for header in cls.headers:
        assert response.headers[header] == error.header_values()[header]
    assert cls.summary.strip() and cls.summary != ProblemError.summary


def test_extension_members_are_sent_when_set() -> None:
    changed = errors.PipelineChanged(2, 3).body()
    assert changed["current_version"] == 3 and "run_id" not in changed
    failed = errors.ModelTimeout(5)
    failed.run_id = 41
    assert failed.body()["run_id"] == 41
    invalid = errors.InvalidPipeline([errors.StepProblem(0, "resize", "bad", "width")]).body()
    assert invalid["errors"] == [
        {"index": 0, "step_type": "resize", "message": "bad", "field": "width"}
    ]
    checks = {"database": "ok", "model_service": "no answer within 2 s"}
    not_ready = errors.NotReady(checks).body()
    assert not_ready["checks"] == checks
    assert not_ready["detail"] == "Not ready: model_service is down (no answer within 2 s)."


def test_advice_is_apart_from_the_reason() -> None:
    """What an operator reads (readiness checks) is the reason, without the client's advice."""
    down = errors.DatabaseUnavailable("The database cannot be reached (OSError)")
    assert down.reason == "The database cannot be reached (OSError)"
    assert down.detail == "The database cannot be reached (OSError); try again shortly."


def test_retry_after_is_whole_seconds_at_least_one() -> None:
    assert errors.ModelCircuitOpen(5, 0.2).header_values() == {"Retry-After": "1"}
    assert errors.ModelCircuitOpen(5, 2.5).header_values() == {"Retry-After": "3"}
    assert errors.DatabaseUnavailable("x").header_values() == {"Retry-After": "1"}
    assert errors.PipelineNotFound(1).header_values() == {}
