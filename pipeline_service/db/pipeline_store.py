"""Pipelines in PostgreSQL: the active definition the cache compiles (off the hot path), the
answers of the pipeline API (list, one, version history), and changes.

A change is one transaction (`PipelineStore.transaction`): it locks the pipeline's row, then
the caller checks and writes through it; the row, its steps and (through the database's
sync_pipeline_version(), migration 0002) the version bump and its snapshot are written
together. The triggers of migrations 0001/0002 announce the change with NOTIFY in that same
transaction.
"""

from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, delete, func, insert, literal, select, update
from sqlalchemy.dialects.postgresql import JSONB, aggregate_order_by
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from pipeline_service.db.engine import database_errors_as_unavailable
from pipeline_service.db.models import Pipeline, PipelineStep, PipelineVersion
from pipeline_service.pipeline.definition import PipelineDefinition, PipelineRef, StepDefinition
from pipeline_service.pipeline.validation import PipelineDraft

ACTIVE_NAME_INDEX = "pipelines_active_name_key"


@dataclass(frozen=True, slots=True)
class StoredPipeline:
    id: int
    name: str
    description: str
    version: int
    is_active: bool
    created_at: datetime
    updated_at: datetime
    steps: tuple[StepDefinition, ...]


@dataclass(frozen=True, slots=True)
class StoredVersion:
    version: int
    created_at: datetime
    name: str
    description: str
    steps: tuple[StepDefinition, ...]


@dataclass(frozen=True, slots=True)
class LockedPipeline:
    """An active pipeline's row, locked until the end of the transaction."""

    id: int
    version: int
    snapshot: dict[str, Any]  # as pipeline_snapshot() gives it: name, description, steps


class NameTaken(Exception):
    """Another active pipeline has this name (raced past the check before the write)."""


def steps_json() -> ColumnElement[Any]:
    """The pipeline's steps in order as a JSON list, read in the same statement (and so the
    same snapshot) as the pipeline row: version and steps always belong together."""
    step = func.jsonb_build_object("type", PipelineStep.type, "params", PipelineStep.params)
    aggregated = (
        select(func.jsonb_agg(aggregate_order_by(step, PipelineStep.position)))
        .where(PipelineStep.pipeline_id == Pipeline.id)
        .scalar_subquery()
    )
    return func.coalesce(aggregated, literal([], JSONB), type_=JSONB)


def step_definitions(steps: list[dict[str, Any]]) -> tuple[StepDefinition, ...]:
    return tuple(StepDefinition(step["type"], step.get("params") or {}) for step in steps)


def _with_steps() -> Any:
    return select(
        Pipeline.id,
        Pipeline.name,
        Pipeline.description,
        Pipeline.version,
        Pipeline.is_active,
        Pipeline.created_at,
        Pipeline.updated_at,
        steps_json().label("steps"),
    )


def _stored(row: Any) -> StoredPipeline:
    return StoredPipeline(
        id=row.id,
        name=row.name,
        description=row.description,
        version=row.version,
        is_active=row.is_active,
        created_at=row.created_at,
        updated_at=row.updated_at,
        steps=step_definitions(row.steps),
    )


@contextmanager
def _name_clash_as_name_taken(name: str) -> Iterator[None]:
    """Another active pipeline took `name` first (the unique index said so): NameTaken."""
    try:
        yield
    except IntegrityError as error:
        cause = getattr(error.orig, "__cause__", None)
        if getattr(cause, "constraint_name", None) == ACTIVE_NAME_INDEX:
            raise NameTaken(name) from error
        raise


class PipelineTransaction:
    """What a change does inside its one transaction (see `PipelineStore.transaction`)."""

    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn

    async def lock(self, pipeline_id: int) -> LockedPipeline | None:
        """The active pipeline's row, locked (SELECT ... FOR UPDATE); None: no such pipeline.
        Two changes of one pipeline queue here, so each sees the version the other left."""
        row = (
            await self._conn.execute(
                select(
                    Pipeline.version,
                    func.pipeline_snapshot(Pipeline.id, type_=JSONB).label("snapshot"),
                )
                .where(Pipeline.id == pipeline_id, Pipeline.is_active)
                .with_for_update()
            )
        ).one_or_none()
        return None if row is None else LockedPipeline(pipeline_id, row.version, row.snapshot)

    async def name_owner(self, name: str, except_id: int | None = None) -> int | None:
        """The id of the active pipeline called `name`, other than `except_id`."""
        query = select(Pipeline.id).where(Pipeline.name == name, Pipeline.is_active)
        if except_id is not None:
            query = query.where(Pipeline.id != except_id)
        return await self._conn.scalar(query)

    async def create(self, draft: PipelineDraft) -> StoredPipeline:
        with _name_clash_as_name_taken(draft.name):
            inserted = await self._conn.execute(
                insert(Pipeline)
                .values(name=draft.name, description=draft.description)
                .returning(Pipeline.id)
            )
        pipeline_id: int = inserted.scalar_one()
        await self._write_steps(pipeline_id, draft)
        return await self._stored(pipeline_id)

    async def replace(self, current: LockedPipeline, draft: PipelineDraft) -> StoredPipeline:
        """Name, description and steps of a locked pipeline. A draft identical to the current
        definition writes nothing and keeps the version."""
        if current.snapshot != draft.snapshot():
            with _name_clash_as_name_taken(draft.name):
                await self._conn.execute(
                    update(Pipeline)
                    .where(Pipeline.id == current.id)
                    .values(name=draft.name, description=draft.description)
                )
            await self._conn.execute(
                delete(PipelineStep).where(PipelineStep.pipeline_id == current.id)
            )
            await self._write_steps(current.id, draft)
        return await self._stored(current.id)

    async def deactivate(self, current: LockedPipeline) -> None:
        """Soft delete: the pipeline stops running; its versions and runs stay."""
        await self._conn.execute(
            update(Pipeline)
            .where(Pipeline.id == current.id)
            .values(is_active=False, updated_at=func.now())
        )

    async def _write_steps(self, pipeline_id: int, draft: PipelineDraft) -> None:
        await self._conn.execute(
            insert(PipelineStep),
            [
                {"pipeline_id": pipeline_id, "position": i, "type": s.type, "params": s.params}
                for i, s in enumerate(draft.steps)
            ],
        )
        # Bumps the version and stores the snapshot now, inside this transaction, so the
        # answer can carry it; the deferred trigger at commit then finds nothing to do.
        await self._conn.execute(select(func.sync_pipeline_version(pipeline_id)))

    async def _stored(self, pipeline_id: int) -> StoredPipeline:
        stored = await _get(self._conn, pipeline_id)
        assert stored is not None
        return stored


async def _get(conn: AsyncConnection, pipeline_id: int) -> StoredPipeline | None:
    row = (
        await conn.execute(_with_steps().where(Pipeline.id == pipeline_id, Pipeline.is_active))
    ).one_or_none()
    return None if row is None else _stored(row)


class PipelineStore:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def load_active(self, pipeline_id: int) -> PipelineDefinition | None:
        """The active pipeline with its steps in order, read in one statement (the cache's
        loader)."""
        query = select(Pipeline.id, Pipeline.version, Pipeline.name, steps_json()).where(
            Pipeline.id == pipeline_id, Pipeline.is_active
        )
        async with database_errors_as_unavailable(), self._engine.connect() as conn:
            row = (await conn.execute(query)).one_or_none()
        if row is None:
            return None
        ref = PipelineRef(row.id, row.version, row.name)
        return PipelineDefinition(ref, step_definitions(row[3]))

    async def list_pipelines(self, include_deleted: bool = False) -> list[StoredPipeline]:
        query = _with_steps().order_by(Pipeline.id)
        if not include_deleted:
            query = query.where(Pipeline.is_active)
        async with database_errors_as_unavailable(), self._engine.connect() as conn:
            return [_stored(row) for row in await conn.execute(query)]

    async def get(self, pipeline_id: int) -> StoredPipeline | None:
        """The active pipeline with its steps."""
        async with database_errors_as_unavailable(), self._engine.connect() as conn:
            return await _get(conn, pipeline_id)

    async def versions(self, pipeline_id: int) -> list[StoredVersion] | None:
        """Every version, oldest first, of a pipeline, deleted or not (None: no such id)."""
        async with database_errors_as_unavailable(), self._engine.connect() as conn:
            exists = await conn.scalar(select(Pipeline.id).where(Pipeline.id == pipeline_id))
            if exists is None:
                return None
            rows = await conn.execute(
                select(
                    PipelineVersion.version, PipelineVersion.created_at, PipelineVersion.snapshot
                )
                .where(PipelineVersion.pipeline_id == pipeline_id)
                .order_by(PipelineVersion.version)
            )
            return [
                StoredVersion(
                    version=row.version,
                    created_at=row.created_at,
                    name=row.snapshot.get("name", ""),
                    description=row.snapshot.get("description", ""),
                    steps=step_definitions(row.snapshot.get("steps") or []),
                )
                for row in rows
            ]

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[PipelineTransaction]:
        """One transaction for one change: committed when the block ends, rolled back if it
        raises (nothing written)."""
        async with database_errors_as_unavailable(), self._engine.begin() as conn:
            yield PipelineTransaction(conn)
