"""The answer of POST /process_image, and the Problem of every error answer."""

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

import service_kit.problems
from pipeline_service.db.results import StoredRun
from pipeline_service.errors import StepProblem
from pipeline_service.pipeline.types import RunContext, best_car
from service_kit import openapi
from service_kit.errors import FieldProblem

PROCESS_RESULT_EXAMPLE: dict[str, Any] = {
    "run_id": 42,
    "pipeline_id": 1,
    "pipeline_version": 1,
    "status": "succeeded",
    "car_detected": True,
    "box": {
        "top_left_x": 412.0,
        "top_left_y": 288.0,
        "w": 186.0,
        "h": 121.0,
        "conf": 0.87,
        "label": 1,
    },
    "detections": [[412.0, 288.0, 186.0, 121.0, 0.87, 1]],
    "timings_ms": {
        "decode": 7.9,
        "resize": 0.9,
        "normalize": 0.4,
        "base64": 0.6,
        "detect": 3.1,
        "save": 1.4,
    },
    "image": {
        "sha256": "3f1b5e0c4a8d2b7e9f6a1c0d5e4b3a2918f7e6d5c4b3a29180f7e6d5c4b3a291",
        "bytes": 595729,
        "width": 1920,
        "height": 1080,
    },
}


class BoxOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    top_left_x: float
    top_left_y: float
    w: float
    h: float
    conf: float
    label: int = Field(description="1 = car")


class ImageInfo(BaseModel):
    sha256: str
    bytes: int
    width: int | None
    height: int | None


class ProcessResult(BaseModel):
    model_config = ConfigDict(json_schema_extra=openapi.schema_examples(PROCESS_RESULT_EXAMPLE))

    run_id: int | None = Field(
        description="Id of the stored run; null if the pipeline has no save step."
    )
    pipeline_id: int
    pipeline_version: int
    status: str = "succeeded"
    car_detected: bool | None = Field(description="Null if the pipeline has no detect step.")
    box: BoxOut | None = Field(description="The most confident car box, or null.")
    detections: list[tuple[float, float, float, float, float, int]] = Field(
        description="Every box as [top_left_x, top_left_y, w, h, conf, label]."
    )
    timings_ms: dict[str, float] = Field(description="Milliseconds per step, in order.")
    image: ImageInfo

    @classmethod
    def of(cls, ctx: RunContext | StoredRun) -> "ProcessResult":
        if isinstance(ctx, StoredRun):  # an earlier run with the same Idempotency-Key
            return cls(**stored_run_fields(ctx))
        best = ctx.best_car()
        assert ctx.image_sha256 is not None
        return cls(
            run_id=ctx.run_id,
            pipeline_id=ctx.pipeline.id,
            pipeline_version=ctx.pipeline.version,
            car_detected=ctx.car_detected,
            box=BoxOut.model_validate(best) if best else None,
            detections=[box.as_tuple() for box in ctx.detections or ()],
            timings_ms=ctx.timings_ms,
            image=ImageInfo(
                sha256=ctx.image_sha256,
                bytes=len(ctx.data),
                width=ctx.image_width,
                height=ctx.image_height,
            ),
        )


def stored_run_fields(run: StoredRun) -> dict[str, Any]:
    """What a stored run answers, whether replayed (POST /process_image) or read (/results)."""
    best = best_car(run.detections)
    return {
        "run_id": run.id,
        "pipeline_id": run.pipeline_id,
        "pipeline_version": run.pipeline_version,
        "status": run.status,
        "car_detected": run.car_detected,
        "box": BoxOut.model_validate(best) if best else None,
        "detections": [box.as_tuple() for box in run.detections],
        "timings_ms": run.timings_ms,
        "image": ImageInfo(
            sha256=run.image_sha256,
            bytes=run.image_bytes,
            width=run.image_width,
            height=run.image_height,
        ),
    }


class Problem(service_kit.problems.Problem):
    """application/problem+json (RFC 9457): every error answer of this service. The extension
    members are present only for the problems that name them."""

    errors: list[StepProblem | FieldProblem] | None = Field(  # type: ignore[assignment]
        None,
        description="invalid-pipeline: every problem with its step (index and type; both "
        "null for the pipeline as a whole); invalid-request: every field that is not valid.",
    )
    checks: dict[str, str] | None = Field(
        None, description='not-ready: each dependency: "ok", or what is wrong.'
    )
    current_version: int | None = Field(
        None, description="pipeline-changed (If-Match): the version the pipeline is at now."
    )
    run_id: int | None = Field(
        None, description="When a failed run was recorded: its id (see GET /results/{run_id})."
    )


def problem_responses(*errors: openapi.Errors) -> dict[int | str, dict[str, Any]]:
    """A route's `responses=` entries for the errors it can answer, from their classes."""
    return openapi.problem_responses(Problem, *errors)
