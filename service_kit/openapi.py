"""The OpenAPI document from the code: examples live on the models (`schema_examples`), error
answers are generated from the error classes (`problem_responses`), and every answer says
which headers come with it."""

from collections.abc import Iterable
from typing import Any

from fastapi import FastAPI
from pydantic import BaseModel

from service_kit.errors import ProblemError
from service_kit.problems import PROBLEM_MEDIA_TYPE

# FastAPI drops every None from the document it generates, examples included, so an example
# of a nullable field would lose it. Examples made here carry this mark instead; the finished
# document gets its nulls back (see `finish_openapi`).
NULL_MARK = "\x00null"
HEADER_TYPES = {"Retry-After": "integer"}  # the others are strings
REQUEST_ID_HEADER = {
    "X-Request-ID": {
        "description": "The request's id: the X-Request-ID the request carried (1-128 of "
        "A-Za-z0-9._:/+=@-), or a new one. Every log line of the request carries it.",
        "schema": {"type": "string"},
    }
}


def _mark_nulls(value: Any) -> Any:
    if value is None:
        return NULL_MARK
    if isinstance(value, dict):
        return {key: _mark_nulls(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_mark_nulls(item) for item in value]
    return value


def _restore_nulls(value: Any) -> Any:
    if value == NULL_MARK:
        return None
    if isinstance(value, dict):
        return {key: _restore_nulls(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_restore_nulls(item) for item in value]
    return value


def schema_examples(*examples: Any) -> dict[str, Any]:
    """A model's `json_schema_extra`: its examples, nulls included."""
    return {"examples": [_mark_nulls(example) for example in examples]}


def header(description: str, type_: str = "string") -> dict[str, Any]:
    return {"description": description, "schema": {"type": type_}}


def _errors_of_one_status(
    model: type[BaseModel], errors: list[type[ProblemError]]
) -> dict[str, Any]:
    slugs = [cls.slug for cls in errors]
    examples = {
        (cls.slug if slugs.count(cls.slug) == 1 else cls.__name__): {
            "summary": cls.summary,
            "value": _mark_nulls(cls.example().body()),
        }
        for cls in errors
    }
    headers = {
        name: header(description, HEADER_TYPES.get(name, "string"))
        for cls in errors
        for name, description in cls.headers.items()
    }
    entry: dict[str, Any] = {
        "model": model,
        "description": " ".join(dict.fromkeys(cls.summary for cls in errors)),
        "content": {PROBLEM_MEDIA_TYPE: {"examples": examples}},
    }
    if headers:
        entry["headers"] = headers
    return entry


Errors = type[ProblemError] | Iterable["Errors"]


def _classes(errors: Iterable[Errors]) -> Iterable[type[ProblemError]]:
    for item in errors:
        if isinstance(item, type):
            yield item
        else:
            yield from _classes(item)


def problem_responses(model: type[BaseModel], *errors: Errors) -> dict[int | str, dict[str, Any]]:
    """The `responses=` entries of a route for the errors it can answer (classes, or tuples of
    them): per status, `model` as the schema and one example per class, from the class."""
    by_status: dict[int, list[type[ProblemError]]] = {}
    for cls in dict.fromkeys(_classes(errors)):  # each once, in the order given
        by_status.setdefault(int(cls.status), []).append(cls)
    return {
        status: _errors_of_one_status(model, classes)
        for status, classes in sorted(by_status.items())
    }


def _finish_responses(document: dict[str, Any]) -> None:
    """FastAPI puts a response `model` under application/json; for the error answers that
    are problem+json, move it there, so the document says what the client really gets. And
    every answer carries X-Request-ID (service_kit.requests)."""
    for operations in document.get("paths", {}).values():
        for operation in operations.values():
            for response in operation.get("responses", {}).values():
                content = response.get("content", {})
                if PROBLEM_MEDIA_TYPE in content and "application/json" in content:
                    content[PROBLEM_MEDIA_TYPE] = {
                        **content.pop("application/json"),
                        **content[PROBLEM_MEDIA_TYPE],
                    }
                response["headers"] = {**response.get("headers", {}), **REQUEST_ID_HEADER}


def finish_openapi(app: FastAPI) -> None:
    """Error answers documented as problem+json, headers, and examples with their nulls."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            document = _restore_nulls(build())
            _finish_responses(document)
            app.openapi_schema = document
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
