"""service_kit's problem+json: the same answers on both services, whatever raised them."""

import httpx
import pytest
from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError

from model_service.errors import SimulatedFailure
from service_kit.errors import (
    FieldProblem,
    InternalError,
    InvalidRequest,
    MalformedBody,
    MalformedMultipart,
    ProblemError,
    concrete_errors,
    default_slug,
)
from service_kit.problems import RaisedProblem, install_problem_handlers

KIT_ERRORS = [InternalError, InvalidRequest, MalformedBody, MalformedMultipart, SimulatedFailure]


def _app() -> FastAPI:
    app = FastAPI()
    install_problem_handlers(app, {("q", "int_parsing"): "a whole number, please"})

    @app.get("/raise/{name}")
    async def raise_(name: str) -> None:
        raise next(cls for cls in KIT_ERRORS if cls.__name__ == name).example()

    @app.get("/wrapped")
    async def wrapped() -> None:
        raise RaisedProblem(InvalidRequest([FieldProblem("x", "wrapped")]))

    @app.get("/query")
    async def query(q: int) -> int:
        return q

    @app.get("/invalid")
    async def invalid() -> None:
        raise RequestValidationError([{"loc": ("body", "a", 0), "msg": "bad", "type": "x"}])

    @app.get("/bug")
    async def bug() -> None:
        raise RuntimeError("a bug")

    return app


@pytest.fixture
async def client():
    transport = httpx.ASGITransport(app=_app(), raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        yield client


def test_every_error_class_is_found() -> None:
    assert set(KIT_ERRORS) <= set(concrete_errors())
    assert ProblemError not in concrete_errors()


@pytest.mark.parametrize("cls", KIT_ERRORS, ids=lambda cls: cls.__name__)
async def test_an_error_is_answered_as_its_class_declares(client, cls) -> None:
    response = await client.get(f"/raise/{cls.__name__}")
    assert response.status_code == cls.status
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json() == cls.example().body()
    assert response.json()["type"] == f"/problems/{cls.slug}"


async def test_validation_errors_name_each_field_in_plain_words(client) -> None:
    response = await client.get("/query?q=x")
    assert response.status_code == 422
    assert response.json() == {
        "type": "/problems/invalid-request",
        "title": "Unprocessable Entity",
        "status": 422,
        "detail": "q: a whole number, please.",
        "errors": [{"field": "q", "message": "a whole number, please"}],
    }
    nested = (await client.get("/invalid")).json()
    assert nested["errors"] == [{"field": "a.0", "message": "bad"}]


async def test_a_problem_raised_as_an_http_exception_keeps_its_class(client) -> None:
    response = await client.get("/wrapped")
    assert response.status_code == 422
    assert response.json()["type"] == "/problems/invalid-request"


async def test_http_errors_and_bugs_are_problems_too(client) -> None:
    missing = await client.get("/nowhere")
    assert missing.status_code == 404
    assert missing.json()["type"] == "/problems/not-found"
    assert (
        missing.json()["detail"] == "There is no endpoint GET /nowhere; the API is listed at /docs."
    )
    bug = await client.get("/bug")
    assert bug.status_code == 500
    assert bug.json() == InternalError().body()
    assert "a bug" not in bug.text


def test_a_malformed_body_has_the_type_starlette_answers_it_with() -> None:
    """Starlette raises it as an HTTPException(400): answered with the status's own slug."""
    assert MalformedBody.slug == default_slug(MalformedBody.status)
    assert MalformedMultipart.slug == MalformedBody.slug
