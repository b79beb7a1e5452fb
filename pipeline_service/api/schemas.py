"""Response bodies of the HTTP API."""

from typing import Any

from pydantic import BaseModel, Field

import service_kit.problems
from pipeline_service.db.results import StoredRun
from pipeline_service.errors import StepProblem
from pipeline_service.pipeline.types import Box, RunContext, best_car
from service_kit.errors import FieldProblem


class BoxOut(BaseModel):
    top_left_x: float
    top_left_y: float
    w: float
    h: float
    conf: float
    label: int = Field(description="1 = car")

    @classmethod
    def of(cls, box: Box) -> "BoxOut":
        return cls(
            top_left_x=box.top_left_x,
            top_left_y=box.top_left_y,
            w=box.w,
            h=box.h,
            conf=box.conf,
            label=box.label,
        )


class ImageInfo(BaseModel):
    sha256: str
    bytes: int
    width: int | None
    height: int | None


class ProcessResult(BaseModel):
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
    def of(cls, ctx: RunContext) -> "ProcessResult":
        best = ctx.best_car()
        assert ctx.image_sha256 is not None
        return cls(
            run_id=ctx.run_id,
            pipeline_id=ctx.pipeline.id,
            pipeline_version=ctx.pipeline.version,
            car_detected=ctx.car_detected,
            box=BoxOut.of(best) if best else None,
            detections=[box.as_tuple() for box in ctx.detections or ()],
            timings_ms=ctx.timings_ms,
            image=ImageInfo(
                sha256=ctx.image_sha256,
                bytes=len(ctx.data),
                width=ctx.image_width,
                height=ctx.image_height,
            ),
        )

    @classmethod
    def of_stored(cls, run: StoredRun) -> "ProcessResult":
        """The answer of a run stored earlier (an Idempotency-Key replay)."""
        return cls(**stored_run_fields(run))


def stored_run_fields(run: StoredRun) -> dict[str, Any]:
    """What a stored run answers, whether replayed (POST /process_image) or read (/results)."""
    best = best_car(run.detections)
    return {
        "run_id": run.id,
        "pipeline_id": run.pipeline_id,
        "pipeline_version": run.pipeline_version,
        "status": run.status,
        "car_detected": run.car_detected,
        "box": BoxOut.of(best) if best else None,
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
