"""Pipeline management: list, read, create, replace, delete, version history."""

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Response

from pipeline_service.api.auth import require_admin
from pipeline_service.api.dependencies import PipelinesDep
from pipeline_service.api.json_body import JSONBodyRoute
from pipeline_service.api.pipeline_schemas import (
    PipelineIn,
    PipelineOut,
    PipelineSummary,
    PipelineVersionOut,
)
from pipeline_service.api.preconditions import (
    IfMatch,
    IfNoneMatch,
    client_copy_is_current,
    etag,
    etag_header,
    expected_versions,
    set_etag,
)
from pipeline_service.api.schemas import problem_responses
from pipeline_service.config import PG_INT_MAX
from pipeline_service.errors import (
    ADMIN_REFUSALS,
    DatabaseUnavailable,
    InvalidPipeline,
    PipelineChanged,
    PipelineNotFound,
    UploadTooLarge,
)
from service_kit.errors import InvalidRequest, MalformedBody
from service_kit.openapi import header

router = APIRouter(prefix="/pipelines", tags=["pipelines"], route_class=JSONBodyRoute)

PipelineId = Annotated[
    int,
    Path(
        ge=1,
        le=PG_INT_MAX,
        description="Pipeline id.",
        openapi_examples={"car detection": {"value": 1}},
    ),
]
# Every route that reads or writes a pipeline, and every one that changes it.
READ = (InvalidRequest, DatabaseUnavailable)
CHANGE = (ADMIN_REFUSALS, MalformedBody, UploadTooLarge, READ, InvalidPipeline)


@router.get(
    "",
    summary="List pipelines",
    response_model=list[PipelineSummary],
    responses=problem_responses(READ),
)
async def list_pipelines(
    pipelines: PipelinesDep,
    include_deleted: Annotated[
        bool,
        Query(
            description="Also list deleted pipelines.",
            openapi_examples={"with deleted ones": {"value": True}},
        ),
    ] = False,
) -> list[PipelineSummary]:
    return [PipelineSummary.of(p) for p in await pipelines.list_pipelines(include_deleted)]


@router.get(
    "/{pipeline_id}",
    summary="One active pipeline with its steps",
    response_model=PipelineOut,
    responses={
        200: etag_header(),
        304: etag_header("Not Modified: the copy you have (If-None-Match) is the current version."),
        **problem_responses(PipelineNotFound, READ),
    },
)
async def get_pipeline(
    pipeline_id: PipelineId,
    pipelines: PipelinesDep,
    response: Response,
    if_none_match: IfNoneMatch = None,
) -> PipelineOut | Response:
    pipeline = await pipelines.get(pipeline_id)
    if client_copy_is_current(if_none_match, pipeline.version):
        return Response(status_code=304, headers={"ETag": etag(pipeline.version)})
    set_etag(response, pipeline.version)
    return PipelineOut.of(pipeline)


@router.get(
    "/{pipeline_id}/versions",
    summary="Every version of a pipeline (deleted ones too), oldest first, with its steps",
    response_model=list[PipelineVersionOut],
    responses=problem_responses(PipelineNotFound, READ),
)
async def list_versions(
    pipeline_id: PipelineId, pipelines: PipelinesDep
) -> list[PipelineVersionOut]:
    return [PipelineVersionOut.of(v) for v in await pipelines.versions(pipeline_id)]


@router.post(
    "",
    summary="Create a pipeline",
    status_code=201,
    response_model=PipelineOut,
    responses={
        201: {
            "headers": {
                "Location": header("Its address: /pipelines/{id}."),
                **etag_header()["headers"],
            }
        },
        **problem_responses(CHANGE),
    },
    dependencies=[Depends(require_admin)],
)
async def create_pipeline(
    body: PipelineIn, pipelines: PipelinesDep, response: Response
) -> PipelineOut:
    created = await pipelines.create(body.draft())
    response.headers["Location"] = f"/pipelines/{created.id}"
    set_etag(response, created.version)
    return PipelineOut.of(created)


@router.put(
    "/{pipeline_id}",
    summary="Replace a pipeline's name, description and steps (bumps its version)",
    response_model=PipelineOut,
    responses={200: etag_header(), **problem_responses(CHANGE, PipelineNotFound, PipelineChanged)},
    dependencies=[Depends(require_admin)],
)
async def replace_pipeline(
    pipeline_id: PipelineId,
    body: PipelineIn,
    pipelines: PipelinesDep,
    response: Response,
    if_match: IfMatch = None,
) -> PipelineOut:
    replaced = await pipelines.replace(pipeline_id, body.draft(), expected_versions(if_match))
    set_etag(response, replaced.version)
    return PipelineOut.of(replaced)


@router.delete(
    "/{pipeline_id}",
    summary="Delete a pipeline: it stops accepting images; its versions and results stay",
    status_code=204,
    responses=problem_responses(ADMIN_REFUSALS, PipelineNotFound, PipelineChanged, READ),
    dependencies=[Depends(require_admin)],
)
async def delete_pipeline(
    pipeline_id: PipelineId, pipelines: PipelinesDep, if_match: IfMatch = None
) -> Response:
    await pipelines.delete(pipeline_id, expected_versions(if_match))
    return Response(status_code=204)
