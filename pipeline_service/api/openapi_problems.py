"""Make the OpenAPI document tell the truth about errors: every error is a Problem sent as
application/problem+json, including FastAPI's automatic 422 (which FastAPI documents as JSON
`HTTPValidationError`), and the 400 of a malformed body and the 413 of the upload limit, which
no route declares itself."""

from http import HTTPStatus
from typing import Any

from fastapi import FastAPI

from pipeline_service.api.schemas import Problem
from service_kit.problems import PROBLEM_MEDIA_TYPE

FASTAPI_422 = "#/components/schemas/HTTPValidationError"


def _problem(status: int, slug: str, detail: str, **extra: Any) -> dict[str, Any]:
    title = HTTPStatus(status).phrase
    example = {"type": f"/problems/{slug}", "title": title, "status": status, "detail": detail}
    return {
        PROBLEM_MEDIA_TYPE: {
            "schema": {"$ref": "#/components/schemas/Problem"},
            "example": {**example, **extra},
        }
    }


INVALID = {
    "description": "A parameter or the body is invalid (each problem is listed).",
    "content": _problem(
        422,
        "invalid-request",
        "limit: Input should be less than or equal to 100.",
        errors=[{"field": "limit", "message": "Input should be less than or equal to 100"}],
    ),
}
# Any route with a body can meet these before its own code runs.
BODY_ERRORS = {
    "400": {
        "description": "The body is malformed (e.g. a broken multipart body).",
        "content": _problem(400, "bad-request", "Invalid multipart data."),
    },
    "413": {
        "description": "The body is larger than MAX_UPLOAD_BYTES.",
        "content": _problem(
            413,
            "upload-too-large",
            "The upload is larger than 20971520 bytes (MAX_UPLOAD_BYTES).",
        ),
    },
}


def _fix_operation(operation: dict[str, Any]) -> None:
    responses = operation.setdefault("responses", {})
    invalid = responses.get("422")
    if invalid is not None:
        schemas = [media.get("schema", {}) for media in invalid.get("content", {}).values()]
        if any(schema.get("$ref") == FASTAPI_422 for schema in schemas):
            responses["422"] = INVALID
    if "requestBody" in operation:
        for status, entry in BODY_ERRORS.items():
            responses.setdefault(status, entry)


def document_problems(app: FastAPI) -> None:
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = generate()  # FastAPI caches it in app.openapi_schema; fixed once, in place
            components = schema.setdefault("components", {}).setdefault("schemas", {})
            components.setdefault(
                "Problem", Problem.model_json_schema(ref_template="#/components/schemas/{model}")
            )
            for path in schema.get("paths", {}).values():
                for operation in path.values():
                    _fix_operation(operation)
        return app.openapi_schema  # type: ignore[return-value]

    app.openapi = openapi  # type: ignore[method-assign]
