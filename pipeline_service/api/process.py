"""POST /process_image: one image through one pipeline."""

from typing import Annotated

from fastapi import APIRouter, File, Form, Header, Query, Request, Response, UploadFile
from fastapi.exceptions import RequestValidationError

from pipeline_service.api.schemas import PROBLEM_RESPONSE, ProcessResult
from pipeline_service.config import PG_INT_MAX
from pipeline_service.runtime import Runtime

router = APIRouter()

PROBLEM = PROBLEM_RESPONSE
RETRY_AFTER = {
    "Retry-After": {
        "description": "Seconds to wait before trying again.",
        "schema": {"type": "integer"},
    }
}
IDEMPOTENCY_KEY_PATTERN = r"^[\x21-\x7e]+$"  # visible ASCII, no spaces
REPLAYED_HEADER = "Idempotent-Replayed"


def _pipeline_id(from_query: int | None, from_form: int | None) -> int:
    if from_query is not None and from_form is not None and from_query != from_form:
        raise RequestValidationError(
            [
                {
                    "loc": ("pipeline_id",),
                    "msg": "given twice with different values "
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


@router.post(
    "/process_image",
    summary="Run one image through one pipeline",
    response_model=ProcessResult,
    responses={
        404: {**PROBLEM, "description": "No active pipeline with that id."},
        413: {**PROBLEM, "description": "Upload or image larger than the configured limit."},
        415: {**PROBLEM, "description": "The file is not a decodable image."},
        409: {**PROBLEM, "description": "Idempotency-Key already used for another request."},
        422: {**PROBLEM, "description": "Missing or invalid field, or a broken pipeline."},
        502: {**PROBLEM, "description": "The model service answered garbage (run stored)."},
        503: {
            **PROBLEM,
            "description": "Model service or database unreachable (see Retry-After).",
            "headers": RETRY_AFTER,
        },
        504: {**PROBLEM, "description": "The model service was too slow (run stored)."},
    },
)
async def process_image(
    request: Request,
    response: Response,
    image: Annotated[UploadFile, File(description="The image (JPEG, PNG...).")],
    pipeline_id_query: Annotated[
        int | None, Query(alias="pipeline_id", ge=1, le=PG_INT_MAX, description="Pipeline id.")
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
    data = await image.read()
    claim, image_sha256 = None, None
    if idempotency_key is not None:
        claim, image_sha256 = await runtime.idempotency.claim_for(
            idempotency_key, pipeline_id, data, runtime.cpu_pool
        )
        earlier = await runtime.idempotency.earlier_run(claim)
        if earlier is not None:
            response.headers[REPLAYED_HEADER] = "true"
            return ProcessResult.of_stored(earlier)
    pipeline = await runtime.pipelines.get(pipeline_id)
    ctx = await pipeline.run(
        data, runtime.services, runtime.cpu_pool, idempotency=claim, image_sha256=image_sha256
    )
    if ctx.replayed and ctx.run_id is not None:
        # a request with the same key was stored first while this one ran
        stored = await runtime.idempotency.stored_run(ctx.run_id)
        if stored is not None:
            response.headers[REPLAYED_HEADER] = "true"
            return ProcessResult.of_stored(stored)
    return ProcessResult.of(ctx)
