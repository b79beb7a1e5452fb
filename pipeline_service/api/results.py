"""GET /results (newest first, filtered, keyset-paged) and GET /results/{run_id}."""

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Path, Query, Request
from fastapi.exceptions import RequestValidationError
from pydantic import AfterValidator, AwareDatetime

from pipeline_service.api.cursor import Cursor, InvalidCursor, decode_cursor, encode_cursor
from pipeline_service.api.process_docs import DATABASE_DOWN, PROCESS_RESULT_EXAMPLE
from pipeline_service.api.result_schemas import RunPage, RunResult, RunStatus
from pipeline_service.api.schemas import Problem
from pipeline_service.config import PG_INT_MAX
from pipeline_service.db.results import XID8_MAX, ResultsRepository, RunFilters
from pipeline_service.errors import RunNotFound
from service_kit.openapi import json_example, problem_example, problem_response

router = APIRouter(tags=["results"])

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


def _repository(request: Request) -> ResultsRepository:
    return ResultsRepository(request.app.state.runtime.db)


def _invalid(field: str, message: str) -> RequestValidationError:
    return RequestValidationError([{"loc": (field,), "msg": message, "type": "value_error"}])


@router.get(
    "/results",
    summary="List stored runs, newest first",
    description=(
        "Filters combine with AND. Pages are keyset-paged: pass `next_cursor` back as "
        "`cursor`, with the same filters, until it is null. A listing shows exactly the runs "
        "that had committed when its first page was read, each once, however many runs "
        "arrive while you page; start without a cursor to see the new ones."
    ),
    response_model=RunPage,
    responses={
        200: json_example(
            {"items": [RUN_EXAMPLE, FAILED_RUN_EXAMPLE], "next_cursor": CURSOR_EXAMPLE}
        ),
        422: problem_response(
            Problem,
            "A filter, the limit or the cursor is not valid.",
            problem_example(
                422,
                "limit: Input should be less than or equal to 500.",
                "invalid-request",
                errors=[{"field": "limit", "message": "Input should be less than or equal to 500"}],
            ),
            problem_example(
                422,
                "cursor: this cursor belongs to a listing with other filters; send the same "
                "pipeline_id, car_detected, status, since and until as for the first page, or "
                "drop the cursor.",
                "invalid-request",
                errors=[{"field": "cursor", "message": "this cursor belongs to ..."}],
            ),
        ),
        503: DATABASE_DOWN,
    },
)
async def list_results(
    request: Request,
    pipeline_id: Annotated[
        int | None,
        Query(
            ge=1,
            le=PG_INT_MAX,
            description="Only runs of this pipeline.",
            openapi_examples={"car detection": {"value": 1}},
        ),
    ] = None,
    car_detected: Annotated[
        bool | None,
        Query(
            description="Only runs where a car was (true) or was not (false) found.",
            openapi_examples={"cars only": {"value": True}},
        ),
    ] = None,
    status: Annotated[
        RunStatus | None,
        Query(
            description="Only succeeded or only failed runs.",
            openapi_examples={"failures": {"value": "failed"}},
        ),
    ] = None,
    since: Annotated[
        Instant | None,
        Query(
            description="Only runs created at or after this instant (ISO 8601 with offset).",
            openapi_examples={"from": {"value": "2026-11-21T00:00:00Z"}},
        ),
    ] = None,
    until: Annotated[
        Instant | None,
        Query(
            description="Only runs created before this instant (ISO 8601 with offset).",
            openapi_examples={"to": {"value": "2026-11-22T00:00:00+01:00"}},
        ),
    ] = None,
    limit: Annotated[
        int,
        Query(
            ge=1,
            le=MAX_LIMIT,
            description=f"Runs per page, at most {MAX_LIMIT}.",
            openapi_examples={"a page of 100": {"value": 100}},
        ),
    ] = 50,
    cursor: Annotated[
        str | None,
        Query(
            min_length=1,
            max_length=16_384,
            description="`next_cursor` of the previous page; omit for the first page.",
            openapi_examples={"next page": {"value": CURSOR_EXAMPLE}},
        ),
    ] = None,
) -> RunPage:
    if since is not None and until is not None and since > until:
        raise _invalid("until", f"must not be before since ({since.isoformat()})")
    filters = RunFilters(pipeline_id, car_detected, status, since, until)
    request.state.pipeline_id = pipeline_id
    position = None
    if cursor is not None:
        try:
            position = decode_cursor(cursor, filters)
        except InvalidCursor as error:
            raise _invalid("cursor", str(error)) from None
    page = await _repository(request).page(
        filters,
        limit,
        snapshot=position.snapshot if position else None,
        after=position.after if position else None,
    )
    next_cursor = (
        encode_cursor(Cursor(page.snapshot, page.runs[-1].position), filters) if page.more else None
    )
    return RunPage(items=[RunResult.of(run) for run in page.runs], next_cursor=next_cursor)


@router.get(
    "/results/{run_id}",
    summary="One stored run with its detections",
    response_model=RunResult,
    responses={
        200: json_example(RUN_EXAMPLE),
        404: problem_response(
            Problem,
            "No run with that id.",
            problem_example(404, "There is no stored run with id 42.", "run-not-found"),
        ),
        422: problem_response(
            Problem,
            "The run id is not a positive integer.",
            problem_example(
                422,
                "run_id: Input should be a valid integer, unable to parse string as an integer.",
                "invalid-request",
                errors=[
                    {
                        "field": "run_id",
                        "message": "Input should be a valid integer, unable to parse string "
                        "as an integer",
                    }
                ],
            ),
        ),
        503: DATABASE_DOWN,
    },
)
async def get_result(
    request: Request,
    run_id: Annotated[
        int,
        Path(
            ge=1,
            le=XID8_MAX,
            description="The `run_id` answered by POST /process_image.",
            openapi_examples={"a run": {"value": 42}},
        ),
    ],
) -> RunResult:
    request.state.run_id = run_id
    run = await _repository(request).get(run_id)
    if run is None:
        raise RunNotFound(run_id)
    request.state.pipeline_id = run.pipeline_id
    return RunResult.of(run)
