"""Pipeline management: list, read, create, replace, delete, version history."""

from typing import Annotated

from fastapi import APIRouter, Body, Depends, Path, Query, Request, Response

from pipeline_service.api import pipelines_docs as docs
from pipeline_service.api.auth import require_admin
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
    expected_versions,
    set_etag,
)
from pipeline_service.api.process_docs import DATABASE_DOWN
from pipeline_service.config import PG_INT_MAX
from pipeline_service.db.pipeline_store import PipelineStore
from pipeline_service.pipeline_admin import PipelineAdmin
from pipeline_service.runtime import Runtime

router = APIRouter(prefix="/pipelines", tags=["pipelines"], route_class=JSONBodyRoute)

PipelineId = Annotated[
    int,
    Path(
        ge=1,
        le=PG_INT_MAX,
        description="Pipeline id.",
        openapi_examples=docs.PIPELINE_ID_EXAMPLES,
    ),
]
NewPipeline = Annotated[PipelineIn, Body(openapi_examples=docs.PIPELINE_BODY_EXAMPLES)]
Replacement = Annotated[PipelineIn, Body(openapi_examples=docs.REPLACEMENT_BODY_EXAMPLES)]


def admin(request: Request) -> PipelineAdmin:
    runtime: Runtime = request.app.state.runtime
    return PipelineAdmin(
        PipelineStore(runtime.db), runtime.pipelines.invalidate, runtime.pipelines.limits
    )


Admin = Annotated[PipelineAdmin, Depends(admin)]


@router.get(
    "",
    summary="List pipelines",
    response_model=list[PipelineSummary],
    responses={200: docs.PIPELINE_LIST, 422: docs.LIST_INVALID, 503: DATABASE_DOWN},
)
async def list_pipelines(
    pipelines: Admin,
    include_deleted: Annotated[
        bool,
        Query(
            description="Also list deleted pipelines.",
            openapi_examples=docs.INCLUDE_DELETED_EXAMPLES,
        ),
    ] = False,
) -> list[PipelineSummary]:
    return [PipelineSummary.of(p) for p in await pipelines.list_pipelines(include_deleted)]


@router.get(
    "/{pipeline_id}",
    summary="One active pipeline with its steps",
    response_model=PipelineOut,
    responses={
        200: docs.ONE_PIPELINE,
        304: docs.NOT_MODIFIED,
        404: docs.NOT_FOUND,
        422: docs.ID_INVALID,
        503: DATABASE_DOWN,
    },
)
async def get_pipeline(
    pipeline_id: PipelineId,
    pipelines: Admin,
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
    responses={
        200: docs.VERSIONS,
        404: docs.NEVER_EXISTED,
        422: docs.ID_INVALID,
        503: DATABASE_DOWN,
    },
)
async def list_versions(pipeline_id: PipelineId, pipelines: Admin) -> list[PipelineVersionOut]:
    return [PipelineVersionOut.of(v) for v in await pipelines.versions(pipeline_id)]


@router.post(
    "",
    summary="Create a pipeline",
    status_code=201,
    response_model=PipelineOut,
    responses={
        201: docs.CREATED,
        **docs.ADMIN_ONLY,
        422: docs.CREATE_INVALID,
        503: DATABASE_DOWN,
    },
    dependencies=[Depends(require_admin)],
)
async def create_pipeline(body: NewPipeline, pipelines: Admin, response: Response) -> PipelineOut:
    created = await pipelines.create(body.draft())
    response.headers["Location"] = f"/pipelines/{created.id}"
    set_etag(response, created.version)
    return PipelineOut.of(created)


@router.put(
    "/{pipeline_id}",
    summary="Replace a pipeline's name, description and steps (bumps its version)",
    response_model=PipelineOut,
    responses={
        200: docs.REPLACED,
        **docs.ADMIN_ONLY,
        404: docs.NOT_FOUND,
        412: docs.CHANGED_MEANWHILE,
        422: docs.REPLACE_INVALID,
        503: DATABASE_DOWN,
    },
    dependencies=[Depends(require_admin)],
)
async def replace_pipeline(
    pipeline_id: PipelineId,
    body: Replacement,
    pipelines: Admin,
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
    responses={
        **docs.ADMIN_ONLY,
        404: docs.NOT_FOUND,
        412: docs.CHANGED_MEANWHILE,
        422: docs.ID_INVALID,
        503: DATABASE_DOWN,
    },
    dependencies=[Depends(require_admin)],
)
async def delete_pipeline(
    pipeline_id: PipelineId, pipelines: Admin, if_match: IfMatch = None
) -> Response:
    await pipelines.delete(pipeline_id, expected_versions(if_match))
    return Response(status_code=204)
