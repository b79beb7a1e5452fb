"""Response bodies of GET /results and GET /results/{run_id}."""

from datetime import UTC, datetime
from typing import Annotated, Literal

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field

from pipeline_service.api.schemas import (
    PROCESS_RESULT_EXAMPLE,
    BoxOut,
    ImageInfo,
    stored_run_fields,
)
from pipeline_service.config import PG_INT_MAX
from pipeline_service.db.results import StoredRun
from service_kit.openapi import schema_examples

RunStatus = Literal["succeeded", "failed"]
MAX_LIMIT = 500

# A stored run reads back as the answer that created it, minus the save step's own timing
# (it is measured while the row is written), plus its error and time.
RUN_EXAMPLE = {
    **PROCESS_RESULT_EXAMPLE,
    "timings_ms": {k: v for k, v in PROCESS_RESULT_EXAMPLE["timings_ms"].items() if k != "save"},
    "error": None,
    "created_at": "2026-11-21T20:48:03.512345Z",
}
FAILED_RUN_EXAMPLE = {
    **RUN_EXAMPLE,
    "run_id": 41,
    "status": "failed",
    "car_detected": None,
    "box": None,
    "detections": [],
    "timings_ms": {"decode": 8.1, "resize": 0.9, "normalize": 0.4, "base64": 0.6},
    "error": "The model service did not answer within 5 s (MODEL_TIMEOUT_S); try again later.",
    "created_at": "2026-11-21T20:48:01.004211Z",
}
CURSOR_EXAMPLE = (  # a real one (for a listing without filters)
    "eyJ2IjoxLCJzIjoiNzkxOjc5NTo3OTIiLCJ0IjoiMjAyNi0xMS0yMVQyMDo0ODowMS4wMDQyMTErMDA6MDAiLCJp"
    "Ijo0MSwiZiI6IjkzMTg1MzZjN2E4Zjk3NTgifQ"
)


def _in_utc_range(value: datetime) -> datetime:
    """An instant the database can compare with: its offset must not push it out of years
    1..9999 once converted to UTC (9999-12-31T23:59-05:00 would)."""
    try:
        value.astimezone(UTC)
    except OverflowError:
        raise ValueError("out of range once converted to UTC (years 1 to 9999)") from None
    return value


Instant = Annotated[AwareDatetime, AfterValidator(_in_utc_range)]


class ResultsQuery(BaseModel):
    """The query of GET /results: filters (combined with AND), page size, cursor."""

    pipeline_id: int | None = Field(
        None, ge=1, le=PG_INT_MAX, description="Only runs of this pipeline.", examples=[1]
    )
    car_detected: bool | None = Field(
        None,
        description="Only runs where a car was (true) or was not (false) found.",
        examples=[True],
    )
    status: RunStatus | None = Field(
        None, description="Only succeeded or only failed runs.", examples=["failed"]
    )
    since: Instant | None = Field(
        None,
        description="Only runs created at or after this instant (ISO 8601 with offset).",
        examples=["2026-11-21T00:00:00Z"],
    )
    until: Instant | None = Field(
        None,
        description="Only runs created before this instant (ISO 8601 with offset).",
        examples=["2026-11-22T00:00:00+01:00"],
    )
    limit: int = Field(
        50, ge=1, le=MAX_LIMIT, description=f"Runs per page, at most {MAX_LIMIT}.", examples=[100]
    )
    cursor: str | None = Field(
        None,
        min_length=1,
        max_length=16_384,
        description="`next_cursor` of the previous page; omit for the first page.",
        examples=[CURSOR_EXAMPLE],
    )


class RunResult(BaseModel):
    model_config = ConfigDict(json_schema_extra=schema_examples(RUN_EXAMPLE, FAILED_RUN_EXAMPLE))

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
    model_config = ConfigDict(
        json_schema_extra=schema_examples(
            {"items": [RUN_EXAMPLE, FAILED_RUN_EXAMPLE], "next_cursor": CURSOR_EXAMPLE}
        )
    )

    items: list[RunResult] = Field(description="Newest first.")
    next_cursor: str | None = Field(
        description="Pass as `cursor` (with the same filters) for the next page; "
        "null on the last page."
    )
