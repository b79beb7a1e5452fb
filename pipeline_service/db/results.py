"""Reading stored runs: one run, or a page of runs newest first.

Paging is keyset on (created_at, id), pinned to the snapshot the first page was read in: a
listing is exactly the runs that had committed when it started, each shown once. Runs that
commit later — even with an id or timestamp older than rows already shown, as concurrent
transactions can — wait for the next listing (see migration 0003).
"""

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Row,
    Select,
    bindparam,
    literal_column,
    select,
    text,
    tuple_,
    union_all,
)
from sqlalchemy.ext.asyncio import AsyncEngine

from pipeline_service.db.engine import database_errors_as_unavailable
from pipeline_service.db.models import Pipeline, ProcessingRun
from pipeline_service.pipeline.types import Box

XID8_MAX = 2**63 - 1  # what we accept; PostgreSQL's are far below
SNAPSHOT_FORMAT = re.compile(r"(\d{1,19}):(\d{1,19}):(\d{1,19}(?:,\d{1,19})*)?")
MAX_SNAPSHOT_XIPS = 10_000


def is_valid_snapshot(snapshot: str) -> bool:
    """True for `xmin:xmax:xip,...` text that PostgreSQL's pg_snapshot accepts."""
    match = SNAPSHOT_FORMAT.fullmatch(snapshot)
    if not match:
        return False
    xmin, xmax = int(match[1]), int(match[2])
    xips = [int(x) for x in match[3].split(",")] if match[3] else []
    if len(xips) > MAX_SNAPSHOT_XIPS or not all(
        0 < v <= XID8_MAX and v % 2**32 != 0 for v in (xmin, xmax)
    ):
        return False
    return xmin <= xmax and all(xmin <= x < xmax for x in xips) and xips == sorted(xips)


@dataclass(frozen=True, slots=True)
class RunFilters:
    pipeline_id: int | None = None
    car_detected: bool | None = None
    status: str | None = None
    since: datetime | None = None  # inclusive
    until: datetime | None = None  # exclusive


@dataclass(frozen=True, slots=True)
class Position:
    """Where a page ended: the next page starts strictly after (older than) this run."""

    created_at: datetime
    id: int


@dataclass(frozen=True, slots=True)
class StoredRun:
    id: int
    pipeline_id: int
    pipeline_version: int
    status: str
    car_detected: bool | None
    image_sha256: str
    image_bytes: int
    image_width: int | None
    image_height: int | None
    timings_ms: dict[str, float]
    error: str | None
    created_at: datetime
    detections: list[Box]

    @property
    def position(self) -> Position:
        return Position(self.created_at, self.id)


@dataclass(frozen=True, slots=True)
class StoredRunPage:
    runs: list[StoredRun]
    snapshot: str  # pg_snapshot text: which transactions this listing sees
    more: bool  # whether runs remain after the last one


RUN_COLUMNS = (
    ProcessingRun.id,
    ProcessingRun.pipeline_id,
    ProcessingRun.pipeline_version,
    ProcessingRun.status,
    ProcessingRun.car_detected,
    ProcessingRun.image_sha256,
    ProcessingRun.image_bytes,
    ProcessingRun.image_width,
    ProcessingRun.image_height,
    ProcessingRun.timings_ms,
    ProcessingRun.error,
    ProcessingRun.created_at,
    ProcessingRun.boxes,
)
VISIBLE_IN_SNAPSHOT = text(
    "(processing_runs.created_xid IS NULL OR pg_visible_in_snapshot("
    "processing_runs.created_xid, CAST(CAST(:snapshot AS text) AS pg_snapshot)))"
)
# Every (status, car_detected) a run can have: a failed run has no car_detected (a CHECK of
# migration 0005); a succeeded one of a pipeline without a detect step has none either.
OUTCOMES: tuple[tuple[str, bool | None], ...] = (
    ("succeeded", True),
    ("succeeded", False),
    ("succeeded", None),
    ("failed", None),
)
NEWEST_FIRST = (ProcessingRun.created_at.desc(), ProcessingRun.id.desc())


def outcomes(filters: RunFilters) -> list[tuple[str, bool | None]]:
    """The outcomes a listing with these filters can hold; none for a combination that
    cannot match (status=failed&car_detected=true), answered without a query."""
    return [
        (status, car)
        for status, car in OUTCOMES
        if filters.status in (None, status) and filters.car_detected in (None, car)
    ]


def _conditions(filters: RunFilters, after: Position | None) -> list[ColumnElement[bool]]:
    conditions: list[ColumnElement[bool]] = []
    if filters.pipeline_id is not None:
        conditions.append(ProcessingRun.pipeline_id == _written_in(filters.pipeline_id))
    if filters.since is not None:
        conditions.append(ProcessingRun.created_at >= filters.since)
    if filters.until is not None:
        conditions.append(ProcessingRun.created_at < filters.until)
    if after is not None:
        conditions.append(
            tuple_(ProcessingRun.created_at, ProcessingRun.id) < tuple_(after.created_at, after.id)
        )
        # implied by the line above, but only this form lets PostgreSQL skip the days after it
        conditions.append(ProcessingRun.created_at <= after.created_at)
    return conditions


def _written_in(value: Any) -> Any:
    """A value written into the statement's text instead of sent as a parameter, so that
    PostgreSQL's plan for the prepared statement can rely on it. After five runs of a prepared
    statement PostgreSQL may keep one generic plan for any parameter values instead of
    planning each run (7 ms over 14 day partitions here: the bulk of a page's time):
    - with `status` or `pipeline_id` a parameter, that plan cannot tell which partial index
      applies, nor how rare a pipeline is: pages of a pipeline took 270-410 ms at 1 M runs;
    - with `LIMIT` a parameter, the generic plan looks far dearer than a custom one, so
      every run is planned again: 2.3-3.5 ms a run, against 0.2 ms with the limit written in
      (EXPLAIN at 10 M runs).
    Each (filters, limit) gets a statement of its own (asyncpg keeps the last 100)."""
    return bindparam(None, value, literal_execute=True)


def _outcome(status: str, car: bool | None) -> list[ColumnElement[bool]]:
    if status == "failed":
        # No `car_detected IS NULL` (the CHECK says so already): PostgreSQL would take the two
        # conditions as independent, expect 1 % of 1 % of the runs, and read every failed run
        # of every day to sort them (300 ms for a page of 500 at 10 M runs, 0.3 ms without).
        return [ProcessingRun.status == _written_in(status)]
    return [
        ProcessingRun.status == _written_in(status),
        ProcessingRun.car_detected.is_(None) if car is None else ProcessingRun.car_detected == car,
    ]


# A listing reads newest first one window of days at a time, widening: the day it starts on
# (and everything after it), then the 6 days before, then 24 more, then all that is older.
# Each window's bounds fall on day boundaries, so PostgreSQL plans it over its own day
# partitions only: with months of partitions, planning and starting an index scan in every
# one of them cost a first page up to 92 ms p99 at 120 days; most pages are filled by the
# first window. Narrower steps (2, 4, 8, 16 days) cost the sparse filters more round trips
# than they saved (docs/performance.md).
WINDOW_DAYS = (6, 24)


@dataclass(frozen=True, slots=True)
class Window:
    lower: datetime | None  # inclusive
    upper: datetime | None  # exclusive


def windows(start: datetime, since: datetime | None) -> list[Window]:
    """The day windows of a listing that starts at `start` (the newest time it can show),
    newest first, down to `since` (or without end)."""
    start = start.astimezone(UTC)  # days are UTC days, as the partitions'
    lower = datetime(start.year, start.month, start.day, tzinfo=UTC)
    found = [Window(lower, None)]
    for span in WINDOW_DAYS:
        if since is not None and lower <= since:
            return found
        lower, upper = lower - timedelta(days=span), lower
        found.append(Window(lower, upper))
    if since is None or lower > since:
        found.append(Window(None, lower))
    return found


def _window_conditions(window: Window) -> list[ColumnElement[bool]]:
    # Written into the text (day boundaries the service computed, never the client's input),
    # so that the plan covers only the window's partitions.
    conditions: list[ColumnElement[bool]] = []
    if window.lower is not None:
        conditions.append(ProcessingRun.created_at >= _timestamp(window.lower))
    if window.upper is not None:
        conditions.append(ProcessingRun.created_at < _timestamp(window.upper))
    return conditions


def _timestamp(moment: datetime) -> ColumnElement[Any]:
    return literal_column(f"'{moment.isoformat()}'::timestamptz")


def listing_query(
    filters: RunFilters,
    limit: int,
    snapshot: str,
    after: Position | None,
    window: Window = Window(None, None),
) -> Select[Any]:
    """Newest first. Without any filter but time, one range of the (created_at, id) key.
    Otherwise one range per outcome the filters allow, each read in order from that
    outcome's partial index ((pipeline_id,) created_at, id: db/models.py), merged (a Merge
    Append): a page costs `limit` rows per outcome at most, whatever the table's size and
    however rare the match, and an outcome without a match one index descent per day
    partition."""
    visible = VISIBLE_IN_SNAPSHOT.bindparams(snapshot=snapshot)
    common: list[Any] = [*_conditions(filters, after), *_window_conditions(window), visible]
    by_outcome = filters.status is not None or filters.car_detected is not None
    at_most = _written_in(limit)
    if not by_outcome and filters.pipeline_id is None:
        return select(*RUN_COLUMNS).where(*common).order_by(*NEWEST_FIRST).limit(at_most)
    parts = [
        select(*RUN_COLUMNS)
        .where(*_outcome(status, car), *common)
        .order_by(*NEWEST_FIRST)
        .limit(at_most)
        for status, car in outcomes(filters)
    ]
    if len(parts) == 1:
        return parts[0]
    merged = union_all(*parts).subquery("run")
    newest_first = (merged.c.created_at.desc(), merged.c.id.desc())
    return select(*merged.c).order_by(*newest_first).limit(at_most)


class ResultsRepository:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def get(self, run_id: int) -> StoredRun | None:
        """Any partition may hold it: each one's BRIN index on id is asked."""
        async with database_errors_as_unavailable(), self._engine.connect() as conn:
            rows = (
                await conn.execute(select(*RUN_COLUMNS).where(ProcessingRun.id == run_id))
            ).all()
        return _stored(rows[0]) if rows else None

    async def page(
        self,
        filters: RunFilters,
        limit: int,
        snapshot: str | None = None,
        after: Position | None = None,
    ) -> StoredRunPage:
        """Up to `limit` runs newest first; without `snapshot`, a new listing starts now."""
        if not outcomes(filters):
            return StoredRunPage([], snapshot or "", more=False)
        async with database_errors_as_unavailable(), self._engine.connect() as conn:
            if snapshot is None:
                snapshot = (
                    await conn.execute(text("SELECT pg_current_snapshot()::text"))
                ).scalar_one()
            if filters.pipeline_id is not None and after is None:
                # Runs reference their pipeline and pipelines are only ever soft-deleted: no
                # such pipeline, no runs. One key lookup instead of an index descent per
                # outcome and day partition (the slowest first page at 10 M runs, 30 ms).
                known = select(Pipeline.id).where(Pipeline.id == filters.pipeline_id)
                if (await conn.execute(known)).first() is None:
                    return StoredRunPage([], snapshot, more=False)
            rows: list[Row[Any]] = []
            for window in windows(_newest_possible(filters, after), filters.since):
                query = listing_query(filters, limit + 1, snapshot, after, window)
                rows += (await conn.execute(query)).all()
                if len(rows) > limit:
                    break
        runs = [_stored(row) for row in rows[: limit + 1]]
        return StoredRunPage(runs[:limit], snapshot, more=len(runs) > limit)


def _newest_possible(filters: RunFilters, after: Position | None) -> datetime:
    """Where a listing's first window starts: at the page's position, `until`, or now."""
    candidates = [datetime.now(UTC)]
    if filters.until is not None:
        candidates.append(filters.until)
    if after is not None:
        candidates.append(after.created_at)
    return min(candidates)


def _boxes(numbers: list[float] | None) -> list[Box]:
    values = numbers or []
    return [
        Box(x, y, w, h, conf, int(label))
        for x, y, w, h, conf, label in (values[i : i + 6] for i in range(0, len(values), 6))
    ]


def _stored(row: Row[Any]) -> StoredRun:
    fields = row._asdict()
    boxes = fields.pop("boxes")
    fields["image_sha256"] = fields["image_sha256"].hex()
    return StoredRun(**fields, detections=_boxes(boxes))
