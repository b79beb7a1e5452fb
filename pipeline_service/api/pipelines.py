"""Pipeline management: list, read, create, replace, delete, version history."""

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Request, Response

from pipeline_service.api.auth import require_admin
from pipeline_service.api.pipeline_schemas import (
    PipelineIn,
    PipelineOut,
    PipelineSummary,
    PipelineVersionOut,
)
from pipeline_service.api.schemas import Problem
from pipeline_service.config import PG_INT_MAX
from pipeline_service.db.pipeline_store import PipelineStore
from pipeline_service.pipeline_admin import PipelineAdmin
from pipeline_service.runtime import Runtime

router = APIRouter(prefix="/pipelines", tags=["pipelines"])

PROBLEM = {"model": Problem, "content": {"application/problem+json": {}}}
NOT_FOUND = {404: {**PROBLEM, "description": "No active pipeline with that id."}}
ADMIN_ONLY = {
    401: {**PROBLEM, "description": "No bearer token."},
    403: {**PROBLEM, "description": "Wrong token, or PIPELINE_ADMIN_TOKEN is not configured."},
}
INVALID = {
    422: {
        **PROBLEM,
        "description": "The definition is not valid; `errors` lists every problem with the "
        "step index, step type and field.",
    }
}

PipelineId = Annotated[int, Path(ge=1, le=PG_INT_MAX, description="Pipeline id.")]


def admin(request: Request) -> PipelineAdmin:
    runtime: Runtime = request.app.state.runtime
    return PipelineAdmin(PipelineStore(runtime.db), on_change=runtime.pipelines.invalidate)


Admin = Annotated[PipelineAdmin, Depends(admin)]


@router.get("", summary="List pipelines", response_model=list[PipelineSummary])
async def list_pipelines(
    pipelines: Admin,
    include_deleted: Annotated[bool, Query(description="Also list deleted pipelines.")] = False,
) -> list[PipelineSummary]:
    return [PipelineSummary.of(p) for p in await pipelines.list_pipelines(include_deleted)]


@router.get(
    "/{pipeline_id}",
    summary="One active pipeline with its steps",
    response_model=PipelineOut,
    responses=NOT_FOUND,
)
async def get_pipeline(pipeline_id: PipelineId, pipelines: Admin) -> PipelineOut:
    return PipelineOut.of(await pipelines.get(pipeline_id))


@router.get(
    "/{pipeline_id}/versions",
    summary="Every version of a pipeline (deleted ones too), oldest first, with its steps",
    response_model=list[PipelineVersionOut],
    responses={404: {**PROBLEM, "description": "No pipeline with that id."}},
)
async def list_versions(pipeline_id: PipelineId, pipelines: Admin) -> list[PipelineVersionOut]:
    return [PipelineVersionOut.of(v) for v in await pipelines.versions(pipeline_id)]


@router.post(
    "",
    summary="Create a pipeline",
    status_code=201,
    response_model=PipelineOut,
    responses={**ADMIN_ONLY, **INVALID},
    dependencies=[Depends(require_admin)],
)
async def create_pipeline(body: PipelineIn, pipelines: Admin, response: Response) -> PipelineOut:
    created = await pipelines.create(body.draft())
    response.headers["Location"] = f"/pipelines/{created.id}"
    return PipelineOut.of(created)


@router.put(
    "/{pipeline_id}",
    summary="Replace a pipeline's name, description and steps (bumps its version)",
    response_model=PipelineOut,
    responses={**ADMIN_ONLY, **NOT_FOUND, **INVALID},
    dependencies=[Depends(require_admin)],
)
async def replace_pipeline(
    pipeline_id: PipelineId, body: PipelineIn, pipelines: Admin
) -> PipelineOut:
    return PipelineOut.of(await pipelines.replace(pipeline_id, body.draft()))


@router.delete(
    "/{pipeline_id}",
    summary="Delete a pipeline: it stops accepting images; its versions and results stay",
    status_code=204,
    responses={**ADMIN_ONLY, **NOT_FOUND},
    dependencies=[Depends(require_admin)],
)
async def delete_pipeline(pipeline_id: PipelineId, pipelines: Admin) -> Response:
    await pipelines.delete(pipeline_id)
    return Response(status_code=204)
