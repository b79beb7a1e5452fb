"""OpenAPI helpers: examples, and error answers documented as application/problem+json."""

from typing import Any

from fastapi import FastAPI
from pydantic import BaseModel

from service_kit.errors import problem_body
from service_kit.problems import PROBLEM_MEDIA_TYPE

# FastAPI drops every None from the document it generates, examples included, so an example
# of a nullable field would lose it. Examples made here carry this mark instead; the finished
# document gets its nulls back (see `finish_openapi`).
NULL_MARK = "\x00null"


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


def problem_example(status: int, detail: str, slug: str | None = None, **extra: Any) -> dict:
    return problem_body(status, detail, slug, **extra)


def problem_response(
    model: type[BaseModel], description: str, *examples: dict[str, Any]
) -> dict[str, Any]:
    """An entry for a route's `responses=`: the problem schema and one or more examples."""
    content: dict[str, Any] = {}
    if len(examples) == 1:
        content["example"] = _mark_nulls(examples[0])
    else:
        named: dict[str, Any] = {}
        for example in examples:
            name = slug = example["type"].rsplit("/", 1)[-1]
            count = 1
            while name in named:  # two examples of one problem type: invalid-request-2, ...
                count += 1
                name = f"{slug}-{count}"
            named[name] = {"summary": example["detail"], "value": _mark_nulls(example)}
        content["examples"] = named
    return {"model": model, "description": description, "content": {PROBLEM_MEDIA_TYPE: content}}


def json_example(example: Any, description: str | None = None) -> dict[str, Any]:
    """An entry for a route's `responses=` that adds an example to its JSON answer."""
    entry: dict[str, Any] = {"content": {"application/json": {"example": _mark_nulls(example)}}}
    if description:
        entry["description"] = description
    return entry


def _move_problem_schemas(document: dict[str, Any]) -> None:
    """FastAPI puts a response `model` under application/json; for the error answers that
    are problem+json, move it there, so the document says what the client really gets."""
    for operations in document.get("paths", {}).values():
        for operation in operations.values():
            for response in operation.get("responses", {}).values():
                content = response.get("content", {})
                if PROBLEM_MEDIA_TYPE in content and "application/json" in content:
                    content[PROBLEM_MEDIA_TYPE] = {
                        **content.pop("application/json"),
                        **content[PROBLEM_MEDIA_TYPE],
                    }


def finish_openapi(app: FastAPI) -> None:
    """Error answers documented as problem+json, and examples with their nulls."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            document = _restore_nulls(build())
            _move_problem_schemas(document)
            app.openapi_schema = document
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
