"""Reading pipeline definitions."""

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from pipeline_service.db.engine import database_errors_as_unavailable
from pipeline_service.db.models import Pipeline, PipelineStep
from pipeline_service.pipeline.definition import PipelineDefinition, PipelineRef, StepDefinition


class PipelineRepository:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def load_active(self, pipeline_id: int) -> PipelineDefinition | None:
        """The active pipeline with its steps in order, read in one consistent snapshot."""
        async with database_errors_as_unavailable(), self._engine.connect() as conn:
            head = (
                await conn.execute(
                    select(Pipeline.id, Pipeline.version, Pipeline.name).where(
                        Pipeline.id == pipeline_id, Pipeline.is_active
                    )
                )
            ).one_or_none()
            if head is None:
                return None
            rows = await conn.execute(
                select(PipelineStep.type, PipelineStep.params)
                .where(PipelineStep.pipeline_id == pipeline_id)
                .order_by(PipelineStep.position)
            )
            steps = tuple(StepDefinition(row.type, row.params or {}) for row in rows)
        return PipelineDefinition(PipelineRef(head.id, head.version, head.name), steps)
