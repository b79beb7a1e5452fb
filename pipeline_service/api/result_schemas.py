"""Response bodies of GET /results and GET /results/{run_id}."""

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

from pipeline_service.api.schemas import BoxOut, ImageInfo, stored_run_fields
from pipeline_service.db.results import StoredRun

RunStatus = Literal["succeeded", "failed"]


class RunResult(BaseModel):
    run_id: int
    pipeline_id: int
    pipeline_version: int = Field(description="The pipeline definition that produced the run.")
    status: RunStatus
    car_detected: bool | None = Field(description="Null for a failed run.")
    box: BoxOut | None = Field(description="The most confident car box, or null.")
    detections: list[tuple[float, float, float, float, float, int]] = Field(
        description="Every box as [top_left_x, top_left_y, w, h, conf, label]."
    )
    timings_ms: dict[str, float] = Field(
        description="Milliseconds per step, in pipeline order (the steps before save)."
    )
    image: ImageInfo
    error: str | None = Field(description="Why a failed run failed; null otherwise.")
    created_at: datetime

    @classmethod
    def of(cls, run: StoredRun) -> "RunResult":
        return cls(**stored_run_fields(run), error=run.error, created_at=run.created_at)


class RunPage(BaseModel):
    items: list[RunResult] = Field(description="Newest first.")
    next_cursor: str | None = Field(
        description="Pass as `cursor` (with the same filters) for the next page; "
        "null on the last page."
    )
