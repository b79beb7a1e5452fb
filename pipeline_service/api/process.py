"""POST /process_image: one image through one pipeline."""

from typing import Annotated

from fastapi import APIRouter, Depends, File, Form, Header, Query, Request, Response, UploadFile
from fastapi.exceptions import RequestValidationError

from pipeline_service.api import process_docs as docs
from pipeline_service.api.form_fields import single_form_fields
from pipeline_service.api.schemas import Problem, ProcessResult
from pipeline_service.config import PG_INT_MAX
from pipeline_service.runtime import Runtime
from service_kit.openapi import json_example, problem_example, problem_response

router = APIRouter()

RETRY_AFTER = {
    "Retry-After": {
        "description": "Seconds to wait before trying again.",
        "schema": {"type": "integer"},
    }
}
IDEMPOTENCY_KEY_PATTERN = r"^[\x21-\x7e]+$"  # visible ASCII, no spaces
REPLAYED_HEADER = "Idempotent-Replayed"
KEY_REUSED = problem_example(
    409,
    "The Idempotency-Key 'a1b2' was already used with a different image (run 42); send a new "
    "key for a new request, or the same image and pipeline to get the stored result.",
    "idempotency-key-reused",
)


def _pipeline_id(from_query: int | None, from_form: int | None) -> int:
    if from_query is not None and from_form is not None:
        raise RequestValidationError(
            [
                {
                    "loc": ("pipeline_id",),
                    "msg": "given twice, as a query parameter and as a form field "
                    f"(query {from_query}, form {from_form}); send it once",
                    "type": "value_error",
                }
            ]
        )
    pipeline_id = from_query if from_query is not None else from_form
    if pipeline_id is None:
        raise RequestValidationError(
            [
                {
                    "loc": ("pipeline_id",),
                    "msg": "Field required; send it as a query parameter "
                    "(?pipeline_id=1) or a form field",
                    "type": "missing",
                }
            ]
        )
    return pipeline_id


async def _connected(request: Request) -> bool:
    return not await request.is_disconnected()


@router.post(
    "/process_image",
    summary="Run one image through one pipeline",
    dependencies=[Depends(single_form_fields)],
    response_model=ProcessResult,
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
        200: json_example(docs.PROCESS_RESULT_EXAMPLE),
        404: problem_response(Problem, "No active pipeline with that id.", docs.NOT_FOUND),
        409: problem_response(
            Problem, "Idempotency-Key already used for another request.", KEY_REUSED
        ),
        413: problem_response(
            Problem, "Upload or image larger than the configured limit.", *docs.TOO_LARGE
        ),
        415: problem_response(Problem, "The file is not a decodable image.", docs.NOT_AN_IMAGE),
        422: problem_response(
            Problem, "Missing or invalid field, or a broken pipeline.", *docs.UNPROCESSABLE
        ),
        502: problem_response(
            Problem, "The model service answered garbage (run stored).", docs.BAD_GATEWAY
        ),
        503: {
            **problem_response(
                Problem,
                "Model service or database unreachable (see Retry-After).",
                *docs.UNAVAILABLE,
            ),
            "headers": RETRY_AFTER,
        },
        504: problem_response(
            Problem, "The model service was too slow (run stored).", docs.TIMEOUT
        ),
    },
)
async def process_image(
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
    runtime: Runtime = request.app.state.runtime
    pipeline_id = _pipeline_id(pipeline_id_query, pipeline_id_form)
    request.state.pipeline_id = pipeline_id  # for the request's log line
    data = await image.read()
    claim, image_sha256 = None, None
    if idempotency_key is not None:
        claim, image_sha256 = await runtime.idempotency.claim_for(
            idempotency_key, pipeline_id, data, runtime.cpu_pool
        )
        earlier = await runtime.idempotency.earlier_run(claim)
        if earlier is not None:
            request.state.run_id = earlier.id
            response.headers[REPLAYED_HEADER] = "true"
            return ProcessResult.of_stored(earlier)
    pipeline = await runtime.pipelines.get(pipeline_id)
    ctx = await pipeline.run(
        data,
        runtime.services,
        runtime.cpu_pool,
        idempotency=claim,
        image_sha256=image_sha256,
        still_wanted=lambda: _connected(request),
    )
    request.state.run_id = ctx.run_id
    if ctx.replayed and ctx.run_id is not None:
        # a request with the same key was stored first while this one ran
        stored = await runtime.idempotency.stored_run(ctx.run_id)
        if stored is not None:
            response.headers[REPLAYED_HEADER] = "true"
            return ProcessResult.of_stored(stored)
    return ProcessResult.of(ctx)
