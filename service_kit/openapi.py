"""OpenAPI helpers: error answers documented as application/problem+json, with examples."""

from http import HTTPStatus
from typing import Any

from fastapi import FastAPI
from pydantic import BaseModel

PROBLEM_MEDIA_TYPE = "application/problem+json"


def problem_example(status: int, detail: str, slug: str | None = None, **extra: Any) -> dict:
    phrase = HTTPStatus(status).phrase
    return {
        "type": "/problems/" + (slug or phrase.lower().replace(" ", "-")),
        "title": phrase,
        "status": status,
        "detail": detail,
        **extra,
    }


def problem_response(
    model: type[BaseModel], description: str, *examples: dict[str, Any]
) -> dict[str, Any]:
    """An entry for a route's `responses=`: the problem schema and one or more examples."""
    content: dict[str, Any] = {}
    if len(examples) == 1:
        content["example"] = examples[0]
    else:
        named: dict[str, Any] = {}
        for example in examples:
            name = slug = example["type"].rsplit("/", 1)[-1]
            for n in range(2, len(examples) + 1):
                if name not in named:
                    break
                name = f"{slug}-{n}"
            named[name] = {"summary": example["detail"], "value": example}
        content["examples"] = named
    return {"model": model, "description": description, "content": {PROBLEM_MEDIA_TYPE: content}}


def json_example(example: Any, description: str | None = None) -> dict[str, Any]:
    """An entry for a route's `responses=` that adds an example to its JSON answer."""
    entry: dict[str, Any] = {"content": {"application/json": {"example": example}}}
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


def document_problems_as_problem_json(app: FastAPI) -> None:
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            _move_problem_schemas(build())
        assert app.openapi_schema is not None
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
