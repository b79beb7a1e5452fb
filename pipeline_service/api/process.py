"""POST /process_image: one image through one pipeline."""

from typing import Annotated

from fastapi import APIRouter, File, Form, Query, Request, UploadFile
from fastapi.exceptions import RequestValidationError

from pipeline_service.api import process_docs as docs
from pipeline_service.api.schemas import Problem, ProcessResult
from pipeline_service.config import PG_INT_MAX
from pipeline_service.runtime import Runtime
from service_kit.openapi import json_example, problem_response

router = APIRouter()


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
        503: problem_response(Problem, "Model service or database unreachable.", *docs.UNAVAILABLE),
        504: problem_response(
            Problem, "The model service was too slow (run stored).", docs.TIMEOUT
        ),
    },
)
async def process_image(
    request: Request,
    image: Annotated[UploadFile, File(description="The image (JPEG, PNG...).")],
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
) -> ProcessResult:
    runtime: Runtime = request.app.state.runtime
    pipeline_id = _pipeline_id(pipeline_id_query, pipeline_id_form)
    request.state.pipeline_id = pipeline_id  # for the request's log line
    pipeline = await runtime.pipelines.get(pipeline_id)
    data = await image.read()
    ctx = await pipeline.run(data, runtime.services, runtime.cpu_pool)
    request.state.run_id = ctx.run_id
    return ProcessResult.of(ctx)
