"""Fuzz both services from their own OpenAPI documents (schemathesis, a bounded number of
examples): no 5xx, and every answer — status, content type, headers, body — as documented."""

from collections.abc import Iterator

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.fixtures.processes import MODEL_APP, PIPELINE_APP, Server, model_env, uvicorn_server

pytestmark = [pytest.mark.fuzz, pytest.mark.subprocess]

EXAMPLES = 60  # per operation and generation mode; bounded so the suite stays quick
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    negative_data_rejection,
]
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=True,  # the same examples every run: a failure here is reproducible
)


@pytest.fixture(scope="module")
def model_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with uvicorn_server(MODEL_APP, model_env(seed=1), tmp_path_factory.mktemp("fuzz")) as server:
        yield server


@pytest.fixture(scope="module")
def pipeline_server(
    database_url: str, model_server: Server, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    env = {"DATABASE_URL": database_url, "MODEL_SERVICE_URL": model_server.url}
    with uvicorn_server(PIPELINE_APP, env, tmp_path_factory.mktemp("fuzz")) as server:
        yield server


def _refused_by_uvicorn(response) -> bool:
    """uvicorn answers a request it cannot even parse (e.g. a request line of 100 kB) with a
    bare 400 before the app sees it: the server's limit, not the API's answer."""
    return response.status_code == 400 and response.content == b"Invalid HTTP request received."


def fuzz(server: Server, mode: GenerationMode) -> list[str]:
    """Every operation of the server's OpenAPI document, EXAMPLES cases each; returns their
    labels (the checks fail the test on the first bad answer)."""
    schema = schemathesis.openapi.from_url(server.url + "/openapi.json")
    labels = []
    for result in schema.get_all_operations():
        operation = result.ok()

        @given(case=operation.as_strategy(generation_mode=mode))
        @FUZZ
        def call(case) -> None:
            response = case.call()
            if _refused_by_uvicorn(response):
                return
            case.validate_response(response, checks=CHECKS)

        try:
            call()
        except Unsatisfiable:
            # nothing in this operation can be made invalid (no parameters, no body)
            assert mode == GenerationMode.NEGATIVE, operation.label
            continue
        labels.append(operation.label)
    return labels


# schemathesis' own pytest plugin (schema.parametrize) does not run under pytest 9 yet, so the
# operations are driven with plain hypothesis.
@pytest.mark.parametrize("mode", list(GenerationMode))
def test_pipeline_service_answers_as_documented(pipeline_server: Server, mode) -> None:
    assert "POST /process_image" in fuzz(pipeline_server, mode)


@pytest.mark.parametrize("mode", list(GenerationMode))
def test_model_service_answers_as_documented(model_server: Server, mode) -> None:
    assert "POST /predict" in fuzz(model_server, mode)
