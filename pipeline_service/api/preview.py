"""POST /pipelines/preview: see what a definition does to an image before saving it."""

import json
from typing import Annotated

from fastapi import APIRouter, Depends, File, Form, UploadFile
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError

from pipeline_service.api.dependencies import RuntimeDep
from pipeline_service.api.form_fields import single_form_fields
from pipeline_service.api.json_body import parse_integer
from pipeline_service.api.pipeline_schemas import PreviewDefinition, PreviewOut
from pipeline_service.api.schemas import problem_responses
from pipeline_service.api.text import printable
from pipeline_service.config import PG_INT_MAX
from pipeline_service.errors import (
    REFUSED_IMAGES,
    REQUEST_LIMITS,
    DatabaseUnavailable,
    InvalidPipeline,
    PipelineNotFound,
    StepFailed,
    UploadTooLarge,
)
from pipeline_service.pipeline.budget import PipelineLimits
from pipeline_service.pipeline.compiler import compile_pipeline
from pipeline_service.pipeline.definition import PipelineDefinition, PipelineRef
from pipeline_service.pipeline.engine import CompiledPipeline
from pipeline_service.pipeline.preview import preview
from pipeline_service.pipeline.validation import check_draft
from service_kit.errors import FieldProblem, InvalidRequest, MalformedMultipart

router = APIRouter(tags=["pipelines"])

DRAFT = PipelineRef(id=0, version=0, name="preview")
DEFINITION_EXAMPLE = json.dumps(
    {
        "steps": [
            {"type": "decode"},
            {"type": "crop", "params": {"x": 0, "y": 0, "w": 640, "h": 360}},
            {"type": "gaussian_blur", "params": {"kernel_size": 5}},
            {"type": "resize", "params": {"width": 320, "height": 320}},
            {"type": "base64"},
            {"type": "detect"},
        ]
    }
)
FORM_EXAMPLES = {
    "a definition": {
        "summary": "Try steps before saving them",
        "value": {"image": "<the bytes of a JPEG>", "definition": DEFINITION_EXAMPLE},
    },
    "a stored pipeline": {
        "summary": "See what pipeline 1 does to this image",
        "value": {"image": "<the bytes of a JPEG>", "pipeline_id": 1},
    },
}


def _definition_errors(error: ValidationError) -> RequestValidationError:
    return RequestValidationError(
        [{**issue, "loc": ("definition", *issue["loc"])} for issue in error.errors()]
    )


def _invalid_definition(message: str) -> RequestValidationError:
    return RequestValidationError([{"loc": ("definition",), "msg": message, "type": "value_error"}])


def _one_source(definition: str | None, pipeline_id: int | None) -> None:
    if (definition is None) == (pipeline_id is None):
        raise InvalidRequest(
            [
                FieldProblem(
                    "definition",
                    "send either a definition (JSON) or the pipeline_id of a stored pipeline, "
                    "not both and not neither",
                )
            ]
        )


def _compile(definition: str, limits: PipelineLimits) -> CompiledPipeline:
    """Every check a saved pipeline gets (steps, their count, the memory budget, the name and
    description when given), then compiled as a stored one is."""
    try:
        # The stdlib parser, as for the body of POST /pipelines: the same text is refused
        # the same way, with the field named (pydantic's would only say "Invalid JSON").
        document = json.loads(definition, parse_int=parse_integer)
    except (ValueError, RecursionError) as error:
        message = f"not valid JSON ({printable(str(error))[:200]})"
        raise _invalid_definition(message) from error
    try:
        parsed = PreviewDefinition.model_validate(document)
    except ValidationError as error:
        raise _definition_errors(error) from error
    draft, problems = check_draft(parsed.draft(), limits, name_required=False)
    if problems:
        raise InvalidPipeline(problems)
    return compile_pipeline(PipelineDefinition(DRAFT, draft.steps), limits)


@router.post(
    "/pipelines/preview",
    summary="Run a definition's image steps on one image, storing nothing",
    description=(
        "Multipart form: `image` (the file) and either `definition` (the same JSON as the "
        "body of POST /pipelines; name and description may be left out) or `pipeline_id` "
        "(a stored pipeline). Runs the steps up to, not including, the first "
        "detect/save and answers what each produced: shape, dtype, min/max and time. "
        "Nothing is sent to the model and nothing is stored."
    ),
    response_model=PreviewOut,
    openapi_extra={
        "requestBody": {"content": {"multipart/form-data": {"examples": FORM_EXAMPLES}}}
    },
    dependencies=[Depends(single_form_fields)],
    responses=problem_responses(
        MalformedMultipart,
        UploadTooLarge,
        InvalidRequest,
        PipelineNotFound,
        InvalidPipeline,
        REFUSED_IMAGES,
        StepFailed,
        DatabaseUnavailable,
        REQUEST_LIMITS,
    ),
)
async def preview_pipeline(
    runtime: RuntimeDep,
    image: Annotated[UploadFile, File(description="The image: JPEG, PNG, WebP or BMP.")],
    definition: Annotated[
        str | None,
        Form(
            description='Pipeline definition as JSON: {"steps": [{"type": ..., '
            '"params": {...}}, ...]}.',
            examples=[DEFINITION_EXAMPLE],
        ),
    ] = None,
    pipeline_id: Annotated[
        int | None,
        Form(ge=1, le=PG_INT_MAX, description="Or: preview a stored pipeline.", examples=[1]),
    ] = None,
) -> PreviewOut:
    _one_source(definition, pipeline_id)
    if definition is not None:
        pipeline = _compile(definition, runtime.pipelines.limits)
    else:
        assert pipeline_id is not None
        pipeline = await runtime.pipelines.get(pipeline_id)
    data = await image.read()
    result = await preview(pipeline, data, runtime.services, runtime.cpu_pool)
    return PreviewOut.of(result)
