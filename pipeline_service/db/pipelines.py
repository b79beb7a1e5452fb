"""Reading pipeline definitions (the cache's loader, off the hot path)."""

from typing import Any

from sqlalchemy import ColumnElement, func, literal, select
from sqlalchemy.dialects.postgresql import JSONB, aggregate_order_by
from sqlalchemy.ext.asyncio import AsyncEngine

from pipeline_service.db.engine import database_errors_as_unavailable
from pipeline_service.db.models import Pipeline, PipelineStep
from pipeline_service.pipeline.definition import PipelineDefinition, PipelineRef, StepDefinition


def steps_json() -> ColumnElement[Any]:
    """The pipeline's steps in order as a JSON list, read in the same statement (and so the
    same snapshot) as the pipeline row: version and steps always belong together."""
    step = func.jsonb_build_object("type", PipelineStep.type, "params", PipelineStep.params)
    aggregated = (
        select(func.jsonb_agg(aggregate_order_by(step, PipelineStep.position)))
        .where(PipelineStep.pipeline_id == Pipeline.id)
        .scalar_subquery()
    )
    return func.coalesce(aggregated, literal([], JSONB), type_=JSONB)


def step_definitions(steps: list[dict[str, Any]]) -> tuple[StepDefinition, ...]:
    return tuple(StepDefinition(step["type"], step.get("params") or {}) for step in steps)


class PipelineRepository:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def load_active(self, pipeline_id: int) -> PipelineDefinition | None:
        """The active pipeline with its steps in order, read in one statement."""
        query = select(Pipeline.id, Pipeline.version, Pipeline.name, steps_json()).where(
            Pipeline.id == pipeline_id, Pipeline.is_active
        )
        async with database_errors_as_unavailable(), self._engine.connect() as conn:
            row = (await conn.execute(query)).one_or_none()
        if row is None:
            return None
        ref = PipelineRef(row.id, row.version, row.name)
        return PipelineDefinition(ref, step_definitions(row[3]))
