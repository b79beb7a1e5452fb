"""GET /results (newest first, filtered, keyset-paged) and GET /results/{run_id}."""

from typing import Annotated

from fastapi import APIRouter, Path, Query, Request

from pipeline_service.api.cursor import Cursor, InvalidCursor, decode_cursor, encode_cursor
from pipeline_service.api.dependencies import RuntimeDep
from pipeline_service.api.result_schemas import ResultsQuery, RunPage, RunResult
from pipeline_service.api.schemas import problem_responses
from pipeline_service.db.results import XID8_MAX, RunFilters
from pipeline_service.errors import DatabaseUnavailable, RunNotFound
from service_kit.errors import FieldProblem, InvalidRequest

router = APIRouter(tags=["results"])


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
    runtime: RuntimeDep, request: Request, query: Annotated[ResultsQuery, Query()]
) -> RunPage:
    since, until, cursor = query.since, query.until, query.cursor
    if since is not None and until is not None and since > until:
        raise _invalid("until", f"must not be before since ({since.isoformat()})")
    filters = RunFilters(query.pipeline_id, query.car_detected, query.status, since, until)
    request.state.pipeline_id = query.pipeline_id
    position = None
    if cursor is not None:
        try:
            position = decode_cursor(cursor, filters)
        except InvalidCursor as error:
            raise _invalid("cursor", str(error)) from None
    page = await runtime.results.page(
        filters,
        query.limit,
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
    runtime: RuntimeDep,
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
    run = await runtime.results.get(run_id)
    if run is None:
        raise RunNotFound(run_id)
    request.state.pipeline_id = run.pipeline_id
    return RunResult.of(run)
