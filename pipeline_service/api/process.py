"""POST /process_image: one image through one pipeline."""

from typing import Annotated

from fastapi import APIRouter, Depends, File, Form, Header, Query, Request, Response, UploadFile

from pipeline_service.api.dependencies import RuntimeDep
from pipeline_service.api.form_fields import single_form_fields
from pipeline_service.api.schemas import ProcessResult, problem_responses
from pipeline_service.config import PG_INT_MAX
from pipeline_service.errors import (
    MODEL_FAILURES,
    REFUSED_IMAGES,
    REQUEST_LIMITS,
    DatabaseUnavailable,
    IdempotencyConflict,
    InvalidPipeline,
    PipelineNotFound,
    StepFailed,
    UploadTooLarge,
)
from service_kit.errors import FieldProblem, InvalidRequest, MalformedMultipart
from service_kit.openapi import header

router = APIRouter(tags=["processing"])

IDEMPOTENCY_KEY_PATTERN = r"^[\x21-\x7e]+$"  # visible ASCII, no spaces
REPLAYED_HEADER = "Idempotent-Replayed"


def _pipeline_id(from_query: int | None, from_form: int | None) -> int:
    if from_query is not None and from_form is not None:
        raise InvalidRequest(
            [
                FieldProblem(
                    "pipeline_id",
                    "given twice, as a query parameter and as a form field "
                    f"(query {from_query}, form {from_form}); send it once",
                )
            ]
        )
    pipeline_id = from_query if from_query is not None else from_form
    if pipeline_id is None:
        raise InvalidRequest(
            [
                FieldProblem(
                    "pipeline_id",
                    "Field required; send it as a query parameter (?pipeline_id=1) or a form field",
                )
            ]
        )
    return pipeline_id


async def _connected(request: Request) -> bool:
    return not await request.is_disconnected()


@router.post(
    "/process_image",
    summary="Run one image through one pipeline",
    response_model=ProcessResult,
    dependencies=[Depends(single_form_fields)],
    openapi_extra={
        "requestBody": {
            "content": {
                "multipart/form-data": {
                    "example": {"image": "<the bytes of a JPEG>", "pipeline_id": 1}
                }
            }
        }
    },
    responses={
        200: {
            "headers": {
                REPLAYED_HEADER: header(
                    '"true" when the answer is the run stored earlier for the same '
                    "Idempotency-Key (nothing ran again); absent otherwise."
                )
            }
        },
        **problem_responses(
            MalformedMultipart,
            UploadTooLarge,
            InvalidRequest,
            PipelineNotFound,
            InvalidPipeline,
            IdempotencyConflict,
            REFUSED_IMAGES,
            StepFailed,
            MODEL_FAILURES,
            DatabaseUnavailable,
            REQUEST_LIMITS,
        ),
    },
)
async def process_image(
    runtime: RuntimeDep,
    request: Request,
    response: Response,
    image: Annotated[UploadFile, File(description="The image: JPEG, PNG, WebP or BMP.")],
    pipeline_id_query: Annotated[
        int | None,
        Query(
            alias="pipeline_id",
            ge=1,
            le=PG_INT_MAX,
            description="Pipeline id.",
            openapi_examples={"car detection": {"value": 1}},
        ),
    ] = None,
    pipeline_id_form: Annotated[
        int | None, Form(alias="pipeline_id", ge=1, le=PG_INT_MAX, description="Pipeline id.")
    ] = None,
    idempotency_key: Annotated[
        str | None,
        Header(
            alias="Idempotency-Key",
            min_length=1,
            max_length=255,
            pattern=IDEMPOTENCY_KEY_PATTERN,
            description="Any unique string (e.g. a UUID) per logical request: a retry with the "
            "same key, pipeline and image answers the first run instead of running again.",
            openapi_examples={"a UUID": {"value": "0b6f5c1e-8d3a-4f7e-9a51-2c4d7e8f9a10"}},
        ),
    ] = None,
) -> ProcessResult:
    pipeline_id = _pipeline_id(pipeline_id_query, pipeline_id_form)
    request.state.pipeline_id = pipeline_id  # for the request's log line
    processed = await runtime.processing.process(
        pipeline_id, await image.read(), idempotency_key, still_wanted=lambda: _connected(request)
    )
    request.state.run_id = processed.run_id
    if processed.replayed:
        response.headers[REPLAYED_HEADER] = "true"
    return ProcessResult.of(processed.run)
