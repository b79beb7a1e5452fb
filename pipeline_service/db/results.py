"""Reading stored runs: one run, or a page of runs newest first.

Paging is keyset on (created_at, id), pinned to the snapshot the first page was read in: a
listing is exactly the runs that had committed when it started, each shown once. Runs that
commit later — even with an id or timestamp older than rows already shown, as concurrent
transactions can — wait for the next listing (see migration 0003).
"""

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Select, select, text, tuple_
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from pipeline_service.db.engine import database_errors_as_unavailable
from pipeline_service.db.models import Detection, ProcessingRun
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
)
VISIBLE_IN_SNAPSHOT = text(
    "(processing_runs.created_xid IS NULL OR pg_visible_in_snapshot("
    "processing_runs.created_xid, CAST(CAST(:snapshot AS text) AS pg_snapshot)))"
)


def _conditions(filters: RunFilters) -> list[ColumnElement[bool]]:
    conditions: list[ColumnElement[bool]] = []
    if filters.pipeline_id is not None:
        conditions.append(ProcessingRun.pipeline_id == filters.pipeline_id)
    if filters.car_detected is not None:
        conditions.append(ProcessingRun.car_detected.is_(filters.car_detected))
    if filters.status is not None:
        conditions.append(ProcessingRun.status == filters.status)
    if filters.since is not None:
        conditions.append(ProcessingRun.created_at >= filters.since)
    if filters.until is not None:
        conditions.append(ProcessingRun.created_at < filters.until)
    return conditions


class ResultsRepository:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def get(self, run_id: int) -> StoredRun | None:
        async with database_errors_as_unavailable(), self._engine.connect() as conn:
            runs = await self._runs(conn, select(*RUN_COLUMNS).where(ProcessingRun.id == run_id))
        return runs[0] if runs else None

    async def page(
        self,
        filters: RunFilters,
        limit: int,
        snapshot: str | None = None,
        after: Position | None = None,
    ) -> StoredRunPage:
        """Up to `limit` runs newest first; without `snapshot`, a new listing starts now."""
        async with database_errors_as_unavailable(), self._engine.connect() as conn:
            if snapshot is None:
                snapshot = (
                    await conn.execute(text("SELECT pg_current_snapshot()::text"))
                ).scalar_one()
            query = (
                select(*RUN_COLUMNS)
                .where(*_conditions(filters), VISIBLE_IN_SNAPSHOT.bindparams(snapshot=snapshot))
                .order_by(ProcessingRun.created_at.desc(), ProcessingRun.id.desc())
                .limit(limit + 1)
            )
            if after is not None:
                query = query.where(
                    tuple_(ProcessingRun.created_at, ProcessingRun.id)
                    < tuple_(after.created_at, after.id)
                )
            runs = await self._runs(conn, query)
        return StoredRunPage(runs[:limit], snapshot, more=len(runs) > limit)

    async def _runs(self, conn: AsyncConnection, query: Select[Any]) -> list[StoredRun]:
        rows = (await conn.execute(query)).all()
        if not rows:
            return []
        boxes: dict[int, list[Box]] = {}
        detections = await conn.execute(
            select(
                Detection.run_id,
                Detection.top_left_x,
                Detection.top_left_y,
                Detection.w,
                Detection.h,
                Detection.conf,
                Detection.label,
            )
            .where(Detection.run_id.in_([row.id for row in rows]))
            .order_by(Detection.run_id, Detection.id)
        )
        for run_id, x, y, w, h, conf, label in detections:
            boxes.setdefault(run_id, []).append(Box(x, y, w, h, conf, label))
        return [StoredRun(**row._asdict(), detections=boxes.get(row.id, [])) for row in rows]
