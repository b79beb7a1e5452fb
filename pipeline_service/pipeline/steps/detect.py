"""Detect: send the base64 payload to the model service, get boxes back."""

from pipeline_service.pipeline.step import IoStep, StepParams, register
from pipeline_service.pipeline.types import Box, ImagePayload, Kind, RunContext


class DetectParams(StepParams):
    pass


@register
class Detect(IoStep):
    name = "detect"
    description = "POST the base64 image to the model service; answers 0..n boxes."
    consumes = Kind.PAYLOAD
    produces = Kind.DETECTIONS
    Params = DetectParams

    async def apply(self, value: ImagePayload, ctx: RunContext) -> list[Box]:
        return await ctx.services.model.detect(value)
