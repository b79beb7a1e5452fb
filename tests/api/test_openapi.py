"""The OpenAPI documents of both services: valid, and every operation documented with a
summary, request and response examples that match their schemas, and problem+json errors.

Generic on purpose: it walks every path, so an endpoint added later is held to it too."""

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi import FastAPI
from jsonschema import Draft202012Validator, FormatChecker
from openapi_spec_validator import validate

from model_service.app import create_app as create_model_app
from model_service.config import ModelSettings
from pipeline_service.app import create_app
from pipeline_service.config import Settings

METHODS = {"get", "put", "post", "delete", "patch", "head", "options"}
PROBLEM = "application/problem+json"


def _pipeline_app() -> FastAPI:
    return create_app(Settings(database_url="postgresql://nobody@127.0.0.1:1/unused"))


def _model_app() -> FastAPI:
    return create_model_app(ModelSettings())


APPS = {"pipeline_service": _pipeline_app, "model_service": _model_app}


@pytest.fixture(params=list(APPS), scope="module")
def document(request: pytest.FixtureRequest) -> dict[str, Any]:
    return APPS[request.param]().openapi()


def operations(document: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    for path, item in document["paths"].items():
        for method, operation in item.items():
            if method in METHODS:
                yield f"{method.upper()} {path}", operation


def examples_of(holder: dict[str, Any]) -> list[Any]:
    """The values of `example`, `examples` (OpenAPI map) or a schema's `examples` list."""
    found = []
    if "example" in holder:
        found.append(holder["example"])
    for example in (holder.get("examples") or {}).values():
        found.append(example["value"])
    schema = holder.get("schema", {})
    found += schema.get("examples", []) if isinstance(schema.get("examples"), list) else []
    return found


def check(document: dict[str, Any], schema: dict[str, Any], example: Any, where: str) -> None:
    # $refs like "#/components/schemas/X" resolve against the root: give it the components.
    root = {"components": document.get("components", {}), "allOf": [schema]}
    errors = list(Draft202012Validator(root, format_checker=FormatChecker()).iter_errors(example))
    assert not errors, f"{where}: example does not match its schema: {errors[0].message}"


def check_examples(
    document: dict[str, Any], holder: dict[str, Any], schema: dict[str, Any], where: str
) -> None:
    """`holder` (a parameter, a request body, an answer) has examples, each matching `schema`."""
    examples = examples_of(holder)
    assert examples, f"{where} has no example"
    for example in examples:
        check(document, schema, example, where)


def test_the_document_is_valid_openapi(document: dict[str, Any]) -> None:
    validate(document)


def test_every_operation_has_a_summary(document: dict[str, Any]) -> None:
    for name, operation in operations(document):
        assert operation.get("summary", "").strip(), f"{name} has no summary"


def test_every_input_has_an_example_that_matches(document: dict[str, Any]) -> None:
    for name, operation in operations(document):
        for parameter in operation.get("parameters", []):
            where = f"{name} parameter {parameter['name']}"
            check_examples(document, parameter, parameter["schema"], where)
        for media_type, content in operation.get("requestBody", {}).get("content", {}).items():
            where = f"{name} request body {media_type}"
            check_examples(document, content, content.get("schema", {}), where)


def test_every_answer_has_an_example_that_matches(document: dict[str, Any]) -> None:
    for name, operation in operations(document):
        for status, response in operation["responses"].items():
            content = response.get("content", {})
            assert content or status in ("204", "304"), f"{name} {status} documents no body"
            for media_type, body in content.items():
                where = f"{name} {status} {media_type}"
                check_examples(document, body, body.get("schema", {}), where)


def test_errors_are_documented_as_problem_json(document: dict[str, Any]) -> None:
    for name, operation in operations(document):
        for status, response in operation["responses"].items():
            if status.startswith(("4", "5")):
                assert set(response.get("content", {})) == {PROBLEM}, (
                    f"{name} {status} is not documented as {PROBLEM}"
                )
                schema = response["content"][PROBLEM].get("schema")
                assert schema, f"{name} {status} has no problem schema"
        takes_input = operation.get("parameters") or operation.get("requestBody")
        if takes_input:
            assert "422" in operation["responses"], f"{name} takes input but documents no 422"


def test_a_bad_example_would_be_caught() -> None:
    """The checker itself: an example that breaks its schema is reported."""
    document = _pipeline_app().openapi()
    schema = {"$ref": "#/components/schemas/RunPage"}
    with pytest.raises(AssertionError, match="does not match"):
        check(document, schema, {"items": [{"run_id": "forty-two"}], "next_cursor": None}, "x")
