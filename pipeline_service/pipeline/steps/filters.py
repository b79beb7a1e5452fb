"""Steps that work on the model's answer (detections -> detections)."""

from pydantic import Field

from pipeline_service.pipeline.step import IoStep, StepParams, register
from pipeline_service.pipeline.types import Box, Kind, RunContext


class FilterDetectionsParams(StepParams):
    min_confidence: float = Field(
        0.0, ge=0, le=1, description="Drop boxes whose confidence is below this."
    )
    labels: list[int] | None = Field(
        None,
        min_length=1,
        description="Keep only boxes with one of these labels (1 = car); null keeps every label.",
    )


@register
class FilterDetections(IoStep):
    """An IoStep only so it runs on the event loop: a few boxes are not worth a thread hop."""

    name = "filter_detections"
    description = "Keep only the boxes with enough confidence and an allowed label."
    consumes = Kind.DETECTIONS
    produces = Kind.DETECTIONS
    Params = FilterDetectionsParams
    params: FilterDetectionsParams

    async def apply(self, value: list[Box], ctx: RunContext) -> list[Box]:
        labels = self.params.labels
        return [
            box
            for box in value
            if box.conf >= self.params.min_confidence and (labels is None or box.label in labels)
        ]
