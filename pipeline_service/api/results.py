"""GET /results (newest first, filtered, keyset-paged) and GET /results/{run_id}."""

from typing import Annotated

from fastapi import APIRouter, Path, Query, Request
from pydantic import AwareDatetime

from pipeline_service.api.cursor import Cursor, InvalidCursor, decode_cursor, encode_cursor
from pipeline_service.api.result_schemas import CURSOR_EXAMPLE, RunPage, RunResult, RunStatus
from pipeline_service.api.schemas import problem_responses
from pipeline_service.config import PG_INT_MAX
from pipeline_service.db.results import XID8_MAX, ResultsRepository, RunFilters
from pipeline_service.errors import DatabaseUnavailable, RunNotFound
from service_kit.errors import FieldProblem, InvalidRequest

router = APIRouter(tags=["results"])

MAX_LIMIT = 500


def _repository(request: Request) -> ResultsRepository:
    return ResultsRepository(request.app.state.runtime.db)


def _invalid(field: str, message: str) -> InvalidRequest:
    return InvalidRequest([FieldProblem(field, message)])


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
    responses=problem_responses(InvalidRequest, DatabaseUnavailable),
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
        AwareDatetime | None,
        Query(
            description="Only runs created at or after this instant (ISO 8601 with offset).",
            openapi_examples={"from": {"value": "2026-11-21T00:00:00Z"}},
        ),
    ] = None,
    until: Annotated[
        AwareDatetime | None,
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
    responses=problem_responses(RunNotFound, InvalidRequest, DatabaseUnavailable),
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
