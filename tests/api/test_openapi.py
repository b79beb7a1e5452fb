"""The OpenAPI documents of both services: valid, and every operation documented with a
summary, a tag, request and response examples that match their schemas, and problem+json
errors. Examples live on the models and the error classes: every body schema has its own,
and every error class a client can meet is documented with the example of its class.

Generic on purpose: it walks every path, schema and error class, so one added later is held
to it too."""

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi import FastAPI
from jsonschema import Draft202012Validator, FormatChecker
from openapi_spec_validator import validate

from model_service.app import create_app as create_model_app
from model_service.config import ModelSettings
from model_service.errors import SimulatedFailure
from pipeline_service.app import create_app
from pipeline_service.config import Settings
from pipeline_service.errors import ServiceError
from service_kit.errors import (
    InvalidRequest,
    MalformedBody,
    MalformedMultipart,
    ProblemError,
    concrete_errors,
)

METHODS = {"get", "put", "post", "delete", "patch", "head", "options"}
PROBLEM = "application/problem+json"


def _pipeline_app() -> FastAPI:
    return create_app(Settings(database_url="postgresql://nobody@127.0.0.1:1/unused"))


def _model_app() -> FastAPI:
    return create_model_app(ModelSettings())


APPS = {"pipeline_service": _pipeline_app, "model_service": _model_app}
# The errors each service can answer (InternalError, the unexpected, may come from anywhere).
ERRORS: dict[str, list[type[ProblemError]]] = {
    "pipeline_service": [
        *concrete_errors(ServiceError),
        InvalidRequest,
        MalformedBody,
        MalformedMultipart,
    ],
    "model_service": [InvalidRequest, SimulatedFailure],
}


@pytest.fixture(params=list(APPS), scope="module")
def service(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture(scope="module")
def document(service: str) -> dict[str, Any]:
    return APPS[service]().openapi()


def operations(document: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    for path, item in document["paths"].items():
        for method, operation in item.items():
            if method in METHODS:
                yield f"{method.upper()} {path}", operation


def resolve(document: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    ref = schema.get("$ref", "")
    return document["components"]["schemas"][ref.rsplit("/", 1)[-1]] if ref else schema


def schema_examples(document: dict[str, Any], schema: dict[str, Any]) -> list[Any]:
    """The examples a schema carries: its own (a model's), or its items' for a list."""
    schema = resolve(document, schema)
    if isinstance(schema.get("examples"), list):
        return schema["examples"]
    if schema.get("type") == "array":
        return [[example] for example in schema_examples(document, schema.get("items", {}))]
    return []


def examples_of(document: dict[str, Any], holder: dict[str, Any]) -> list[Any]:
    """The values of `example`, `examples` (OpenAPI map), or those of its schema."""
    found = []
    if "example" in holder:
        found.append(holder["example"])
    for example in (holder.get("examples") or {}).values():
        found.append(example["value"])
    return found or schema_examples(document, holder.get("schema", {}))


def body_schemas(document: dict[str, Any]) -> set[str]:
    """The component schemas that are a request or answer body (or a list of them)."""
    names = set()
    for _, operation in operations(document):
        bodies = [operation.get("requestBody", {}), *operation["responses"].values()]
        for body in bodies:
            for media in body.get("content", {}).values():
                schema = media.get("schema", {})
                ref = schema.get("$ref") or schema.get("items", {}).get("$ref")
                if ref:
                    names.add(ref.rsplit("/", 1)[-1])
    return names


def check(document: dict[str, Any], schema: dict[str, Any], example: Any, where: str) -> None:
    # $refs like "#/components/schemas/X" resolve against the root: give it the components.
    root = {"components": document.get("components", {}), "allOf": [schema]}
    errors = list(Draft202012Validator(root, format_checker=FormatChecker()).iter_errors(example))
    assert not errors, f"{where}: example does not match its schema: {errors[0].message}"


def check_examples(
    document: dict[str, Any], holder: dict[str, Any], schema: dict[str, Any], where: str
) -> None:
    """`holder` (a parameter, a request body, an answer) has examples, each matching `schema`."""
    examples = examples_of(document, holder)
    assert examples, f"{where} has no example"
    for example in examples:
        check(document, schema, example, where)


def test_the_document_is_valid_openapi(document: dict[str, Any]) -> None:
    validate(document)


def test_every_operation_has_a_summary_and_a_tag(document: dict[str, Any]) -> None:
    for name, operation in operations(document):
        assert operation.get("summary", "").strip(), f"{name} has no summary"
        assert operation.get("tags"), f"{name} has no tag"


def test_every_body_schema_has_its_own_examples_that_match(document: dict[str, Any]) -> None:
    names = body_schemas(document)
    assert "Problem" in names
    for name in names - {"Problem"}:  # Problem: per error class, below
        schema = document["components"]["schemas"][name]
        examples = schema.get("examples")
        if name.startswith("Body_"):  # a form FastAPI builds: its example is on the route
            continue
        assert examples, f"schema {name} has no example"
        for example in examples:
            check(document, {"$ref": f"#/components/schemas/{name}"}, example, f"schema {name}")


def test_every_error_class_is_documented_with_its_example(
    service: str, document: dict[str, Any]
) -> None:
    documented: dict[str, list[Any]] = {}
    for _, operation in operations(document):
        for status, response in operation["responses"].items():
            for example in (
                response.get("content", {}).get(PROBLEM, {}).get("examples", {}).values()
            ):
                documented.setdefault(status, []).append(example["value"])
    for cls in ERRORS[service]:
        body = cls.example().body()
        assert body in documented.get(str(int(cls.status)), []), f"{cls.__name__} is not documented"
        check(document, {"$ref": "#/components/schemas/Problem"}, body, cls.__name__)
    assert sum(map(len, documented.values())) >= len(ERRORS[service])


def test_the_headers_of_the_answers_are_documented(document: dict[str, Any]) -> None:
    for name, operation in operations(document):
        for status, response in operation["responses"].items():
            assert "X-Request-ID" in response.get("headers", {}), f"{name} {status}"
            if status in ("503", "401") and "/readyz" not in name:
                assert set(response["headers"]) & {"Retry-After", "WWW-Authenticate"}, name
    if "/process_image" in document["paths"]:
        answer = document["paths"]["/process_image"]["post"]["responses"]["200"]
        assert "Idempotent-Replayed" in answer["headers"]
        assert (
            "ETag"
            in document["paths"]["/pipelines/{pipeline_id}"]["get"]["responses"]["200"]["headers"]
        )
        created = document["paths"]["/pipelines"]["post"]["responses"]["201"]
        assert {"Location", "ETag"} <= set(created["headers"])


def test_a_malformed_body_is_documented_as_its_media_type_meets_it(
    document: dict[str, Any],
) -> None:
    """Multipart: Starlette's "Invalid multipart data"; JSON: FastAPI's 400 for a body that is
    not UTF-8 text (text that is not JSON is a 422, as InvalidRequest documents)."""
    for name, operation in operations(document):
        media_types = set(operation.get("requestBody", {}).get("content", {}))
        answer = operation["responses"].get("400", {}).get("content", {}).get(PROBLEM, {})
        examples = [example["value"] for example in answer.get("examples", {}).values()]
        if "multipart/form-data" in media_types:
            assert examples == [MalformedMultipart.example().body()], name
        elif examples:
            assert examples == [MalformedBody.example().body()], name


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
