"""GET /steps: the catalogue a scenario builder assembles pipelines from."""

from fastapi import APIRouter

from pipeline_service.api.pipeline_schemas import StepType
from pipeline_service.pipeline.step import step_catalogue

router = APIRouter(tags=["pipelines"])


@router.get(
    "/steps",
    summary="Every step type: what it consumes and produces, and its params",
    response_model=list[StepType],
)
async def list_step_types() -> list[StepType]:
    return [StepType(**entry) for entry in step_catalogue()]
