"""Request and response bodies of the step catalogue, pipeline management and preview."""

from datetime import datetime
from typing import Annotated, Any, Self

from pydantic import BaseModel, ConfigDict, Field

from pipeline_service.api.text import CleanData, Text
from pipeline_service.db.pipeline_store import StoredPipeline, StoredVersion
from pipeline_service.pipeline.definition import StepDefinition
from pipeline_service.pipeline.preview import Preview
from pipeline_service.pipeline.validation import PipelineDraft

CAR_DETECTION_EXAMPLE = {
    "name": "car-detection-gray",
    "description": "Grayscale variant of car detection, keeping confident cars only.",
    "steps": [
        {"type": "decode"},
        {"type": "grayscale", "params": {"keep_channels": True}},
        {"type": "resize", "params": {"width": 640, "height": 640}},
        {"type": "normalize"},
        {"type": "base64", "params": {"encoding": "jpeg"}},
        {"type": "detect"},
        {"type": "filter_detections", "params": {"min_confidence": 0.5, "labels": [1]}},
        {"type": "save"},
    ],
}


class StepType(BaseModel):
    name: str = Field(examples=["resize"])
    description: str
    consumes: str = Field(description="What the step takes from the step before it.")
    produces: str = Field(description="What it hands to the next step.")
    params: dict[str, Any] = Field(
        description="JSON Schema of the step's params, with their defaults."
    )


class StepIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    type: Text = Field(description="A step type from GET /steps.", examples=["resize"])
    params: Annotated[dict[str, Any] | None, CleanData] = Field(
        None, description="Params as in the step type's schema; omitted ones take the default."
    )

    def definition(self) -> StepDefinition:
        return StepDefinition(self.type, self.params or {})


class PipelineIn(BaseModel):
    """Unknown top-level keys (id, version...) are ignored, so a GET answer can be edited and
    sent back as it is."""

    model_config = ConfigDict(json_schema_extra={"examples": [CAR_DETECTION_EXAMPLE]})

    name: Text = Field(description="Unique among active pipelines.")
    description: Text = ""
    steps: list[StepIn] = Field(description="In the order they run.")

    def draft(self) -> PipelineDraft:
        return PipelineDraft(self.name, self.description, tuple(s.definition() for s in self.steps))


# The answers below are read straight off the stored dataclasses (same field names).
FROM_STORED = ConfigDict(from_attributes=True)


class StepOut(BaseModel):
    model_config = FROM_STORED

    type: str
    params: dict[str, Any]


class PipelineSummary(BaseModel):
    model_config = FROM_STORED

    id: int
    name: str
    description: str
    version: int = Field(description="Bumped by every change of name, description or steps.")
    is_active: bool = Field(description="False once deleted.")
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, p: StoredPipeline) -> Self:
        return cls.model_validate(p)


class PipelineOut(PipelineSummary):
    steps: list[StepOut]


class PipelineVersionOut(BaseModel):
    model_config = FROM_STORED

    version: int
    created_at: datetime
    name: str
    description: str
    steps: list[StepOut]

    @classmethod
    def of(cls, v: StoredVersion) -> Self:
        return cls.model_validate(v)


class PreviewDefinition(BaseModel):
    """The `definition` form field of a preview: the same JSON as POST /pipelines (name and
    description may be left out)."""

    name: Text = ""
    description: Text = ""
    steps: list[StepIn]

    def draft(self) -> PipelineDraft:
        return PipelineDraft(self.name, self.description, tuple(s.definition() for s in self.steps))


class PreviewStep(BaseModel):
    index: int
    type: str
    ms: float = Field(description="Time the step took.")
    shape: list[int] = Field(description="Output shape: [height, width] or [height, width, 3].")
    dtype: str
    min: float | None = Field(description="Smallest output value (null for a base64 payload).")
    max: float | None
    encoding: str | None = Field(None, description="For base64: raw, png or jpeg.")
    base64_chars: int | None = Field(None, description="For base64: length of the text.")


class NotRunStep(BaseModel):
    index: int
    type: str


class PreviewImage(BaseModel):
    bytes: int
    width: int | None
    height: int | None


class PreviewOut(BaseModel):
    steps: list[PreviewStep] = Field(description="Each step that ran, in order.")
    not_run: list[NotRunStep] = Field(
        description="Steps a preview does not run: detect, save and everything after them."
    )
    image: PreviewImage

    @classmethod
    def of(cls, p: Preview) -> "PreviewOut":
        return cls(
            steps=[
                PreviewStep(
                    index=s.index,
                    type=s.type,
                    ms=s.ms,
                    shape=list(s.shape),
                    dtype=s.dtype,
                    min=s.min,
                    max=s.max,
                    encoding=s.encoding,
                    base64_chars=s.base64_chars,
                )
                for s in p.steps
            ],
            not_run=[NotRunStep(index=n.index, type=n.type) for n in p.not_run],
            image=PreviewImage(bytes=p.image_bytes, width=p.image_width, height=p.image_height),
        )
