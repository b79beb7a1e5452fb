"""Save: store the run and its boxes in PostgreSQL (one statement, atomic by itself)."""

from pipeline_service.pipeline.step import IoStep, StepParams, register
from pipeline_service.pipeline.types import Box, Kind, RunContext


class SaveParams(StepParams):
    pass


@register
class Save(IoStep):
    name = "save"
    description = "Store whether a car was found and its boxes as a run in PostgreSQL."
    consumes = Kind.DETECTIONS
    produces = Kind.STORED
    Params = SaveParams
    # The model was already paid for: keep the result, a retry with the key gets it.
    abandon_when_client_gone = False

    async def apply(self, value: list[Box], ctx: RunContext) -> int:
        ctx.run_id = await ctx.services.recorder.record_success(ctx)
        return ctx.run_id
