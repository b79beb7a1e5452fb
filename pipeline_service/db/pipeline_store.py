"""Managing pipelines: list, read, create, replace, soft-delete, version history.

Each change is one transaction: the pipeline row, its steps, and (through the database's
sync_pipeline_version(), migration 0002) the version bump and its snapshot. The triggers of
migrations 0001/0002 announce the change with NOTIFY in that same transaction.
"""

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from pipeline_service.db.engine import database_errors_as_unavailable
from pipeline_service.db.models import Pipeline, PipelineStep, PipelineVersion
from pipeline_service.db.pipelines import step_definitions, steps_json
from pipeline_service.pipeline.definition import StepDefinition
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


class NameTaken(Exception):
    """Another active pipeline has this name (raced past the check before the write)."""


class VersionMismatch(Exception):
    """The pipeline is at a version the caller did not expect (a conditional change)."""

    def __init__(self, current: int) -> None:
        super().__init__(f"the pipeline is at version {current}")
        self.current = current


def require_version(current: int, expected: frozenset[int] | None) -> None:
    """`expected` None: any version will do."""
    if expected is not None and current not in expected:
        raise VersionMismatch(current)


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


class PipelineStore:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def list_pipelines(self, include_deleted: bool = False) -> list[StoredPipeline]:
        query = _with_steps().order_by(Pipeline.id)
        if not include_deleted:
            query = query.where(Pipeline.is_active)
        async with database_errors_as_unavailable(), self._engine.connect() as conn:
            return [_stored(row) for row in await conn.execute(query)]

    async def get(self, pipeline_id: int) -> StoredPipeline | None:
        """The active pipeline with its steps."""
        async with database_errors_as_unavailable(), self._engine.connect() as conn:
            return await self._get(conn, pipeline_id)

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

    async def name_owner(self, name: str, except_id: int | None = None) -> int | None:
        """The id of the active pipeline called `name`, other than `except_id`."""
        query = select(Pipeline.id).where(Pipeline.name == name, Pipeline.is_active)
        if except_id is not None:
            query = query.where(Pipeline.id != except_id)
        async with database_errors_as_unavailable(), self._engine.connect() as conn:
            return await conn.scalar(query)

    async def create(self, draft: PipelineDraft) -> StoredPipeline:
        async with database_errors_as_unavailable():
            with _name_clash_as_name_taken(draft.name):
                async with self._engine.begin() as conn:
                    pipeline_id: int = await conn.scalar(
                        insert(Pipeline)
                        .values(name=draft.name, description=draft.description)
                        .returning(Pipeline.id)
                    )
                    await self._write_steps(conn, pipeline_id, draft)
                    stored = await self._get(conn, pipeline_id)
        assert stored is not None
        return stored

    async def replace(
        self,
        pipeline_id: int,
        draft: PipelineDraft,
        expected_versions: frozenset[int] | None = None,
    ) -> StoredPipeline | None:
        """Replace name, description and steps of an active pipeline (None: not found).
        A draft identical to the current definition writes nothing and keeps the version.
        VersionMismatch if the pipeline is not at one of `expected_versions` (checked on the
        locked row, so two changes based on the same version cannot both pass)."""
        async with database_errors_as_unavailable():
            with _name_clash_as_name_taken(draft.name):
                async with self._engine.begin() as conn:
                    current = (
                        await conn.execute(
                            select(
                                Pipeline.version,
                                func.pipeline_snapshot(Pipeline.id, type_=JSONB).label("snapshot"),
                            )
                            .where(Pipeline.id == pipeline_id, Pipeline.is_active)
                            .with_for_update()
                        )
                    ).one_or_none()
                    if current is None:
                        return None
                    require_version(current.version, expected_versions)
                    if current.snapshot != draft.snapshot():
                        await conn.execute(
                            update(Pipeline)
                            .where(Pipeline.id == pipeline_id)
                            .values(name=draft.name, description=draft.description)
                        )
                        await conn.execute(
                            delete(PipelineStep).where(PipelineStep.pipeline_id == pipeline_id)
                        )
                        await self._write_steps(conn, pipeline_id, draft)
                    stored = await self._get(conn, pipeline_id)
        return stored

    async def deactivate(
        self, pipeline_id: int, expected_versions: frozenset[int] | None = None
    ) -> bool:
        """Soft delete: the pipeline stops running; its versions and runs stay. False: no
        such active pipeline; VersionMismatch as for `replace`."""
        async with database_errors_as_unavailable(), self._engine.begin() as conn:
            version = await conn.scalar(
                select(Pipeline.version)
                .where(Pipeline.id == pipeline_id, Pipeline.is_active)
                .with_for_update()
            )
            if version is None:
                return False
            require_version(version, expected_versions)
            await conn.execute(
                update(Pipeline)
                .where(Pipeline.id == pipeline_id)
                .values(is_active=False, updated_at=func.now())
            )
        return True

    @staticmethod
    async def _write_steps(conn: AsyncConnection, pipeline_id: int, draft: PipelineDraft) -> None:
        await conn.execute(
            insert(PipelineStep),
            [
                {"pipeline_id": pipeline_id, "position": i, "type": s.type, "params": s.params}
                for i, s in enumerate(draft.steps)
            ],
        )
        # Bumps the version and stores the snapshot now, inside this transaction, so the
        # answer can carry it; the deferred trigger at commit then finds nothing to do.
        await conn.execute(select(func.sync_pipeline_version(pipeline_id)))

    @staticmethod
    async def _get(conn: AsyncConnection, pipeline_id: int) -> StoredPipeline | None:
        row = (
            await conn.execute(_with_steps().where(Pipeline.id == pipeline_id, Pipeline.is_active))
        ).one_or_none()
        return None if row is None else _stored(row)
