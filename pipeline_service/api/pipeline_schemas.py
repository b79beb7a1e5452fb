"""Request and response bodies of the step catalogue, pipeline management and preview."""

from datetime import datetime
from typing import Annotated, Any, Self

from pydantic import BaseModel, ConfigDict, Field

from pipeline_service.api.text import CleanData, Text
from pipeline_service.db.pipeline_store import StoredPipeline, StoredVersion
from pipeline_service.pipeline.definition import StepDefinition
from pipeline_service.pipeline.preview import Preview
from pipeline_service.pipeline.step import step_catalogue
from pipeline_service.pipeline.validation import PipelineDraft
from service_kit.openapi import schema_examples

# Examples for the OpenAPI document: the seeded car-detection pipeline (seed.sql), and a
# grayscale variant as a client would send it and as the service stores it (defaults filled).
CAR_DETECTION_STEPS = [
    {"type": "decode", "params": {}},
    {"type": "resize", "params": {"width": 640, "height": 640}},
    {"type": "normalize", "params": {"mode": "minmax_uint8"}},
    {"type": "base64", "params": {"encoding": "raw"}},
    {"type": "detect", "params": {}},
    {"type": "save", "params": {}},
]
CAR_DETECTION = {
    "id": 1,
    "name": "car-detection",
    "description": "Decode a JPEG, resize to 640x640, normalize, base64, detect cars, save the "
    "result.",
    "version": 1,
    "is_active": True,
    "created_at": "2026-11-20T09:12:44.108311Z",
    "updated_at": "2026-11-20T09:12:44.108311Z",
}
GRAY_IN = {
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
GRAY_STEPS = [  # GRAY_IN's steps as stored and answered: every param, defaults filled in
    {"type": "decode", "params": {"color": "color"}},
    {"type": "grayscale", "params": {"keep_channels": True}},
    {"type": "resize", "params": {"width": 640, "height": 640, "interpolation": "linear"}},
    {"type": "normalize", "params": {"mode": "minmax_uint8"}},
    {"type": "base64", "params": {"encoding": "jpeg", "jpeg_quality": 90}},
    {"type": "detect", "params": {}},
    {"type": "filter_detections", "params": {"labels": [1], "min_confidence": 0.5}},
    {"type": "save", "params": {}},
]
RESIZE = next(entry for entry in step_catalogue() if entry["name"] == "resize")


class StepType(BaseModel):
    model_config = ConfigDict(json_schema_extra=schema_examples(RESIZE))

    name: str
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

    model_config = ConfigDict(
        json_schema_extra=schema_examples(
            GRAY_IN,
            {
                "name": "car-detection-copy",
                "description": CAR_DETECTION["description"],
                "steps": CAR_DETECTION_STEPS,
            },
        )
    )

    name: Text = Field(description="Unique among active pipelines.")
    description: Text = ""
    steps: list[StepIn] = Field(description="In the order they run.")

    def draft(self) -> PipelineDraft:
        return PipelineDraft(self.name, self.description, tuple(s.definition() for s in self.steps))


def _from_stored(*examples: dict[str, Any]) -> ConfigDict:
    """The answers below are read straight off the stored dataclasses (same field names)."""
    return ConfigDict(from_attributes=True, json_schema_extra=schema_examples(*examples))


class StepOut(BaseModel):
    model_config = _from_stored(CAR_DETECTION_STEPS[1])

    type: str
    params: dict[str, Any]


class PipelineSummary(BaseModel):
    model_config = _from_stored(CAR_DETECTION)

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
    model_config = _from_stored(
        {**CAR_DETECTION, "steps": CAR_DETECTION_STEPS},
        {
            **CAR_DETECTION,
            "id": 2,
            "name": GRAY_IN["name"],
            "description": GRAY_IN["description"],
            "created_at": "2026-11-21T20:31:07.254193Z",
            "updated_at": "2026-11-21T20:31:07.254193Z",
            "steps": GRAY_STEPS,
        },
    )

    steps: list[StepOut]


class PipelineVersionOut(BaseModel):
    model_config = _from_stored(
        {
            "version": 1,
            "created_at": CAR_DETECTION["created_at"],
            "name": CAR_DETECTION["name"],
            "description": CAR_DETECTION["description"],
            "steps": CAR_DETECTION_STEPS,
        }
    )

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
    model_config = ConfigDict(from_attributes=True)

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
    model_config = ConfigDict(from_attributes=True)

    index: int
    type: str


class PreviewImage(BaseModel):
    bytes: int
    width: int | None
    height: int | None


def _image_step(index: int, type_: str, ms: float, shape: list[int]) -> dict[str, Any]:
    return {
        "index": index,
        "type": type_,
        "ms": ms,
        "shape": shape,
        "dtype": "uint8",
        "min": 0.0,
        "max": 255.0,
        "encoding": None,
        "base64_chars": None,
    }


class PreviewOut(BaseModel):
    model_config = ConfigDict(
        json_schema_extra=schema_examples(  # the preview form's example, on a 1920x1080 photo
            {
                "steps": [
                    _image_step(0, "decode", 15.334, [1080, 1920, 3]),
                    _image_step(1, "crop", 0.012, [360, 640, 3]),
                    _image_step(2, "gaussian_blur", 0.637, [360, 640, 3]),
                    _image_step(3, "resize", 0.11, [320, 320, 3]),
                    _image_step(4, "base64", 0.226, [320, 320, 3])
                    | {"min": None, "max": None, "encoding": "raw", "base64_chars": 409600},
                ],
                "not_run": [{"index": 5, "type": "detect"}],
                "image": {"bytes": 791668, "width": 1920, "height": 1080},
            }
        )
    )

    steps: list[PreviewStep] = Field(description="Each step that ran, in order.")
    not_run: list[NotRunStep] = Field(
        description="Steps a preview does not run: detect, save and everything after them."
    )
    image: PreviewImage

    @classmethod
    def of(cls, p: Preview) -> "PreviewOut":
        image = {"bytes": p.image_bytes, "width": p.image_width, "height": p.image_height}
        return cls.model_validate({"steps": p.steps, "not_run": p.not_run, "image": image})
